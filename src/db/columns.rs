//! The character sets of the text columns the service writes: `STATUS_PROCESS.notes` (a table
//! of other systems, often `latin1` or 3-byte `utf8`) and `RESTART_EVENTS.error`. Under strict
//! `sql_mode` one character a column cannot store fails the whole statement (1366), so text is
//! fitted to the column first, and a text the server still refuses is tried again plainer.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Row;

use super::{Database, DbError};
use crate::note::Repertoire;

/// What the text columns can store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextColumns {
    /// `STATUS_PROCESS.notes`.
    pub notes: Repertoire,
    /// `RESTART_EVENTS.error`.
    pub error: Repertoire,
}

impl TextColumns {
    /// What every character set stores: the guess while the columns cannot be read.
    const ASCII: TextColumns = TextColumns {
        notes: Repertoire::Ascii,
        error: Repertoire::Ascii,
    };
}

/// The pool's knowledge of its columns, shared by its clones: read once, forgotten when the
/// server refuses a text all the same (an `ALTER TABLE` since), read again on the next write.
pub(super) type Cache = Arc<Mutex<Option<TextColumns>>>;

impl Database {
    /// What the text columns can store, from `information_schema` on first use. While they
    /// cannot be read (database away, tables not made yet) the answer is ASCII and nothing is
    /// kept, so one write loses its accents rather than its outcome.
    pub async fn text_columns(&self) -> TextColumns {
        let known = *self
            .text_columns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(columns) = known {
            return columns;
        }
        match self.read_text_columns().await {
            Ok(Some(columns)) => {
                *self
                    .text_columns
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(columns);
                columns
            }
            Ok(None) => TextColumns::ASCII,
            Err(error) => {
                tracing::debug!("reading the character sets of the text columns: {error}");
                TextColumns::ASCII
            }
        }
    }

    /// Makes the next write read the columns again.
    pub fn forget_text_columns(&self) {
        *self
            .text_columns
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn read_text_columns(&self) -> Result<Option<TextColumns>, DbError> {
        let rows = self
            .run(
                sqlx::query(
                    "SELECT TABLE_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = DATABASE() AND \
                     ((TABLE_NAME = 'STATUS_PROCESS' AND COLUMN_NAME = 'notes') OR \
                      (TABLE_NAME = 'RESTART_EVENTS' AND COLUMN_NAME = 'error'))",
                )
                .fetch_all(self.pool()),
            )
            .await?;
        let (mut notes, mut error) = (None, None);
        for row in &rows {
            let table: String = row.try_get(0).map_err(DbError::from)?;
            let charset: Option<String> = row.try_get(1).map_err(DbError::from)?;
            let repertoire = Repertoire::of_charset(charset.as_deref().unwrap_or(""));
            if table.eq_ignore_ascii_case("STATUS_PROCESS") {
                notes = Some(repertoire);
            } else {
                error = Some(repertoire);
            }
        }
        Ok(notes
            .zip(error)
            .map(|(notes, error)| TextColumns { notes, error }))
    }
}

/// The texts to try for a column of `repertoire`, best first: what it can store of `text`,
/// then ASCII only, in case its character set was misjudged or changed since it was read.
pub fn candidates(text: &str, repertoire: Repertoire) -> Vec<String> {
    let mut texts = vec![repertoire.hold(text)];
    let plain = Repertoire::Ascii.hold(text);
    if plain != texts[0] {
        texts.push(plain);
    }
    texts
}

/// Whether the server refused the statement itself (a value it cannot store, say), which
/// MySQL undoes alone: the transaction, if any, goes on. A lost connection, a deadlock or a
/// lock wait timeout are not refusals: they may have ended the transaction.
pub fn refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_)) && !super::sql_error_is_unavailable(error)
}

/// Runs `write` with the text [`candidates`] makes of `text`, the next one whenever the server
/// refuses one, and returns the last answer. A refusal makes the pool read the columns again
/// next time.
pub async fn write_text<T, F, Fut>(
    db: &Database,
    text: &str,
    repertoire: Repertoire,
    mut write: F,
) -> Result<T, DbError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut texts = candidates(text, repertoire).into_iter().peekable();
    loop {
        let text = texts.next().unwrap_or_default();
        match write(text).await {
            Err(DbError::Sql(error)) if refused(&error) && texts.peek().is_some() => {
                db.forget_text_columns();
                tracing::warn!("the database refused a text: {error}; trying it in ASCII");
            }
            other => return other,
        }
    }
}
