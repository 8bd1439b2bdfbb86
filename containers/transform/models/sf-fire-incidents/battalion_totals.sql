-- description: Per battalion: total incidents, months with incidents and the busiest month, from the monthly mart.
-- tests: [{"kind":"unique","columns":["battalion"]}]
-- chart: {"type":"bar","x":"battalion","y":"incidents","xTitle":"Battalion","yTitle":"Incidents"}
SELECT
  battalion,
  CAST(sum(incidents) AS BIGINT) AS incidents,
  count(*) AS active_months,
  max(incidents) AS busiest_month_incidents
FROM {{ ref('incidents_by_month_battalion') }}
GROUP BY battalion
