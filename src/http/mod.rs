//! The status page on `[monitor] http_listen`: `GET /` an HTML table of this host's processes
//! with a Refresh button, `GET /process_stats` the statistics document, `GET /health` the
//! health score and `GET /metrics` OpenMetrics text.
//!
//! The server is one task of its own with one small task per connection, so a request never
//! holds up the poller, the restarter or the sampler. It reads the database only through the
//! report statements (each under `Database::run`'s deadline), a few requests at a time so that
//! the daemon's own loops keep their connections of the pool. A client that is slow or hostile
//! is bounded everywhere: connections at once, time to send the headers, header and body
//! size, time per request, and the age of a connection.
//!
//! - [`routes`]: the router, its limits and the handlers.
//! - [`page`]: the HTML page, a pure function of the host's view
//!   ([`crate::report::read_host`], the one read every surface shares).
//! - [`metrics`]: the OpenMetrics text, a pure function of the same view.

mod chart;
mod ha;
mod metrics;
mod page;
mod process_page;
mod routes;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::Database;

/// Connections served at once. More wait in the listen backlog; with the header deadline
/// below, idle ones make room within seconds, and the file descriptors stay few.
const MAX_CONNECTIONS: usize = 64;
/// A client must send a request's headers within this time, including the wait for the next
/// request on a kept-alive connection, or the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a connection may buffer: hyper's minimum. Longer headers get 431.
const MAX_HEADER_BUFFER: usize = 8192;
/// Headers per request: a browser sends about fifteen.
const MAX_HEADERS: usize = 64;
/// A connection is asked to close after this long, whatever it does, so that a client that
/// stops reading its response cannot hold a connection for ever.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(120);
/// How long a connection asked to close may finish the request in hand.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// After a failed accept (out of file descriptors, say), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the status page needs from the service.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub db: Database,
    /// The configuration: this host's name, the health threshold, which processes it handles.
    pub config: watch::Receiver<Arc<Config>>,
    /// The sampler's refresh requests (`SamplerLinks::refresh`): it answers on the enclosed
    /// sender once a fresh heartbeat round and sample are written.
    pub refresh: mpsc::Sender<oneshot::Sender<()>>,
    /// This host's HA role (`[ha]`), as the HA task last published it.
    pub ha: watch::Receiver<Option<crate::ha::HaStatus>>,
    /// The alerts' counters, for `/metrics`.
    pub alerts: crate::alert::Alerts,
}

/// Binds the status page's address. Called when the service starts, so that an address in
/// use stops the start with a clear error instead of failing later in a task.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the status page on `listener` until `shutdown` is cancelled; then stops accepting,
/// lets requests in hand finish within a short grace and ends.
pub fn spawn(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(serve(listener, state, shutdown))
}

async fn serve(listener: TcpListener, state: HttpState, shutdown: CancellationToken) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!("status page on http://{addr}/"),
        Err(error) => tracing::info!("status page listening (address unknown: {error})"),
    }
    let app = routes::router(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = shutdown.cancelled() => break,
        };
        // The semaphore is never closed; should it be, there is nothing left to serve.
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let connection = serve_connection(stream, app.clone(), shutdown.clone());
                connections.spawn(async move {
                    connection.await;
                    drop(slot);
                });
            }
            Err(error) => {
                // Aborted handshakes and a lack of file descriptors pass; the loop must not.
                tracing::debug!("status page: accept failed: {error}");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(CLOSE_GRACE * 2, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("status page: connections still open at shutdown; leaving them");
    }
    tracing::debug!("status page stopped");
}

/// One HTTP/1.1 connection, under the header deadline and size limits, closed gracefully at
/// shutdown or when it gets too old.
async fn serve_connection(stream: TcpStream, app: axum::Router, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BUFFER)
        .max_headers(MAX_HEADERS);
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!("status page: connection ended: {error}");
            }
            return;
        }
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => {}
    }
    connection.as_mut().graceful_shutdown();
    if tokio::time::timeout(CLOSE_GRACE, connection).await.is_err() {
        tracing::debug!("status page: dropped a connection that did not close in time");
    }
}
