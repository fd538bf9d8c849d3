//! What an event or a due time does to a user's notifications: deliver,
//! hold for the undo window, add to a digest, remove or retract, under the
//! decisions of the pure domain core.

use proto::notifications::v1::{self as pb, notification_update::Kind};

use crate::{
    convert,
    domain::{Action, Detail, Event, EventKind, Item, Preferences, Settings, Timestamp, Topic, decide},
};

use super::{
    apply::{TxResult, Updates, corrupt},
    keys,
    records::{self, DELIVERED, DeliveryRecord, Location, NotificationRecord, RETRACTED},
    tx::Tx,
};

impl Tx<'_> {
    /// Delivers a pending notification now, under the user's current
    /// preferences: a topic turned off (or paused) since drops it, and
    /// MINIMAL chosen since strips it. `stored`: whether the record (or its
    /// open-digest entry) was written as pending, and so must be forgotten.
    pub(super) fn deliver(
        &self,
        user: &str,
        record: &mut NotificationRecord,
        stored: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        if stored {
            self.drop_pending(user, record)?;
        }
        let topic = record.topic().map_err(corrupt)?;
        let received = topic == Topic::InvitationReceived;
        let preferences = self.preferences(user)?;
        let Some(preference) = preferences.active(topic) else {
            for id in record.invitation_ids().map(str::to_owned).collect::<Vec<_>>() {
                if received {
                    self.update_delivery(&id, |d| {
                        d.deliver_at_ms = 0;
                        d.set_location(None);
                    })?;
                }
            }
            return Ok(());
        };
        if preference.detail == Detail::Minimal {
            record.make_minimal();
        }
        let mut counters = self.user(user)?;
        counters.last_notification += 1;
        counters.unread = counters.unread.saturating_add(1);
        self.put_user(user, &counters)?;
        record.number = counters.last_notification;
        record.state = DELIVERED;
        record.delivered_ms = now.as_millis();
        self.inbox.insert(keys::user_number(user, record.number), &[])?;
        self.unread.insert(keys::user_number(user, record.number), &[])?;
        if received {
            for id in record.invitation_ids().map(str::to_owned).collect::<Vec<_>>() {
                let number = record.number;
                self.update_delivery(&id, |d| {
                    d.delivered = true;
                    d.deliver_at_ms = 0;
                    d.set_location(Some((Location::Delivered, number)));
                })?;
            }
        }
        self.log_update(
            user,
            |cursor| {
                record.cursor = cursor;
                Ok(Kind::Delivered(convert::notification(record).map_err(corrupt)?))
            },
            out,
        )?;
        self.put_notification(user, record)
    }

    /// Delivers `record` now if it is due, or files it under its due time.
    pub(super) fn deliver_or_schedule(
        &self,
        user: &str,
        record: &mut NotificationRecord,
        stored: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        if record.due_ms <= now.as_millis() {
            self.deliver(user, record, stored, now, out)
        } else {
            self.put_notification(user, record)
        }
    }

    pub(super) fn hold(
        &self,
        user: &str,
        topic: Topic,
        item: &Item,
        due: Timestamp,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let mut record = self.new_notification(topic, false, due)?;
        record.push(item);
        self.index_item(&record, item)?;
        // Delivered at once (no undo window), it is never stored as pending.
        self.deliver_or_schedule(user, &mut record, false, now, out)
    }

    pub(super) fn add_to_digest(
        &self,
        user: &str,
        topic: Topic,
        item: &Item,
        interval: std::time::Duration,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let key = keys::user_topic(user, records::topic_code(topic));
        let open = match self.open_digests.get(&key)?.as_deref().and_then(keys::due_and_number) {
            Some((due_ms, number)) => self.pending_notification(user, due_ms, number)?,
            None => None,
        };
        let mut record = match open {
            Some(record) => record,
            None => {
                let record = self.new_notification(topic, true, now.plus(interval))?;
                self.open_digests
                    .insert(key, &keys::due_number(record.due_ms, record.number)[..])?;
                record
            }
        };
        record.push(item);
        self.index_item(&record, item)?;
        self.deliver_or_schedule(user, &mut record, true, now, out)
    }

    /// Takes the invitation out of the user's INVITATION_RECEIVED
    /// notification (see [`Action::Remove`]).
    pub(super) fn remove(
        &self,
        user: &str,
        invitation_id: &str,
        retract_delivered: bool,
        out: &mut Updates,
    ) -> TxResult<()> {
        let Some(delivery) = self.delivery_record(invitation_id)? else {
            return Ok(());
        };
        let forget = || self.update_delivery(invitation_id, |d| d.set_location(None));
        match delivery.location().map_err(corrupt)? {
            Some((Location::Pending, number)) => {
                // A held notification is due when its invitations are.
                let Some(mut record) = self.pending_notification(user, delivery.deliver_at_ms, number)? else {
                    return Ok(());
                };
                forget()?;
                record.remove(invitation_id);
                if record.items.is_empty() {
                    // Never sent, never to be sent: no trace at all.
                    self.drop_pending(user, &record)
                } else {
                    self.put_notification(user, &record)
                }
            }
            Some((Location::Delivered, number)) if retract_delivered => {
                let Some(mut record) = self.notification(user, number)? else {
                    return Ok(());
                };
                if record.state != DELIVERED {
                    return Ok(());
                }
                forget()?;
                record.remove(invitation_id);
                if record.items.is_empty() {
                    record.state = RETRACTED;
                    self.inbox.remove(keys::user_number(user, number))?;
                    if self.unread.remove(keys::user_number(user, number))?.is_some() {
                        let mut counters = self.user(user)?;
                        counters.unread = counters.unread.saturating_sub(1);
                        self.put_user(user, &counters)?;
                    }
                    self.log_update(
                        user,
                        |_| {
                            Ok(Kind::Retracted(pb::Retraction {
                                notification_ids: vec![number.to_string()],
                            }))
                        },
                        out,
                    )?;
                } else {
                    self.log_update(
                        user,
                        |cursor| {
                            record.cursor = cursor;
                            Ok(Kind::Revised(convert::notification(&record).map_err(corrupt)?))
                        },
                        out,
                    )?;
                }
                self.put_notification(user, &record)
            }
            Some((Location::Delivered, _)) | None => Ok(()),
        }
    }

    pub(super) fn apply_event(
        &self,
        event: &Event,
        settings: &Settings,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let recipient = self.preferences(&event.recipient_id)?;
        let sender = if event.kind.may_notify_sender() {
            self.preferences(&event.sender_id)?
        } else {
            Preferences::default()
        };
        if event.kind == EventKind::Sent {
            let record = DeliveryRecord {
                sender: event.sender_id.clone(),
                ..DeliveryRecord::default()
            };
            self.delivery
                .insert(keys::prefix(&event.invitation_id), records::encode(&record))?;
        }
        for action in decide(event, &recipient, &sender, now, settings) {
            match action {
                Action::Hold { user, topic, item, due } => self.hold(&user, topic, &item, due, now, out)?,
                Action::Digest {
                    user,
                    topic,
                    item,
                    interval,
                } => {
                    self.add_to_digest(&user, topic, &item, interval, now, out)?;
                }
                Action::Remove {
                    user,
                    invitation_id,
                    retract_delivered,
                } => {
                    self.remove(&user, &invitation_id, retract_delivered, out)?;
                }
            }
        }
        // What the sender may learn afterwards: an ignore must look like
        // nothing happened; after their own withdrawal (or an acceptance or
        // expiry) nothing more will be delivered.
        match event.kind {
            EventKind::Sent => Ok(()),
            EventKind::Ignored => self.update_delivery(&event.invitation_id, |d| d.masked = true),
            EventKind::Withdrawn { .. } | EventKind::Accepted | EventKind::Expired => {
                self.update_delivery(&event.invitation_id, |d| d.deliver_at_ms = 0)
            }
        }
    }
}
