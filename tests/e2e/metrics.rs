//! What an operator watching the pair sees: each service's `/metrics` over
//! plain HTTP, with go-grpc-prometheus's per-RPC names and the pair's own
//! figures, and a log line for every refused request.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use e2e::{Pair, Service, eventually, invitations, notifications};
use proto::notifications::v1 as npb;

use crate::common::{immediate, send};

/// `GET /metrics` with HTTP/1.0: the status line, the content type and the
/// body.
fn scrape(addr: SocketAddr) -> (String, String, String) {
    let mut stream = TcpStream::connect(addr).expect("the metrics port accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("a reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("headers, then a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

pub(crate) fn metrics(service: &Service) -> String {
    let addr = service
        .metrics_addr()
        .expect("the service logs where it serves /metrics");
    scrape(addr).2
}

/// The value of the sample whose name and labels are exactly `series`.
pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

const SEND_OK: &str = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="invitations.v1.InvitationService",grpc_method="SendInvitation",grpc_code="OK"}"#;
const SEND_REFUSED: &str = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="invitations.v1.InvitationService",grpc_method="SendInvitation",grpc_code="InvalidArgument"}"#;
const SEND_STARTED: &str = r#"grpc_server_started_total{grpc_type="unary",grpc_service="invitations.v1.InvitationService",grpc_method="SendInvitation"}"#;
const SEND_SECONDS: &str = r#"grpc_server_handling_seconds_count{grpc_type="unary",grpc_service="invitations.v1.InvitationService",grpc_method="SendInvitation"}"#;
const SUBSCRIBE_STARTED: &str = r#"grpc_server_started_total{grpc_type="server_stream",grpc_service="notifications.v1.NotificationService",grpc_method="Subscribe"}"#;
const SUBSCRIBE_CANCELED: &str = r#"grpc_server_handled_total{grpc_type="server_stream",grpc_service="notifications.v1.NotificationService",grpc_method="Subscribe",grpc_code="Canceled"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_expose_per_rpc_and_pair_metrics_and_log_refusals() {
    // A long undo window, so the notification is still held when we look.
    let pair = Pair::start(&[("NOTIFICATION_UNDO_WINDOW", "1h".into())], &[]);

    let (status, content_type, body) = scrape(pair.invitation.metrics_addr().expect("metrics address"));
    assert_eq!(status, "HTTP/1.0 200 OK", "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    let mut bob = notifications(&pair.notification, "bob");
    immediate(&mut bob, npb::Detail::Full).await;
    let stream = bob
        .subscribe(npb::SubscribeRequest { resume_after: None })
        .await
        .expect("subscribe")
        .into_inner();

    let mut alice = invitations(&pair.invitation, "alice");
    send(&mut alice, "bob", "hello").await.expect("a send");
    let refused = send(&mut alice, "", "to nobody").await.expect_err("no recipient");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // Per RPC, as go-grpc-prometheus names them, counted once each.
    let text = metrics(&pair.invitation);
    assert_eq!(value(&text, SEND_STARTED), Some(2.0), "{text}");
    assert_eq!(value(&text, SEND_OK), Some(1.0), "{text}");
    assert_eq!(value(&text, SEND_REFUSED), Some(1.0), "{text}");
    assert_eq!(value(&text, SEND_SECONDS), Some(2.0), "{text}");
    assert!(
        value(&text, "storage_flush_seconds_count").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(value(&text, "storage_faults_total"), Some(0.0), "{text}");

    // The event reaches notification-service: the outbox empties, the
    // publisher is connected, and the notification is held, not delivered.
    let text = eventually(Duration::from_secs(20), || {
        let text = metrics(&pair.invitation);
        let flowing = value(&text, "invitation_outbox_events") == Some(0.0)
            && value(&text, "invitation_publisher_connected") == Some(1.0)
            && value(&text, "invitation_events_acknowledged_total") == Some(1.0);
        async move { flowing.then_some(text) }
    })
    .await;
    assert_eq!(
        value(&text, "invitation_outbox_oldest_event_age_seconds"),
        Some(0.0),
        "{text}"
    );
    let text = eventually(Duration::from_secs(20), || {
        let text = metrics(&pair.notification);
        let applied = value(&text, "notification_events_applied_total") == Some(1.0);
        async move { applied.then_some(text) }
    })
    .await;
    assert_eq!(value(&text, "notification_held"), Some(1.0), "{text}");
    assert_eq!(value(&text, "notification_digests_open"), Some(0.0), "{text}");
    assert_eq!(value(&text, "notification_live_streams"), Some(1.0), "{text}");
    assert_eq!(value(&text, SUBSCRIBE_STARTED), Some(1.0), "{text}");

    // Bob hangs up: the stream ends, counted as Canceled.
    drop(stream);
    eventually(Duration::from_secs(10), || {
        let text = metrics(&pair.notification);
        let gone =
            value(&text, "notification_live_streams") == Some(0.0) && value(&text, SUBSCRIBE_CANCELED) == Some(1.0);
        async move { gone.then_some(()) }
    })
    .await;

    // Operators see the refusal at the default log level, and the start-up
    // line with the version and the configuration, without the secret.
    let log = pair.invitation.log();
    let refusal = log
        .lines()
        .find(|l| l.contains("request refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        refusal.contains("rpc=SendInvitation") && refusal.contains("code=\"InvalidArgument\""),
        "{refusal}"
    );
    let starting = log
        .lines()
        .find(|l| l.contains("starting"))
        .unwrap_or_else(|| panic!("no start-up line:\n{log}"));
    assert!(
        starting.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && starting.contains("weekly_limit: 100"),
        "{starting}"
    );
    assert!(!log.contains(e2e::SECRET), "the secret must never be logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_metrics_address_turns_the_endpoint_off() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(
        e2e::Kind::Notification,
        dir.path(),
        &[("NOTIFICATION_METRICS_ADDR", String::new())],
    );
    assert_eq!(service.metrics_addr(), None, "{}", service.log());
}
