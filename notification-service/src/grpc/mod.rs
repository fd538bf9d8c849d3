//! The thin gRPC layer of `notifications.v1.NotificationService`: the caller
//! comes from the token alone; handlers parse, call the [`Notifier`], and
//! convert back. Status codes are chosen in [`crate::error`] only.

mod preferences;

use proto::notifications::v1::{self as pb, notification_service_server::NotificationService};
use service_kit::{
    auth,
    limits::{Class, RateLimits},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{convert, error::Error, service::Notifier};

/// Page size when the request gives none.
const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page; larger requests get this many.
const MAX_PAGE_SIZE: usize = 100;
/// Most ids one MarkRead may name.
pub const MAX_MARK_READ_IDS: usize = 1000;

/// What `ops.v1.Admin/Backup` copies: the database, with writes held.
#[derive(Debug, Clone)]
pub struct Backups(Notifier);

impl Backups {
    #[must_use]
    pub fn new(notifier: Notifier) -> Self {
        Self(notifier)
    }
}

#[tonic::async_trait]
impl service_kit::admin::BackupSource for Backups {
    async fn backup(&self, destination: std::path::PathBuf) -> Result<service_kit::storage::BackupReport, Status> {
        Ok(self.0.backup(destination).await?)
    }
}

#[derive(Debug, Clone)]
pub struct NotificationApi {
    notifier: Notifier,
    limits: RateLimits,
}

impl NotificationApi {
    #[must_use]
    pub fn new(notifier: Notifier, limits: RateLimits) -> Self {
        Self { notifier, limits }
    }

    /// The authenticated caller, once their rate for this class of call
    /// allows it.
    fn caller<T>(&self, request: &Request<T>, class: Class) -> Result<String, Status> {
        let user = auth::caller(request)?.user_id.clone();
        self.limits.check(&user, class).map_err(Error::RateLimited)?;
        Ok(user)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Status {
    Status::from(Error::InvalidArgument {
        field,
        reason: reason.into(),
    })
}

fn page(page_size: i32, page_token: &str) -> Result<(usize, Option<u64>), Status> {
    let limit = match usize::try_from(page_size) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(n) => n.min(MAX_PAGE_SIZE),
        Err(_) => return Err(invalid("page_size", "must not be negative")),
    };
    let before = if page_token.is_empty() {
        None
    } else {
        Some(page_token.parse::<u64>().map_err(|_| {
            invalid(
                "page_token",
                "is not a token this service issued; pass next_page_token as given",
            )
        })?)
    };
    Ok((limit, before))
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    #[tracing::instrument(skip_all, fields(rpc = "GetPreferences"), err(level = "debug"))]
    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let user = self.caller(&request, Class::Read)?;
        let preferences = self.notifier.preferences(user).await?;
        Ok(Response::new(preferences::to_pb(&preferences)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "UpdatePreferences"), err(level = "debug"))]
    async fn update_preferences(
        &self,
        request: Request<pb::UpdatePreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let user = self.caller(&request, Class::Write)?;
        let pb::UpdatePreferencesRequest {
            preferences: update,
            update_mask,
        } = request.into_inner();
        let update = update.ok_or_else(|| invalid("preferences", "is required"))?;
        let paths = update_mask.map(|m| m.paths).unwrap_or_default();
        let merged = if paths.is_empty() {
            let replacement = preferences::from_pb(update, self.notifier.channels())?;
            self.notifier.set_preferences(user, replacement.clone()).await?;
            replacement
        } else {
            // Read, overlay and write in one atomic step: two clients that
            // change different fields at once must both see their change kept.
            let available = self.notifier.channels();
            self.notifier
                .update_preferences(user, move |current| {
                    preferences::apply_mask(&current, &update, &paths, available)
                })
                .await?
        };
        Ok(Response::new(preferences::to_pb(&merged)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListNotifications"), err(level = "debug"))]
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let user = self.caller(&request, Class::Read)?;
        let pb::ListNotificationsRequest {
            page_size,
            page_token,
            unread_only,
        } = request.into_inner();
        let (limit, before) = page(page_size, &page_token)?;
        let page = self.notifier.inbox(user, unread_only, before, limit).await?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: page.items.iter().map(convert::notification).collect(),
            next_page_token: page.next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    type SubscribeStream = ReceiverStream<Result<pb::NotificationUpdate, Status>>;

    #[tracing::instrument(skip_all, fields(rpc = "Subscribe"), err(level = "debug"))]
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let user = self.caller(&request, Class::Write)?;
        let pb::SubscribeRequest { resume_after } = request.into_inner();
        Ok(Response::new(self.notifier.subscribe(user, resume_after).await?))
    }

    #[tracing::instrument(skip_all, fields(rpc = "MarkRead"), err(level = "debug"))]
    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        let user = self.caller(&request, Class::Write)?;
        let pb::MarkReadRequest { notification_ids, all } = request.into_inner();
        let numbers = match (all, notification_ids.is_empty()) {
            (true, true) => None,
            (true, false) => return Err(invalid("all", "give either notification_ids or all=true, not both")),
            (false, true) => return Err(invalid("notification_ids", "give notification_ids, or all=true")),
            (false, false) => {
                if notification_ids.len() > MAX_MARK_READ_IDS {
                    return Err(invalid(
                        "notification_ids",
                        format!("at most {MAX_MARK_READ_IDS} at once"),
                    ));
                }
                let numbers = notification_ids
                    .iter()
                    .map(|id| id.parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        invalid(
                            "notification_ids",
                            "must be notification ids as returned by this service",
                        )
                    })?;
                Some(numbers)
            }
        };
        let unread_count = self.notifier.mark_read(user, numbers).await?;
        Ok(Response::new(pb::MarkReadResponse { unread_count }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetUnreadCount"), err(level = "debug"))]
    async fn get_unread_count(
        &self,
        request: Request<pb::GetUnreadCountRequest>,
    ) -> Result<Response<pb::GetUnreadCountResponse>, Status> {
        let user = self.caller(&request, Class::Read)?;
        let unread_count = self.notifier.unread_count(user).await?;
        Ok(Response::new(pb::GetUnreadCountResponse { unread_count }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetDeliveryStatus"), err(level = "debug"))]
    async fn get_delivery_status(
        &self,
        request: Request<pb::GetDeliveryStatusRequest>,
    ) -> Result<Response<pb::GetDeliveryStatusResponse>, Status> {
        let user = self.caller(&request, Class::Read)?;
        let pb::GetDeliveryStatusRequest { invitation_id } = request.into_inner();
        // The rule invitation-service applies, so a malformed id gets the same
        // answer from both; the canonical text is how events name the id.
        let id = service_kit::ids::InvitationId::parse(&invitation_id)
            .map_err(|reason| invalid("invitation_id", reason.to_string()))?;
        let status = self.notifier.delivery_status(id.to_string(), user).await?;
        Ok(Response::new(convert::delivery_status(&status)))
    }
}
