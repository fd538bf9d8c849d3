//! An online backup, taken while invitations are being sent: restored into
//! a fresh folder, it verifies as sound and holds every invitation
//! acknowledged before the backup began; notification-service's backup,
//! taken while events flow in, verifies too and serves.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use e2e::{Kind, Pair, Service, invitations, run_to_exit};
use proto::invitations::v1 as ipb;

use crate::common::send;

/// Runs `kind`'s `backup --to <dir>` against `service`; its output.
fn backup(kind: Kind, service: &Service, to: &Path) -> String {
    let addr = service.addr().to_string();
    let output = run_to_exit(
        kind,
        service.data_dir(),
        &["backup", "--listen-addr", &addr, "--to", &to.display().to_string()],
        Duration::from_secs(60),
    )
    .expect("the backup ends");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{kind:?} backup failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn verify_sound(kind: Kind, dir: &Path) -> String {
    let output = run_to_exit(kind, dir, &["verify"], Duration::from_secs(60)).expect("verify ends");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{kind:?}: {report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_holds_every_change_acknowledged_before_it_began() {
    let pair = Pair::start(&[], &[]);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (acked, stop, next) = (acked.clone(), stop.clone(), next.clone());
        let endpoint = pair.invitation.endpoint();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let sender = format!("sender-{}", next.fetch_add(1, Ordering::SeqCst));
                let mut client = e2e::invitations_at(&endpoint, &sender);
                if let Ok(id) = send(&mut client, "recipient", "hello").await {
                    acked.lock().expect("lock").push((sender, id));
                }
            }
        }));
    }
    e2e::eventually(Duration::from_secs(30), || {
        let n = acked.lock().expect("lock").len();
        async move { (n >= 300).then_some(()) }
    })
    .await;

    let backups = tempfile::tempdir().unwrap();
    let (invitation_copy, notification_copy) = (backups.path().join("inv"), backups.path().join("ntf"));
    let before: Vec<(String, String)> = acked.lock().expect("lock").clone();
    let printed = backup(Kind::Invitation, &pair.invitation, &invitation_copy);
    assert!(printed.contains("backup made in"), "{printed}");
    let after_backup = acked.lock().expect("lock").len();
    backup(Kind::Notification, &pair.notification, &notification_copy);
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let total = acked.lock().expect("lock").len();

    // Sound, and served as it is: every invitation acknowledged before the
    // backup began is there.
    let report = verify_sound(Kind::Invitation, &invitation_copy);
    let restored = Service::start(
        Kind::Invitation,
        &invitation_copy,
        &[("NOTIFICATION_ENDPOINT", "http://127.0.0.1:9".to_owned())],
    );
    let mut missing = 0;
    for (sender, id) in &before {
        let mut client = invitations(&restored, sender);
        let found = client
            .get_invitation(ipb::GetInvitationRequest {
                invitation_id: id.clone(),
            })
            .await;
        if found.is_err() {
            missing += 1;
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged before the backup are missing",
        before.len()
    );
    verify_sound(Kind::Notification, &notification_copy);
    let restored_notifications = Service::start(Kind::Notification, &notification_copy, &[]);
    assert!(restored_notifications.pid().is_some());
    eprintln!(
        "backup under load: {} acknowledged before it began, all present ({after_backup} when it ended, {total} in all); {}",
        before.len(),
        report
            .lines()
            .find(|l| l.contains("outbox_sequence"))
            .unwrap_or_default()
            .trim()
    );
}
