-- Why a process is restarted, beyond an alarm, an operator and a death seen by the sampler: a
-- hang (no healthy heartbeat for hang_after), memory above max_memory, and a restart after
-- one of its dependencies (restart_with_dependencies). MODIFY COLUMN to the same definition
-- changes nothing, so this can run again like every migration.
ALTER TABLE RESTART_EVENTS
    MODIFY COLUMN trigger_source
        ENUM('alarm', 'manual', 'auto', 'hang', 'memory', 'dependency') NOT NULL;
ALTER TABLE ALARM_CLAIM
    MODIFY COLUMN trigger_source
        ENUM('alarm', 'manual', 'auto', 'hang', 'memory', 'dependency') NOT NULL;
