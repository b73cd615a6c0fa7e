-- Tables the service owns. None of them adds a column to PROCESE or STATUS_PROCESS, and none
-- has a foreign key to them, so rows of processes deleted by other systems never block those
-- systems.

-- One row per restart attempt sequence (an alarm handled, a manual restart, an auto alarm).
CREATE TABLE IF NOT EXISTS RESTART_EVENTS (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    process_id INT NOT NULL,
    process_name VARCHAR(100) NOT NULL,
    host VARCHAR(255) NOT NULL,
    trigger_source ENUM('alarm', 'manual', 'auto') NOT NULL,
    detected_at DATETIME(3) NOT NULL,
    started_at DATETIME(3) NOT NULL,
    finished_at DATETIME(3) NULL,
    strategy VARCHAR(16) NULL,
    attempts INT NOT NULL DEFAULT 0,
    success TINYINT(1) NULL,
    error VARCHAR(255) NULL,
    KEY restart_events_process (process_id, started_at),
    KEY restart_events_started (started_at)
) DEFAULT CHARSET = utf8mb4;

-- The circuit breaker of each process, so that it survives a restart of the service.
CREATE TABLE IF NOT EXISTS CIRCUIT_BREAKER (
    process_id INT PRIMARY KEY,
    state ENUM('closed', 'open', 'half_open') NOT NULL DEFAULT 'closed',
    consecutive_failures INT NOT NULL DEFAULT 0,
    opened_at DATETIME(3) NULL,
    updated_at DATETIME(3) NOT NULL
) DEFAULT CHARSET = utf8mb4;

-- Who is handling which process right now. A row is a lease: its owner renews expires_at
-- while it works and deletes the row when done; a monitor that dies leaves a row that
-- expires, and exactly one other claim can then replace it (the primary key decides).
CREATE TABLE IF NOT EXISTS ALARM_CLAIM (
    process_id INT PRIMARY KEY,
    owner VARCHAR(255) NOT NULL,
    trigger_source ENUM('alarm', 'manual', 'auto') NOT NULL,
    claimed_at DATETIME(3) NOT NULL,
    expires_at DATETIME(3) NOT NULL,
    takeovers INT NOT NULL DEFAULT 0
) DEFAULT CHARSET = utf8mb4;
