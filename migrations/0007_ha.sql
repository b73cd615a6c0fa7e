-- Primary and standby through the database ([ha]). Every statement can run again.
--
-- HA_LEASE: one row per group. `holder` NULL means the role is free (released, or never
-- taken); `epoch` grows by one at each change of holder and is the fencing token handed to
-- fence_command and promote_command. Times are the database clock's (NOW(3)).
-- `released_by` names who freed it (the best other member takes it, reason released);
-- `request` and `request_host` carry `ha release` and `ha takeover` to the daemons;
-- `taken_at` is when the holder took the role (its health rows before then do not count).
CREATE TABLE IF NOT EXISTS HA_LEASE (
    group_name VARCHAR(255) NOT NULL PRIMARY KEY,
    holder VARCHAR(255) NULL,
    epoch BIGINT UNSIGNED NOT NULL DEFAULT 0,
    expires_at DATETIME(3) NOT NULL,
    renewed_at DATETIME(3) NOT NULL,
    taken_at DATETIME(3) NULL,
    released_by VARCHAR(255) NULL,
    request ENUM('release', 'takeover', 'force') NULL,
    request_host VARCHAR(255) NULL
) DEFAULT CHARSET = utf8mb4;

-- The members of each group: every monitor with [ha] writes its row at each renewal, so
-- `ha status` and the choice of the best standby know who is there and how recently.
CREATE TABLE IF NOT EXISTS HA_MEMBER (
    group_name VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    priority INT NOT NULL,
    role ENUM('primary', 'standby') NOT NULL,
    started_at DATETIME(3) NOT NULL,
    seen_at DATETIME(3) NOT NULL,
    PRIMARY KEY (group_name, host)
) DEFAULT CHARSET = utf8mb4;

-- Each change of holder (outcome 'changed'), and each takeover a failed fence_command
-- stopped (outcome 'fence_failed', the role stays where it was; `note` says why).
CREATE TABLE IF NOT EXISTS HA_EVENTS (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    group_name VARCHAR(255) NOT NULL,
    epoch BIGINT UNSIGNED NOT NULL,
    from_host VARCHAR(255) NULL,
    to_host VARCHAR(255) NULL,
    reason ENUM('expired', 'low_health', 'manual', 'released') NOT NULL,
    outcome ENUM('changed', 'fence_failed') NOT NULL DEFAULT 'changed',
    note VARCHAR(255) NULL,
    at DATETIME(3) NOT NULL,
    KEY ha_events_group (group_name, at)
) DEFAULT CHARSET = utf8mb4;
