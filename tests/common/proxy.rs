//! A TCP proxy in front of the test database server that a test can cut and restore, to break
//! the database for real.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::{POLL_INTERVAL, wait_until_sync};

/// A TCP proxy on 127.0.0.1 in front of the database server, to sabotage the database for real.
///
/// It runs on a thread and runtime of its own, so it keeps forwarding whatever the test does
/// meanwhile (a current-thread `#[tokio::test]`, blocking calls, a child process). Dropping it
/// closes everything.
pub struct DbProxy {
    port: u16,
    gate: Arc<Mutex<Gate>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Whether the proxy lets connections through, and the ones it is forwarding. One lock over
/// both, so that no connection slips in while [`DbProxy::cut`] closes the others.
struct Gate {
    open: bool,
    connections: Vec<AbortHandle>,
}

impl DbProxy {
    /// Starts forwarding connections made to `127.0.0.1:`[`port`](DbProxy::port) to `upstream`.
    pub async fn start(upstream: SocketAddr) -> DbProxy {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let gate = Arc::new(Mutex::new(Gate {
            open: true,
            connections: Vec::new(),
        }));
        let (shutdown, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the proxy");
        let thread_gate = Arc::clone(&gate);
        let thread = std::thread::Builder::new()
            .name(format!("db-proxy-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("a tokio listener");
                    tokio::select! {
                        _ = accept_connections(listener, upstream, thread_gate) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here drops every forwarding task with its sockets.
            })
            .expect("a thread for the proxy");
        DbProxy {
            port,
            gate,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The port the proxy listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// How many connections the proxy is forwarding now.
    pub fn open_connections(&self) -> usize {
        let mut gate = lock(&self.gate);
        gate.connections.retain(|task| !task.is_finished());
        gate.connections.len()
    }

    /// Breaks the database: closes every forwarded connection and, until [`DbProxy::restore`],
    /// resets each new one as soon as it is accepted (the port stays ours, so clients see a
    /// connection reset or end of file at once rather than a hang). When this returns, every
    /// connection that was open is closed.
    pub fn cut(&self) {
        let closing: Vec<AbortHandle> = {
            let mut gate = lock(&self.gate);
            gate.open = false;
            gate.connections.drain(..).collect()
        };
        for task in &closing {
            task.abort();
        }
        // An aborted task ends at its next poll on the proxy's thread: a matter of microseconds.
        wait_until_sync(
            Duration::from_secs(5),
            "the proxy closed its connections",
            || closing.iter().all(AbortHandle::is_finished),
        );
    }

    /// Lets connections through again, on the same port.
    pub async fn restore(&self) {
        lock(&self.gate).open = true;
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(gate: &Mutex<Gate>) -> MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_connections(listener: TcpListener, upstream: SocketAddr, gate: Arc<Mutex<Gate>>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Out of file descriptors and the like: try again shortly rather than end the proxy.
            Err(_) => {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        let mut gate = lock(&gate);
        if !gate.open {
            // A zero linger turns the close into a reset, as from a server that went away.
            let _ = client.set_zero_linger();
            drop(client);
            continue;
        }
        gate.connections.retain(|task| !task.is_finished());
        let task = tokio::spawn(forward(client, upstream));
        gate.connections.push(task.abort_handle());
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
