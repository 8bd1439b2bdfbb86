-- chart: {"mark":"bar","encoding":{"x":{"field":"battalion","type":"nominal","sort":"-y"},"y":{"field":"incidents","type":"quantitative","title":"Incidents"}}}
SELECT
  battalion,
  CAST(sum(incidents) AS BIGINT) AS incidents,
  count(*) AS active_months,
  max(incidents) AS busiest_month_incidents
FROM {{ ref('incidents_by_month_battalion') }}
GROUP BY battalion
