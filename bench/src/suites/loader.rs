//! A fast preloader for the scale runs: writes invitations straight through
//! invitation-service's storage layer with `Store::bulk_load` (every index
//! entry a send writes, in batches, one flush at the end, and no outbox
//! event, as for a service that published them long ago). Sending them
//! through the API would take minutes for 10^6.
//!
//! The data has the shape of real use: senders of [`PER_SENDER`] invitations
//! each (below the weekly limit), recipients that each receive about as
//! many, every pair distinct.

use std::path::Path;

use invitation_service::{
    domain::{InvitationId, Note, Policy, SendRequest, Timestamp, UserId},
    storage::Store,
};

use crate::users::{NOTE, mix};

/// Invitations each preloaded sender has sent.
pub(crate) const PER_SENDER: u64 = 100;

/// The preloaded population.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Population {
    pub(crate) invitations: u64,
    pub(crate) senders: u64,
    pub(crate) recipients: u64,
}

impl Population {
    #[must_use]
    pub(crate) fn of(invitations: u64) -> Self {
        Self {
            invitations,
            senders: invitations.div_ceil(PER_SENDER),
            recipients: (invitations / PER_SENDER).max(PER_SENDER),
        }
    }

    #[must_use]
    pub(crate) fn sender(j: u64) -> String {
        format!("s{j:07}")
    }

    /// The `k`-th recipient of sender `j` (distinct for k < PER_SENDER, as
    /// there are at least PER_SENDER recipients).
    #[must_use]
    pub(crate) fn recipient(&self, j: u64, k: u64) -> String {
        format!("r{:07}", (j * 37 + k) % self.recipients)
    }
}

/// Writes `population` into a new store in `dir`. Progress goes to `tick`
/// every 10,000 invitations.
///
/// # Errors
///
/// Storage failures.
pub(crate) fn preload(dir: &Path, population: Population, tick: &dyn Fn(u64)) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    let policy = Policy::default();
    let message = Note::parse("message", NOTE, policy.max_note_chars).map_err(|e| e.to_string())?;
    // One invitation per millisecond, ending a minute ago.
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis(),
    )
    .map_err(|e| e.to_string())?;
    let base = now_ms - 60_000 - population.invitations;
    let invitations = (0..population.invitations).map(|i| {
        let (j, k) = (i / PER_SENDER, i % PER_SENDER);
        let request = SendRequest {
            sender: user(&Population::sender(j)),
            sender_name: "Preloaded Sender".to_owned(),
            recipient: user(&population.recipient(j, k)),
            message: message.clone(),
        };
        // Senders send in turn, so each one's invitations spread over time.
        let at = Timestamp::from_millis(base + k * population.senders + j);
        if i % 10_000 == 0 {
            tick(i);
        }
        policy.new_invitation(request, InvitationId::new(at, mix(i)), at)
    });
    store.bulk_load(invitations).map_err(|e| e.to_string())?;
    tick(population.invitations);
    Ok(())
}

fn user(id: &str) -> UserId {
    UserId::parse("user", id).expect("preloaded user ids are valid")
}
