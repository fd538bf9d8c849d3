//! The thin gRPC layer: each handler authenticates (the caller comes from the
//! token alone), parses the request into domain values, calls the service,
//! and converts the result back. Status codes are chosen in
//! [`crate::error`] only.

mod paging;

use proto::invitations::v1::{self as pb, invitation_service_server::InvitationService};
use service_kit::{
    auth,
    limits::{Class, RateLimits},
};
use tonic::{Request, Response, Status};

use crate::{
    convert,
    domain::{Action, DomainError, IdempotencyKey, Invitation, InvitationId, Note, SendRequest, UserId, ViewerRole},
    error::Error,
    service::Invitations,
};

/// What `ops.v1.Admin/Backup` copies: the database, between two of the
/// writer's batches.
#[derive(Debug, Clone)]
pub struct Backups(Invitations);

impl Backups {
    #[must_use]
    pub fn new(invitations: Invitations) -> Self {
        Self(invitations)
    }
}

#[tonic::async_trait]
impl service_kit::admin::BackupSource for Backups {
    async fn backup(&self, destination: std::path::PathBuf) -> Result<service_kit::storage::BackupReport, Status> {
        Ok(self.0.backup(destination).await?)
    }
}

/// The `invitations.v1.InvitationService` implementation.
#[derive(Debug, Clone)]
pub struct InvitationApi {
    invitations: Invitations,
    limits: RateLimits,
}

impl InvitationApi {
    #[must_use]
    pub fn new(invitations: Invitations, limits: RateLimits) -> Self {
        Self { invitations, limits }
    }

    /// The authenticated caller, as a user id and display name, once their
    /// rate for this class of call allows it.
    fn caller<T>(&self, request: &Request<T>, class: Class) -> Result<(UserId, String), Status> {
        let (user, name) = caller(request)?;
        self.limits
            .check(user.as_str(), class)
            .map_err(|limited| Status::from(Error::RateLimited(limited)))?;
        Ok((user, name))
    }

    fn note(&self, field: &'static str, raw: &str) -> Result<Note, Status> {
        Ok(Note::parse(field, raw, self.invitations.policy().max_note_chars).map_err(Error::from)?)
    }
}

/// The authenticated caller: their user id and display name (empty without one).
fn caller<T>(request: &Request<T>) -> Result<(UserId, String), Status> {
    let caller = auth::caller(request)?;
    let id = UserId::parse("sub", &caller.user_id).map_err(|_| Status::unauthenticated("invalid token subject"))?;
    Ok((id, caller.name.clone().unwrap_or_default()))
}

fn refuse(e: DomainError) -> Status {
    Status::from(Error::from(e))
}

fn parse<T>(result: Result<T, DomainError>) -> Result<T, Status> {
    result.map_err(refuse)
}

/// `invitation_id`, read with the rule both services share.
fn parse_invitation_id(raw: &str) -> Result<InvitationId, Status> {
    InvitationId::parse(raw).map_err(|reason| refuse(DomainError::invalid("invitation_id", reason)))
}

/// `other_user_id`: a valid id that is not the caller's.
fn other_user(raw: &str, viewer: &UserId) -> Result<UserId, Status> {
    let other = parse(UserId::parse("other_user_id", raw))?;
    if other == *viewer {
        return Err(refuse(DomainError::InvalidArgument {
            field: "other_user_id",
            reason: "must be another user, not you".into(),
        }));
    }
    Ok(other)
}

/// The invitation as `viewer` may see it (an ignored one is pending to its
/// sender).
fn view(inv: &Invitation, viewer: &UserId) -> pb::Invitation {
    let role = inv.role_of(viewer).unwrap_or(ViewerRole::Sender);
    convert::invitation(inv, inv.state_seen_by(role))
}

#[tonic::async_trait]
impl InvitationService for InvitationApi {
    #[tracing::instrument(skip_all, fields(rpc = "SendInvitation"), err(level = "debug"))]
    async fn send_invitation(
        &self,
        request: Request<pb::SendInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let (sender, sender_name) = self.caller(&request, Class::Write)?;
        let pb::SendInvitationRequest {
            recipient_id,
            message,
            idempotency_key,
        } = request.into_inner();
        let send = SendRequest {
            sender: sender.clone(),
            sender_name,
            recipient: parse(UserId::parse("recipient_id", &recipient_id))?,
            message: self.note("message", &message)?,
        };
        let key = parse(IdempotencyKey::parse(&idempotency_key))?;
        let inv = self.invitations.send(send, key).await?;
        tracing::info!(invitation = %inv.id, "invitation sent");
        Ok(Response::new(view(&inv, &sender)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "WithdrawInvitation"), err(level = "debug"))]
    async fn withdraw_invitation(
        &self,
        request: Request<pb::WithdrawInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let (actor, _) = self.caller(&request, Class::Write)?;
        let pb::WithdrawInvitationRequest { invitation_id, note } = request.into_inner();
        let id = parse_invitation_id(&invitation_id)?;
        let action = Action::Withdraw {
            note: self.note("note", &note)?,
        };
        let inv = self.invitations.act(actor.clone(), id, action).await?;
        tracing::info!(invitation = %inv.id, "invitation withdrawn");
        Ok(Response::new(view(&inv, &actor)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "AcceptInvitation"), err(level = "debug"))]
    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let (actor, _) = self.caller(&request, Class::Write)?;
        let pb::AcceptInvitationRequest { invitation_id } = request.into_inner();
        let id = parse_invitation_id(&invitation_id)?;
        let inv = self.invitations.act(actor.clone(), id, Action::Accept).await?;
        tracing::info!(invitation = %inv.id, "invitation accepted");
        Ok(Response::new(view(&inv, &actor)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "IgnoreInvitation"), err(level = "debug"))]
    async fn ignore_invitation(
        &self,
        request: Request<pb::IgnoreInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let (actor, _) = self.caller(&request, Class::Write)?;
        let pb::IgnoreInvitationRequest { invitation_id } = request.into_inner();
        let id = parse_invitation_id(&invitation_id)?;
        let inv = self.invitations.act(actor.clone(), id, Action::Ignore).await?;
        tracing::info!(invitation = %inv.id, "invitation ignored");
        Ok(Response::new(view(&inv, &actor)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetInvitation"), err(level = "debug"))]
    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let (viewer, _) = self.caller(&request, Class::Read)?;
        let pb::GetInvitationRequest { invitation_id } = request.into_inner();
        let id = parse_invitation_id(&invitation_id)?;
        let inv = self.invitations.get(&viewer, &id)?;
        Ok(Response::new(view(&inv, &viewer)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListSentInvitations"), err(level = "debug"))]
    async fn list_sent_invitations(
        &self,
        request: Request<pb::ListSentInvitationsRequest>,
    ) -> Result<Response<pb::ListSentInvitationsResponse>, Status> {
        let (viewer, _) = self.caller(&request, Class::Read)?;
        let pb::ListSentInvitationsRequest { page_size, page_token } = request.into_inner();
        let (limit, after) = paging::parse(page_size, &page_token)?;
        let page = self.invitations.sent(viewer.clone(), after, limit).await?;
        Ok(Response::new(pb::ListSentInvitationsResponse {
            invitations: page.items.iter().map(|inv| view(inv, &viewer)).collect(),
            next_page_token: paging::token(page.next.as_deref()),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListReceivedInvitations"), err(level = "debug"))]
    async fn list_received_invitations(
        &self,
        request: Request<pb::ListReceivedInvitationsRequest>,
    ) -> Result<Response<pb::ListReceivedInvitationsResponse>, Status> {
        let (viewer, _) = self.caller(&request, Class::Read)?;
        let pb::ListReceivedInvitationsRequest { page_size, page_token } = request.into_inner();
        let (limit, after) = paging::parse(page_size, &page_token)?;
        let page = self.invitations.received(viewer.clone(), after, limit).await?;
        Ok(Response::new(pb::ListReceivedInvitationsResponse {
            invitations: page.items.iter().map(|inv| view(inv, &viewer)).collect(),
            next_page_token: paging::token(page.next.as_deref()),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetRelationship"), err(level = "debug"))]
    async fn get_relationship(
        &self,
        request: Request<pb::GetRelationshipRequest>,
    ) -> Result<Response<pb::GetRelationshipResponse>, Status> {
        let (viewer, _) = self.caller(&request, Class::Read)?;
        let pb::GetRelationshipRequest { other_user_id } = request.into_inner();
        let other = other_user(&other_user_id, &viewer)?;
        let now = self.invitations.now();
        let pair = self.invitations.pair(&viewer, &other)?;
        let rel = pair.relationship_for(&viewer, now);
        Ok(Response::new(pb::GetRelationshipResponse {
            state: convert::relationship_state(rel.state).into(),
            invitation_id: rel.invitation_id.map(|id| id.to_string()).unwrap_or_default(),
            can_invite: rel.can_invite,
            invite_available_at: rel.invite_available_at.map(convert::timestamp),
            connected_at: rel.connected_at.map(convert::timestamp),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListConnections"), err(level = "debug"))]
    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let (viewer, _) = self.caller(&request, Class::Read)?;
        let pb::ListConnectionsRequest { page_size, page_token } = request.into_inner();
        let (limit, after) = paging::parse(page_size, &page_token)?;
        let page = self.invitations.connections(viewer, after, limit).await?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: page
                .items
                .iter()
                .map(|(user, at)| pb::Connection {
                    user_id: user.to_string(),
                    connected_at: Some(convert::timestamp(*at)),
                })
                .collect(),
            next_page_token: paging::token(page.next.as_deref()),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RemoveConnection"), err(level = "debug"))]
    async fn remove_connection(&self, request: Request<pb::RemoveConnectionRequest>) -> Result<Response<()>, Status> {
        let (viewer, _) = self.caller(&request, Class::Write)?;
        let pb::RemoveConnectionRequest { other_user_id } = request.into_inner();
        let other = other_user(&other_user_id, &viewer)?;
        self.invitations.remove_connection(viewer, other).await?;
        Ok(Response::new(()))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetInvitationStats"), err(level = "debug"))]
    async fn get_invitation_stats(
        &self,
        request: Request<pb::GetInvitationStatsRequest>,
    ) -> Result<Response<pb::InvitationStats>, Status> {
        let (viewer, _) = self.caller(&request, Class::Read)?;
        let pb::GetInvitationStatsRequest {} = request.into_inner();
        let stats = self.invitations.stats(viewer).await?;
        Ok(Response::new(pb::InvitationStats {
            sent_last_7_days: stats.sent_last_7_days,
            weekly_limit: stats.weekly_limit,
            withdrawn_last_30_days: stats.withdrawn_last_30_days,
            pending_sent: stats.pending_sent,
            oldest_pending_at: stats.oldest_pending_at.map(convert::timestamp),
            next_send_available_at: stats.next_send_available_at.map(convert::timestamp),
        }))
    }
}
