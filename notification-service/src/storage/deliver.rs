//! What an event or a due time does to a user's notifications: deliver,
//! hold for the undo window, add to a digest, remove or retract, as the
//! pure domain core decides; this module only follows its decisions in the
//! transaction's trees.

use service_kit::storage::tx::aborted;

use crate::domain::{
    Action, AtDelivery, Channel, ChannelState, Event, EventKind, Item, Notification, Preferences, Recent, Removal,
    Settings, Timestamp, Topic, Update, UpdateKind, at_delivery, decide_with,
};

use super::{
    apply::{TxResult, Updates},
    keys,
    records::{self, DeliveryRecord, Location, Placement},
    tx::Tx,
};

/// The throttle's window.
const HOUR_MS: u64 = 3_600_000;

impl Tx<'_> {
    /// Delivers a pending notification now, as [`at_delivery`] decides
    /// under the user's current preferences. `stored`: whether it (or its
    /// open-digest entry) was written as pending, and so must be forgotten.
    pub(super) fn deliver(
        &self,
        user: &str,
        mut notification: Notification,
        stored: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        if stored {
            self.drop_pending(user, &notification)?;
        }
        let received = notification.topic() == Topic::InvitationReceived;
        let reminder = notification.topic() == Topic::InvitationReminder;
        let pending_number = notification.number();
        let preferences = self.preferences(user)?;
        let (detail, channels, email) = match at_delivery(notification.topic(), &preferences, self.available) {
            AtDelivery::Deliver {
                detail,
                channels,
                email,
            } => (detail, channels, email),
            AtDelivery::Drop => {
                for id in notification.invitation_ids() {
                    if received {
                        self.update_delivery(id, |d| {
                            d.deliver_at_ms = 0;
                            d.set_location(None);
                        })?;
                    } else if reminder {
                        self.update_delivery(id, |d| {
                            d.forget(Topic::InvitationReminder, Location::Pending, pending_number);
                        })?;
                    }
                }
                return Ok(());
            }
        };
        let in_app = channels.contains(Channel::InApp);
        let mut counters = self.user(user)?;
        counters.last_notification += 1;
        if in_app {
            counters.unread = counters.unread.saturating_add(1);
        }
        self.put_user(user, &counters)?;
        notification.deliver(counters.last_notification, now, detail, channels);
        let number = notification.number();
        for id in notification.invitation_ids() {
            if received {
                self.update_delivery(id, |d| {
                    d.delivered = true;
                    d.deliver_at_ms = 0;
                    d.set_location(Some((Location::Delivered, number)));
                })?;
            } else if reminder {
                self.update_delivery(id, |d| d.deliver_reminder(pending_number, number))?;
            }
        }
        // Out of the app, the update carries cursor 0: it is on no stream.
        let mut update = Update {
            cursor: 0,
            kind: UpdateKind::Delivered(notification.clone()),
        };
        if in_app {
            self.inbox.insert(keys::user_number(user, number), &[])?;
            self.unread.insert(keys::user_number(user, number), &[])?;
            self.mark_received(&notification, Channel::InApp, ChannelState::Sent, now)?;
            update.cursor = self.log_update(
                user,
                |cursor| {
                    notification.set_cursor(cursor);
                    UpdateKind::Delivered(notification.clone())
                },
                out,
            )?;
            update.kind = UpdateKind::Delivered(notification.clone());
        }
        // Quiet hours hold e-mail and push, not the app.
        let loud = preferences.loud_from(now);
        if let Some(email) = &email {
            self.announce(Channel::Email, user, &update, &notification, email.as_str(), loud)?;
        }
        if channels.contains(Channel::Push) {
            self.announce(Channel::Push, user, &update, &notification, "", loud)?;
        }
        self.put_notification(user, &notification)
    }

    /// Delivers `notification` now if it is due, or files it under its due
    /// time.
    pub(super) fn deliver_or_schedule(
        &self,
        user: &str,
        notification: Notification,
        stored: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        if notification.is_due(now) {
            self.deliver(user, notification, stored, now, out)
        } else {
            self.put_notification(user, &notification)
        }
    }

    pub(super) fn hold(
        &self,
        user: &str,
        topic: Topic,
        item: Item,
        due: Timestamp,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let mut notification = self.new_notification(topic, false, due)?;
        let invitation_id = item.invitation_id.clone();
        notification.push(item);
        self.index_item(&notification, &invitation_id)?;
        // Delivered at once (no undo window), it is never stored as pending.
        self.deliver_or_schedule(user, notification, false, now, out)
    }

    pub(super) fn add_to_digest(
        &self,
        user: &str,
        topic: Topic,
        item: Item,
        due: Timestamp,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let key = keys::user_topic(user, records::topic_code(topic));
        let open = match self.open_digests.get(&key)?.as_deref().and_then(keys::due_and_number) {
            Some((due_ms, number)) => self.pending_notification(user, due_ms, number)?,
            None => None,
        };
        let mut notification = match open {
            Some(notification) => notification,
            None => {
                let notification = self.new_notification(topic, true, due)?;
                self.open_digests
                    .insert(key, &keys::due_number(due.as_millis(), notification.number())[..])?;
                notification
            }
        };
        let invitation_id = item.invitation_id.clone();
        notification.push(item);
        self.index_item(&notification, &invitation_id)?;
        self.deliver_or_schedule(user, notification, true, now, out)
    }

    /// Takes the invitation out of the user's notifications about it (see
    /// [`Action::Remove`]): the one announcing it and its reminders. One
    /// still pending leaves no trace once empty; a delivered one (when
    /// `retract_delivered`) is revised, or retracted once empty.
    pub(super) fn remove(
        &self,
        user: &str,
        invitation_id: &str,
        retract_delivered: bool,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let Some(delivery) = self.delivery_record(invitation_id)? else {
            return Ok(());
        };
        for (topic, placement) in delivery.placements().map_err(aborted)? {
            let Placement {
                location,
                number,
                due_ms,
            } = placement;
            let found = match location {
                // A held notification is found under its due time.
                Location::Pending => self.pending_notification(user, due_ms, number)?,
                Location::Delivered if retract_delivered => {
                    self.notification(user, number)?.filter(Notification::is_delivered)
                }
                Location::Delivered => None,
            };
            if let Some(notification) = found {
                self.update_delivery(invitation_id, |d| d.forget(topic, location, number))?;
                self.remove_from(user, notification, invitation_id, now, out)?;
            }
        }
        Ok(())
    }

    /// Takes the invitation out of one notification, and tells each
    /// channel it went to.
    fn remove_from(
        &self,
        user: &str,
        mut notification: Notification,
        invitation_id: &str,
        now: Timestamp,
        out: &mut Updates,
    ) -> TxResult<()> {
        let number = notification.number();
        let channels = notification.channels();
        let in_app = channels.contains(Channel::InApp);
        let outbound = [Channel::Email, Channel::Push]
            .into_iter()
            .filter(|c| channels.contains(*c));
        match notification.remove(invitation_id) {
            // Never sent, never to be sent: no trace at all.
            Some(Removal::Dropped) => return self.drop_pending(user, &notification),
            Some(Removal::StillPending) | None => {}
            Some(Removal::Revised) => {
                let mut update = Update {
                    cursor: 0,
                    kind: UpdateKind::Revised(notification.clone()),
                };
                if in_app {
                    update.cursor = self.log_update(
                        user,
                        |cursor| {
                            notification.set_cursor(cursor);
                            UpdateKind::Revised(notification.clone())
                        },
                        out,
                    )?;
                    update.kind = UpdateKind::Revised(notification.clone());
                }
                for channel in outbound {
                    self.revise_outbound(channel, user, &update, invitation_id, now)?;
                }
            }
            Some(Removal::Retracted) => {
                let mut update = Update {
                    cursor: 0,
                    kind: UpdateKind::Retracted(vec![number]),
                };
                if in_app {
                    self.inbox.remove(keys::user_number(user, number))?;
                    if self.unread.remove(keys::user_number(user, number))?.is_some() {
                        let mut counters = self.user(user)?;
                        counters.unread = counters.unread.saturating_sub(1);
                        self.put_user(user, &counters)?;
                    }
                    update.cursor = self.log_update(user, |_| UpdateKind::Retracted(vec![number]), out)?;
                }
                for channel in outbound {
                    self.retract_outbound(channel, user, &update, &notification, invitation_id, now)?;
                }
            }
        }
        self.put_notification(user, &notification)
    }

    /// How many IMMEDIATE notifications `user` has had in the hour up to
    /// `now`.
    fn immediate_in_last_hour(&self, user: &str, now: Timestamp) -> TxResult<u32> {
        let since = now.as_millis().saturating_sub(HOUR_MS);
        let record = self.user(user)?;
        Ok(u32::try_from(record.immediate_ms.iter().filter(|&&t| t > since).count()).unwrap_or(u32::MAX))
    }

    /// Adds one IMMEDIATE notification at `now` to `user`'s rolling hour,
    /// forgetting those older than the hour.
    fn count_immediate(&self, user: &str, now: Timestamp) -> TxResult<()> {
        let since = now.as_millis().saturating_sub(HOUR_MS);
        let mut record = self.user(user)?;
        record.immediate_ms.retain(|&t| t > since);
        record.immediate_ms.push(now.as_millis());
        self.put_user(user, &record)
    }

    /// Applies what `event` means for the users `here` says this store
    /// keeps (all of them, but for a partition of a JetStream transport).
    pub(super) fn apply_event(
        &self,
        event: &Event,
        settings: &Settings,
        now: Timestamp,
        here: &dyn Fn(&str) -> bool,
        out: &mut Updates,
    ) -> TxResult<()> {
        // The invitation's delivery record belongs with its recipient.
        let recipients = here(&event.recipient_id);
        let recipient = self.preferences(&event.recipient_id)?;
        let sender = if event.kind.may_notify_sender() {
            self.preferences(&event.sender_id)?
        } else {
            Preferences::default()
        };
        if event.kind == EventKind::Sent && recipients {
            let record = DeliveryRecord {
                sender: event.sender_id.clone(),
                recipient: event.recipient_id.clone(),
                ..DeliveryRecord::default()
            };
            self.delivery
                .insert(keys::prefix(&event.invitation_id), records::encode(&record))?;
        }
        let recent = Recent {
            recipient: self.immediate_in_last_hour(&event.recipient_id, now)?,
            sender: if event.kind.may_notify_sender() {
                self.immediate_in_last_hour(&event.sender_id, now)?
            } else {
                0
            },
        };
        let actions: Vec<Action> = decide_with(event, &recipient, &sender, recent, now, settings)
            .into_iter()
            .filter(|action| {
                here(match action {
                    Action::Hold { user, .. } | Action::Digest { user, .. } | Action::Remove { user, .. } => user,
                })
            })
            .collect();
        if settings.max_immediate_per_hour > 0 {
            for action in &actions {
                if let Action::Hold { user, .. } = action {
                    self.count_immediate(user, now)?;
                }
            }
        }
        for action in actions {
            match action {
                Action::Hold { user, topic, item, due } => self.hold(&user, topic, item, due, now, out)?,
                Action::Digest { user, topic, item, due } => {
                    self.add_to_digest(&user, topic, item, due, now, out)?;
                }
                Action::Remove {
                    user,
                    invitation_id,
                    retract_delivered,
                } => {
                    self.remove(&user, &invitation_id, retract_delivered, now, out)?;
                }
            }
        }
        if !recipients {
            return Ok(());
        }
        // What the sender may learn afterwards: an ignore must look like
        // nothing happened; after their own withdrawal (or an acceptance or
        // expiry) nothing more will be delivered.
        match event.kind {
            EventKind::Sent | EventKind::Reminded { .. } => Ok(()),
            EventKind::Ignored => self.update_delivery(&event.invitation_id, |d| d.masked = true),
            EventKind::Withdrawn { .. } | EventKind::Accepted | EventKind::Expired => {
                self.update_delivery(&event.invitation_id, |d| d.deliver_at_ms = 0)
            }
        }
    }
}
