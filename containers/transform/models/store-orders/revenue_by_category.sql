SELECT
  category,
  sub_category,
  count(*) AS lines,
  sum(quantity) AS units,
  round(sum(sales), 2) AS revenue,
  round(sum(profit), 4) AS profit
FROM {{ ref('curated') }}
GROUP BY category, sub_category
