-- Availability read side: views over the statistics tables that answer "how available is each
-- process" (uptime, MTTR, MTBF, restart success, who restarts most), for the `stats` command,
-- the HTTP page and operators at the mysql prompt (scripts/stats_queries.sql).
--
-- Times: the service writes every time with NOW(3) on connections whose session time zone is
-- UTC (sqlx sets it), so the stored DATETIMEs are UTC. The views compare them with
-- UTC_TIMESTAMP(3), not NOW(3), so that they give the same answer in a mysql client whose
-- session runs in local time.
--
-- Units: durations are seconds and percentages 0 to 100, all DOUBLE (TIMESTAMPDIFF in
-- microseconds divided by 1e6, so no DECIMAL rounding creeps in). A figure with nothing to
-- measure is NULL, never 0.
--
-- Speed: each view groups by (host, process_id). MariaDB pushes a condition on those columns
-- (WHERE host = ? AND process_id = ?) down into the grouped view, so a query about one host or
-- one process reads only its rows through the indexes below; MySQL 8.0.22+ does the same.
-- Query one view at a time and put the condition in its WHERE: a condition that reaches a view
-- only through a JOIN ... ON is not pushed down, and every view is then computed in full
-- (measured with 9,000 processes and 180,000 events: 0.1 s per view alone, 19 s joined).
-- Order is not part of a view: queries must say ORDER BY themselves.
--
-- Every statement can run again, so that a migration that failed part-way (a missing CREATE
-- VIEW privilege, say) is applied again once its cause is fixed: the views are CREATE OR
-- REPLACE, and the indexes are created only when information_schema does not list them (MySQL
-- has no CREATE INDEX IF NOT EXISTS).

-- The views about restart events look them up by host and process: without this index a query
-- for one host would read the events of every host.
SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'RESTART_EVENTS'
        AND INDEX_NAME = 'restart_events_host') = 0,
    'CREATE INDEX restart_events_host ON RESTART_EVENTS (host, process_id, started_at)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;

-- The highest CPU of each process over the samples kept (stats_retention): PROCESS_STATS keeps
-- no maximum of CPU. Covering, so that the maxima of a host's processes are read from the index
-- alone rather than from every sample row (measured: 0.24 s instead of 1.5 s for 3,000
-- processes with 300 samples each). One more index entry per sample is cheap beside that.
SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'PROCESS_SAMPLES'
        AND INDEX_NAME = 'process_samples_cpu') = 0,
    'CREATE INDEX process_samples_cpu ON PROCESS_SAMPLES (host, process_id, cpu_pct)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;

-- Uptime of each monitored process over the last hour, day and week: 100 × (1 − downtime in
-- the window / monitored time in the window). Monitoring begins at PROCESS_STATS.first_seen,
-- so a process watched for 10 minutes has its 24 h uptime over those 10 minutes. Downtime is
-- the overlap of each outage [down_at, up_at or now] with the monitored part of the window.
-- NULL when the process was not monitored in the window.
CREATE OR REPLACE VIEW PROCESS_UPTIME AS
SELECT
    s.host,
    s.process_id,
    s.process_name,
    CASE WHEN s.first_seen < UTC_TIMESTAMP(3) THEN GREATEST(0e0, 100e0 * (1e0
        - COALESCE(SUM(GREATEST(0e0, TIMESTAMPDIFF(MICROSECOND,
              GREATEST(o.down_at, s.first_seen, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR),
              LEAST(COALESCE(o.up_at, UTC_TIMESTAMP(3)), UTC_TIMESTAMP(3))))), 0e0)
        / TIMESTAMPDIFF(MICROSECOND,
              GREATEST(s.first_seen, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR), UTC_TIMESTAMP(3))))
    END AS uptime_1h_pct,
    CASE WHEN s.first_seen < UTC_TIMESTAMP(3) THEN GREATEST(0e0, 100e0 * (1e0
        - COALESCE(SUM(GREATEST(0e0, TIMESTAMPDIFF(MICROSECOND,
              GREATEST(o.down_at, s.first_seen, UTC_TIMESTAMP(3) - INTERVAL 24 HOUR),
              LEAST(COALESCE(o.up_at, UTC_TIMESTAMP(3)), UTC_TIMESTAMP(3))))), 0e0)
        / TIMESTAMPDIFF(MICROSECOND,
              GREATEST(s.first_seen, UTC_TIMESTAMP(3) - INTERVAL 24 HOUR), UTC_TIMESTAMP(3))))
    END AS uptime_24h_pct,
    CASE WHEN s.first_seen < UTC_TIMESTAMP(3) THEN GREATEST(0e0, 100e0 * (1e0
        - COALESCE(SUM(GREATEST(0e0, TIMESTAMPDIFF(MICROSECOND,
              GREATEST(o.down_at, s.first_seen, UTC_TIMESTAMP(3) - INTERVAL 7 DAY),
              LEAST(COALESCE(o.up_at, UTC_TIMESTAMP(3)), UTC_TIMESTAMP(3))))), 0e0)
        / TIMESTAMPDIFF(MICROSECOND,
              GREATEST(s.first_seen, UTC_TIMESTAMP(3) - INTERVAL 7 DAY), UTC_TIMESTAMP(3))))
    END AS uptime_7d_pct
FROM PROCESS_STATS s
-- Outages that ended before the week began cannot overlap any window: leave them out early.
LEFT JOIN PROCESS_OUTAGES o
    ON o.host = s.host
    AND o.process_id = s.process_id
    AND (o.up_at IS NULL OR o.up_at > UTC_TIMESTAMP(3) - INTERVAL 7 DAY)
GROUP BY s.host, s.process_id, s.process_name, s.first_seen;

-- Mean time to recovery: from the alarm's detection to the end of a successful restart, in
-- seconds, over all time and over the restarts that finished in the last 24 hours. Processes
-- never restarted successfully have no row.
CREATE OR REPLACE VIEW PROCESS_MTTR AS
SELECT
    e.host,
    e.process_id,
    MAX(e.process_name) AS process_name,
    COUNT(*) AS recoveries,
    AVG(TIMESTAMPDIFF(MICROSECOND, e.detected_at, e.finished_at) / 1e6) AS mttr_s,
    COUNT(CASE WHEN e.finished_at > UTC_TIMESTAMP(3) - INTERVAL 24 HOUR THEN 1 END)
        AS recoveries_24h,
    AVG(CASE WHEN e.finished_at > UTC_TIMESTAMP(3) - INTERVAL 24 HOUR
        THEN TIMESTAMPDIFF(MICROSECOND, e.detected_at, e.finished_at) / 1e6 END) AS mttr_24h_s
FROM RESTART_EVENTS e
WHERE e.success = 1 AND e.finished_at IS NOT NULL
GROUP BY e.host, e.process_id;

-- Mean time between failures: the time the process was up while monitored (since first_seen,
-- less its downtime) divided by its number of outages; NULL with no outage yet.
CREATE OR REPLACE VIEW PROCESS_MTBF AS
SELECT
    s.host,
    s.process_id,
    s.process_name,
    GREATEST(0e0, TIMESTAMPDIFF(MICROSECOND, s.first_seen, UTC_TIMESTAMP(3)) / 1e6)
        AS monitored_s,
    COALESCE(SUM(GREATEST(0e0, TIMESTAMPDIFF(MICROSECOND,
        GREATEST(o.down_at, s.first_seen),
        LEAST(COALESCE(o.up_at, UTC_TIMESTAMP(3)), UTC_TIMESTAMP(3))) / 1e6)), 0e0)
        AS downtime_s,
    COUNT(o.id) AS outages,
    CASE WHEN COUNT(o.id) > 0 THEN GREATEST(0e0,
        TIMESTAMPDIFF(MICROSECOND, s.first_seen, UTC_TIMESTAMP(3)) / 1e6
        - COALESCE(SUM(GREATEST(0e0, TIMESTAMPDIFF(MICROSECOND,
            GREATEST(o.down_at, s.first_seen),
            LEAST(COALESCE(o.up_at, UTC_TIMESTAMP(3)), UTC_TIMESTAMP(3))) / 1e6)), 0e0))
        / COUNT(o.id)
    END AS mtbf_s
FROM PROCESS_STATS s
LEFT JOIN PROCESS_OUTAGES o ON o.host = s.host AND o.process_id = s.process_id
GROUP BY s.host, s.process_id, s.process_name, s.first_seen;

-- How often a restart works: finished restart events (those still running are left out),
-- how many succeeded, and the percentage.
CREATE OR REPLACE VIEW RESTART_SUCCESS_RATE AS
SELECT
    e.host,
    e.process_id,
    MAX(e.process_name) AS process_name,
    COUNT(*) AS events,
    COUNT(CASE WHEN e.success = 1 THEN 1 END) AS successes,
    COUNT(CASE WHEN e.success = 0 THEN 1 END) AS failures,
    100e0 * COUNT(CASE WHEN e.success = 1 THEN 1 END) / COUNT(*) AS success_pct
FROM RESTART_EVENTS e
WHERE e.finished_at IS NOT NULL AND e.success IS NOT NULL
GROUP BY e.host, e.process_id;

-- Who restarts most: restart events (every attempt sequence, whatever its outcome: each one
-- means the process needed restarting) started in the last 24 hours and 7 days. Processes
-- without a restart this week have no row. The ORDER BY documents the intended reading; a
-- view does not keep it, so order the query: ORDER BY restarts_24h DESC, restarts_7d DESC.
CREATE OR REPLACE VIEW TOP_RESTARTERS AS
SELECT
    e.host,
    e.process_id,
    MAX(e.process_name) AS process_name,
    COUNT(CASE WHEN e.started_at > UTC_TIMESTAMP(3) - INTERVAL 24 HOUR THEN 1 END)
        AS restarts_24h,
    COUNT(*) AS restarts_7d,
    COUNT(CASE WHEN e.started_at > UTC_TIMESTAMP(3) - INTERVAL 24 HOUR AND e.success = 0
        THEN 1 END) AS failures_24h,
    MAX(e.started_at) AS last_started_at
FROM RESTART_EVENTS e
WHERE e.started_at > UTC_TIMESTAMP(3) - INTERVAL 7 DAY
GROUP BY e.host, e.process_id
ORDER BY restarts_24h DESC, restarts_7d DESC;
