-- One process name is handled by one cycle at a time on a host, whatever process_id the alarm
-- came through: two PROCESE rows may name the same process, and a manual command may find it
-- under another id than the daemon's alarm. A UNIQUE key on (host, process_name) beside the
-- primary key on process_id makes the database refuse the second claim. Rows written before
-- this migration (or by an older monitor) leave both NULL, which the key does not compare.
-- Like every migration, it can run again: MySQL has no ADD COLUMN IF NOT EXISTS, so the change
-- is made only when information_schema does not list the key yet.
SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ALARM_CLAIM'
        AND COLUMN_NAME = 'process_name') = 0,
    'ALTER TABLE ALARM_CLAIM ADD COLUMN host VARCHAR(255) NULL, ADD COLUMN process_name VARCHAR(100) NULL, ADD UNIQUE KEY alarm_claim_host_process (host, process_name)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;
