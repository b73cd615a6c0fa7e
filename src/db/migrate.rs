//! Applying the embedded migrations, one migrator at a time, so that a migration that failed
//! part-way is applied again once its cause is fixed.
//!
//! MySQL commits each DDL statement at once, so a migration that fails (or whose migrator
//! dies) leaves some statements applied and its `_sqlx_migrations` row with `success = 0`;
//! sqlx then refuses to go on ("partially applied") until someone deletes the row by hand.
//! Here, every statement of every migration is written to be safe to run again (`CREATE TABLE
//! IF NOT EXISTS`, `CREATE OR REPLACE VIEW`, an index created only when `information_schema`
//! does not list it: MySQL 5.7 has no `CREATE INDEX IF NOT EXISTS`), so the runner deletes a
//! failed row itself and lets sqlx apply that migration again. New migrations must keep to
//! this rule (`migrations_can_run_again` in tests/migrate.rs applies each one twice).
//!
//! Making 0003 and 0004 safe to run again changed their files, and sqlx refuses an applied
//! migration whose checksum differs. Their earlier checksums are listed below: the runner
//! rewrites a successfully applied row that has one to the current checksum (the two files
//! make the same schema), then sqlx checks as usual; any other difference is still refused.
//!
//! All of it happens under [`MigrationLock`], so that concurrent migrators never see each
//! other's rows half-written: the others wait, then find nothing left to do.

use std::time::Duration;

use sqlx::Row;
use sqlx::migrate::Migrator;

use super::migration_lock::MigrationLock;
use super::{Availability, Database, DbError, MIGRATOR};

/// SHA-384 checksums (hex, as `HEX(checksum)` gives them) that releases before the
/// run-again rule recorded for migrations whose file has changed only to follow it.
const EARLIER_CHECKSUMS: &[(i64, &str)] = &[
    (
        3,
        "E45D2310A6F87DBDEA7C87A542574995E3FB5C052550F2D12908FE09F2ECCCF5\
         38EDFD3504F81A60DE8D867293E9169E",
    ),
    (
        4,
        "BD3E59B88FF9320B38E0320D8797DC21A8A2AE8CCBC4916E4BEE7688371AB2B5\
         FB2F19D0765426D4EC3FECD7E74607BA",
    ),
];

/// The lock outlives the migrations' deadline by this much, so that a live holder, bound
/// by that deadline, is never taken over.
const LOCK_MARGIN: Duration = Duration::from_secs(30);

/// What the database has of the embedded migrations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SchemaState {
    /// Embedded migrations not applied successfully (failed ones included).
    pub pending: Vec<i64>,
    /// Migrations that began and did not finish: a statement failed, or the migrator died.
    pub failed: Vec<i64>,
    /// Applied migrations recorded with a checksum of [`EARLIER_CHECKSUMS`].
    pub earlier_checksums: Vec<i64>,
    /// Applied migrations this binary does not have, or whose checksum it does not know:
    /// sqlx refuses those, and says which.
    pub unknown: Vec<i64>,
}

impl SchemaState {
    pub fn up_to_date(&self) -> bool {
        self.pending.is_empty()
            && self.failed.is_empty()
            && self.earlier_checksums.is_empty()
            && self.unknown.is_empty()
    }
}

/// "1 (original tables)": a migration as the operator sees it in `migrations/`.
pub fn describe(version: i64) -> String {
    match MIGRATOR.iter().find(|m| m.version == version) {
        Some(migration) => format!("{version} ({})", migration.description),
        None => version.to_string(),
    }
}

/// Reads `_sqlx_migrations` (none yet: everything is pending).
pub async fn schema_state(db: &Database) -> Result<SchemaState, DbError> {
    let rows = match db
        .run(
            sqlx::query("SELECT version, success, HEX(checksum) FROM _sqlx_migrations")
                .fetch_all(db.pool()),
        )
        .await
    {
        Ok(rows) => rows,
        Err(error) if error.server_number() == Some(1146) => Vec::new(),
        Err(error) => return Err(error),
    };
    let mut state = SchemaState::default();
    let mut applied = Vec::new();
    for row in rows {
        let version: i64 = row.try_get(0)?;
        let success: bool = row.try_get(1)?;
        let checksum: String = row.try_get(2)?;
        if !success {
            state.failed.push(version);
            continue;
        }
        applied.push(version);
        match MIGRATOR.iter().find(|m| m.version == version) {
            Some(migration) if hex(&migration.checksum) == checksum => {}
            Some(_) if EARLIER_CHECKSUMS.contains(&(version, checksum.as_str())) => {
                state.earlier_checksums.push(version)
            }
            _ => state.unknown.push(version),
        }
    }
    state.pending = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect();
    Ok(state)
}

/// Applies what is pending under the migration lock; returns how many migrations it applied
/// (0 when another migrator did it meanwhile).
pub(super) async fn apply(db: &Database) -> Result<usize, DbError> {
    // Migrations can take longer than one statement's deadline on a big table; they get a
    // deadline of their own, generous but finite.
    let deadline = db.query_timeout.max(Duration::from_secs(60)) * 3;
    let result = apply_within(db, deadline).await;
    match &result {
        Err(error) if error.is_unavailable() => db.observe(Availability::Down, Some(error)),
        Err(_) => {}
        Ok(_) => db.observe(Availability::Up, None),
    }
    result
}

async fn apply_within(db: &Database, deadline: Duration) -> Result<usize, DbError> {
    // The common case, a schema already up to date, takes no lock (and writes nothing).
    if schema_state(db).await?.up_to_date() {
        return Ok(0);
    }
    let ttl = deadline + LOCK_MARGIN;
    // A waiter outlasts the longest a holder may keep the lock, dead or alive.
    let lock = MigrationLock::acquire(db, ttl, ttl + LOCK_MARGIN).await?;
    let result = match tokio::time::timeout(deadline, apply_locked(db)).await {
        Ok(result) => result,
        Err(_) => Err(DbError::Timeout(deadline)),
    };
    lock.release(db).await;
    result
}

/// With the lock held: clears failed rows and earlier checksums, then lets sqlx apply the
/// rest (its own lock off: see `migration_lock.rs`).
async fn apply_locked(db: &Database) -> Result<usize, DbError> {
    let state = schema_state(db).await?;
    for &version in &state.failed {
        if !MIGRATOR.version_exists(version) {
            // Not ours to retry (a newer release's): sqlx reports it.
            continue;
        }
        tracing::warn!(
            "migration {} did not complete earlier: applying it again",
            describe(version)
        );
        db.run(
            sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ? AND success = 0")
                .bind(version)
                .execute(db.pool()),
        )
        .await?;
    }
    for &version in &state.earlier_checksums {
        let Some(migration) = MIGRATOR.iter().find(|m| m.version == version) else {
            continue;
        };
        tracing::info!(
            "migration {}: recording the checksum of its current file",
            describe(version)
        );
        db.run(
            sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = ? WHERE version = ? AND success = 1",
            )
            .bind(&*migration.checksum)
            .bind(version)
            .execute(db.pool()),
        )
        .await?;
    }
    let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
    migrator.set_locking(false);
    migrator.run(db.pool()).await?;
    Ok(state.pending.len())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_checksums_belong_to_embedded_migrations_and_differ_from_their_files() {
        for &(version, checksum) in EARLIER_CHECKSUMS {
            let migration = MIGRATOR
                .iter()
                .find(|m| m.version == version)
                .unwrap_or_else(|| panic!("migration {version} is embedded"));
            assert_eq!(checksum.len(), 96, "SHA-384 in hex");
            assert_ne!(hex(&migration.checksum), checksum, "migration {version}");
        }
    }

    #[test]
    fn a_migration_is_described_by_its_version_and_file_name() {
        assert_eq!(describe(1), "1 (original tables)");
        assert_eq!(describe(999), "999");
    }
}
