-- Statistics of monitor_service at the mysql prompt: paste one query, or run them all with
--   mysql v_process_monitor < scripts/stats_queries.sql
--
-- Times are UTC: the service stores the database clock's time in UTC, so compare with
-- UTC_TIMESTAMP(), not NOW(). Durations are seconds, percentages 0 to 100, NULL means nothing
-- to measure yet. The views come from migrations/0004_availability.sql.
--
-- To look at one host, add `WHERE host = 'name'` to the view itself (as below, before any
-- ORDER BY): a condition on host and process_id is pushed inside the view and read through
-- its index, while joining the views to each other computes each of them in full.

-- Is each process up? Uptime over the last hour, day and week, worst first.
SELECT host, process_name, process_id,
       ROUND(uptime_1h_pct, 2) AS up_1h_pct,
       ROUND(uptime_24h_pct, 2) AS up_24h_pct,
       ROUND(uptime_7d_pct, 2) AS up_7d_pct
FROM PROCESS_UPTIME
ORDER BY uptime_24h_pct, uptime_7d_pct, host, process_name;

-- How long does recovery take? Mean time from detection to a successful restart (MTTR), over
-- all time and over the last 24 hours, slowest first.
SELECT host, process_name, process_id,
       recoveries, ROUND(mttr_s, 1) AS mttr_s,
       recoveries_24h, ROUND(mttr_24h_s, 1) AS mttr_24h_s
FROM PROCESS_MTTR
ORDER BY mttr_s DESC, host, process_name;

-- How long does a process run between failures? Mean time between failures (MTBF) since
-- monitoring began, shortest first. Processes that never failed have mtbf_s NULL and come last.
SELECT host, process_name, process_id,
       outages, ROUND(downtime_s, 1) AS downtime_s,
       ROUND(monitored_s / 3600, 1) AS monitored_h,
       ROUND(mtbf_s / 3600, 2) AS mtbf_h
FROM PROCESS_MTBF
ORDER BY mtbf_s IS NULL, mtbf_s, host, process_name;

-- Do restarts work? Finished restart events, how many succeeded, least successful first.
SELECT host, process_name, process_id,
       events, successes, failures, ROUND(success_pct, 1) AS success_pct
FROM RESTART_SUCCESS_RATE
ORDER BY success_pct, events DESC, host, process_name;

-- Which processes restart most? Restarts over the last 24 hours and 7 days (only processes
-- restarted this week).
SELECT host, process_name, process_id,
       restarts_24h, failures_24h, restarts_7d, last_started_at
FROM TOP_RESTARTERS
ORDER BY restarts_24h DESC, restarts_7d DESC, host, process_name
LIMIT 20;

-- How healthy is each host now? Its latest health score (0 to 1) with the sub-statuses; a
-- sub-status is NULL when there was nothing to measure.
SELECT h.host, h.computed_at,
       ROUND(h.total, 3) AS total,
       ROUND(h.restart_status, 3) AS restart_status,
       ROUND(h.response_status, 3) AS response_status,
       ROUND(h.memory_status, 3) AS memory_status,
       ROUND(h.availability_status, 3) AS availability_status,
       h.restarts_in_window
FROM (SELECT host, MAX(computed_at) AS computed_at FROM HEALTH_SCORE GROUP BY host) latest
JOIN HEALTH_SCORE h ON h.host = latest.host AND h.computed_at = latest.computed_at
ORDER BY h.host;

-- What went wrong lately? The 50 latest restart events that failed or left an error message,
-- newest first, with how long each took from detection.
SELECT e.started_at, e.host, e.process_name, e.process_id, e.trigger_source, e.strategy,
       e.attempts,
       CASE WHEN e.success = 1 THEN 'ok' WHEN e.success = 0 THEN 'failed' ELSE 'running' END
           AS outcome,
       ROUND(TIMESTAMPDIFF(MICROSECOND, e.detected_at, e.finished_at) / 1e6, 1) AS took_s,
       e.error
FROM RESTART_EVENTS e
WHERE e.success = 0 OR e.error IS NOT NULL
ORDER BY e.started_at DESC
LIMIT 50;

-- What was restarted lately, whatever the outcome? The 20 latest restart events.
SELECT e.started_at, e.host, e.process_name, e.trigger_source, e.strategy, e.attempts,
       CASE WHEN e.success = 1 THEN 'ok' WHEN e.success = 0 THEN 'failed' ELSE 'running' END
           AS outcome,
       e.error
FROM RESTART_EVENTS e
ORDER BY e.started_at DESC
LIMIT 20;

-- Which processes are dead right now? Those the sampler last saw dead, since when (the open
-- outage) and whether they are in alarm.
SELECT s.host, s.process_name, s.process_id,
       o.down_at,
       TIMESTAMPDIFF(SECOND, o.down_at, UTC_TIMESTAMP()) AS down_for_s,
       sp.alarma, sp.notes,
       s.updated_at AS last_sampled_at
FROM PROCESS_STATS s
LEFT JOIN PROCESS_OUTAGES o
    ON o.host = s.host AND o.process_id = s.process_id AND o.up_at IS NULL
LEFT JOIN STATUS_PROCESS sp ON sp.process_id = s.process_id
WHERE s.alive = 0
ORDER BY o.down_at, s.host, s.process_name;
