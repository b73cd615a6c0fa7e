//! Which server of `[database] host` the pool connects to. It starts with the first; a
//! statement that finds its server gone (`galera::means_server_lost`) moves the pool to the
//! next, round robin, and the next statement connects there within `connect_timeout`. The
//! idle connections opened before a move are closed as they come out of the pool, so that
//! nothing keeps talking to the server left behind. A move is logged when it leaves the
//! server that answered, and the server that answers next is logged once.
//!
//! One server (the default) never moves: it keeps working exactly as before the list.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;

use super::{Database, DbError};
use crate::config::{DatabaseConfig, DbServer};

/// No server has answered yet.
const NONE: usize = usize::MAX;

#[derive(Debug)]
pub(crate) struct Servers {
    list: Vec<DbServer>,
    /// The index of the server new connections go to.
    current: AtomicUsize,
    /// The server that answered the last statement, `NONE` before the first.
    answered: AtomicUsize,
    /// When the pool last moved: connections older than that lead to a server left behind.
    moved_at: Mutex<Option<Instant>>,
}

impl Servers {
    pub(crate) fn new(list: Vec<DbServer>) -> Servers {
        Servers {
            list,
            current: AtomicUsize::new(0),
            answered: AtomicUsize::new(NONE),
            moved_at: Mutex::new(None),
        }
    }

    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// The server new connections go to; `None` for a pool built elsewhere (tests).
    pub(crate) fn current_server(&self) -> Option<&DbServer> {
        self.list.get(self.current())
    }

    /// A statement begun on server `began_on` was answered.
    pub(crate) fn answered(&self, began_on: usize) {
        let before = self.answered.swap(began_on, Ordering::Relaxed);
        if before == began_on || self.list.len() < 2 {
            return;
        }
        let Some(server) = self.list.get(began_on) else {
            return;
        };
        match self.list.get(before) {
            Some(previous) => {
                tracing::warn!("database server {server} answers, in place of {previous}")
            }
            None => tracing::info!("database server {server} answers"),
        }
    }

    /// A statement begun on server `began_on` found it gone: new connections go to the next
    /// server, unless another statement moved the pool already.
    pub(crate) fn lose(&self, began_on: usize, pool: &MySqlPool, error: &DbError) {
        let count = self.list.len();
        if count < 2 {
            return;
        }
        let next = (began_on + 1) % count;
        let moved =
            self.current
                .compare_exchange(began_on, next, Ordering::Relaxed, Ordering::Relaxed);
        if moved.is_err() {
            return;
        }
        if let Ok(mut moved_at) = self.moved_at.lock() {
            *moved_at = Some(Instant::now());
        }
        let (from, to) = (&self.list[began_on], &self.list[next]);
        let options = (*pool.connect_options())
            .clone()
            .host(&to.host)
            .port(to.port);
        pool.set_connect_options(options);
        if self.answered.load(Ordering::Relaxed) == began_on {
            tracing::warn!("database server {from} lost ({error}): trying {to}");
        } else {
            tracing::debug!("database server {from} does not answer ({error}): trying {to}");
        }
    }

    /// Whether a connection `age` old was opened before the last move, to a server left
    /// behind (the pool's `before_acquire`).
    pub(crate) fn is_left_behind(&self, age: Duration) -> bool {
        let moved_at = self.moved_at.lock().ok().and_then(|moved_at| *moved_at);
        moved_at.is_some_and(|moved_at| moved_at.elapsed() < age)
    }
}

impl Database {
    /// A pool as [`Database::connect_lazy`], moved to the first server of the list that
    /// answers: what a command does before its first statement, so that a list whose first
    /// server is down costs one `connect_timeout`, not the command. With one server this
    /// sends nothing.
    pub async fn connect_first_answering(config: &DatabaseConfig) -> Database {
        let db = Database::connect_lazy(config);
        if config.servers.len() < 2 {
            return db;
        }
        for _ in 0..config.servers.len() {
            let ping = db.run(sqlx::query("SELECT 1").execute(db.pool())).await;
            match ping {
                Err(error) if super::galera::means_server_lost(&error) => continue,
                _ => break,
            }
        }
        db
    }

    /// The server new connections go to, for messages; `None` for a pool built elsewhere.
    pub fn server(&self) -> Option<&DbServer> {
        self.servers.current_server()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_older_than_the_last_move_are_left_behind() {
        let servers = Servers::new(Vec::new());
        assert!(!servers.is_left_behind(Duration::from_secs(3600)));
        *servers.moved_at.lock().expect("lock") = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        assert!(servers.is_left_behind(Duration::from_secs(1)));
        assert!(!servers.is_left_behind(Duration::from_millis(1)));
    }
}
