-- Payment amounts per day through the typed table of `payment_item` events: the scan
-- reads the `amount` column, not every payload (compare the view `payment_item`, which
-- extracts it from the JSON). Values that were no number are in `_rescued_data`, counted.
SELECT
  event_date,
  count(*) AS events,
  count(amount) AS amounts,
  sum(amount) AS amount,
  count(_rescued_data) AS rescued
FROM typed_payment_item
GROUP BY event_date
ORDER BY event_date;
