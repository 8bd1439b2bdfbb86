SELECT
  coalesce(primary_situation, 'unknown') AS primary_situation,
  count(*) AS incidents,
  sum(coalesce(estimated_property_loss, 0)) AS property_loss,
  sum(coalesce(estimated_contents_loss, 0)) AS contents_loss,
  CAST(sum(coalesce(fire_fatalities, 0)) AS BIGINT) AS fire_fatalities,
  CAST(sum(coalesce(civilian_fatalities, 0)) AS BIGINT) AS civilian_fatalities,
  CAST(sum(coalesce(fire_injuries, 0)) AS BIGINT) AS fire_injuries,
  CAST(sum(coalesce(civilian_injuries, 0)) AS BIGINT) AS civilian_injuries
FROM {{ ref('curated') }}
GROUP BY coalesce(primary_situation, 'unknown')
