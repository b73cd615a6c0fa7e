-- What lets an idle monitor's poll tell its sampler whether anything changed, at a cost that
-- does not grow with the fleet (issue 13):
-- - the newest restart event of its host (`MAX(id) WHERE host = ?`), answered from the last
--   entry of `restart_events_latest` rather than by walking every restart the host ever had;
-- - a count and checksum of the `PROCESE` rows of its own process names, read from
--   `procese_name` rather than from every row of the table (indexes may be added to the
--   original tables; columns may not).
-- Each index is created only where missing, so this can run again.
SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'RESTART_EVENTS'
        AND INDEX_NAME = 'restart_events_latest') = 0,
    'CREATE INDEX restart_events_latest ON RESTART_EVENTS (host, id)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;

SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'PROCESE'
        AND INDEX_NAME = 'procese_name') = 0,
    'CREATE INDEX procese_name ON PROCESE (process_name)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;

-- The poll's processes in alarm (`STATUS_PROCESS.alarma <> 0`) and breakers not closed
-- (`CIRCUIT_BREAKER.state IN ('open', 'half_open')`): read from these indexes, in proportion
-- to what is in alarm or open rather than to every process of the fleet.
SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'STATUS_PROCESS'
        AND INDEX_NAME = 'status_process_alarma') = 0,
    'CREATE INDEX status_process_alarma ON STATUS_PROCESS (alarma)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;

SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'CIRCUIT_BREAKER'
        AND INDEX_NAME = 'circuit_breaker_state') = 0,
    'CREATE INDEX circuit_breaker_state ON CIRCUIT_BREAKER (state)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;
