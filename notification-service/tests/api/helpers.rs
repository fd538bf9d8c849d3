//! Starts the real server in-process (the same `App` path as `main`) on
//! port 0 with a temporary data folder and a clock the test moves, and hands
//! out typed clients: a `NotificationService` client per user, a publisher on
//! `EventIngest/Publish` that speaks for invitation-service, and live
//! `Subscribe` streams.

use std::{
    future::Future,
    hash::{DefaultHasher, Hash as _, Hasher as _},
    sync::Arc,
    time::Duration,
};

use notification_service::{
    App, Config, StartError,
    domain::{Clock as _, ManualClock, Timestamp},
    hub::Hub,
};
use proto::{
    invitations::v1::{self as ipb, InvitationState, invitation_event::Kind as EventKind},
    notifications::v1::{
        self as pb, event_ingest_client::EventIngestClient, notification_service_client::NotificationServiceClient,
        notification_update::Kind, publish_response,
    },
};
use service_kit::auth::{JwtKeys, PUBLISH_SCOPE};
use tempfile::TempDir;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Request, Response, Status, Streaming,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub(crate) const SECRET: &str = "notification-test-secret-0123456789";

/// 2026-01-01T00:00:00Z, where every test's clock starts.
pub(crate) const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// The undo window and default digest interval of [`test_config`].
pub(crate) const UNDO: Duration = Duration::from_secs(10);
pub(crate) const DIGEST: Duration = Duration::from_secs(15 * 60);
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// How long a test waits for something that should happen.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);
/// How long a test listens for something that must not happen, once it has
/// shown that the stream it listens on works.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// The source invitation-service names on the ingest stream.
pub(crate) const SOURCE: &str = "invitation-service";

/// A user whose held notifications prove that the timers have run.
const WITNESS: &str = "witness";

/// Adds `authorization: Bearer <token>` to every request, or nothing.
#[derive(Debug, Clone)]
pub(crate) struct Bearer(Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

pub(crate) type Client = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

/// `START + d` as the API shows it.
pub(crate) fn at(d: Duration) -> Option<prost_types::Timestamp> {
    let ms = START.plus(d).as_millis();
    Some(prost_types::Timestamp {
        seconds: i64::try_from(ms / 1000).unwrap(),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap(),
    })
}

/// Default settings of the product, with a fast timer tick.
fn test_config(data_dir: &std::path::Path) -> Config {
    Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        metrics_addr: None,
        jwt_secret: SECRET.into(),
        digest_interval: DIGEST,
        undo_window: UNDO,
        timer_tick: Duration::from_millis(10),
        // Tests call as fast as they can; the limits' own tests turn them on.
        rate: service_kit::limits::RateSettings::OFF,
        max_streams_per_connection: service_kit::server::DEFAULT_MAX_STREAMS_PER_CONNECTION,
        channels: notification_service::channels::ChannelSettings::default(),
        // Tests deliver many at once; the throttle's own test turns it on.
        max_immediate_per_hour: 0,
        jetstream: None,
    }
}

/// A running server and what a test needs to drive it.
#[derive(Debug)]
pub(crate) struct TestApp {
    pub(crate) clock: ManualClock,
    keys: JwtKeys,
    addr: std::net::SocketAddr,
    channel: Channel,
    config: Config,
    data_dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// The server's live fan-out: who holds an entry in it.
    pub(crate) hub: Arc<Hub>,
}

/// A stopped server's data folder, configuration and clock, to start again.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) clock: ManualClock,
    config: Config,
    data_dir: Arc<TempDir>,
}

impl Stopped {
    pub(crate) async fn start(self) -> TestApp {
        start(self.config, self.data_dir, self.clock).await
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with the configuration changed by `adjust`.
pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    adjust(&mut config);
    start(config, dir, ManualClock::starting_at(START)).await
}

async fn start(config: Config, data_dir: Arc<TempDir>, clock: ManualClock) -> TestApp {
    service_kit::telemetry::init_for_tests();
    // A server stopped a moment ago may still be releasing the folder's lock.
    let app = eventually(PATIENCE, || {
        let (config, clock) = (config.clone(), clock.clone());
        async move {
            match App::build(config, Arc::new(clock)).await {
                Ok(app) => Some(app),
                Err(StartError::DataDirLocked(_)) => None,
                Err(e) => panic!("server does not start: {e}"),
            }
        }
    })
    .await;
    let addr = app.local_addr();
    let hub = app.hub();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    TestApp {
        clock,
        keys: JwtKeys::new(SECRET).unwrap(),
        addr,
        channel,
        config,
        data_dir,
        shutdown: Some(tx),
        server: Some(server),
        hub,
    }
}

impl TestApp {
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// A signed token for `user`, with a display name.
    pub(crate) fn token(&self, user: &str) -> String {
        self.keys
            .mint(
                user,
                Some(&format!("{user} (display)")),
                Duration::from_secs(3600),
                None,
            )
            .unwrap_or_else(|e| panic!("no token for {user:?}: {e}"))
    }

    /// The token invitation-service mints for itself.
    pub(crate) fn publisher_token(&self) -> String {
        self.keys
            .mint(SOURCE, None, Duration::from_secs(3600), Some(PUBLISH_SCOPE))
            .unwrap()
    }

    /// A client acting as `user`.
    pub(crate) fn client(&self, user: &str) -> Client {
        self.client_with_token(Some(self.token(user)))
    }

    /// A client sending `token` as it is (or no authorization header).
    pub(crate) fn client_with_token(&self, token: Option<String>) -> Client {
        NotificationServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// Opens `EventIngest/Publish` as invitation-service and reads the
    /// resume point.
    pub(crate) async fn publisher(&self) -> Publisher {
        self.try_publisher(Some(self.publisher_token()), SOURCE)
            .await
            .unwrap_or_else(|s| panic!("cannot publish: {s:?}"))
    }

    /// Opens `EventIngest/Publish` with `token`, says hello as `source`, and
    /// reads the first reply, which must be the resume point.
    pub(crate) async fn try_publisher(&self, token: Option<String>, source: &str) -> Result<Publisher, Status> {
        let (requests, rx) = mpsc::channel(16);
        requests
            .send(pb::PublishRequest {
                source: source.into(),
                events: Vec::new(),
            })
            .await
            .unwrap();
        let mut replies = EventIngestClient::with_interceptor(self.channel.clone(), Bearer(token))
            .publish(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let first = tokio::time::timeout(PATIENCE, replies.message())
            .await
            .expect("the service answers the hello")?
            .expect("the service answers before ending the stream");
        match first.kind {
            Some(publish_response::Kind::Resume(pb::ResumePoint { last_applied_sequence })) => Ok(Publisher {
                requests,
                replies,
                resume: last_applied_sequence,
                next: last_applied_sequence,
            }),
            Some(publish_response::Kind::Ack(ack)) => {
                panic!("the first reply is an ack, not the resume point: {ack:?}")
            }
            None => panic!("the first reply is empty"),
        }
    }

    /// Opens a `Subscribe` stream as `user`.
    pub(crate) async fn try_subscribe(&self, user: &str, resume_after: Option<u64>) -> Result<Updates, Status> {
        let stream = self
            .client(user)
            .subscribe(pb::SubscribeRequest { resume_after })
            .await?
            .into_inner();
        Ok(Updates(stream))
    }

    /// A `Subscribe` stream on a connection of its own, for a stream that
    /// is left unread: its unread data must not use up the flow-control
    /// window of the connection the other clients share, and HTTP/2's
    /// default windows (not the client's megabytes) make it back up into
    /// the server soon.
    pub(crate) async fn subscribe_alone(&self, user: &str, resume_after: Option<u64>) -> Updates {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535)
            .connect()
            .await
            .expect("connects");
        let stream = NotificationServiceClient::with_interceptor(channel, Bearer(Some(self.token(user))))
            .subscribe(pb::SubscribeRequest { resume_after })
            .await
            .unwrap_or_else(|s| panic!("{user} cannot subscribe: {s:?}"))
            .into_inner();
        Updates(stream)
    }

    pub(crate) async fn subscribe(&self, user: &str, resume_after: Option<u64>) -> Updates {
        self.try_subscribe(user, resume_after)
            .await
            .unwrap_or_else(|s| panic!("{user} cannot subscribe: {s:?}"))
    }

    pub(crate) async fn try_list(
        &self,
        user: &str,
        page_size: i32,
        page_token: &str,
        unread_only: bool,
    ) -> Result<pb::ListNotificationsResponse, Status> {
        self.client(user)
            .list_notifications(pb::ListNotificationsRequest {
                page_size,
                page_token: page_token.into(),
                unread_only,
            })
            .await
            .map(Response::into_inner)
    }

    /// The user's whole inbox, newest first.
    pub(crate) async fn inbox(&self, user: &str) -> Vec<pb::Notification> {
        let page = self.try_list(user, 100, "", false).await.unwrap();
        assert_eq!(page.next_page_token, "", "the inbox of {user} fits one page");
        page.notifications
    }

    pub(crate) async fn unread(&self, user: &str) -> u32 {
        self.client(user)
            .get_unread_count(pb::GetUnreadCountRequest {})
            .await
            .unwrap()
            .into_inner()
            .unread_count
    }

    /// Waits until the user's inbox holds exactly `n` notifications.
    pub(crate) async fn wait_for_inbox(&self, user: &str, n: usize) -> Vec<pb::Notification> {
        eventually(PATIENCE, || async move {
            let inbox = self.inbox(user).await;
            (inbox.len() == n).then_some(inbox)
        })
        .await
    }

    pub(crate) async fn preferences(&self, user: &str) -> pb::Preferences {
        self.client(user)
            .get_preferences(pb::GetPreferencesRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    /// UpdatePreferences; an empty `mask` sends no mask at all.
    pub(crate) async fn try_update_preferences(
        &self,
        user: &str,
        preferences: pb::Preferences,
        mask: &[&str],
    ) -> Result<pb::Preferences, Status> {
        let update_mask = (!mask.is_empty()).then(|| prost_types::FieldMask {
            paths: mask.iter().map(|p| (*p).to_owned()).collect(),
        });
        self.client(user)
            .update_preferences(pb::UpdatePreferencesRequest {
                preferences: Some(preferences),
                update_mask,
            })
            .await
            .map(Response::into_inner)
    }

    pub(crate) async fn update_preferences(
        &self,
        user: &str,
        preferences: pb::Preferences,
        mask: &[&str],
    ) -> pb::Preferences {
        self.try_update_preferences(user, preferences, mask)
            .await
            .unwrap_or_else(|s| panic!("{user} cannot update preferences: {s:?}"))
    }

    /// Sets one topic of the user's preferences, leaving the rest.
    pub(crate) async fn set_topic(&self, user: &str, topic: &str, preference: pb::TopicPreference) {
        let mut update = pb::Preferences::default();
        let slot = match topic {
            "invitation_received" => &mut update.invitation_received,
            "invitation_accepted" => &mut update.invitation_accepted,
            "invitation_withdrawn" => &mut update.invitation_withdrawn,
            "withdrawal_note" => &mut update.withdrawal_note,
            "invitation_reminder" => &mut update.invitation_reminder,
            other => panic!("no topic {other}"),
        };
        *slot = Some(preference);
        self.update_preferences(user, update, &[topic]).await;
    }

    /// New invitations reach `user` after the undo window, not in a digest.
    pub(crate) async fn receive_immediately(&self, user: &str) {
        self.set_topic(user, "invitation_received", topic(true, Immediate, Full))
            .await;
    }

    pub(crate) async fn try_delivery_status(
        &self,
        user: &str,
        invitation_id: &str,
    ) -> Result<pb::GetDeliveryStatusResponse, Status> {
        self.client(user)
            .get_delivery_status(pb::GetDeliveryStatusRequest {
                invitation_id: invitation_id.into(),
            })
            .await
            .map(Response::into_inner)
    }

    /// The sender's view: (delivered, deliver_at).
    pub(crate) async fn delivery_status(
        &self,
        user: &str,
        invitation_id: &str,
    ) -> (bool, Option<prost_types::Timestamp>) {
        let status = self
            .try_delivery_status(user, invitation_id)
            .await
            .unwrap_or_else(|s| panic!("{user} gets no delivery status of {invitation_id}: {s:?}"));
        (status.delivered, status.deliver_at)
    }

    /// Moves the clock forward by `d` (at least the undo window) and returns
    /// once the timers have fired everything due by the new time: a witness
    /// invitation published `d - UNDO` in is held until exactly then, and
    /// the timers fire in due order, so its delivery shows they caught up.
    pub(crate) async fn advance_settled(&self, publisher: &mut Publisher, d: Duration) {
        assert!(d >= UNDO, "settling needs at least the undo window");
        self.receive_immediately(WITNESS).await;
        let before = self.inbox(WITNESS).await.len();
        self.advance(d - UNDO);
        let id = format!("witness-inv-{}", self.now().as_millis());
        publisher
            .publish([invitation(&id, "witness-sender", WITNESS).sent()])
            .await;
        self.advance(UNDO);
        self.wait_for_inbox(WITNESS, before + 1).await;
    }

    /// Proves that `stream` (of `user`) works and has carried nothing so
    /// far: an invitation `user` sent is accepted, and the acceptance, told
    /// at once, is the next update to arrive. Returns that notification.
    pub(crate) async fn first_update_is_a_canary(
        &self,
        publisher: &mut Publisher,
        user: &str,
        stream: &mut Updates,
    ) -> pb::Notification {
        let canary = invitation(&format!("canary-{}", publisher.next + 1), user, "canary-friend");
        publisher.publish([canary.sent(), canary.accepted()]).await;
        let update = stream.next().await;
        let notification = delivered(&update).clone();
        assert_eq!(
            (notification.topic(), notification.invitation_ids.as_slice()),
            (pb::Topic::InvitationAccepted, [canary.id.clone()].as_slice()),
            "the first update on the stream of {user} is the canary: {update:?}"
        );
        notification
    }

    /// Stops the server gracefully and waits for it. Close publishers first:
    /// an open ingest stream holds the shutdown for its grace period.
    pub(crate) async fn stop(mut self) -> Stopped {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
        Stopped {
            clock: self.clock.clone(),
            config: self.config.clone(),
            data_dir: Arc::clone(&self.data_dir),
        }
    }

    /// Stops the server and starts a new one on the same data folder and
    /// clock (on a new port).
    pub(crate) async fn restart(self) -> TestApp {
        self.stop().await.start().await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits until `check` returns `Some`, polling, or panics after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// The ingest stream, as invitation-service's publisher uses it.
// ---------------------------------------------------------------------------

/// An open `EventIngest/Publish` stream.
#[derive(Debug)]
pub(crate) struct Publisher {
    requests: mpsc::Sender<pb::PublishRequest>,
    replies: Streaming<pb::PublishResponse>,
    /// The resume point the service answered the hello with.
    pub(crate) resume: u64,
    /// The last sequence handed out.
    next: u64,
}

impl Publisher {
    /// Sends `events` numbered with the next sequences; returns the ack.
    pub(crate) async fn publish(&mut self, events: impl IntoIterator<Item = ipb::InvitationEvent>) -> u64 {
        let events: Vec<_> = events
            .into_iter()
            .map(|event| {
                self.next += 1;
                numbered(self.next, event)
            })
            .collect();
        let through = self.next;
        let applied = self
            .send(events)
            .await
            .unwrap_or_else(|s| panic!("the batch is refused: {s:?}"));
        assert_eq!(applied, through, "the ack covers the whole batch");
        applied
    }

    /// Sends `events` with the sequences they carry; returns the ack's
    /// `applied_through`, or the status the stream ended with.
    pub(crate) async fn send(&mut self, events: Vec<ipb::InvitationEvent>) -> Result<u64, Status> {
        // The service acks large batches in parts: wait for the part that
        // covers the last event.
        let wanted = events.iter().map(|e| e.sequence).max().unwrap_or(0);
        // When the service has ended the stream, its status is in the replies.
        let _ = self
            .requests
            .send(pb::PublishRequest {
                source: String::new(),
                events,
            })
            .await;
        loop {
            let reply = tokio::time::timeout(PATIENCE, self.replies.message())
                .await
                .expect("the service answers the batch")?
                .ok_or_else(|| Status::unknown("the stream ended without a status"))?;
            match reply.kind {
                Some(publish_response::Kind::Ack(pb::Ack { applied_through })) => {
                    self.next = self.next.max(applied_through);
                    if applied_through >= wanted {
                        return Ok(applied_through);
                    }
                }
                Some(publish_response::Kind::Resume(resume)) => panic!("a second resume point: {resume:?}"),
                None => panic!("an empty reply"),
            }
        }
    }
}

/// `event` with the given sequence.
pub(crate) fn numbered(sequence: u64, event: ipb::InvitationEvent) -> ipb::InvitationEvent {
    ipb::InvitationEvent {
        sequence,
        event_id: format!("event-{sequence}"),
        ..event
    }
}

/// An invitation as its events carry it.
#[derive(Debug, Clone)]
pub(crate) struct Inv {
    pub(crate) id: String,
    pub(crate) sender: String,
    pub(crate) sender_name: String,
    pub(crate) recipient: String,
    pub(crate) message: String,
}

/// A well-formed invitation id (32 hex digits, as invitation-service issues
/// them) that stands for `label`: GetDeliveryStatus refuses any other text,
/// so tests that ask it use these.
pub(crate) fn well_formed_id(label: &str) -> String {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        (salt, label).hash(&mut hasher);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

/// An invitation from `sender` (display name "Name-of-<sender>") to
/// `recipient` with the note "Note-from-<sender>".
pub(crate) fn invitation(id: &str, sender: &str, recipient: &str) -> Inv {
    Inv {
        id: id.into(),
        sender: sender.into(),
        sender_name: format!("Name-of-{sender}"),
        recipient: recipient.into(),
        message: format!("Note-from-{sender}"),
    }
}

impl Inv {
    pub(crate) fn with_message(self, message: &str) -> Self {
        Self {
            message: message.into(),
            ..self
        }
    }

    /// An event about this invitation (sequence 0: see [`numbered`]).
    fn event(&self, state: InvitationState, kind: EventKind) -> ipb::InvitationEvent {
        ipb::InvitationEvent {
            sequence: 0,
            event_id: String::new(),
            occurred_at: None,
            invitation: Some(ipb::Invitation {
                id: self.id.clone(),
                sender_id: self.sender.clone(),
                sender_name: self.sender_name.clone(),
                recipient_id: self.recipient.clone(),
                message: self.message.clone(),
                state: state.into(),
                ..ipb::Invitation::default()
            }),
            kind: Some(kind),
        }
    }

    pub(crate) fn sent(&self) -> ipb::InvitationEvent {
        self.event(InvitationState::Pending, EventKind::Sent(ipb::InvitationSent {}))
    }

    pub(crate) fn withdrawn(&self, note: &str) -> ipb::InvitationEvent {
        self.event(
            InvitationState::Withdrawn,
            EventKind::Withdrawn(ipb::InvitationWithdrawn { note: note.into() }),
        )
    }

    pub(crate) fn accepted(&self) -> ipb::InvitationEvent {
        self.event(
            InvitationState::Accepted,
            EventKind::Accepted(ipb::InvitationAccepted {}),
        )
    }

    pub(crate) fn ignored(&self) -> ipb::InvitationEvent {
        self.event(InvitationState::Ignored, EventKind::Ignored(ipb::InvitationIgnored {}))
    }

    pub(crate) fn expired(&self) -> ipb::InvitationEvent {
        self.event(InvitationState::Expired, EventKind::Expired(ipb::InvitationExpired {}))
    }

    pub(crate) fn reminded(&self, ordinal: u32) -> ipb::InvitationEvent {
        self.event(
            InvitationState::Pending,
            EventKind::Reminded(ipb::InvitationReminded { ordinal }),
        )
    }
}

// ---------------------------------------------------------------------------
// Preferences and updates.
// ---------------------------------------------------------------------------

pub(crate) use pb::{
    Delivery::{Digest, Immediate},
    Detail::{Full, Minimal},
};

pub(crate) fn topic(enabled: bool, delivery: pb::Delivery, detail: pb::Detail) -> pb::TopicPreference {
    pb::TopicPreference {
        enabled,
        delivery: delivery.into(),
        detail: detail.into(),
        channels: Vec::new(),
    }
}

/// A live `Subscribe` stream.
#[derive(Debug)]
pub(crate) struct Updates(Streaming<pb::NotificationUpdate>);

impl Updates {
    /// The next update, or the status the stream ended with.
    pub(crate) async fn next_result(&mut self) -> Result<pb::NotificationUpdate, Status> {
        tokio::time::timeout(PATIENCE, self.0.message())
            .await
            .expect("an update arrives")
            .map(|update| update.expect("the stream ends only with a status"))
    }

    pub(crate) async fn next(&mut self) -> pb::NotificationUpdate {
        self.next_result()
            .await
            .unwrap_or_else(|s| panic!("the stream ended: {s:?}"))
    }

    /// Asserts that nothing arrives for a moment. Only meaningful after the
    /// stream has been shown to carry updates.
    pub(crate) async fn assert_quiet(&mut self) {
        if let Ok(message) = tokio::time::timeout(QUIET, self.0.message()).await {
            panic!("expected nothing more on the stream, got {message:?}");
        }
    }
}

pub(crate) fn delivered(update: &pb::NotificationUpdate) -> &pb::Notification {
    match &update.kind {
        Some(Kind::Delivered(notification)) => notification,
        Some(Kind::Revised(_) | Kind::Retracted(_)) | None => panic!("expected a delivery, got {update:?}"),
    }
}

pub(crate) fn revised(update: &pb::NotificationUpdate) -> &pb::Notification {
    match &update.kind {
        Some(Kind::Revised(notification)) => notification,
        Some(Kind::Delivered(_) | Kind::Retracted(_)) | None => panic!("expected a revision, got {update:?}"),
    }
}

pub(crate) fn retracted(update: &pb::NotificationUpdate) -> &[String] {
    match &update.kind {
        Some(Kind::Retracted(retraction)) => &retraction.notification_ids,
        Some(Kind::Delivered(_) | Kind::Revised(_)) | None => panic!("expected a retraction, got {update:?}"),
    }
}

/// The invitation ids of each notification, in order.
/// The invitations a notification is about, in its order.
pub(crate) fn ids(notification: &pb::Notification) -> Vec<&str> {
    notification.invitation_ids.iter().map(String::as_str).collect()
}

pub(crate) fn invitation_ids(notifications: &[pb::Notification]) -> Vec<Vec<String>> {
    notifications.iter().map(|n| n.invitation_ids.clone()).collect()
}
