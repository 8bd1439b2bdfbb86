-- "at" is quoted: DuckDB reads a bare at as the AT of AT TIME ZONE.
SELECT
  date_trunc('day', "at") AS day,
  event,
  count(*) AS events,
  count(DISTINCT vehicle_id) AS vehicles
FROM {{ ref('curated') }}
WHERE "at" IS NOT NULL
GROUP BY date_trunc('day', "at"), event
