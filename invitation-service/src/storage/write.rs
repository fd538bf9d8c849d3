//! Every state change, written in one sled transaction with its index
//! entries and its outbox event. The closures only read and write the
//! transaction's trees and call the pure domain: sled may run them more than
//! once.

use std::time::Duration;

use service_kit::storage::tx::{self, aborted, finish};
use sled::{Transactional as _, transaction::TransactionalTree};

use crate::{
    convert,
    domain::{
        Action, Activity, DomainError, EventKind, IdempotencyKey, Invitation, InvitationId, Pair, Policy, SendRequest,
        State, Timestamp, Transition, UserId,
    },
};

use super::{Store, StoreError, keys, records};

pub(crate) const OUTBOX_SEQUENCE: &[u8] = b"outbox_sequence";

/// How long an idempotency key stands for its first request.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What a transaction closure returns: an abort (a corrupt record) carries
/// a [`StoreError`], and nothing of the transaction is written.
type TxResult<T> = tx::TxResult<T, StoreError>;

/// The result of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Created(Invitation),
    /// The idempotency key named an earlier send; nothing was written.
    Replayed(InvitationId),
}

/// The result of an action on an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    Changed(Invitation),
    Unchanged(Invitation),
}

/// The transaction's view of the trees, named.
struct Tx<'a> {
    invitations: &'a TransactionalTree,
    sent: &'a TransactionalTree,
    received: &'a TransactionalTree,
    open_by_sender: &'a TransactionalTree,
    pairs: &'a TransactionalTree,
    connections: &'a TransactionalTree,
    activity: &'a TransactionalTree,
    expiry: &'a TransactionalTree,
    reminders: &'a TransactionalTree,
    idempotency: &'a TransactionalTree,
    idempotency_by_age: &'a TransactionalTree,
    outbox: &'a TransactionalTree,
    meta: &'a TransactionalTree,
}

impl Tx<'_> {
    fn invitation(&self, id: &InvitationId) -> TxResult<Option<Invitation>> {
        match self.invitations.get(id.as_bytes())? {
            Some(bytes) => records::decode_invitation(&bytes).map(Some).map_err(aborted),
            None => Ok(None),
        }
    }

    /// Writes the record, and the same bytes into the sender's index entry,
    /// so that a page of what a user sent is one range scan.
    fn put_invitation(&self, inv: &Invitation) -> TxResult<()> {
        let record = sled::IVec::from(records::encode_invitation(inv));
        self.invitations.insert(&inv.id.as_bytes()[..], record.clone())?;
        self.sent.insert(keys::user_invitation(&inv.sender, &inv.id), record)?;
        Ok(())
    }

    fn pair(&self, a: &UserId, b: &UserId) -> TxResult<Pair> {
        let empty = Pair::new(a.clone(), b.clone());
        let (low, high) = empty.users();
        match self.pairs.get(keys::pair(low, high))? {
            Some(bytes) => records::decode_pair(a, b, &bytes).map_err(aborted),
            None => Ok(empty),
        }
    }

    fn put_pair(&self, pair: &Pair) -> TxResult<()> {
        let (low, high) = pair.users();
        self.pairs.insert(keys::pair(low, high), records::encode_pair(pair))?;
        Ok(())
    }

    fn activity(&self, user: &UserId, now: Timestamp) -> TxResult<Activity> {
        let mut activity = match self.activity.get(keys::user_prefix(user))? {
            Some(bytes) => records::decode_activity(&bytes).map_err(aborted::<StoreError>)?,
            None => Activity::default(),
        };
        activity.prune(now);
        Ok(activity)
    }

    fn put_activity(&self, user: &UserId, activity: &Activity) -> TxResult<()> {
        self.activity
            .insert(keys::user_prefix(user), records::encode_activity(activity))?;
        Ok(())
    }

    /// Appends the event with the next sequence number.
    fn append_event(
        &self,
        inv: &Invitation,
        kind: &EventKind,
        event_id: &InvitationId,
        now: Timestamp,
    ) -> TxResult<u64> {
        let last = self
            .meta
            .get(OUTBOX_SEQUENCE)?
            .and_then(|v| keys::leading_u64(&v))
            .unwrap_or(0);
        let sequence = last + 1;
        let mut event = convert::event(inv, kind, event_id, now);
        event.sequence = sequence;
        self.outbox
            .insert(&keys::sequence(sequence)[..], records::encode_event(&event))?;
        self.meta.insert(OUTBOX_SEQUENCE, &keys::sequence(sequence)[..])?;
        Ok(sequence)
    }

    /// What an idempotency key already stands for. Reads only: a key past
    /// its window is forgotten by the send that records it afresh.
    fn replay(&self, record_key: &[u8], request: &SendRequest, now: Timestamp) -> TxResult<Replay> {
        let Some(bytes) = self.idempotency.get(record_key)? else {
            return Ok(Replay::Fresh);
        };
        let record = records::decode_idempotency(&bytes).map_err(aborted::<StoreError>)?;
        let created = Timestamp::from_millis(record.created_ms);
        if created.plus(IDEMPOTENCY_WINDOW) <= now {
            return Ok(Replay::Stale(created));
        }
        if record.recipient != request.recipient.as_str() || record.message != request.message.as_str() {
            return Ok(Replay::Reused);
        }
        let id: [u8; 16] = record
            .invitation_id
            .as_slice()
            .try_into()
            .map_err(|_| aborted(StoreError::Corrupt("idempotency id".into())))?;
        Ok(Replay::Same(InvitationId::from_bytes(id)))
    }

    /// Takes an open invitation out of the open indexes, and lowers its
    /// sender's open count. What closing does to the pair is the pair's
    /// rule (see [`Pair::closed`]).
    fn close(&self, before: &Invitation, now: Timestamp) -> TxResult<Activity> {
        self.open_by_sender
            .remove(keys::user_invitation(&before.sender, &before.id))?;
        self.received
            .remove(keys::user_invitation(&before.recipient, &before.id))?;
        self.expiry.remove(&keys::due(before.expires_at, &before.id)[..])?;
        let mut activity = self.activity(&before.sender, now)?;
        activity.record_closed();
        Ok(activity)
    }
}

/// What an idempotency key stands for when a send arrives with it.
enum Replay {
    /// Never used (or forgotten).
    Fresh,
    /// Used for this very request: its invitation.
    Same(InvitationId),
    /// Used for a different request within the window.
    Reused,
    /// Used before the window; the record made then.
    Stale(Timestamp),
}

/// An operation's answer: `Ok(Err(_))` is a refusal by the rules, which
/// wrote nothing, and the rest of its batch goes on.
type Refusable<T> = TxResult<Result<T, DomainError>>;

fn refuse<T>(e: DomainError) -> Refusable<T> {
    Ok(Err(e))
}

/// One write, as the writer batches them (see [`Store::write_batch`]).
#[derive(Debug, Clone)]
pub enum Op {
    Send {
        request: SendRequest,
        key: Option<IdempotencyKey>,
        id: InvitationId,
        event_id: InvitationId,
        now: Timestamp,
    },
    Act {
        actor: UserId,
        id: InvitationId,
        action: Action,
        event_id: InvitationId,
        now: Timestamp,
    },
    Expire {
        id: InvitationId,
        event_id: InvitationId,
        now: Timestamp,
    },
    /// Fires the reminder filed under `due` for the invitation.
    Remind {
        due: Timestamp,
        id: InvitationId,
        event_id: InvitationId,
        now: Timestamp,
    },
    RemoveConnection {
        user: UserId,
        other: UserId,
    },
}

/// What one [`Op`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    Sent(SendOutcome),
    Acted(TxOutcome),
    Expired(Option<Invitation>),
    /// The reminder's ordinal, when one was emitted; `None` when the
    /// invitation had closed (or the offset is gone) and the entry was dropped.
    Reminded(Option<u32>),
    ConnectionRemoved,
}

// Each operation checks every rule before its first write, and reports a
// broken rule as a refusal (`Ok(Err(_))`), not an abort: a refused operation
// has written nothing, so the others in its transaction can commit.
impl Tx<'_> {
    fn apply(&self, policy: &Policy, op: &Op) -> Refusable<OpOutcome> {
        Ok(match op {
            Op::Send {
                request,
                key,
                id,
                event_id,
                now,
            } => self
                .send(policy, request, key.as_ref(), *id, event_id, *now)?
                .map(OpOutcome::Sent),
            Op::Act {
                actor,
                id,
                action,
                event_id,
                now,
            } => self
                .act(policy, actor, id, action, event_id, *now)?
                .map(OpOutcome::Acted),
            Op::Expire { id, event_id, now } => Ok(OpOutcome::Expired(self.expire(id, event_id, *now)?)),
            Op::Remind { due, id, event_id, now } => {
                Ok(OpOutcome::Reminded(self.remind(policy, *due, id, event_id, *now)?))
            }
            Op::RemoveConnection { user, other } => self
                .remove_connection(user, other)?
                .map(|()| OpOutcome::ConnectionRemoved),
        })
    }

    fn send(
        &self,
        policy: &Policy,
        request: &SendRequest,
        key: Option<&IdempotencyKey>,
        id: InvitationId,
        event_id: &InvitationId,
        now: Timestamp,
    ) -> Refusable<SendOutcome> {
        let idempotency_key = key.map(|k| keys::idempotency(&request.sender, k.as_str()));
        let mut stale = None;
        if let Some(record_key) = &idempotency_key {
            match self.replay(record_key, request, now)? {
                Replay::Fresh => {}
                Replay::Same(id) => return Ok(Ok(SendOutcome::Replayed(id))),
                Replay::Reused => return refuse(DomainError::IdempotencyKeyReused),
                Replay::Stale(created) => stale = Some(created),
            }
        }

        let mut pair = self.pair(&request.sender, &request.recipient)?;
        let mut activity = self.activity(&request.sender, now)?;
        if let Err(e) = policy.check_send(request, &pair, &activity, now) {
            return refuse(e);
        }
        let inv = policy.new_invitation(request.clone(), id, now);
        self.put_invitation(&inv)?;
        self.received
            .insert(keys::user_invitation(&inv.recipient, &inv.id), &[])?;
        self.open_by_sender
            .insert(keys::user_invitation(&inv.sender, &inv.id), &[])?;
        self.expiry.insert(&keys::due(inv.expires_at, &inv.id)[..], &[])?;
        if let Some((ordinal, due)) = policy.reminders.first(inv.created_at) {
            self.schedule_reminder(&inv, ordinal, due)?;
        }
        pair.invited(inv.id, inv.sender.clone());
        self.put_pair(&pair)?;
        activity.record_send(now);
        self.put_activity(&inv.sender, &activity)?;
        if let Some(record_key) = &idempotency_key {
            if let Some(created) = stale {
                self.idempotency_by_age
                    .remove(keys::idempotency_by_age(created, record_key))?;
            }
            let record = records::IdempotencyRecord {
                recipient: request.recipient.as_str().to_owned(),
                message: request.message.as_str().to_owned(),
                invitation_id: inv.id.as_bytes().to_vec(),
                created_ms: now.as_millis(),
            };
            self.idempotency
                .insert(record_key.as_slice(), records::encode_idempotency(&record))?;
            self.idempotency_by_age
                .insert(keys::idempotency_by_age(now, record_key), &[])?;
        }
        self.append_event(&inv, &EventKind::Sent, event_id, now)?;
        Ok(Ok(SendOutcome::Created(inv)))
    }

    fn act(
        &self,
        policy: &Policy,
        actor: &UserId,
        id: &InvitationId,
        action: &Action,
        event_id: &InvitationId,
        now: Timestamp,
    ) -> Refusable<TxOutcome> {
        let Some(before) = self.invitation(id)? else {
            return refuse(DomainError::InvitationNotFound);
        };
        let (after, event) = match before.apply(actor, action, now) {
            Ok(Transition::Changed { invitation, event }) => (invitation, event),
            Ok(Transition::Unchanged) => return Ok(Ok(TxOutcome::Unchanged(before))),
            Err(e) => return refuse(e),
        };
        self.put_invitation(&after)?;
        let mut pair = self.pair(&before.sender, &before.recipient)?;
        // A change puts the invitation in the state its action names (see
        // `Invitation::apply`), so the action says which entries change.
        match action {
            Action::Ignore => {
                self.received
                    .remove(keys::user_invitation(&before.recipient, &before.id))?;
            }
            Action::Withdraw { .. } => {
                let mut activity = self.close(&before, now)?;
                activity.record_withdrawal(now);
                self.put_activity(&before.sender, &activity)?;
                pair.withdrawn(&before.id, &before.sender, now.plus(policy.reinvite_cooldown));
            }
            Action::Accept => {
                let activity = self.close(&before, now)?;
                self.put_activity(&before.sender, &activity)?;
                pair.accepted(&before.id, now);
                self.connections
                    .insert(keys::connection(&before.sender, now, &before.recipient), &[])?;
                self.connections
                    .insert(keys::connection(&before.recipient, now, &before.sender), &[])?;
            }
        }
        self.put_pair(&pair)?;
        self.append_event(&after, &event, event_id, now)?;
        Ok(Ok(TxOutcome::Changed(after)))
    }

    fn expire(&self, id: &InvitationId, event_id: &InvitationId, now: Timestamp) -> TxResult<Option<Invitation>> {
        let Some(before) = self.invitation(id)? else {
            return Ok(None);
        };
        let Some(after) = before.expire(now) else {
            return Ok(None);
        };
        self.put_invitation(&after)?;
        let mut pair = self.pair(&before.sender, &before.recipient)?;
        pair.closed(&before.id);
        let activity = self.close(&before, now)?;
        self.put_activity(&before.sender, &activity)?;
        self.put_pair(&pair)?;
        self.append_event(&after, &EventKind::Expired, event_id, now)?;
        Ok(Some(after))
    }

    /// Files the reminder `ordinal` of `inv` under `due`, unless the
    /// invitation expires first.
    fn schedule_reminder(&self, inv: &Invitation, ordinal: u32, due: Timestamp) -> TxResult<()> {
        if due < inv.expires_at {
            self.reminders
                .insert(&keys::due(due, &inv.id)[..], &ordinal.to_be_bytes()[..])?;
        }
        Ok(())
    }

    /// Fires the reminder filed under `due`: emits `reminded` while the
    /// invitation is still pending (not withdrawn, accepted, ignored or
    /// expired) and files the next one. Returns the ordinal emitted.
    fn remind(
        &self,
        policy: &Policy,
        due: Timestamp,
        id: &InvitationId,
        event_id: &InvitationId,
        now: Timestamp,
    ) -> TxResult<Option<u32>> {
        let key = keys::due(due, id);
        let Some(value) = self.reminders.remove(&key[..])? else {
            return Ok(None);
        };
        let scheduled = <[u8; 4]>::try_from(&value[..])
            .map(u32::from_be_bytes)
            .map_err(|_| aborted(StoreError::Corrupt("reminder ordinal".into())))?;
        let Some(inv) = self.invitation(id)? else {
            return Ok(None);
        };
        if inv.state != State::Pending || inv.expires_at <= now {
            return Ok(None);
        }
        let Some(firing) = policy.reminders.fire(scheduled, inv.created_at, now) else {
            return Ok(None);
        };
        if let Some((ordinal, next)) = firing.next {
            self.schedule_reminder(&inv, ordinal, next)?;
        }
        let kind = EventKind::Reminded {
            ordinal: firing.ordinal,
        };
        self.append_event(&inv, &kind, event_id, now)?;
        Ok(Some(firing.ordinal))
    }

    fn remove_connection(&self, user: &UserId, other: &UserId) -> Refusable<()> {
        let mut pair = self.pair(user, other)?;
        let at = match pair.disconnect() {
            Ok(at) => at,
            Err(e) => return refuse(e),
        };
        self.connections.remove(keys::connection(user, at, other))?;
        self.connections.remove(keys::connection(other, at, user))?;
        self.put_pair(&pair)?;
        Ok(Ok(()))
    }
}

impl Store {
    fn transact<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let trees = (
            &self.invitations,
            &self.sent,
            &self.received,
            &self.open_by_sender,
            &self.pairs,
            &self.connections,
            &self.activity,
            &self.expiry,
            &self.reminders,
            &self.idempotency,
            &self.idempotency_by_age,
            &self.outbox,
            &self.meta,
        );
        finish(trees.transaction(
            |(
                invitations,
                sent,
                received,
                open_by_sender,
                pairs,
                connections,
                activity,
                expiry,
                reminders,
                idempotency,
                idempotency_by_age,
                outbox,
                meta,
            )| {
                f(&Tx {
                    invitations,
                    sent,
                    received,
                    open_by_sender,
                    pairs,
                    connections,
                    activity,
                    expiry,
                    reminders,
                    idempotency,
                    idempotency_by_age,
                    outbox,
                    meta,
                })
            },
        ))
    }

    /// Applies `ops` in order in one transaction, each seeing the writes of
    /// those before it, and returns each one's outcome: a refused operation
    /// (a broken rule) wrote nothing and does not stop the others. Not
    /// flushed.
    ///
    /// # Errors
    ///
    /// A storage failure or a corrupt record, in any operation: then nothing
    /// of the batch was written.
    pub fn write_batch<'a>(
        &self,
        policy: &Policy,
        ops: impl Iterator<Item = &'a Op> + Clone,
    ) -> Result<Vec<Result<OpOutcome, DomainError>>, StoreError> {
        self.transact(|tx| ops.clone().map(|op| tx.apply(policy, op)).collect())
    }
}

/// One operation in its own transaction, for the storage tests: the service
/// writes through the writer and [`Store::write_batch`].
#[cfg(test)]
impl Store {
    /// Sends an invitation if every rule allows it, or replays the first
    /// result of a repeated idempotency key. Not flushed.
    ///
    /// # Errors
    ///
    /// A storage failure; inside, the rule the request breaks.
    pub fn send(
        &self,
        policy: &Policy,
        request: &SendRequest,
        key: Option<&IdempotencyKey>,
        id: InvitationId,
        event_id: InvitationId,
        now: Timestamp,
    ) -> Result<Result<SendOutcome, DomainError>, StoreError> {
        self.transact(|tx| tx.send(policy, request, key, id, &event_id, now))
    }

    /// Withdraws, accepts or ignores an invitation for `actor`. Not flushed.
    ///
    /// # Errors
    ///
    /// A storage failure; inside, NotFound for an invitation the actor may
    /// not see, or the rule the action breaks.
    pub fn act(
        &self,
        policy: &Policy,
        actor: &UserId,
        id: &InvitationId,
        action: &Action,
        event_id: InvitationId,
        now: Timestamp,
    ) -> Result<Result<TxOutcome, DomainError>, StoreError> {
        self.transact(|tx| tx.act(policy, actor, id, action, &event_id, now))
    }

    /// Expires one invitation if it is still open and due; `None` when
    /// there was nothing to do. Not flushed.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn expire(
        &self,
        id: &InvitationId,
        event_id: InvitationId,
        now: Timestamp,
    ) -> Result<Option<Invitation>, StoreError> {
        self.transact(|tx| tx.expire(id, &event_id, now))
    }

    /// Fires the reminder filed under `due` for `id`. Not flushed.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn remind(
        &self,
        policy: &Policy,
        due: Timestamp,
        id: &InvitationId,
        event_id: InvitationId,
        now: Timestamp,
    ) -> Result<Option<u32>, StoreError> {
        self.transact(|tx| tx.remind(policy, due, id, &event_id, now))
    }

    /// Removes the connection between `user` and `other`, for both. Not
    /// flushed.
    ///
    /// # Errors
    ///
    /// A storage failure; inside, NotConnected when there is none.
    pub fn remove_connection(&self, user: &UserId, other: &UserId) -> Result<Result<(), DomainError>, StoreError> {
        self.transact(|tx| tx.remove_connection(user, other))
    }
}

impl Store {
    /// Forgets up to `limit` idempotency records created before `cutoff`.
    /// Returns how many it removed.
    ///
    /// # Errors
    ///
    /// Storage failures.
    pub fn prune_idempotency(&self, cutoff: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut removed = 0;
        let end = keys::sequence(cutoff.as_millis());
        let old: Vec<_> = self
            .idempotency_by_age
            .range(..end)
            .take(limit)
            .collect::<Result<_, _>>()?;
        for (age_key, _) in old {
            let record_key = age_key[8..].to_vec();
            finish::<_, StoreError>((&self.idempotency, &self.idempotency_by_age).transaction(
                |(records_tree, ages)| {
                    // A newer record may have replaced the old one under the same key.
                    if let Some(bytes) = records_tree.get(&record_key)? {
                        let record = records::decode_idempotency(&bytes).map_err(aborted::<StoreError>)?;
                        if keys::sequence(record.created_ms)[..] == age_key[..8] {
                            records_tree.remove(record_key.as_slice())?;
                        }
                    }
                    ages.remove(&age_key)?;
                    Ok(())
                },
            ))?;
            removed += 1;
        }
        Ok(removed)
    }
}
