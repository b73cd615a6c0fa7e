-- One process name is handled by one cycle at a time on a host, whatever process_id the alarm
-- came through: two PROCESE rows may name the same process, and a manual command may find it
-- under another id than the daemon's alarm. A UNIQUE key on (host, process_name) beside the
-- primary key on process_id makes the database refuse the second claim. Rows written before
-- this migration (or by an older monitor) leave both NULL, which the key does not compare.
ALTER TABLE ALARM_CLAIM
    ADD COLUMN host VARCHAR(255) NULL,
    ADD COLUMN process_name VARCHAR(100) NULL,
    ADD UNIQUE KEY alarm_claim_host_process (host, process_name);
