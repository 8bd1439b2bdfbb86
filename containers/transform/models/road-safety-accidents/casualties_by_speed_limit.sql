SELECT
  speed_limit,
  count(*) AS accidents,
  sum(number_of_casualties) AS casualties,
  count_if(accident_severity IN (1, 2)) AS killed_or_seriously_injured
FROM {{ ref('curated') }}
GROUP BY speed_limit
