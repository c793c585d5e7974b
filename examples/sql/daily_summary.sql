-- Rebuilds the summary of one logical date ({{ ds }}), so re-running a date is
-- idempotent, and keeps only the last {{ params.keep_days }} days, like seed 001's
-- features.sql.
DELETE FROM daily_summary
WHERE base_dt = '{{ ds }}'
   OR base_dt <= '{{ macros.ds_add(ds, -(params.keep_days)) }}';

INSERT INTO daily_summary (base_dt, customer, n_events, total)
SELECT '{{ ds }}', customer, COUNT(*), SUM(amount)
FROM events
WHERE event_time >= '{{ ds }}T00:00:00'
  AND event_time <  '{{ macros.ds_add(ds, 1) }}T00:00:00'
GROUP BY customer;
