//! The webhook: each event POSTed as JSON to an `http://` or `https://` URL, under
//! `webhook_timeout` (connection, TLS and answer together), retried with backoff up to
//! `webhook_retries` times. Hyper's client half, already linked for the status page, speaks
//! HTTP/1.1; rustls (with ring, and the system's CA certificates) adds TLS.
//!
//! The URL may hold a secret (a chat webhook's token is its path): nothing here logs it, nor
//! its host.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};
use tokio_util::task::AbortOnDropHandle;

/// The first pause before a retry; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// Why one POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("the URL cannot be used")]
    Url,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the receiver answered {0}")]
    Status(u16),
}

/// Where events are POSTed.
pub struct Webhook {
    url: String,
    timeout: Duration,
    retries: u32,
    /// Built at the first `https://` POST: reading the system's certificates costs memory
    /// that an `http://` webhook never needs.
    tls: Option<Arc<ClientConfig>>,
}

impl Webhook {
    pub fn new(url: String, timeout: Duration, retries: u32) -> Webhook {
        Webhook {
            url,
            timeout,
            retries,
            tls: None,
        }
    }

    /// POSTs `json`, retrying with backoff; whether the receiver took it.
    pub async fn deliver(&mut self, json: &str) -> bool {
        let mut pause = FIRST_PAUSE;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            let timeout = self.timeout;
            match tokio::time::timeout(timeout, self.post(json)).await {
                Ok(Ok(())) => return true,
                Ok(Err(error)) => {
                    tracing::warn!("[alert] webhook, try {}: {error}", attempt + 1)
                }
                Err(_) => tracing::warn!(
                    "[alert] webhook, try {}: {}",
                    attempt + 1,
                    PostError::Timeout(timeout)
                ),
            }
        }
        tracing::error!(
            "[alert] webhook: event dropped after {} tries",
            self.retries + 1
        );
        false
    }

    async fn post(&mut self, json: &str) -> Result<(), PostError> {
        let uri: Uri = self.url.parse().map_err(|_| PostError::Url)?;
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().ok_or(PostError::Url)?.to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().ok_or(PostError::Url)?.as_str().to_owned();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::post(path)
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("monitor_service/", env!("CARGO_PKG_VERSION")),
            )
            .header(CONNECTION, "close")
            .body(Body::from(json.to_owned()))
            .map_err(|_| PostError::Url)?;
        // `[::1]` is how a URL writes an IPv6 address; the socket wants it bare.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let stream = TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(PostError::Connect)?;
        let status = if https {
            let name = ServerName::try_from(bare).map_err(|e| PostError::Tls(e.to_string()))?;
            let connector = TlsConnector::from(self.tls_config()?);
            let stream = connector
                .connect(name, stream)
                .await
                .map_err(|e| PostError::Tls(e.to_string()))?;
            send(TokioIo::new(stream), request).await?
        } else {
            send(TokioIo::new(stream), request).await?
        };
        match status {
            200..=299 => Ok(()),
            status => Err(PostError::Status(status)),
        }
    }

    fn tls_config(&mut self) -> Result<Arc<ClientConfig>, PostError> {
        if let Some(config) = &self.tls {
            return Ok(Arc::clone(config));
        }
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(PostError::Tls(
                "no CA certificates found on this system (SSL_CERT_FILE names a bundle)".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PostError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        self.tls = Some(Arc::clone(&config));
        Ok(config)
    }
}

/// Sends `request` over `io` and returns the answer's status. The connection is driven by a
/// task of its own, stopped when this returns: the receiver may close it as soon as it has
/// answered, which must not count as no answer.
async fn send<I>(io: I, request: Request<Body>) -> Result<u16, PostError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let _driver = AbortOnDropHandle::new(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await?;
    Ok(response.status().as_u16())
}
