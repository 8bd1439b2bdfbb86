WITH responses AS (
  SELECT
    coalesce(neighborhood_district, 'unknown') AS neighborhood_district,
    CAST(date_diff('second', alarm_dttm, arrival_dttm) AS DOUBLE) AS response_seconds
  FROM {{ ref('curated') }}
  WHERE alarm_dttm IS NOT NULL AND arrival_dttm IS NOT NULL AND arrival_dttm >= alarm_dttm
)
SELECT
  neighborhood_district,
  count(*) AS incidents,
  {{ percentile('response_seconds', 0.5) }} AS p50_seconds,
  {{ percentile('response_seconds', 0.9) }} AS p90_seconds,
  {{ percentile('response_seconds', 0.99) }} AS p99_seconds
FROM responses
GROUP BY neighborhood_district
