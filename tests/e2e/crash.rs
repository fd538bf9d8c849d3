//! `kill -9` of either service while invitations are being sent: every
//! acknowledged invitation reaches its recipient exactly once, and sends keep
//! succeeding while notification-service is down.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use e2e::{Pair, Service, eventually, notifications};

use crate::common::{WAIT, inbox, mentions, send};

const RECIPIENTS: usize = 10;

/// Sends from fresh senders (one invitation each) to the recipients in
/// turn, from `tasks` concurrent tasks, until `stop` is set. Returns the ids
/// acknowledged and the number of refused sends.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(service: &Service, tasks: usize) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let handles = (0..tasks)
            .map(|_| {
                let (acked, failed, stop, next) = (acked.clone(), failed.clone(), stop.clone(), next.clone());
                let endpoint = service.endpoint();
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let sender = format!("sender-{n}");
                        let mut client = e2e::invitations_at(&endpoint, &sender);
                        match send(&mut client, &format!("recipient-{}", n % RECIPIENTS), "hi").await {
                            Ok(id) => acked.lock().expect("lock").push(id),
                            Err(_) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            acked,
            failed,
            stop,
            tasks: handles,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    async fn wait_for(&self, count: usize) {
        eventually(WAIT, || async { (self.acked() >= count).then_some(()) }).await;
    }

    async fn stop(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("load task");
        }
        let acked = self.acked.lock().expect("lock").clone();
        (acked, self.failed.load(Ordering::SeqCst))
    }
}

/// Waits until every acknowledged invitation is in its recipient's inbox,
/// prints the run's figures (for RELIABILITY.md), then checks none is there
/// twice.
async fn assert_delivered_exactly_once(pair: &Pair, what: &str, acked: &[String], failed: usize) {
    let wanted: HashSet<&String> = acked.iter().collect();
    let counts = eventually(WAIT, || async {
        let mut inboxes = Vec::new();
        for r in 0..RECIPIENTS {
            inboxes.push(inbox(&mut notifications(&pair.notification, &format!("recipient-{r}"))).await);
        }
        let counts = mentions(&inboxes);
        wanted.iter().all(|id| counts.contains_key(*id)).then_some(counts)
    })
    .await;
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "figures: {what}: tried={} acknowledged={} refused={failed} lost=0 duplicated={}",
        acked.len() + failed,
        acked.len(),
        repeated.len()
    );
    assert!(repeated.is_empty(), "delivered more than once: {repeated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_notification_service_loses_and_repeats_nothing() {
    let mut pair = Pair::start(&[("NOTIFICATION_DIGEST_INTERVAL", "1s".into())], &[]);
    let load = Load::start(&pair.invitation, 4);
    load.wait_for(40).await;
    pair.notification.kill();
    // Sends keep succeeding while notification-service is down.
    let before = load.acked();
    load.wait_for(before + 40).await;
    pair.notification.restart();
    load.wait_for(load.acked() + 20).await;
    let (acked, failed) = load.stop().await;
    assert_eq!(failed, 0, "no send may fail because notification-service is down");
    assert_delivered_exactly_once(&pair, "kill -9 of notification-service", &acked, failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_invitation_service_loses_and_repeats_nothing() {
    let mut pair = Pair::start(&[("NOTIFICATION_DIGEST_INTERVAL", "1s".into())], &[]);
    let load = Load::start(&pair.invitation, 4);
    load.wait_for(60).await;
    pair.invitation.kill();
    pair.invitation.restart();
    let after = load.acked();
    load.wait_for(after + 40).await;
    let (acked, failed) = load.stop().await;
    assert_delivered_exactly_once(&pair, "kill -9 of invitation-service", &acked, failed).await;
}

/// Over JetStream only: the NATS server itself is killed while invitations
/// are being sent, and started again on its port with its store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: E2E_TRANSPORT=jetstream ... -- --include-ignored (what `bash .ci/run jetstream` runs)"]
async fn kill_9_of_the_nats_server_loses_and_repeats_nothing() {
    let mut pair = Pair::start(&[("NOTIFICATION_DIGEST_INTERVAL", "1s".into())], &[]);
    let load = Load::start(&pair.invitation, 4);
    load.wait_for(40).await;
    let nats = pair
        .nats
        .as_mut()
        .expect("E2E_TRANSPORT=jetstream gives the pair a nats-server");
    nats.kill();
    // Sends keep succeeding: events wait in invitation-service's outbox.
    let before = load.acked();
    load.wait_for(before + 40).await;
    nats.restart();
    load.wait_for(load.acked() + 20).await;
    let (acked, failed) = load.stop().await;
    assert_eq!(failed, 0, "no send may fail because NATS is down");
    assert_delivered_exactly_once(&pair, "kill -9 of nats-server", &acked, failed).await;
}
