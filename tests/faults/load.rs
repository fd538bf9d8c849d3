//! Sends invitations from many senders to a few recipients, from several
//! concurrent tasks, and sorts every outcome: acknowledged, refused because
//! storage failed, refused otherwise, or never answered (no process).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::{Bearer, Invitations, token};
use proto::invitations::v1::{self as ipb, invitation_service_client::InvitationServiceClient};
use tonic::{Code, transport::Channel};

/// Recipients of the load. Each sender invites each of them once (a second
/// invitation of the same pair would be refused), so the weekly limit per
/// sender is never reached.
pub(crate) const RECIPIENTS: usize = 20;

/// Long notes fill the disk sooner.
const NOTE_CHARS: usize = 200;

/// An acknowledged invitation.
#[derive(Debug, Clone)]
pub(crate) struct Acked {
    pub(crate) sender: String,
    pub(crate) recipient: String,
    pub(crate) id: String,
}

/// Every outcome so far.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) tried: usize,
    pub(crate) acked: Vec<Acked>,
    /// Answered UNAVAILABLE with `storage failed` in the message.
    pub(crate) storage_failed: usize,
    /// Answered with any other status (code and message).
    pub(crate) refused_otherwise: Vec<(Code, String)>,
    /// No answer: the connection was refused or broke (the process was
    /// gone or going).
    pub(crate) unanswered: usize,
    /// When the first send that was not acknowledged came back.
    pub(crate) first_failure: Option<Instant>,
}

impl Tally {
    fn record(&mut self, sender: String, recipient: String, outcome: Result<String, tonic::Status>) {
        self.tried += 1;
        let status = match outcome {
            Ok(id) => {
                self.acked.push(Acked { sender, recipient, id });
                return;
            }
            Err(status) => status,
        };
        self.first_failure.get_or_insert_with(Instant::now);
        // A status the client made up from a transport error carries that
        // error as its source; one the server sent has none.
        if std::error::Error::source(&status).is_some() {
            self.unanswered += 1;
        } else if status.code() == Code::Unavailable && status.message().contains("storage failed") {
            self.storage_failed += 1;
        } else {
            self.refused_otherwise
                .push((status.code(), status.message().to_owned()));
        }
    }
}

/// The load while it runs.
#[derive(Debug)]
pub(crate) struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `tasks` tasks sending to `endpoint`, each on its own
    /// connection, until [`Load::stop`].
    pub(crate) fn start(endpoint: &str, tasks: usize) -> Self {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let tasks = (0..tasks)
            .map(|_| {
                let (tally, stop, next) = (tally.clone(), stop.clone(), next.clone());
                let channel = channel(endpoint);
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let sender = format!("sender-{}", n / RECIPIENTS);
                        let recipient = format!("recipient-{}", n % RECIPIENTS);
                        let request = ipb::SendInvitationRequest {
                            recipient_id: recipient.clone(),
                            message: format!("{n:0>NOTE_CHARS$}"),
                            idempotency_key: String::new(),
                        };
                        let outcome = client(&channel, &sender)
                            .send_invitation(request)
                            .await
                            .map(|reply| reply.into_inner().id);
                        let failed = outcome.is_err();
                        tally.lock().expect("lock").record(sender, recipient, outcome);
                        if failed {
                            // Do not spin on a refused connection.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Self { tally, stop, tasks }
    }

    pub(crate) fn acked(&self) -> usize {
        self.tally.lock().expect("lock").acked.len()
    }

    pub(crate) fn first_failure(&self) -> Option<Instant> {
        self.tally.lock().expect("lock").first_failure
    }

    /// Waits until `count` sends in all were acknowledged, or panics after
    /// `timeout`.
    pub(crate) async fn wait_for(&self, count: usize, timeout: Duration) {
        e2e::eventually(timeout, || async { (self.acked() >= count).then_some(()) }).await;
    }

    pub(crate) async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("load task");
        }
        Arc::try_unwrap(self.tally)
            .expect("the tasks are done")
            .into_inner()
            .expect("lock")
    }
}

/// A connection to `endpoint`, made when first used and remade after the
/// process restarts.
pub(crate) fn channel(endpoint: &str) -> Channel {
    Channel::from_shared(endpoint.to_owned())
        .expect("endpoint")
        .connect_lazy()
}

/// An invitation-service client acting as `user` on a shared connection.
pub(crate) fn client(channel: &Channel, user: &str) -> Invitations {
    InvitationServiceClient::with_interceptor(channel.clone(), Bearer::new(token(user)))
}
