//! Reading recipients' inboxes: every notification, and how often each
//! invitation is mentioned across them (once is right, twice a duplicate).

use std::collections::HashMap;

use proto::notifications::v1 as npb;

use crate::Notifications;

/// Every notification in the user's inbox, newest first.
pub async fn inbox(client: &mut Notifications) -> Vec<npb::Notification> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = npb::ListNotificationsRequest {
            page_size: 100,
            page_token,
            unread_only: false,
        };
        let page = client
            .list_notifications(request)
            .await
            .expect("list notifications")
            .into_inner();
        all.extend(page.notifications);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// How many times each invitation id appears across the inboxes.
#[must_use]
pub fn mentions(inboxes: &[Vec<npb::Notification>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for notification in inboxes.iter().flatten() {
        for id in &notification.invitation_ids {
            *counts.entry(id.clone()).or_default() += 1;
        }
    }
    counts
}
