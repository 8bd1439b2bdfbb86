-- "at" is quoted: DuckDB reads a bare at as the AT of AT TIME ZONE.
SELECT
  provider,
  count(*) AS vehicles,
  round(avg(battery), 1) AS avg_battery
FROM (
  SELECT
    provider,
    event,
    battery,
    row_number() OVER (PARTITION BY vehicle_id ORDER BY "at" DESC, event_key DESC) AS newest
  FROM {{ ref('curated') }}
  WHERE vehicle_id IS NOT NULL
) AS latest
WHERE newest = 1 AND event <> 'deregister'
GROUP BY provider
