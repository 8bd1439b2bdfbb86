SELECT
  date_trunc('day', order_date) AS day,
  count(DISTINCT order_id) AS orders,
  count(*) AS lines,
  sum(quantity) AS units,
  round(sum(sales), 2) AS revenue,
  round(sum(profit), 4) AS profit
FROM {{ ref('curated') }}
WHERE order_date IS NOT NULL
GROUP BY date_trunc('day', order_date)
