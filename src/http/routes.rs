//! The router: the pages, the limits every request is held to, and the Refresh.
//!
//! Limits: a request body of at most [`MAX_BODY`] (413 beyond), [`REQUEST_TIMEOUT`] for a
//! page and [`REFRESH_TIMEOUT`] for a refresh (503 beyond), and at most [`READERS`] requests
//! reading the database at once, so the status page can never take the pool's connections
//! from the poller and the sampler. A database that does not answer gives 503 once the
//! statement's deadline has passed; a request never waits longer than its timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::{Mutex, Semaphore, oneshot};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::{HttpState, ha, metrics, page, process_page};
use crate::report::{self, ReportError};

/// Request bodies are never needed (the Refresh form posts nothing): 4 KiB is plenty.
const MAX_BODY: usize = 4096;
/// The most a page may take, waiting for the database included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a refresh waits for the sampler's heartbeat round and sample.
const REFRESH_DEADLINE: Duration = Duration::from_secs(30);
/// A refresh request's own limit: the sampler's deadline, and time to read its body.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(35);
/// Requests reading the database at once.
const READERS: usize = 2;
/// A refresh asked for within this time of the last one shows that one's result instead of
/// running the health checks again, so that a client repeating the request cannot keep the
/// sampler busy.
const REFRESH_SPACING: Duration = Duration::from_secs(1);
/// The page uses its own inline style and posts only to itself; nothing else is allowed.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                           frame-ancestors 'none'; base-uri 'none'";

/// The state the handlers share.
struct Shared {
    state: HttpState,
    readers: Semaphore,
    /// Held while a refresh runs; holds when the last one ended.
    refreshing: Mutex<Option<Instant>>,
}

/// How a refresh request went: said in the log; the client is sent to the page in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// The sampler checked every process and wrote the result.
    Done,
    /// Another refresh was running or had just ended: its result is the fresh one.
    Joined,
    /// Statistics are off or the service is stopping: nothing to refresh.
    Unavailable,
    /// The sampler did not answer within the deadline.
    TimedOut,
}

pub(super) fn router(state: HttpState) -> Router {
    let shared = Arc::new(Shared {
        state,
        readers: Semaphore::new(READERS),
        refreshing: Mutex::new(None),
    });
    let pages = Router::new()
        .route("/", get(index))
        .route("/process/{name}", get(process))
        .route("/process_stats", get(process_stats))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ));
    let refresh =
        Router::new()
            .route("/refresh", post(refresh))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                REFRESH_TIMEOUT,
            ));
    pages
        .merge(refresh)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::map_response(common_headers))
        .with_state(shared)
}

async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let config = shared.state.config.borrow().clone();
    let db = &shared.state.db;
    let read = async {
        let status = report::read_host(db, &config).await?;
        let history = report::table_history(db, &config.monitor.host).await?;
        Ok((status, history))
    };
    match shared.read(read).await {
        Ok((status, history)) => {
            let page = page::render_with(&status, &history);
            html(ha::page_with_role(page, shared.state.ha.borrow().as_ref()))
        }
        Err(response) => response,
    }
}

/// `GET /process/{name}`: the charts of one process, over `?hours=N` (1 unless said).
async fn process(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let hours = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("hours="))
        .and_then(|hours| hours.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, process_page::MOST_HOURS);
    let config = shared.state.config.borrow().clone();
    let (db, host) = (&shared.state.db, config.monitor.host.as_str());
    let read = async {
        let process = report::lists::resolve(db, host, &name).await?;
        let history = report::process_history(db, host, process.process_id, hours).await?;
        Ok((process, history))
    };
    match shared.read(read).await {
        Ok((process, history)) => html(process_page::render(host, &process.name, hours, &history)),
        Err(response) => response,
    }
}

/// An HTML page, under the page's content security policy.
fn html(page: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

async fn process_stats(State(shared): State<Arc<Shared>>) -> Response {
    let config = shared.state.config.borrow().clone();
    match shared
        .read(report::read_host(&shared.state.db, &config))
        .await
    {
        Ok(view) => json(report::StatisticsDocument::of_host(&view).to_json()),
        Err(response) => response,
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let config = shared.state.config.borrow().clone();
    let host = &config.monitor.host;
    let report = report::latest_health(&shared.state.db, host, config.health.threshold);
    match shared.read(report).await {
        Ok(report) => json(ha::health_json(
            report.to_json(),
            shared.state.ha.borrow().as_ref(),
        )),
        Err(response) => response,
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let config = shared.state.config.borrow().clone();
    match shared
        .read(report::read_host(&shared.state.db, &config))
        .await
    {
        Ok(status) => match metrics::render_with(&status, &shared.state.alerts) {
            Ok(text) => {
                let text = ha::metrics_with_role(text, shared.state.ha.borrow().as_ref());
                ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
            }
            Err(_) => internal_error(),
        },
        Err(response) => response,
    }
}

/// `POST /refresh` from the page's button: a fresh heartbeat round and sample, then back to
/// the page (303, so that reloading the page does not post again). The body is read only to
/// hold it to the size limit.
async fn refresh(State(shared): State<Arc<Shared>>, _body: Bytes) -> Response {
    let outcome = shared.refresh().await;
    tracing::debug!("status page: refresh: {outcome:?}");
    Redirect::to("/").into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, plain("not found\n")).into_response()
}

impl Shared {
    /// Runs one database read under the readers' limit and the page's deadline. Err is the
    /// response to send: 503 when the database is away or slow.
    async fn read<T>(
        &self,
        read: impl Future<Output = Result<T, ReportError>>,
    ) -> Result<T, Response> {
        let bounded = async {
            let _reader = self.readers.acquire().await.map_err(|_| unavailable())?;
            read.await.map_err(|error| {
                tracing::debug!("status page: {error}");
                match error {
                    ReportError::Database(_) => unavailable(),
                    ReportError::UnknownProcess(_) => {
                        (StatusCode::NOT_FOUND, plain("no such process\n")).into_response()
                    }
                }
            })
        };
        // Under the request timeout, so that the answer is ours (503 with a word), not the
        // timeout layer's empty one.
        match tokio::time::timeout(REQUEST_TIMEOUT - Duration::from_millis(500), bounded).await {
            Ok(result) => result,
            Err(_) => Err(unavailable()),
        }
    }

    /// One refresh at a time: a request that finds one running waits for it and shares its
    /// result.
    async fn refresh(&self) -> Refresh {
        let mut last = match self.refreshing.try_lock() {
            Ok(last) => last,
            Err(_) => {
                let _ = self.refreshing.lock().await;
                return Refresh::Joined;
            }
        };
        if last.is_some_and(|ended| ended.elapsed() < REFRESH_SPACING) {
            return Refresh::Joined;
        }
        let (done_tx, done_rx) = oneshot::channel();
        let exchange = async {
            self.state.refresh.send(done_tx).await.ok()?;
            done_rx.await.ok()
        };
        let outcome = match tokio::time::timeout(REFRESH_DEADLINE, exchange).await {
            Ok(Some(())) => Refresh::Done,
            Ok(None) => Refresh::Unavailable,
            Err(_) => Refresh::TimedOut,
        };
        *last = Some(Instant::now());
        outcome
    }
}

fn json(text: Result<String, serde_json::Error>) -> Response {
    match text {
        Ok(mut text) => {
            text.push('\n');
            ([(header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        Err(_) => internal_error(),
    }
}

fn unavailable() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        plain("database unavailable: try again shortly\n"),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, plain("internal error\n")).into_response()
}

fn plain(text: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text)
}

/// Every answer is about now, and is what its content type says.
async fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
