-- description: Incidents per calendar month and battalion (incidents without a battalion count as "unknown").
-- tests: [{"kind":"unique","columns":["month","battalion"]},{"kind":"not_null","column":"month"},{"kind":"range","column":"incidents","min":1}]
-- chart: {"type":"line","x":"month","time":"month","y":"incidents","series":"battalion","top":12,"unit":"per month","xTitle":"Month","yTitle":"Incidents"}
SELECT
  date_trunc('month', incident_date) AS month,
  coalesce(battalion, 'unknown') AS battalion,
  count(*) AS incidents
FROM {{ ref('curated') }}
WHERE incident_date IS NOT NULL
GROUP BY date_trunc('month', incident_date), coalesce(battalion, 'unknown')
