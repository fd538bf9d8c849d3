//! Damaged data folders are refused, never served as if nothing were
//! missing: a `db` file cut to half, with a block overwritten, or emptied,
//! a garbled sled `conf`, a missing checkpoint. Each service refuses to
//! start with a message that names the problem and the way out, and
//! `verify` reports it; the undamaged folder verifies as sound.

use std::{
    fs,
    io::{Seek as _, SeekFrom, Write as _},
    path::Path,
    time::Duration,
};

use e2e::{Kind, Pair, eventually, invitations, notifications, run_to_exit};
use proto::notifications::v1 as npb;

use crate::common::{WAIT, send};

const INVITATIONS: usize = 400;

#[derive(Debug, Clone, Copy)]
enum Harm {
    HalfTruncated,
    /// 4 KiB overwritten at eighth `n` of the file.
    BlockOverwritten(u64),
    Emptied,
    ConfGarbled,
    CheckpointDeleted,
}

impl Harm {
    fn apply(self, dir: &Path) {
        let db = dir.join("db");
        let len = fs::metadata(&db).unwrap().len();
        let open = || fs::OpenOptions::new().write(true).open(&db).unwrap();
        match self {
            Self::HalfTruncated => open().set_len(len / 2).unwrap(),
            Self::BlockOverwritten(eighth) => {
                let mut file = open();
                file.seek(SeekFrom::Start(len * eighth / 8)).unwrap();
                file.write_all(&[0xA5; 4096]).unwrap();
            }
            Self::Emptied => open().set_len(0).unwrap(),
            Self::ConfGarbled => fs::write(dir.join("conf"), b"segment_size: lots\n").unwrap(),
            Self::CheckpointDeleted => fs::remove_file(dir.join("CHECKPOINT")).unwrap(),
        }
    }
}

fn copy_folder(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `verify` on `dir`: its exit code and what it printed.
fn verify(kind: Kind, dir: &Path) -> (Option<i32>, String) {
    let output = run_to_exit(kind, dir, &["verify"], Duration::from_secs(30)).expect("verify ends");
    (output.status.code(), text(&output.stdout))
}

/// A block overwritten somewhere in the file hits live data or not,
/// depending on where sled put what. At each eighth of the file: either the
/// service refuses to start, or `verify` (which reads every page back)
/// finds the damage, or it finds every page sound (the block held nothing
/// live). Somewhere, the damage must be found.
fn overwritten_blocks(kind: Kind, folder: &Path) {
    let mut found = 0;
    for eighth in 1..8 {
        let harm = Harm::BlockOverwritten(eighth);
        let copy = tempfile::tempdir().unwrap();
        copy_folder(folder, copy.path());
        harm.apply(copy.path());
        // verify first: a service that starts may write to the folder.
        let (code, report) = verify(kind, copy.path());
        let outcome = match code {
            Some(1) => {
                assert!(report.contains("DAMAGED"), "{report}");
                found += 1;
                "verify finds it"
            }
            Some(0) => {
                assert!(report.contains("all readable") && report.contains("sound"), "{report}");
                "nothing live was hit"
            }
            other => panic!("{kind:?}, {harm:?}: verify exited {other:?}: {report}"),
        };
        let refused = run_to_exit(kind, copy.path(), &[], Duration::from_secs(2)).is_some_and(|o| {
            let stderr = text(&o.stderr);
            assert!(
                !o.status.success() && stderr.contains("is damaged"),
                "{kind:?}, {harm:?}: {stderr}"
            );
            true
        });
        if refused {
            assert_eq!(
                code,
                Some(1),
                "{kind:?}, {harm:?}: refused at start, so verify must not call it sound"
            );
        }
        eprintln!("{kind:?}, {harm:?}: {outcome}; refused at start: {refused}");
    }
    assert!(found > 0, "{kind:?}: no overwritten block was found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_folders_are_refused_with_the_way_out_and_verify_reports_them() {
    let mut pair = Pair::start(&[], &[]);
    let mut last = String::new();
    for i in 0..INVITATIONS {
        let mut client = invitations(&pair.invitation, &format!("sender-{i}"));
        last = send(&mut client, &format!("recipient-{}", i % 10), "a note")
            .await
            .expect("send");
    }
    // notification-service has applied every event once the last one's
    // delivery status is known.
    let sender = format!("sender-{}", INVITATIONS - 1);
    eventually(WAIT, || {
        let (mut client, last) = (notifications(&pair.notification, &sender), last.clone());
        async move {
            client
                .get_delivery_status(npb::GetDeliveryStatusRequest { invitation_id: last })
                .await
                .ok()
        }
    })
    .await;
    assert!(pair.invitation.terminate().success());
    assert!(pair.notification.terminate().success());

    for (kind, figure) in [
        (Kind::Invitation, format!("outbox_sequence: {INVITATIONS}")),
        // The last event applied: from the direct stream, or from the one
        // JetStream partition.
        (
            Kind::Notification,
            if e2e::nats::jetstream_requested() {
                format!("applied.jetstream/0: {INVITATIONS}")
            } else {
                format!("applied.invitation-service: {INVITATIONS}")
            },
        ),
    ] {
        let service = match kind {
            Kind::Invitation => &pair.invitation,
            Kind::Notification => &pair.notification,
        };
        let folder = service.data_dir();
        let (code, report) = verify(kind, folder);
        assert_eq!(code, Some(0), "{kind:?}: the folder as stopped is sound: {report}");
        assert!(report.contains(&figure) && report.contains("sound"), "{report}");

        overwritten_blocks(kind, folder);
        for harm in [
            Harm::HalfTruncated,
            Harm::Emptied,
            Harm::ConfGarbled,
            Harm::CheckpointDeleted,
        ] {
            let copy = tempfile::tempdir().unwrap();
            copy_folder(folder, copy.path());
            harm.apply(copy.path());

            let started = run_to_exit(kind, copy.path(), &[], Duration::from_secs(20))
                .unwrap_or_else(|| panic!("{kind:?} served a folder {harm:?}"));
            let stderr = text(&started.stderr);
            assert!(!started.status.success(), "{kind:?}, {harm:?}: {stderr}");
            assert!(
                stderr.contains("is damaged") && stderr.contains("Restore the folder from a backup"),
                "{kind:?}, {harm:?}: the message names the problem and the way out: {stderr}"
            );

            let (code, report) = verify(kind, copy.path());
            assert_eq!(code, Some(1), "{kind:?}, {harm:?}: {report}");
            assert!(report.contains("DAMAGED"), "{kind:?}, {harm:?}: {report}");
            eprintln!(
                "{kind:?}, {harm:?}: refused: {}",
                stderr.lines().last().unwrap_or_default()
            );
        }
    }
}
