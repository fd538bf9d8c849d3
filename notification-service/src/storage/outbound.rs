//! The outbound queues of e-mail and push: a message is queued in the same
//! transaction as the delivery (or revision, or retraction) that causes
//! it, and sent after commit by the channel workers (see
//! [`crate::channels`]). Each user's queue on a channel goes out in order,
//! one message at a time: only its head is in the due index, so a
//! retraction never overtakes its delivery, and a user whose messages keep
//! failing holds up no one else.
//!
//! A message no try has begun for is "clean": taken back (a withdrawal) or
//! rewritten (a revision) without a trace. Once a try begins it may have
//! arrived, so what follows is a `revised` or `retracted` message of its
//! own (push; an e-mail cannot be recalled).

use service_kit::storage::tx::aborted;

use crate::domain::{Channel, ChannelState, Channels, Notification, Timestamp, Topic, Update, UpdateKind};

use super::{
    Store, StoreError,
    apply::TxResult,
    keys,
    records::{self, JobRecord, QueueRecord, channel_code, channel_from_code},
    tx::Tx,
};

/// A message about to be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub channel: Channel,
    pub user: String,
    pub seq: u64,
    /// `webhook-id` / Message-ID: the same on every try.
    pub id: String,
    pub update: Update,
    /// Where an e-mail goes.
    pub email: String,
    pub created: Timestamp,
    /// Tries so far, this one included.
    pub attempts: u32,
}

/// How a try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// A temporary failure: try again at this time.
    RetryAt(Timestamp),
    /// Refused for good, or failing past the retry age.
    Failed,
}

/// Where a due message is, to begin a try of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueJob {
    pub channel: Channel,
    pub next_ms: u64,
    pub user: String,
    pub seq: u64,
}

/// How many queue heads [`Store::outbound_figures`] reads.
pub const HEADS_LOOKED_AT: usize = 256;

fn new_message_id() -> String {
    format!("msg_{:032x}", rand::random::<u128>())
}

impl Tx<'_> {
    fn queue(&self, code: u8, user: &str) -> TxResult<QueueRecord> {
        match self.outbound_meta.get(keys::queue(code, user))? {
            Some(bytes) => records::decode("outbound queue", &bytes).map_err(aborted),
            None => Ok(QueueRecord::EMPTY),
        }
    }

    fn put_queue(&self, code: u8, user: &str, queue: QueueRecord) -> TxResult<()> {
        let key = keys::queue(code, user);
        if queue.head >= queue.next {
            self.outbound_meta.remove(key)?;
        } else {
            self.outbound_meta.insert(key, records::encode(&queue))?;
        }
        Ok(())
    }

    fn job(&self, code: u8, user: &str, seq: u64) -> TxResult<Option<JobRecord>> {
        match self.outbound.get(keys::job(code, user, seq))? {
            Some(bytes) => Ok(Some(records::decode("outbound message", &bytes).map_err(aborted)?)),
            None => Ok(None),
        }
    }

    fn put_job(&self, code: u8, user: &str, seq: u64, job: &JobRecord) -> TxResult<()> {
        self.outbound.insert(keys::job(code, user, seq), records::encode(job))?;
        Ok(())
    }

    fn count(&self, code: u8, added: bool) -> TxResult<()> {
        let key = keys::queued_count(code);
        let now = self
            .outbound_meta
            .get(key)?
            .and_then(|v| keys::trailing_number(&v))
            .unwrap_or(0);
        let next = if added { now + 1 } else { now.saturating_sub(1) };
        self.outbound_meta.insert(&key[..], &next.to_be_bytes()[..])?;
        Ok(())
    }

    /// Queues `update` for `user` on `channel`; the head of an empty queue
    /// is due at once.
    fn enqueue(
        &self,
        channel: Channel,
        user: &str,
        update: &Update,
        notification: u64,
        email: &str,
        now: Timestamp,
    ) -> TxResult<u64> {
        let code = channel_code(channel);
        let mut queue = self.queue(code, user)?;
        let seq = queue.next;
        queue.next += 1;
        let job = JobRecord::new(new_message_id(), update, notification, email.to_owned(), now);
        if queue.head == seq {
            self.outbound_due
                .insert(keys::job_due(code, job.next_ms, user, seq), &[])?;
        }
        self.put_job(code, user, seq, &job)?;
        self.put_queue(code, user, queue)?;
        self.count(code, true)?;
        Ok(seq)
    }

    /// Queues the delivery of `notification` (as `update` says it) on
    /// `channel`, due `from` (now, or when the user's quiet hours end), and
    /// remembers the message so that a withdrawal before it
    /// goes out can take it back.
    pub(super) fn announce(
        &self,
        channel: Channel,
        user: &str,
        update: &Update,
        notification: &Notification,
        email: &str,
        from: Timestamp,
    ) -> TxResult<()> {
        let number = notification.number();
        let seq = self.enqueue(channel, user, update, number, email, from)?;
        self.outbound_meta.insert(
            keys::announced(channel_code(channel), user, number),
            &seq.to_be_bytes()[..],
        )?;
        self.mark_received(notification, channel, ChannelState::Pending, from)
    }

    /// The message announcing notification `number`, while no try of it
    /// has begun.
    fn clean_announcement(&self, code: u8, user: &str, number: u64) -> TxResult<Option<(u64, JobRecord)>> {
        let Some(seq) = self
            .outbound_meta
            .get(keys::announced(code, user, number))?
            .and_then(|v| keys::trailing_number(&v))
        else {
            return Ok(None);
        };
        Ok(self
            .job(code, user, seq)?
            .filter(|job| !job.maybe_seen)
            .map(|job| (seq, job)))
    }

    /// Follows a revision of a delivered notification on `channel`: a clean
    /// announcement now says the new content; otherwise push sends a
    /// `revised` message and e-mail does nothing (a mail cannot be
    /// changed once it may have arrived).
    /// `removed` is the invitation the revision took out.
    pub(super) fn revise_outbound(
        &self,
        channel: Channel,
        user: &str,
        update: &Update,
        removed: &str,
        now: Timestamp,
    ) -> TxResult<()> {
        let UpdateKind::Revised(revised) = &update.kind else {
            return Ok(());
        };
        let code = channel_code(channel);
        let number = revised.number();
        if let Some((seq, mut job)) = self.clean_announcement(code, user, number)? {
            self.clear_received(revised.topic(), removed, channel)?;
            // Still the first the other side hears of it: a delivery.
            job.set_update(&Update {
                cursor: update.cursor,
                kind: UpdateKind::Delivered(revised.clone()),
            });
            return self.put_job(code, user, seq, &job);
        }
        if channel == Channel::Push {
            self.enqueue(channel, user, update, number, "", now)?;
        }
        Ok(())
    }

    /// Follows a retraction on `channel`: a clean announcement is taken back
    /// (nothing was, or ever will be, sent); otherwise push sends a
    /// `retracted` message and e-mail does nothing.
    /// `removed` is the last invitation of `notification`, taken out by the
    /// retraction.
    pub(super) fn retract_outbound(
        &self,
        channel: Channel,
        user: &str,
        update: &Update,
        notification: &Notification,
        removed: &str,
        now: Timestamp,
    ) -> TxResult<()> {
        let code = channel_code(channel);
        let (number, topic) = (notification.number(), notification.topic());
        if let Some((seq, job)) = self.clean_announcement(code, user, number)? {
            self.outbound_meta.remove(keys::announced(code, user, number))?;
            self.take_out(code, user, seq, &job, now)?;
            return self.clear_received(topic, removed, channel);
        }
        if channel == Channel::Push {
            self.enqueue(channel, user, update, number, "", now)?;
        }
        Ok(())
    }

    /// Removes a message from its queue; when it was the head, the next one
    /// becomes due.
    fn take_out(&self, code: u8, user: &str, seq: u64, job: &JobRecord, now: Timestamp) -> TxResult<()> {
        self.outbound.remove(keys::job(code, user, seq))?;
        self.count(code, false)?;
        let mut queue = self.queue(code, user)?;
        if queue.head != seq {
            return Ok(());
        }
        self.outbound_due.remove(keys::job_due(code, job.next_ms, user, seq))?;
        // Skip the gaps left by messages taken back.
        queue.head = seq + 1;
        while queue.head < queue.next {
            if let Some(next) = self.job(code, user, queue.head)? {
                let due = next.next_ms.max(now.as_millis());
                if due != next.next_ms {
                    let mut next = next;
                    next.next_ms = due;
                    self.put_job(code, user, queue.head, &next)?;
                }
                self.outbound_due
                    .insert(keys::job_due(code, due, user, queue.head), &[])?;
                break;
            }
            queue.head += 1;
        }
        self.put_queue(code, user, queue)
    }

    /// Records, for the sender of each invitation a new-invitation
    /// notification is about, where it stands on `channel`.
    pub(super) fn mark_received(
        &self,
        notification: &Notification,
        channel: Channel,
        state: ChannelState,
        at: Timestamp,
    ) -> TxResult<()> {
        if notification.topic() != Topic::InvitationReceived {
            return Ok(());
        }
        for id in notification.invitation_ids() {
            self.update_delivery(id, |d| d.set_channel(channel, state, at))?;
        }
        Ok(())
    }

    /// Forgets `channel` in the sender's record of an invitation taken out
    /// of a message before it went: to them, it never went there.
    fn clear_received(&self, topic: Topic, invitation_id: &str, channel: Channel) -> TxResult<()> {
        if topic == Topic::InvitationReceived {
            self.update_delivery(invitation_id, |d| d.clear_channel(channel))?;
        }
        Ok(())
    }
}

/// The notification a message announces, when it is a delivery.
fn announced_notification(update: &Update) -> Option<&Notification> {
    match &update.kind {
        UpdateKind::Delivered(n) => Some(n),
        UpdateKind::Revised(_) | UpdateKind::Retracted(_) => None,
    }
}

impl Store {
    /// Heads of queues on `channel` due at or before `now`, soonest first.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn due_jobs(&self, channel: Channel, now: Timestamp, limit: usize) -> Result<Vec<DueJob>, StoreError> {
        let code = channel_code(channel);
        let start = [code];
        let mut end = vec![code];
        end.extend_from_slice(&now.as_millis().saturating_add(1).to_be_bytes());
        let mut out = Vec::new();
        for entry in self.outbound_due.range(&start[..]..&end[..]).take(limit) {
            let (key, _) = entry?;
            let (code, next_ms, user, seq) =
                keys::split_job_due(&key).ok_or_else(|| StoreError::Corrupt("outbound due key".into()))?;
            out.push(DueJob {
                channel: channel_from_code(code)?,
                next_ms,
                user,
                seq,
            });
        }
        Ok(out)
    }

    /// Begins a try of each due message still there: counts the try, marks
    /// it as possibly seen, and moves it in the due index to `now + lease`
    /// (when a crash cuts the try short, it is tried again then).
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn begin_tries(
        &self,
        due: &[DueJob],
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Vec<Job>, StoreError> {
        // Sending delivers nothing new.
        self.transact(Channels::IN_APP, |tx| {
            let mut jobs = Vec::with_capacity(due.len());
            for d in due {
                let code = channel_code(d.channel);
                let due_key = keys::job_due(code, d.next_ms, &d.user, d.seq);
                if tx.outbound_due.remove(due_key)?.is_none() {
                    continue;
                }
                let Some(mut job) = tx.job(code, &d.user, d.seq)? else {
                    continue;
                };
                job.attempts += 1;
                job.maybe_seen = true;
                job.next_ms = now.plus(lease).as_millis();
                tx.outbound_due
                    .insert(keys::job_due(code, job.next_ms, &d.user, d.seq), &[])?;
                tx.put_job(code, &d.user, d.seq, &job)?;
                jobs.push(Job {
                    channel: d.channel,
                    user: d.user.clone(),
                    seq: d.seq,
                    id: job.id.clone(),
                    update: job.update().map_err(aborted)?,
                    email: job.email.clone(),
                    created: Timestamp::from_millis(job.created_ms),
                    attempts: job.attempts,
                });
            }
            Ok(jobs)
        })
    }

    /// Records how a try ended: a sent or failed message leaves its queue
    /// (and the next becomes due); a retried one is due again at its time.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn finish_try(&self, job: &Job, outcome: Outcome, now: Timestamp) -> Result<(), StoreError> {
        self.transact(Channels::IN_APP, |tx| {
            let code = channel_code(job.channel);
            let Some(mut record) = tx.job(code, &job.user, job.seq)? else {
                return Ok(());
            };
            let announced = announced_notification(&job.update);
            match outcome {
                Outcome::RetryAt(at) => {
                    tx.outbound_due
                        .remove(keys::job_due(code, record.next_ms, &job.user, job.seq))?;
                    record.next_ms = at.as_millis();
                    tx.outbound_due
                        .insert(keys::job_due(code, record.next_ms, &job.user, job.seq), &[])?;
                    tx.put_job(code, &job.user, job.seq, &record)?;
                    if let Some(n) = announced {
                        tx.mark_received(n, job.channel, ChannelState::Pending, at)?;
                    }
                }
                Outcome::Sent | Outcome::Failed => {
                    let reference = keys::announced(code, &job.user, record.notification);
                    if tx
                        .outbound_meta
                        .get(&reference)?
                        .and_then(|v| keys::trailing_number(&v))
                        == Some(job.seq)
                    {
                        tx.outbound_meta.remove(reference)?;
                    }
                    tx.take_out(code, &job.user, job.seq, &record, now)?;
                    if let Some(n) = announced {
                        let state = if outcome == Outcome::Sent {
                            ChannelState::Sent
                        } else {
                            ChannelState::Failed
                        };
                        tx.mark_received(n, job.channel, state, now)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Messages waiting on `channel`, and how long ago the oldest of the
    /// first [`HEADS_LOOKED_AT`] queue heads was queued (None when none
    /// waits): how far behind the channel is.
    ///
    /// # Errors
    ///
    /// Storage or decoding failures.
    pub fn outbound_figures(
        &self,
        channel: Channel,
        now: Timestamp,
    ) -> Result<(u64, Option<std::time::Duration>), StoreError> {
        let code = channel_code(channel);
        let queued = self
            .outbound_meta
            .get(keys::queued_count(code))?
            .and_then(|v| keys::trailing_number(&v))
            .unwrap_or(0);
        let mut oldest = None;
        for d in self.due_jobs(channel, Timestamp::from_millis(u64::MAX - 1), HEADS_LOOKED_AT)? {
            if let Some(bytes) = self.outbound.get(keys::job(code, &d.user, d.seq))? {
                let job: JobRecord = records::decode("outbound message", &bytes)?;
                oldest = oldest.max(Some(job.created_ms));
            }
        }
        let age = oldest.map(|created| std::time::Duration::from_millis(now.as_millis().saturating_sub(created)));
        Ok((queued, age))
    }
}
