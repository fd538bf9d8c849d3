//! An HTTP server in the test's runtime that receives webhook calls,
//! checks each signature with the `standardwebhooks` crate (the reference
//! implementation, so that our signer is judged by someone else's code),
//! and answers as the test asks.

use std::{
    collections::VecDeque,
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode},
};
use standardwebhooks::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, Webhook, WebhookError};

/// One POST the receiver got.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp` (unix seconds); 0 when missing or not a number.
    pub timestamp: i64,
    /// `webhook-signature`, as sent.
    pub signature: String,
    /// The signature matches the id, timestamp and body under the secret,
    /// whatever the timestamp's age.
    pub verified: bool,
    /// Verified and its timestamp within the reference implementation's
    /// tolerance (5 minutes) of the receiver's clock: what a production
    /// receiver accepts.
    pub fresh: bool,
    /// The body as JSON (a JSON string of the raw text when it is not JSON).
    pub body: serde_json::Value,
    /// What the receiver answered (or was about to, if the caller hung up
    /// during a delay): 401 when not verified.
    pub status_returned: u16,
    pub received_at: Instant,
}

/// The receiver, serving until dropped. Calls are recorded on arrival, in
/// order, before any delay.
pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    webhook: Webhook,
    state: Mutex<Script>,
}

#[derive(Default)]
struct Script {
    calls: Vec<Call>,
    statuses: VecDeque<u16>,
    delay: Duration,
}

impl WebhookReceiver {
    /// Serves on 127.0.0.1:0, verifying with `secret` (`whsec_` and base64,
    /// as notification-service is given it).
    pub async fn start(secret: &str) -> Self {
        let webhook = Webhook::new(secret).unwrap_or_else(|e| panic!("not a webhook secret: {e}"));
        let shared = Arc::new(Shared {
            webhook,
            state: Mutex::new(Script::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().fallback(receive).with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("webhook receiver: {e}");
            }
        });
        Self { addr, shared, server }
    }

    /// Where to POST: `http://127.0.0.1:PORT/hook` (any path is received).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next verified calls are answered with `statuses`, in order, and
    /// those after them with 204 again. Replaces what was left of an earlier
    /// list.
    pub fn respond_with(&self, statuses: Vec<u16>) {
        self.shared.lock().statuses = statuses.into();
    }

    /// Every answer from now on waits `delay` first (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Every call so far, in order of arrival.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }
}

impl fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("addr", &self.addr)
            .field("calls", &self.shared.lock().calls.len())
            .finish_non_exhaustive()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // A test that panicked holding it leaves plain data behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// (verified, fresh) for one call.
    fn check(&self, headers: &HeaderMap, body: &[u8], id: &str, timestamp: i64, signature: &str) -> (bool, bool) {
        match self.webhook.verify(body, headers) {
            Ok(()) => (true, true),
            // The crate checks the age before the signature, so an old
            // call (the specification's test vector) is signed here with
            // the crate and compared, as its `verify` compares.
            Err(WebhookError::TimestampTooOldError | WebhookError::FutureTimestampError) => {
                let verified = self
                    .webhook
                    .sign(id, timestamp, body)
                    .is_ok_and(|expected| signature.split(' ').any(|s| s == expected));
                (verified, false)
            }
            Err(
                WebhookError::InvalidTimestamp
                | WebhookError::InvalidSecret(_)
                | WebhookError::InvalidHeader(_)
                | WebhookError::MissingHeader(_)
                | WebhookError::InvalidSignature
                | WebhookError::InvalidPayload,
            ) => (false, false),
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, method: Method, headers: HeaderMap, body: Bytes) -> StatusCode {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    let received_at = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header(HEADER_WEBHOOK_ID);
    let timestamp = header(HEADER_WEBHOOK_TIMESTAMP).parse().unwrap_or(0);
    let signature = header(HEADER_WEBHOOK_SIGNATURE);
    let (verified, fresh) = shared.check(&headers, &body, &id, timestamp, &signature);
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    let (status, delay) = {
        let mut script = shared.lock();
        let status = if verified {
            script.statuses.pop_front().unwrap_or(204)
        } else {
            401
        };
        script.calls.push(Call {
            id,
            timestamp,
            signature,
            verified,
            fresh,
            body,
            status_returned: status,
            received_at,
        });
        (status, script.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
