-- Statistics: what the sampler and the heartbeat see of each process, the health score, and
-- the monitor's own start. All keyed by host, since monitors on several hosts may share the
-- database and watch processes of the same PROCESE row.

-- One row per monitor host: when it started (monitorTimeOfStart), its version and PID.
CREATE TABLE IF NOT EXISTS MONITOR_INSTANCE (
    host VARCHAR(255) PRIMARY KEY,
    pid INT NOT NULL,
    version VARCHAR(32) NOT NULL,
    started_at DATETIME(3) NOT NULL,
    updated_at DATETIME(3) NOT NULL
) DEFAULT CHARSET = utf8mb4;

-- The current statistics of each process: averages and maxima over stats_retention.
CREATE TABLE IF NOT EXISTS PROCESS_STATS (
    process_id INT NOT NULL,
    host VARCHAR(255) NOT NULL,
    process_name VARCHAR(100) NOT NULL,
    required TINYINT(1) NOT NULL DEFAULT 1,
    alive TINYINT(1) NOT NULL,
    pid INT NULL,
    rss_bytes BIGINT UNSIGNED NULL,
    last_restart DATETIME(3) NULL,
    total_restarts INT NOT NULL DEFAULT 0,
    avg_response_ms DOUBLE NULL,
    max_response_ms DOUBLE NULL,
    last_response_ms DOUBLE NULL,
    last_check_ok TINYINT(1) NULL,
    avg_mem_pct DOUBLE NULL,
    max_mem_pct DOUBLE NULL,
    last_mem_pct DOUBLE NULL,
    avg_cpu_pct DOUBLE NULL,
    last_cpu_pct DOUBLE NULL,
    first_seen DATETIME(3) NOT NULL,
    updated_at DATETIME(3) NOT NULL,
    PRIMARY KEY (host, process_id)
) DEFAULT CHARSET = utf8mb4;

-- The time series behind PROCESS_STATS, pruned after stats_retention. A `sample` row is the
-- process table's view (alive, pid, CPU, memory); a `heartbeat` row is one health check
-- (response time, success).
CREATE TABLE IF NOT EXISTS PROCESS_SAMPLES (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    process_id INT NOT NULL,
    host VARCHAR(255) NOT NULL,
    kind ENUM('sample', 'heartbeat') NOT NULL,
    sampled_at DATETIME(3) NOT NULL,
    alive TINYINT(1) NULL,
    pid INT NULL,
    cpu_pct DOUBLE NULL,
    mem_pct DOUBLE NULL,
    rss_bytes BIGINT UNSIGNED NULL,
    response_ms DOUBLE NULL,
    check_ok TINYINT(1) NULL,
    KEY process_samples_time (sampled_at),
    KEY process_samples_process (host, process_id, sampled_at)
) DEFAULT CHARSET = utf8mb4;

-- Each time a process was seen dead, until it was seen alive again (up_at NULL: still down).
-- Kept beyond stats_retention: uptime over 7 days is computed from these.
CREATE TABLE IF NOT EXISTS PROCESS_OUTAGES (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    process_id INT NOT NULL,
    host VARCHAR(255) NOT NULL,
    down_at DATETIME(3) NOT NULL,
    up_at DATETIME(3) NULL,
    KEY process_outages_process (host, process_id, down_at)
) DEFAULT CHARSET = utf8mb4;

-- The health score of each host over time, pruned after stats_retention. A sub-status is NULL
-- when there was nothing to measure (no heartbeat, no required process alive).
CREATE TABLE IF NOT EXISTS HEALTH_SCORE (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    host VARCHAR(255) NOT NULL,
    computed_at DATETIME(3) NOT NULL,
    total DOUBLE NOT NULL,
    restart_status DOUBLE NULL,
    response_status DOUBLE NULL,
    memory_status DOUBLE NULL,
    availability_status DOUBLE NULL,
    restarts_in_window INT NOT NULL,
    KEY health_score_host (host, computed_at)
) DEFAULT CHARSET = utf8mb4;

-- total_restarts and last_restart are read from the events of each process.
-- Every statement of a migration can run again (a migration that failed part-way is applied
-- again once its cause is fixed): MySQL has no CREATE INDEX IF NOT EXISTS, so the index is
-- created only when information_schema does not list it yet.
SET @monitor_service_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'RESTART_EVENTS'
        AND INDEX_NAME = 'restart_events_outcome') = 0,
    'CREATE INDEX restart_events_outcome ON RESTART_EVENTS (process_id, host, success, finished_at)',
    'DO 0');
PREPARE monitor_service_ddl FROM @monitor_service_ddl;
EXECUTE monitor_service_ddl;
DEALLOCATE PREPARE monitor_service_ddl;
