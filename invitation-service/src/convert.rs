//! Domain values as contract messages. Used by the gRPC layer for replies and
//! by storage for the outbox events.

use proto::invitations::v1 as pb;

use crate::domain::{EventKind, Invitation, InvitationId, RelationshipState, State, Timestamp};

pub(crate) use service_kit::time::to_proto as timestamp;

#[must_use]
pub(crate) fn state(state: State) -> pb::InvitationState {
    match state {
        State::Pending => pb::InvitationState::Pending,
        State::Accepted => pb::InvitationState::Accepted,
        State::Ignored => pb::InvitationState::Ignored,
        State::Withdrawn => pb::InvitationState::Withdrawn,
        State::Expired => pb::InvitationState::Expired,
    }
}

#[must_use]
pub(crate) fn relationship_state(state: RelationshipState) -> pb::RelationshipState {
    match state {
        RelationshipState::None => pb::RelationshipState::None,
        RelationshipState::PendingSent => pb::RelationshipState::PendingSent,
        RelationshipState::PendingReceived => pb::RelationshipState::PendingReceived,
        RelationshipState::Connected => pb::RelationshipState::Connected,
    }
}

/// The invitation with its state as `shown`: the true state for events, the
/// state a party may see for replies.
#[must_use]
pub(crate) fn invitation(inv: &Invitation, shown: State) -> pb::Invitation {
    let Invitation {
        id,
        sender,
        sender_name,
        recipient,
        message,
        state: _,
        created_at,
        updated_at,
        expires_at,
    } = inv;
    pb::Invitation {
        id: id.to_string(),
        sender_id: sender.to_string(),
        sender_name: sender_name.clone(),
        recipient_id: recipient.to_string(),
        message: message.as_str().to_owned(),
        state: state(shown).into(),
        created_at: Some(timestamp(*created_at)),
        updated_at: Some(timestamp(*updated_at)),
        expires_at: shown.is_open().then(|| timestamp(*expires_at)),
    }
}

/// The outbox event for a change, before its sequence is assigned.
#[must_use]
pub(crate) fn event(
    inv: &Invitation,
    kind: &EventKind,
    event_id: &InvitationId,
    now: Timestamp,
) -> pb::InvitationEvent {
    use pb::invitation_event::Kind;
    let kind = match kind {
        EventKind::Sent => Kind::Sent(pb::InvitationSent {}),
        EventKind::Withdrawn { note } => Kind::Withdrawn(pb::InvitationWithdrawn {
            note: note.as_str().to_owned(),
        }),
        EventKind::Accepted => Kind::Accepted(pb::InvitationAccepted {}),
        EventKind::Ignored => Kind::Ignored(pb::InvitationIgnored {}),
        EventKind::Expired => Kind::Expired(pb::InvitationExpired {}),
        EventKind::Reminded { ordinal } => Kind::Reminded(pb::InvitationReminded { ordinal: *ordinal }),
    };
    pb::InvitationEvent {
        sequence: 0,
        event_id: event_id.to_string(),
        occurred_at: Some(timestamp(now)),
        invitation: Some(invitation(inv, inv.state)),
        kind: Some(kind),
    }
}
