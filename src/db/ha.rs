//! `HA_LEASE`, `HA_MEMBER` and `HA_EVENTS`: the statements of the HA task and of `ha
//! takeover|release`. Every time is the database clock's; the lease changes hands only by a
//! conditional update on the epoch the caller saw, so of several contenders exactly one wins.

use std::time::Duration;

use sqlx::Row;

use super::{Database, DbError, duration_of_micros, micros};

/// The lease as one member saw it, times relative to the database clock's `NOW(3)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    pub holder: Option<String>,
    pub epoch: u64,
    /// Until it expires; negative once it has.
    pub left: Duration,
    pub expired: bool,
    /// Since the last renewal (or, when free, since it was freed).
    pub since_renewed: Duration,
    /// Since the holder took it; `None` before anyone did.
    pub since_taken: Option<Duration>,
    pub released_by: Option<String>,
    pub request: Option<Request>,
    pub request_host: Option<String>,
}

/// What an operator asked of the group (`ha release`, `ha takeover [--force]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Release,
    Takeover,
    Force,
}

impl Request {
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Release => "release",
            Request::Takeover => "takeover",
            Request::Force => "force",
        }
    }

    fn parse(text: &str) -> Option<Request> {
        match text {
            "release" => Some(Request::Release),
            "takeover" => Some(Request::Takeover),
            "force" => Some(Request::Force),
            _ => None,
        }
    }
}

/// A member of the group with its latest health score.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub host: String,
    pub priority: i32,
    pub role: String,
    pub since_seen: Duration,
    /// The latest `HEALTH_SCORE.total` and its age.
    pub score: Option<(f64, Duration)>,
}

/// Why the holder changed (`HA_EVENTS.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Expired,
    LowHealth,
    Manual,
    Released,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::LowHealth => "low_health",
            Reason::Manual => "manual",
            Reason::Released => "released",
        }
    }
}

/// The lease of `group`, created free (epoch 0) when the group has none yet.
pub async fn lease(db: &Database, group: &str) -> Result<LeaseRow, DbError> {
    if let Some(lease) = read_lease(db, group).await? {
        return Ok(lease);
    }
    db.run(
        sqlx::query(
            "INSERT IGNORE INTO HA_LEASE (group_name, holder, epoch, expires_at, renewed_at) \
             VALUES (?, NULL, 0, NOW(3), NOW(3))",
        )
        .bind(group)
        .execute(db.pool()),
    )
    .await?;
    read_lease(db, group)
        .await?
        .ok_or_else(|| DbError::Sql(sqlx::Error::RowNotFound))
}

pub async fn read_lease(db: &Database, group: &str) -> Result<Option<LeaseRow>, DbError> {
    let row = db
        .run(
            sqlx::query(
                "SELECT holder, epoch, TIMESTAMPDIFF(MICROSECOND, NOW(3), expires_at) AS left_us, \
                 TIMESTAMPDIFF(MICROSECOND, renewed_at, NOW(3)) AS renewed_us, \
                 TIMESTAMPDIFF(MICROSECOND, taken_at, NOW(3)) AS taken_us, released_by, \
                 CAST(request AS CHAR) AS request, request_host \
                 FROM HA_LEASE WHERE group_name = ?",
            )
            .bind(group)
            .fetch_optional(db.pool()),
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let left: i64 = row.try_get("left_us")?;
    let request: Option<String> = row.try_get("request")?;
    Ok(Some(LeaseRow {
        holder: row.try_get("holder")?,
        epoch: row.try_get("epoch")?,
        left: duration_of_micros(left),
        expired: left < 0,
        since_renewed: duration_of_micros(row.try_get::<i64, _>("renewed_us")?),
        since_taken: row
            .try_get::<Option<i64>, _>("taken_us")?
            .map(duration_of_micros),
        released_by: row.try_get("released_by")?,
        request: request.as_deref().and_then(Request::parse),
        request_host: row.try_get("request_host")?,
    }))
}

/// Writes this member's row: it is there, with this priority and role, now.
pub async fn register(
    db: &Database,
    group: &str,
    host: &str,
    priority: i32,
    role: &str,
) -> Result<(), DbError> {
    db.run(
        sqlx::query(
            "INSERT INTO HA_MEMBER (group_name, host, priority, role, started_at, seen_at) \
             VALUES (?, ?, ?, ?, NOW(3), NOW(3)) ON DUPLICATE KEY UPDATE \
             priority = VALUES(priority), role = VALUES(role), seen_at = NOW(3)",
        )
        .bind(group)
        .bind(host)
        .bind(priority)
        .bind(role)
        .execute(db.pool()),
    )
    .await?;
    Ok(())
}

/// The members of `group`, each with its latest health score.
pub async fn members(db: &Database, group: &str) -> Result<Vec<MemberRow>, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT m.host, m.priority, CAST(m.role AS CHAR) AS role, \
                 TIMESTAMPDIFF(MICROSECOND, m.seen_at, NOW(3)) AS seen_us, h.total, \
                 TIMESTAMPDIFF(MICROSECOND, h.computed_at, NOW(3)) AS score_us \
                 FROM HA_MEMBER m LEFT JOIN HEALTH_SCORE h ON h.id = (SELECT id FROM \
                 HEALTH_SCORE s WHERE s.host = m.host ORDER BY s.computed_at DESC, s.id DESC \
                 LIMIT 1) WHERE m.group_name = ? ORDER BY m.priority DESC, m.host",
            )
            .bind(group)
            .fetch_all(db.pool()),
        )
        .await?;
    let mut members = Vec::with_capacity(rows.len());
    for row in rows {
        let total: Option<f64> = row.try_get("total")?;
        let age: Option<i64> = row.try_get("score_us")?;
        members.push(MemberRow {
            host: row.try_get("host")?,
            priority: row.try_get("priority")?,
            role: row.try_get("role")?,
            since_seen: duration_of_micros(row.try_get::<i64, _>("seen_us")?),
            score: total.zip(age).map(|(t, a)| (t, duration_of_micros(a))),
        });
    }
    Ok(members)
}

/// The latest `count` health totals of `host`, newest first, with their ages.
pub async fn latest_scores(
    db: &Database,
    host: &str,
    count: u32,
) -> Result<Vec<(f64, Duration)>, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT total, TIMESTAMPDIFF(MICROSECOND, computed_at, NOW(3)) AS age_us \
                 FROM HEALTH_SCORE WHERE host = ? ORDER BY computed_at DESC, id DESC LIMIT ?",
            )
            .bind(host)
            .bind(count)
            .fetch_all(db.pool()),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let age: i64 = row.try_get("age_us")?;
            Ok((row.try_get("total")?, duration_of_micros(age)))
        })
        .collect()
}

/// Renews the lease `holder` holds at `epoch`. `false`: it is not theirs any more.
pub async fn renew(
    db: &Database,
    group: &str,
    holder: &str,
    epoch: u64,
    ttl: Duration,
) -> Result<bool, DbError> {
    let done = db
        .run(
            sqlx::query(
                "UPDATE HA_LEASE SET expires_at = NOW(3) + INTERVAL ? MICROSECOND, \
                 renewed_at = NOW(3) WHERE group_name = ? AND holder = ? AND epoch = ?",
            )
            .bind(micros(ttl))
            .bind(group)
            .bind(holder)
            .bind(epoch)
            .execute(db.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A takeover as one contender decided it.
#[derive(Debug, Clone)]
pub struct Takeover<'a> {
    pub group: &'a str,
    pub host: &'a str,
    /// The epoch it saw: the update takes only if nobody changed the lease since.
    pub seen_epoch: u64,
    pub from: Option<&'a str>,
    pub reason: Reason,
    /// Take it only once expired by the database clock.
    pub only_if_expired: bool,
    pub ttl: Duration,
}

/// The one conditional update that moves the role, with its event, in one transaction.
/// `false`: another contender (or the holder) changed the lease first.
pub async fn take(db: &Database, takeover: &Takeover<'_>) -> Result<bool, DbError> {
    db.run(async {
        let mut tx = db.pool().begin().await?;
        let expired = if takeover.only_if_expired {
            " AND expires_at < NOW(3)"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE HA_LEASE SET holder = ?, epoch = epoch + 1, \
             expires_at = NOW(3) + INTERVAL ? MICROSECOND, renewed_at = NOW(3), \
             taken_at = NOW(3), released_by = NULL, request = NULL, request_host = NULL \
             WHERE group_name = ? AND epoch = ?{expired}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(takeover.host)
            .bind(micros(takeover.ttl))
            .bind(takeover.group)
            .bind(takeover.seen_epoch)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok::<bool, sqlx::Error>(false);
        }
        insert_event(&mut tx, takeover, "changed", None).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}

/// The note of a takeover that a failed `fence_command` stopped: the role stays.
pub async fn fence_failed(
    db: &Database,
    takeover: &Takeover<'_>,
    why: &str,
) -> Result<(), DbError> {
    db.run(async {
        let mut connection = db.pool().acquire().await?;
        insert_event(&mut connection, takeover, "fence_failed", Some(why)).await
    })
    .await
}

async fn insert_event(
    connection: &mut sqlx::MySqlConnection,
    takeover: &Takeover<'_>,
    outcome: &str,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    let note = note.map(|n| n.chars().take(255).collect::<String>());
    sqlx::query(
        "INSERT INTO HA_EVENTS (group_name, epoch, from_host, to_host, reason, outcome, note, at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, NOW(3))",
    )
    .bind(takeover.group)
    .bind(takeover.seen_epoch + 1)
    .bind(takeover.from)
    .bind(takeover.host)
    .bind(takeover.reason.as_str())
    .bind(outcome)
    .bind(note)
    .execute(connection)
    .await?;
    Ok(())
}

/// The holder gives the role up: free, expired now, `released_by` it, so that the best other
/// member takes it. Returns whether it still held it.
pub async fn free(db: &Database, group: &str, holder: &str, epoch: u64) -> Result<bool, DbError> {
    let done = db
        .run(
            sqlx::query(
                "UPDATE HA_LEASE SET holder = NULL, expires_at = NOW(3), renewed_at = NOW(3), \
                 released_by = ?, request = NULL, request_host = NULL \
                 WHERE group_name = ? AND holder = ? AND epoch = ?",
            )
            .bind(holder)
            .bind(group)
            .bind(holder)
            .bind(epoch)
            .execute(db.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what an operator asks (`ha release`, `ha takeover`), for the daemons to act on.
pub async fn ask(
    db: &Database,
    group: &str,
    request: Option<Request>,
    host: Option<&str>,
) -> Result<(), DbError> {
    lease(db, group).await?;
    db.run(
        sqlx::query("UPDATE HA_LEASE SET request = ?, request_host = ? WHERE group_name = ?")
            .bind(request.map(Request::as_str))
            .bind(host)
            .bind(group)
            .execute(db.pool()),
    )
    .await?;
    Ok(())
}

/// One row of `HA_EVENTS`, newest first in [`events`].
#[derive(Debug, Clone)]
pub struct EventRow {
    pub epoch: u64,
    pub from_host: Option<String>,
    pub to_host: Option<String>,
    pub reason: String,
    pub outcome: String,
    pub note: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The latest `count` events of `group`, newest first.
pub async fn events(db: &Database, group: &str, count: u32) -> Result<Vec<EventRow>, DbError> {
    let rows = db
        .run(
            sqlx::query(
                "SELECT epoch, from_host, to_host, CAST(reason AS CHAR) AS reason, \
                 CAST(outcome AS CHAR) AS outcome, note, at FROM HA_EVENTS \
                 WHERE group_name = ? ORDER BY id DESC LIMIT ?",
            )
            .bind(group)
            .bind(count)
            .fetch_all(db.pool()),
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(EventRow {
                epoch: row.try_get("epoch")?,
                from_host: row.try_get("from_host")?,
                to_host: row.try_get("to_host")?,
                reason: row.try_get("reason")?,
                outcome: row.try_get("outcome")?,
                note: row.try_get("note")?,
                at: row.try_get("at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The first process of `PROCESE` called `name`, to raise its alarm on a promotion.
pub async fn process_id(db: &Database, name: &str) -> Result<Option<i32>, DbError> {
    db.run(
        sqlx::query_scalar(
            "SELECT process_id FROM PROCESE WHERE process_name = ? ORDER BY process_id LIMIT 1",
        )
        .bind(name)
        .fetch_optional(db.pool()),
    )
    .await
}
