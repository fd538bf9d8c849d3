//! PUSH: one signed HTTP POST per message to the operator's webhook, as the
//! Standard Webhooks specification describes (headers, signature, what a
//! status means).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use super::{Try, WebhookSettings, json, signature::WebhookSecret};
use crate::{convert, storage::Job};

/// Sends push messages to one webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    secret: WebhookSecret,
    timeout: Duration,
}

impl Webhook {
    pub(crate) fn new(settings: &WebhookSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.timeout));
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            url: settings.url.clone(),
            secret: settings.secret.clone(),
            timeout: settings.timeout,
        }
    }

    /// The body of the call about `job`.
    pub(crate) fn body(job: &Job) -> Vec<u8> {
        let update = convert::update(&job.update);
        let body = serde_json::json!({
            "type": json::event_type(&update),
            "timestamp": convert::timestamp(job.created).to_string(),
            "data": {
                "user_id": job.user,
                "update": json::update(&update),
            },
        });
        serde_json::to_vec(&body).expect("JSON of a JSON value")
    }

    /// One try: 2xx is sent; 410 Gone means the receiver wants no more
    /// (failed for good); anything else, a timeout or a connection error,
    /// is tried again (after `retry-after` when the receiver gives one).
    pub(crate) async fn send(&self, job: &Job) -> Try {
        let body = Self::body(job);
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signature = self.secret.sign(&job.id, timestamp, &body);
        let request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("notification-service/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", &job.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(request) => request,
            Err(e) => return Try::Failed(format!("cannot build the request: {e}")),
        };
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Try::Retry {
                reason: format!("no answer within {}", humantime::format_duration(self.timeout)),
                after: None,
            },
            Ok(Err(e)) => Try::Retry {
                reason: format!("cannot reach the webhook: {e}"),
                after: None,
            },
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    Try::Sent
                } else if status == http::StatusCode::GONE {
                    Try::Failed("the webhook answered 410 Gone: it takes no more messages".to_owned())
                } else {
                    let after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    Try::Retry {
                        reason: format!("the webhook answered {status}"),
                        after,
                    }
                }
            }
        }
    }
}
