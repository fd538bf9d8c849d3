//! The simulated users: their ids, their bearer tokens (minted up front, so
//! minting is not part of a measurement), and the requests they make.
//!
//! Senders behave as real users do: each sends [`SENDS_PER_SENDER`]
//! invitations, below the weekly limit, so the per-sender activity record
//! stays the size it has in production. Every (sender, recipient) pair is
//! new, so no send is refused as a duplicate.

use std::{sync::Arc, time::Duration};

use proto::invitations::v1 as ipb;
use service_kit::auth::JwtKeys;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
};

/// Invitations each simulated sender sends (the default weekly limit is 100).
pub(crate) const SENDS_PER_SENDER: u64 = 50;

/// A personal note of a typical length: what the echo baseline echoes and
/// what every benchmarked send carries.
pub(crate) const NOTE: &str = "Hello! We met at the RustConf hallway track; I would be glad to connect.";

/// An `authorization` header value.
pub(crate) type Bearer = MetadataValue<Ascii>;

/// Mints tokens with the secret the harness starts the services with.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    keys: Arc<JwtKeys>,
}

impl Tokens {
    #[must_use]
    pub(crate) fn new() -> Self {
        Self {
            keys: Arc::new(JwtKeys::new(e2e::SECRET).expect("the harness secret is strong enough")),
        }
    }

    /// `Bearer <token>` for `user`, valid for two hours.
    #[must_use]
    pub(crate) fn bearer(&self, user: &str) -> Bearer {
        let token = self
            .keys
            .mint(user, Some("Bench User"), Duration::from_secs(2 * 3600), None)
            .expect("bench user ids are valid");
        format!("Bearer {token}").parse().expect("a token is ASCII")
    }
}

/// A request carrying `bearer`.
#[must_use]
pub(crate) fn authorized<T>(message: T, bearer: &Bearer) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", bearer.clone());
    request
}

/// Senders and recipients of one phase, named under a prefix of their own
/// so phases sharing a server never collide.
#[derive(Debug, Clone)]
pub(crate) struct Senders {
    prefix: String,
    bearers: Arc<Vec<Bearer>>,
}

impl Senders {
    /// Mints tokens for enough senders to make `max_sends` sends.
    #[must_use]
    pub(crate) fn new(tokens: &Tokens, prefix: &str, max_sends: u64) -> Self {
        let senders = max_sends.div_ceil(SENDS_PER_SENDER);
        let bearers = (0..senders).map(|s| tokens.bearer(&format!("{prefix}-s{s}"))).collect();
        Self {
            prefix: prefix.to_owned(),
            bearers: Arc::new(bearers),
        }
    }

    /// Most sends these senders can make.
    #[must_use]
    pub(crate) fn capacity(&self) -> u64 {
        self.bearers.len() as u64 * SENDS_PER_SENDER
    }

    /// The sender of send `i`, and its token.
    #[must_use]
    pub(crate) fn sender(&self, i: u64) -> (String, &Bearer) {
        let s = i / SENDS_PER_SENDER;
        (format!("{}-s{s}", self.prefix), &self.bearers[s as usize])
    }

    /// Send `i` to a recipient of its own.
    #[must_use]
    pub(crate) fn unique(&self, i: u64) -> ipb::SendInvitationRequest {
        send_request(format!("{}-r{i}", self.prefix))
    }
}

/// A send to `recipient` with the standard note.
#[must_use]
pub(crate) fn send_request(recipient: String) -> ipb::SendInvitationRequest {
    ipb::SendInvitationRequest {
        recipient_id: recipient,
        message: NOTE.to_owned(),
        idempotency_key: String::new(),
    }
}

/// A cheap, well-mixed hash of `i` (splitmix64), for picking "random"
/// existing items without a random-number dependency.
#[must_use]
pub(crate) fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
