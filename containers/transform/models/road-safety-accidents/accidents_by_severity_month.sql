SELECT
  date_trunc('month', datetime) AS month,
  CASE accident_severity WHEN 1 THEN 'fatal' WHEN 2 THEN 'serious' WHEN 3 THEN 'slight' ELSE 'unknown' END AS severity,
  count(*) AS accidents,
  sum(number_of_casualties) AS casualties
FROM {{ ref('curated') }}
WHERE datetime IS NOT NULL
GROUP BY
  date_trunc('month', datetime),
  CASE accident_severity WHEN 1 THEN 'fatal' WHEN 2 THEN 'serious' WHEN 3 THEN 'slight' ELSE 'unknown' END
