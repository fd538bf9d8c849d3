//! The gRPC contract of the invitation and notification services: generated
//! messages, clients and servers, and the encoded descriptor set for reflection.

#![forbid(unsafe_code)]

/// Generated code; lints that do not fit generated code are relaxed here only.
#[allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::wildcard_enum_match_arm,
    rust_2018_idioms
)]
mod generated {
    pub mod invitations {
        pub mod v1 {
            tonic::include_proto!("invitations.v1");
        }
    }
    pub mod notifications {
        pub mod v1 {
            tonic::include_proto!("notifications.v1");
        }
    }
    pub mod ops {
        pub mod v1 {
            tonic::include_proto!("ops.v1");
        }
    }
}

pub use generated::{invitations, notifications, ops};

impl invitations::v1::invitation_event::Kind {
    /// The name of the event's kind, as its field in the `kind` oneof.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sent(_) => "sent",
            Self::Withdrawn(_) => "withdrawn",
            Self::Accepted(_) => "accepted",
            Self::Ignored(_) => "ignored",
            Self::Expired(_) => "expired",
            Self::Reminded(_) => "reminded",
        }
    }
}

/// The encoded `FileDescriptorSet` of every service in the contract, for
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));

/// Fully qualified service names, as health and reflection report them.
pub mod service_names {
    pub const INVITATION_SERVICE: &str = "invitations.v1.InvitationService";
    pub const NOTIFICATION_SERVICE: &str = "notifications.v1.NotificationService";
    pub const EVENT_INGEST: &str = "notifications.v1.EventIngest";
    pub const ADMIN: &str = "ops.v1.Admin";
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    #[test]
    fn descriptor_set_decodes_and_names_every_service() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        let services: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service
                    .iter()
                    .map(move |service| format!("{package}.{}", service.name()))
            })
            .collect();
        for name in [
            super::service_names::INVITATION_SERVICE,
            super::service_names::NOTIFICATION_SERVICE,
            super::service_names::EVENT_INGEST,
            super::service_names::ADMIN,
        ] {
            assert!(services.iter().any(|s| s == name), "{name} missing from {services:?}");
        }
    }
}
