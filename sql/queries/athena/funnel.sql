-- Funnel between two event types (Athena): of the customers with a `cart_item` event, how
-- many had an `order_item` event within 24 hours after their first one. Same logic as
-- sql/queries/funnel.sql, with Athena's JSON functions instead of a regular expression.
-- With the generated views applied (lakehouse catalog views --apply), read
-- cart_item.customer_id and order_item.customer_id instead.
WITH keyed AS (
  SELECT
    event_type,
    created_at,
    json_extract_scalar(payload, '$.customer_id') AS customer_id
  FROM staging
  WHERE event_type IN ('cart_item', 'order_item')
),
started AS (
  SELECT customer_id, min(created_at) AS first_at
  FROM keyed
  WHERE event_type = 'cart_item' AND customer_id IS NOT NULL
  GROUP BY customer_id
),
converted AS (
  SELECT DISTINCT s.customer_id
  FROM started s
  JOIN keyed k ON k.customer_id = s.customer_id
  WHERE k.event_type = 'order_item'
    AND k.created_at > s.first_at
    AND k.created_at <= s.first_at + 86400
)
SELECT
  'cart_item' AS from_type,
  'order_item' AS to_type,
  (SELECT count(*) FROM started) AS customers,
  (SELECT count(*) FROM converted) AS converted,
  round(
    100 * CAST((SELECT count(*) FROM converted) AS double)
      / greatest((SELECT count(*) FROM started), 1),
    2
  ) AS conversion_pct;
