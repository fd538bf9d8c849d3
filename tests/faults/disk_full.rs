//! A full disk. With one service's data folder on an 8 MB tmpfs, sends go on
//! until it fills. That service must fail-stop: answer UNAVAILABLE `storage
//! failed` (never INTERNAL) and exit non-zero by itself. Once the tmpfs grows
//! and the service restarts, every acknowledged invitation must be there and
//! reach its recipient exactly once.
//!
//! Each test gathers every figure before judging, so a failing run still
//! prints what it measured (the figures go into RELIABILITY.md).

use std::{
    collections::{HashMap, HashSet},
    fmt,
    process::ExitStatus,
    time::{Duration, Instant},
};

use e2e::{
    Pair, Service,
    inbox::{inbox, mentions},
    notifications,
};
use proto::invitations::v1 as ipb;

use crate::{
    load::{self, Acked, Load, RECIPIENTS, Tally},
    tmpfs::Tmpfs,
};

const SMALL_MB: u32 = 8;
const GROWN_MB: u32 = 256;
const TASKS: usize = 8;
/// How long the load may take to fill the tmpfs.
const FILL_WAIT: Duration = Duration::from_secs(120);
/// How long a service may take to exit after its first failure: it drains
/// for at most 10 s.
const EXIT_WAIT: Duration = Duration::from_secs(20);
/// How long after the restart every acknowledged invitation may take to
/// reach its recipient.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

fn notification_env() -> Vec<(&'static str, String)> {
    vec![("NOTIFICATION_DIGEST_INTERVAL", "1s".into())]
}

/// The per-user rate limits would refuse the load and the checks.
fn invitation_env() -> Vec<(&'static str, String)> {
    vec![
        ("INVITATION_WRITES_PER_SECOND", "0".into()),
        ("INVITATION_READS_PER_SECOND", "0".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: run by .ci/run (cargo test -p e2e --test faults -- --ignored)"]
async fn invitation_service_stops_on_a_full_disk_and_loses_nothing() {
    let disk = Tmpfs::mount(SMALL_MB);
    let other = tempfile::tempdir().expect("temp dir");
    let mut pair = Pair::start_in(
        &other.path().join("notification"),
        &disk.path().join("invitation"),
        &notification_env(),
        &invitation_env(),
    );
    let load = Load::start(&pair.invitation.endpoint(), TASKS);
    let stop = watch(&mut pair.invitation, |_| load.first_failure()).await;
    let tally = load.stop().await;

    let mut problems = stop.problems("invitation-service");
    if !tally.refused_otherwise.is_empty() {
        problems.push(format!(
            "{} sends refused other than UNAVAILABLE `storage failed`, first {:?}",
            tally.refused_otherwise.len(),
            &tally.refused_otherwise[..tally.refused_otherwise.len().min(3)]
        ));
    }
    disk.grow(GROWN_MB);
    if stop.exit.is_none() {
        // What the hostile run saw: the error sticks though space is back.
        let sent = send_one(&pair.invitation).await;
        problems.push(format!("with space back, a send to the running process got {sent}"));
        pair.invitation.kill();
    }
    let restarted = Instant::now();
    pair.invitation.restart();
    let delivery = delivery(&pair.notification, &tally.acked, restarted).await;
    let missing = missing(&pair.invitation, &tally.acked).await;

    let figures = Figures::new(&tally, &stop, &missing, &delivery);
    eprintln!("figures: invitation-service disk full: {figures}");
    problems.extend(figures.problems());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: run by .ci/run (cargo test -p e2e --test faults -- --ignored)"]
async fn notification_service_stops_on_a_full_disk_and_delivers_everything_once() {
    let disk = Tmpfs::mount(SMALL_MB);
    let other = tempfile::tempdir().expect("temp dir");
    let mut pair = Pair::start_in(
        &disk.path().join("notification"),
        &other.path().join("invitation"),
        &notification_env(),
        &invitation_env(),
    );
    let load = Load::start(&pair.invitation.endpoint(), TASKS);
    // Its first failure shows only in its log: no client of the load talks
    // to it.
    let stop = watch(&mut pair.notification, |service| {
        let log = service.log();
        (log.contains(" ERROR ") || log.contains("storage failed")).then(Instant::now)
    })
    .await;
    let mut problems = stop.problems("notification-service");
    if stop.exit.is_none() {
        pair.notification.kill();
    }
    // Sends go on while it is down.
    load.wait_for(load.acked() + 40, Duration::from_secs(30)).await;
    let tally = load.stop().await;
    let failed = tally.tried - tally.acked.len();
    if failed > 0 {
        problems.push(format!(
            "{failed} sends failed though only notification-service's disk filled: {} storage failed, {} \
             unanswered, otherwise {:?}",
            tally.storage_failed,
            tally.unanswered,
            &tally.refused_otherwise[..tally.refused_otherwise.len().min(3)]
        ));
    }
    disk.grow(GROWN_MB);
    let restarted = Instant::now();
    pair.notification.restart();
    let delivery = delivery(&pair.notification, &tally.acked, restarted).await;
    let missing = missing(&pair.invitation, &tally.acked).await;

    let figures = Figures::new(&tally, &stop, &missing, &delivery);
    eprintln!("figures: notification-service disk full: {figures}");
    problems.extend(figures.problems());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// How a service met the full disk.
#[derive(Debug)]
struct Stop {
    first_failure: Instant,
    /// Its status and when it exited, if it did by itself.
    exit: Option<(ExitStatus, Instant)>,
    /// Its log up to then (a restart starts a new one).
    log: String,
}

impl Stop {
    fn problems(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        match self.exit {
            None => {
                let first_error = self.log.lines().find(|l| l.contains(" ERROR ")).unwrap_or("none");
                problems.push(format!(
                    "{name} still ran {EXIT_WAIT:?} after its first failure (first error logged: {first_error})"
                ));
            }
            Some((status, _)) if status.success() => {
                problems.push(format!(
                    "{name} exited with {status} after storage failed, not a failure status"
                ));
            }
            Some(_) => {}
        }
        if !self.log.contains("storage failed") {
            problems.push(format!("{name} never logged `storage failed`"));
        }
        problems
    }

    fn to_exit(&self) -> Option<Duration> {
        self.exit.map(|(_, at)| at.duration_since(self.first_failure))
    }
}

/// Waits for the service's first failure (`first_failure` says when it
/// happened, or the process exits), then up to [`EXIT_WAIT`] for the
/// process to exit by itself.
async fn watch(service: &mut Service, first_failure: impl Fn(&Service) -> Option<Instant>) -> Stop {
    let deadline = Instant::now() + FILL_WAIT;
    let mut first = None;
    loop {
        let exited = service.wait_exit(Duration::ZERO).map(|status| (status, Instant::now()));
        first = first.or_else(|| first_failure(service));
        if let Some((status, at)) = exited {
            return Stop {
                first_failure: first.unwrap_or(at),
                exit: Some((status, at)),
                log: service.log(),
            };
        }
        match first {
            Some(at) if at.elapsed() > EXIT_WAIT => {
                return Stop {
                    first_failure: at,
                    exit: None,
                    log: service.log(),
                };
            }
            Some(_) => {}
            None => assert!(
                Instant::now() < deadline,
                "no failure within {FILL_WAIT:?}: did the {SMALL_MB} MB tmpfs not fill?"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One send, to see what a running process answers.
async fn send_one(service: &Service) -> String {
    let request = ipb::SendInvitationRequest {
        recipient_id: "recipient-0".into(),
        message: "after space came back".into(),
        idempotency_key: String::new(),
    };
    let mut client = load::client(&load::channel(&service.endpoint()), "probe");
    match client.send_invitation(request).await {
        Ok(reply) => format!("OK {}", reply.into_inner().id),
        Err(status) => format!("{:?} {:?}", status.code(), status.message()),
    }
}

/// The acknowledged invitations their senders cannot read back.
async fn missing(service: &Service, acked: &[Acked]) -> HashSet<String> {
    let channel = load::channel(&service.endpoint());
    let mut missing = HashSet::new();
    for Acked { sender, id, .. } in acked {
        let request = ipb::GetInvitationRequest {
            invitation_id: id.clone(),
        };
        if load::client(&channel, sender).get_invitation(request).await.is_err() {
            missing.insert(id.clone());
        }
    }
    missing
}

/// What reached the recipients.
#[derive(Debug)]
struct Delivery {
    /// How many times each invitation was mentioned across the inboxes.
    mentions: HashMap<String, usize>,
    /// From the restart (recovery included) until every acknowledged
    /// invitation was delivered.
    took: Option<Duration>,
}

/// Reads the recipients' inboxes until every acknowledged invitation is in
/// one, or [`DELIVERY_WAIT`] after `restarted`.
async fn delivery(service: &Service, acked: &[Acked], restarted: Instant) -> Delivery {
    let recipients: HashSet<&str> = acked.iter().map(|a| a.recipient.as_str()).collect();
    assert!(recipients.len() <= RECIPIENTS);
    loop {
        let mut inboxes = Vec::new();
        for recipient in &recipients {
            inboxes.push(inbox(&mut notifications(service, recipient)).await);
        }
        let mentions = mentions(&inboxes);
        let all = acked.iter().all(|a| mentions.contains_key(&a.id));
        if all || restarted.elapsed() > DELIVERY_WAIT {
            let took = all.then(|| restarted.elapsed());
            return Delivery { mentions, took };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The figures of one run, in one line.
#[derive(Debug)]
struct Figures {
    tried: usize,
    acked: usize,
    storage_failed: usize,
    refused_otherwise: usize,
    unanswered: usize,
    /// Acknowledged, then missing after the restart or never delivered.
    lost: Vec<String>,
    /// Delivered more than once.
    duplicated: Vec<(String, usize)>,
    exit: Option<ExitStatus>,
    to_exit: Option<Duration>,
    to_delivered: Option<Duration>,
}

impl Figures {
    fn new(tally: &Tally, stop: &Stop, missing: &HashSet<String>, delivery: &Delivery) -> Self {
        let lost = tally
            .acked
            .iter()
            .filter(|a| missing.contains(&a.id) || !delivery.mentions.contains_key(&a.id))
            .map(|a| a.id.clone())
            .collect();
        let duplicated = delivery
            .mentions
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        Self {
            tried: tally.tried,
            acked: tally.acked.len(),
            storage_failed: tally.storage_failed,
            refused_otherwise: tally.refused_otherwise.len(),
            unanswered: tally.unanswered,
            lost,
            duplicated,
            exit: stop.exit.map(|(status, _)| status),
            to_exit: stop.to_exit(),
            to_delivered: delivery.took,
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.lost.is_empty() {
            problems.push(format!(
                "{} acknowledged invitations lost, first {:?}",
                self.lost.len(),
                &self.lost[..self.lost.len().min(3)]
            ));
        }
        if !self.duplicated.is_empty() {
            problems.push(format!(
                "{} invitations delivered more than once, first {:?}",
                self.duplicated.len(),
                &self.duplicated[..self.duplicated.len().min(3)]
            ));
        }
        problems
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
        let exit = self.exit.map_or_else(
            || "none".to_owned(),
            |s| s.code().map_or_else(|| s.to_string(), |c| c.to_string()),
        );
        write!(
            f,
            "tried={} acknowledged={} refused_unavailable={} refused_otherwise={} unanswered={} lost={} \
             duplicated={} exit_status={exit} first_failure_to_exit={} restart_to_all_delivered={}",
            self.tried,
            self.acked,
            self.storage_failed,
            self.refused_otherwise,
            self.unanswered,
            self.lost.len(),
            self.duplicated.len(),
            secs(self.to_exit),
            secs(self.to_delivered),
        )
    }
}
