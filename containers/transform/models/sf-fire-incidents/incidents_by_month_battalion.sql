SELECT
  date_trunc('month', incident_date) AS month,
  coalesce(battalion, 'unknown') AS battalion,
  count(*) AS incidents
FROM {{ ref('curated') }}
WHERE incident_date IS NOT NULL
GROUP BY date_trunc('month', incident_date), coalesce(battalion, 'unknown')
