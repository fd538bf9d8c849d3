//! Over JetStream with several partitions (`PARTITION_COUNT=4`, one
//! notification-service consuming them all): each event reaches its
//! recipient's partition once, and an acceptance also the sender's, so both
//! hear of what concerns them exactly once, across a kill -9 of
//! invitation-service between the two copies' publishing or anywhere else.

use e2e::{Pair, eventually, invitations, notifications};
use proto::{invitations::v1 as ipb, notifications::v1 as npb};
use service_kit::partition::partition_of;

use crate::common::{WAIT, immediate, inbox, send};

const PARTITIONS: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: E2E_TRANSPORT=jetstream ... -- --include-ignored (what `bash .ci/run jetstream` runs)"]
async fn across_partitions_each_user_hears_once_of_what_concerns_them() {
    assert!(e2e::nats::jetstream_requested(), "run with E2E_TRANSPORT=jetstream");
    let env = [("PARTITION_COUNT", PARTITIONS.to_string())];
    let mut pair = Pair::start(&env, &env);
    // Senders whose partition differs from the recipient's, so that each
    // acceptance goes to two subjects.
    let senders: Vec<String> = (0..40)
        .map(|i| format!("sender-{i}"))
        .filter(|s| partition_of(s, PARTITIONS) != partition_of("bob", PARTITIONS))
        .take(12)
        .collect();
    let mut bob = notifications(&pair.notification, "bob");
    immediate(&mut bob, npb::Detail::Full).await;
    let mut ids = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let id = send(&mut invitations(&pair.invitation, sender), "bob", "hi")
            .await
            .expect("send");
        ids.push(id.clone());
        invitations(&pair.invitation, "bob")
            .accept_invitation(ipb::AcceptInvitationRequest { invitation_id: id })
            .await
            .expect("accept");
        if i == senders.len() / 2 {
            pair.invitation.kill();
            pair.invitation.restart();
        }
    }

    for (sender, id) in senders.iter().zip(&ids) {
        let mut client = notifications(&pair.notification, sender);
        let heard = eventually(WAIT, || {
            let mut client = client.clone();
            async move {
                let listed = inbox(&mut client).await;
                (!listed.is_empty()).then_some(listed)
            }
        })
        .await;
        assert_eq!(heard.len(), 1, "{sender} hears of the acceptance once: {heard:?}");
        assert_eq!(heard[0].topic(), npb::Topic::InvitationAccepted);
        assert_eq!(&heard[0].invitation_ids, std::slice::from_ref(id));
        assert_eq!(inbox(&mut client).await.len(), 1);
    }
    // Bob was told of each invitation once (an acceptance keeps what was
    // delivered); the undo window may have let some go unannounced.
    let listed = inbox(&mut bob).await;
    for id in &ids {
        let times = listed.iter().filter(|n| n.invitation_ids.contains(id)).count();
        assert!(times <= 1, "bob heard of {id} {times} times: {listed:?}");
    }
}
