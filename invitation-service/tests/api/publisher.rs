//! The outbox publisher against an in-test `notifications.v1.EventIngest`
//! double: a protocol peer that records what it receives, answers the
//! resume point it holds, applies events in sequence order (once each, up
//! to a limit the test sets) and acks what it applied. The real
//! notification-service is tested end to end elsewhere.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use invitation_service::{
    domain::Reminders,
    publisher::{MAX_BATCH_EVENTS, SOURCE},
    storage::Store,
};
use proto::{
    invitations::v1::{InvitationEvent, SendInvitationRequest, invitation_event::Kind},
    notifications::v1::{
        Ack, PublishRequest, PublishResponse, ResumePoint,
        event_ingest_server::{EventIngest, EventIngestServer},
        publish_response,
    },
};
use service_kit::auth::{JwtKeys, PUBLISH_SCOPE};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinSet,
};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    helpers::{DAY, SECRET, TestApp, eventually, spawn_app_with_config},
    invitations::{accept, ignore, send, try_withdraw},
};

const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// The EventIngest double.
// ---------------------------------------------------------------------------

/// What one Publish stream brought.
#[derive(Debug, Clone, Default)]
struct SessionLog {
    authorization: Option<String>,
    source: String,
    /// The sequences of each request's events, in arrival order.
    batches: Vec<Vec<u64>>,
}

impl SessionLog {
    fn sequences(&self) -> Vec<u64> {
        self.batches.iter().flatten().copied().collect()
    }
}

#[derive(Debug, Default)]
struct Recorded {
    sessions: Vec<SessionLog>,
    /// Applied events, once each, in sequence order.
    applied: Vec<InvitationEvent>,
    last_applied: u64,
}

#[derive(Debug)]
struct Inner {
    recorded: Mutex<Recorded>,
    /// Events past this sequence are received but not applied (nor acked).
    apply_limit: AtomicU64,
    /// A stream acks nothing until it has received this many events.
    ack_after_events: usize,
    /// Bumped to make every open stream end.
    close: watch::Sender<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Ingest(Arc<Inner>);

impl Ingest {
    pub(crate) fn new() -> Self {
        Self::with(0, 0)
    }

    /// A double that has already applied through `last_applied`, and acks
    /// only once a stream has brought `ack_after_events` events.
    fn with(last_applied: u64, ack_after_events: usize) -> Self {
        Self(Arc::new(Inner {
            recorded: Mutex::new(Recorded {
                last_applied,
                ..Recorded::default()
            }),
            apply_limit: AtomicU64::new(u64::MAX),
            ack_after_events,
            close: watch::channel(0).0,
        }))
    }

    fn set_apply_limit(&self, limit: u64) {
        self.0.apply_limit.store(limit, Ordering::SeqCst);
    }

    /// Ends every open stream, as a restarting server would.
    fn close_streams(&self) {
        self.0.close.send_modify(|generation| *generation += 1);
    }

    fn last_applied(&self) -> u64 {
        self.0.recorded.lock().unwrap().last_applied
    }

    pub(crate) fn applied(&self) -> Vec<InvitationEvent> {
        self.0.recorded.lock().unwrap().applied.clone()
    }

    fn sessions(&self) -> Vec<SessionLog> {
        self.0.recorded.lock().unwrap().sessions.clone()
    }

    /// Records and applies a request's events; returns the last applied.
    fn receive(&self, session: usize, events: Vec<InvitationEvent>) -> u64 {
        let limit = self.0.apply_limit.load(Ordering::SeqCst);
        let mut recorded = self.0.recorded.lock().unwrap();
        if !events.is_empty() {
            recorded.sessions[session]
                .batches
                .push(events.iter().map(|e| e.sequence).collect());
        }
        for event in events {
            if event.sequence == recorded.last_applied + 1 && event.sequence <= limit {
                recorded.last_applied = event.sequence;
                recorded.applied.push(event);
            }
        }
        recorded.last_applied
    }

    /// Serves on `listener` from now on.
    pub(crate) fn serve(&self, listener: TcpListener) {
        let service = EventIngestServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .expect("the double serves");
        });
    }
}

fn resume(last_applied_sequence: u64) -> PublishResponse {
    PublishResponse {
        kind: Some(publish_response::Kind::Resume(ResumePoint { last_applied_sequence })),
    }
}

fn ack(applied_through: u64) -> PublishResponse {
    PublishResponse {
        kind: Some(publish_response::Kind::Ack(Ack { applied_through })),
    }
}

#[tonic::async_trait]
impl EventIngest for Ingest {
    type PublishStream = ReceiverStream<Result<PublishResponse, Status>>;

    async fn publish(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1024);
        let ingest = self.clone();
        let mut close = self.0.close.subscribe();
        tokio::spawn(async move {
            let Ok(Some(hello)) = inbound.message().await else {
                return;
            };
            let session = {
                let mut recorded = ingest.0.recorded.lock().unwrap();
                recorded.sessions.push(SessionLog {
                    authorization,
                    source: hello.source.clone(),
                    batches: Vec::new(),
                });
                recorded.sessions.len() - 1
            };
            let mut received = hello.events.len();
            let applied = ingest.receive(session, hello.events);
            if tx.send(Ok(resume(applied))).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    message = inbound.message() => {
                        let Ok(Some(request)) = message else { return };
                        received += request.events.len();
                        let applied = ingest.receive(session, request.events);
                        if received >= ingest.0.ack_after_events && tx.send(Ok(ack(applied))).await.is_err() {
                            return;
                        }
                    }
                    // Dropping `tx` ends the response stream.
                    _ = close.changed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

// ---------------------------------------------------------------------------
// Set-up and views.
// ---------------------------------------------------------------------------

/// A listener for the double, bound but not yet served.
pub(crate) async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// The app, publishing to `endpoint`, and its store.
async fn app_publishing_to(endpoint: String) -> (TestApp, Store) {
    spawn_app_with_config(|config| config.notification_endpoint = endpoint).await
}

/// The app, publishing to `ingest`, which serves from the start.
async fn app_with(ingest: &Ingest) -> (TestApp, Store) {
    let (listener, endpoint) = bind().await;
    ingest.serve(listener);
    app_publishing_to(endpoint).await
}

async fn wait_applied(ingest: &Ingest, through: u64) {
    eventually(WAIT, || async { (ingest.last_applied() >= through).then_some(()) }).await;
    assert_eq!(ingest.last_applied(), through, "nothing past the last event");
}

async fn wait_acked(store: &Store, through: u64) {
    eventually(WAIT, || async {
        (store.acked_sequence().unwrap() == through).then_some(())
    })
    .await;
}

fn outbox_sequences(store: &Store) -> Vec<u64> {
    store
        .outbox_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(sequence, _)| sequence)
        .collect()
}

fn kind_name(event: &InvitationEvent) -> &'static str {
    event.kind.as_ref().map_or("none", Kind::name)
}

fn assert_increasing(session: &SessionLog) {
    let sequences = session.sequences();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "a stream carries contiguous sequences in order: {sequences:?}"
    );
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn events_arrive_in_order_with_contiguous_sequences_and_their_kinds() {
    let ingest = Ingest::new();
    let (app, store) = app_with(&ingest).await;

    let first = send(&app, "alice", "bob").await;
    try_withdraw(&app, "alice", &first.id, "sorry, wrong person")
        .await
        .unwrap();
    let second = send(&app, "carol", "dave").await;
    accept(&app, "dave", &second.id).await;
    let third = send(&app, "erin", "frank").await;
    ignore(&app, "frank", &third.id).await;

    wait_applied(&ingest, 6).await;
    let applied = ingest.applied();
    let sequences: Vec<u64> = applied.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![1, 2, 3, 4, 5, 6]);
    let kinds: Vec<&str> = applied.iter().map(kind_name).collect();
    assert_eq!(kinds, vec!["sent", "withdrawn", "sent", "accepted", "sent", "ignored"]);
    let invitation_ids: Vec<&str> = applied
        .iter()
        .map(|e| e.invitation.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(
        invitation_ids,
        [&first.id, &first.id, &second.id, &second.id, &third.id, &third.id].map(String::as_str)
    );
    match &applied[1].kind {
        Some(Kind::Withdrawn(withdrawn)) => assert_eq!(withdrawn.note, "sorry, wrong person"),
        other => panic!("expected a withdrawal, got {other:?}"),
    }
    let sessions = ingest.sessions();
    for session in &sessions {
        assert_eq!(session.source, SOURCE);
        assert_increasing(session);
    }
    wait_acked(&store, 6).await;
}

#[tokio::test]
async fn the_service_token_has_the_publish_scope_and_the_service_as_subject() {
    let ingest = Ingest::new();
    let (app, _store) = app_with(&ingest).await;
    send(&app, "alice", "bob").await;
    wait_applied(&ingest, 1).await;

    let keys = JwtKeys::new(SECRET).unwrap();
    for session in ingest.sessions() {
        let header = session.authorization.expect("the stream carries a token");
        let token = header.strip_prefix("Bearer ").expect("a bearer token");
        let caller = keys.verify(token).expect("the token verifies with the shared secret");
        assert_eq!(caller.user_id, "invitation-service");
        assert!(caller.has_scope(PUBLISH_SCOPE), "scope {PUBLISH_SCOPE}");
    }
}

#[tokio::test]
async fn a_stream_resumes_after_the_sequence_the_server_last_applied() {
    let (listener, endpoint) = bind().await;
    let (app, store) = app_publishing_to(endpoint).await;
    for recipient in ["b1", "b2", "b3", "b4", "b5"] {
        send(&app, "alice", recipient).await;
    }
    let ingest = Ingest::with(3, 0);
    ingest.serve(listener);

    wait_applied(&ingest, 5).await;
    let received: Vec<u64> = ingest.sessions().iter().flat_map(SessionLog::sequences).collect();
    assert_eq!(received, vec![4, 5], "only what the server had not applied");
    wait_acked(&store, 5).await;
}

#[tokio::test]
async fn the_publisher_reconnects_when_the_stream_ends_and_resends_what_was_not_acked() {
    let ingest = Ingest::new();
    ingest.set_apply_limit(2);
    let (app, store) = app_with(&ingest).await;
    for recipient in ["b1", "b2", "b3"] {
        send(&app, "alice", recipient).await;
    }
    eventually(WAIT, || async {
        ingest
            .sessions()
            .first()
            .is_some_and(|s| s.sequences().contains(&3))
            .then_some(())
    })
    .await;
    wait_acked(&store, 2).await;

    // The server goes away before applying 3, and comes back able to.
    ingest.set_apply_limit(u64::MAX);
    ingest.close_streams();
    wait_applied(&ingest, 3).await;
    let sessions = ingest.sessions();
    assert!(sessions.len() >= 2, "a new stream was opened");
    assert_eq!(
        sessions.last().unwrap().sequences().first(),
        Some(&3),
        "the new stream starts after the resume point"
    );

    // And again, with nothing outstanding: later events follow on the new stream.
    ingest.close_streams();
    eventually(WAIT, || async {
        (ingest.sessions().len() > sessions.len()).then_some(())
    })
    .await;
    for recipient in ["b4", "b5"] {
        send(&app, "alice", recipient).await;
    }
    wait_applied(&ingest, 5).await;
    let sequences: Vec<u64> = ingest.applied().iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
    for session in ingest.sessions() {
        assert_increasing(&session);
    }
    wait_acked(&store, 5).await;
}

#[tokio::test]
async fn requests_succeed_while_nothing_listens_and_the_backlog_follows_when_it_starts() {
    let (listener, endpoint) = bind().await;
    let (app, store) = app_publishing_to(endpoint).await;
    let mut ids = Vec::new();
    for recipient in ["b1", "b2", "b3", "b4"] {
        ids.push(send(&app, "alice", recipient).await.id);
    }
    try_withdraw(&app, "alice", &ids[0], "").await.unwrap();
    assert_eq!(store.last_sequence().unwrap(), 5);
    assert_eq!(store.acked_sequence().unwrap(), 0);

    let ingest = Ingest::new();
    ingest.serve(listener);
    wait_applied(&ingest, 5).await;
    let kinds: Vec<&str> = ingest.applied().iter().map(kind_name).collect();
    assert_eq!(kinds, vec!["sent", "sent", "sent", "sent", "withdrawn"]);
    wait_acked(&store, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_goes_out_many_events_per_request_without_waiting_for_each_ack() {
    const SENDERS: usize = 20;
    const PER_SENDER: usize = 30;
    const BACKLOG: u64 = (SENDERS * PER_SENDER) as u64;

    let (listener, endpoint) = bind().await;
    let (app, store) = app_publishing_to(endpoint).await;
    let mut sends = JoinSet::new();
    for s in 0..SENDERS {
        let mut client = app.client(&format!("sender{s}"));
        sends.spawn(async move {
            for r in 0..PER_SENDER {
                client
                    .send_invitation(SendInvitationRequest {
                        recipient_id: format!("recipient{r}"),
                        message: String::new(),
                        idempotency_key: String::new(),
                    })
                    .await
                    .expect("sends succeed while notification-service is away");
            }
        });
    }
    while let Some(done) = sends.join_next().await {
        done.unwrap();
    }
    assert_eq!(store.last_sequence().unwrap(), BACKLOG);

    // The double acks nothing until it has more than one request's worth:
    // a publisher waiting for an ack per request would stall here.
    let ingest = Ingest::with(0, 2 * MAX_BATCH_EVENTS);
    ingest.serve(listener);
    wait_applied(&ingest, BACKLOG).await;

    let sessions = ingest.sessions();
    assert_eq!(sessions.len(), 1, "one stream carried the backlog");
    let sizes: Vec<usize> = sessions[0].batches.iter().map(Vec::len).collect();
    eprintln!("backlog of {BACKLOG} events went out in requests of {sizes:?} events");
    assert!(sizes.iter().all(|&n| n <= MAX_BATCH_EVENTS), "{sizes:?}");
    assert!(sizes.len() < 10, "many events per request: {sizes:?}");
    assert_increasing(&sessions[0]);
    wait_acked(&store, BACKLOG).await;
}

#[tokio::test]
async fn pruning_deletes_only_acknowledged_events_older_than_the_retention() {
    let ingest = Ingest::new();
    ingest.set_apply_limit(4);
    let (listener, endpoint) = bind().await;
    ingest.serve(listener);
    // The clock jumps weeks: reminders would add events of their own.
    let (app, store) = spawn_app_with_config(|config| {
        config.notification_endpoint = endpoint;
        config.policy.reminders = Reminders::default();
    })
    .await;
    let retention = app.config.outbox_retention;
    assert_eq!(retention, 7 * DAY);

    // 1 and 2 are acked and become old; 3 and 4 are acked and young.
    send(&app, "alice", "b1").await;
    send(&app, "alice", "b2").await;
    wait_acked(&store, 2).await;
    app.clock.advance(retention + DAY);
    send(&app, "alice", "b3").await;
    send(&app, "alice", "b4").await;
    wait_acked(&store, 4).await;
    eventually(WAIT, || async {
        (outbox_sequences(&store) == vec![3, 4]).then_some(())
    })
    .await;

    // 5 and 6 are never acked: once everything is old, only they stay.
    send(&app, "alice", "b5").await;
    send(&app, "alice", "b6").await;
    eventually(WAIT, || async {
        ingest
            .sessions()
            .iter()
            .any(|s| s.sequences().contains(&6))
            .then_some(())
    })
    .await;
    app.clock.advance(retention + DAY);
    eventually(WAIT, || async {
        (outbox_sequences(&store) == vec![5, 6]).then_some(())
    })
    .await;
    assert_eq!(store.acked_sequence().unwrap(), 4);

    // Once acked, they go too; sequences carry on after an empty outbox.
    ingest.set_apply_limit(u64::MAX);
    ingest.close_streams();
    wait_acked(&store, 6).await;
    eventually(WAIT, || async { outbox_sequences(&store).is_empty().then_some(()) }).await;
    send(&app, "alice", "b7").await;
    wait_applied(&ingest, 7).await;
    assert_eq!(outbox_sequences(&store), vec![7], "young events stay");
}
