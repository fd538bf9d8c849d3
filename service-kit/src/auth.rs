//! JWT bearer authentication (HS256 with the shared `JWT_SECRET`): minting
//! tokens for people and for the services themselves, and a tonic
//! interceptor that puts the verified [`Caller`] into each request.
//!
//! Error messages say what is wrong with a token but never echo it.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status, service::Interceptor};

/// The scope a token needs to publish events to notification-service.
pub const PUBLISH_SCOPE: &str = "events:publish";

/// The shortest secret accepted: HS256 with a short secret can be brute-forced.
pub const MIN_SECRET_BYTES: usize = 16;

/// Longest user id accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// Seconds a token is still accepted after its `exp`.
const LEEWAY_SECS: u64 = 5;

/// Most verified tokens remembered; when full, the memory starts afresh.
const MAX_CACHED_TOKENS: usize = 10_000;

/// The registered and private claims our tokens carry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    // `sub` and `exp` default when absent so that jsonwebtoken's own check
    // of required claims runs and can say which one is missing.
    #[serde(default)]
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    /// Space-separated scopes, as in OAuth 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub name: Option<String>,
    scopes: Vec<String>,
}

impl Caller {
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a secret was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the JWT secret (JWT_SECRET or JWT_SECRET_FILE) is too short: use at least {MIN_SECRET_BYTES} bytes, for example `openssl rand -hex 32`"
    )]
    TooShort,
}

/// Signing and verification keys made from the shared secret.
///
/// Verification remembers the tokens it accepted, with their expiry: a
/// client sends the same token with every request, and checking its HMAC
/// again costs more than the rest of a read. A token is only ever accepted
/// from memory if these very bytes were verified with this key, and never
/// after it expires.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    verified: Arc<Mutex<Verified>>,
}

/// Tokens accepted so far: the token → its caller and `exp`.
type Verified = HashMap<Box<str>, (Caller, u64)>;

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys").finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// # Errors
    ///
    /// [`SecretError::TooShort`] for a secret under [`MIN_SECRET_BYTES`].
    pub fn new(secret: &str) -> Result<Self, SecretError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: Arc::default(),
        })
    }

    /// Signs a token for `user_id`, valid for `ttl`.
    ///
    /// # Panics
    ///
    /// Never in practice: HS256 signing of serialisable claims cannot fail.
    #[must_use]
    pub fn mint(&self, user_id: &str, name: Option<&str>, ttl: Duration, scope: Option<&str>) -> String {
        let now = unix_now();
        let claims = Claims {
            sub: user_id.to_owned(),
            name: name.map(str::to_owned),
            exp: now.saturating_add(ttl.as_secs()),
            iat: now,
            scope: scope.map(str::to_owned),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing does not fail")
    }

    /// Verifies a token and returns its caller.
    ///
    /// # Errors
    ///
    /// UNAUTHENTICATED, with a message saying what is wrong.
    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        self.verify_at(token, unix_now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Caller, Status> {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        match verified.get(token) {
            Some((caller, exp)) if now <= exp.saturating_add(LEEWAY_SECS) => return Ok(caller.clone()),
            Some(_) => {
                verified.remove(token);
                return Err(Status::unauthenticated("the token has expired"));
            }
            None => {}
        }
        drop(verified);
        let (caller, exp) = self.decode(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= MAX_CACHED_TOKENS {
            verified.clear();
        }
        verified.insert(token.into(), (caller.clone(), exp));
        Ok(caller)
    }

    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "jsonwebtoken's ErrorKind is non-exhaustive; every other kind is a malformed token"
    )]
    fn decode(&self, token: &str) -> Result<(Caller, u64), Status> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            let reason = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidSignature => "the token's signature does not match",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp)",
                ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
                _ => "the token is malformed",
            };
            Status::unauthenticated(reason)
        })?;
        let claims = data.claims;
        if !is_valid_user_id(&claims.sub) {
            return Err(Status::unauthenticated(format!(
                "the token's subject is not a valid user id (1 to {MAX_USER_ID_BYTES} bytes, no spaces or control characters)"
            )));
        }
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let caller = Caller {
            user_id: claims.sub,
            name: claims.name.filter(|n| !n.trim().is_empty()),
            scopes,
        };
        Ok((caller, claims.exp))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The rule for user ids, shared by tokens and request fields: 1 to 128
/// bytes, no whitespace or control characters.
#[must_use]
pub fn is_valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID_BYTES && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A tonic interceptor that verifies the bearer token, optionally requires a
/// scope, and stores the [`Caller`] in the request's extensions.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: Arc<JwtKeys>,
    required_scope: Option<&'static str>,
}

impl Authenticator {
    #[must_use]
    pub fn new(keys: Arc<JwtKeys>) -> Self {
        Self {
            keys,
            required_scope: None,
        }
    }

    #[must_use]
    pub fn requiring_scope(keys: Arc<JwtKeys>, scope: &'static str) -> Self {
        Self {
            keys,
            required_scope: Some(scope),
        }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing credentials: send the header `authorization: Bearer <token>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))?;
        let caller = self.keys.verify(token)?;
        if let Some(scope) = self.required_scope
            && !caller.has_scope(scope)
        {
            return Err(Status::permission_denied(format!(
                "this service requires a token with scope `{scope}`"
            )));
        }
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller an [`Authenticator`] stored in the request.
///
/// # Errors
///
/// UNAUTHENTICATED when the service was mounted without the interceptor,
/// which is a wiring bug rather than a client error.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("missing credentials"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const SECRET: &str = "test-secret-0123456789abcdef";

    fn request_with(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request.metadata_mut().insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_tampered_one_is_still_refused() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let token = keys.mint("alice", None, Duration::from_secs(60), Some("a b"));
        let now = unix_now();
        let first = keys.verify_at(&token, now).unwrap();
        assert_eq!(
            keys.verify_at(&token, now).unwrap(),
            first,
            "the same caller from memory"
        );

        // The same claims under another signature are not the remembered bytes.
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        let tampered = format!("{unsigned}.{}", "A".repeat(43));
        let status = keys.verify_at(&tampered, now).unwrap_err();
        assert!(status.message().contains("signature"), "{}", status.message());

        // Accepted through the leeway, refused after it, even from memory.
        let (_, exp) = keys.decode(&token).unwrap();
        assert!(keys.verify_at(&token, exp + LEEWAY_SECS).is_ok());
        let status = keys.verify_at(&token, exp + LEEWAY_SECS + 1).unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unauthenticated, "the token has expired")
        );
    }

    #[test]
    fn a_minted_token_authenticates_its_subject() {
        let keys = Arc::new(JwtKeys::new(SECRET).unwrap());
        let token = keys.mint("alice", Some("Alice A."), Duration::from_secs(60), None);
        let mut auth = Authenticator::new(keys);
        let request = auth.call(request_with(Some(&format!("Bearer {token}")))).unwrap();
        let caller = caller(&request).unwrap();
        assert_eq!(caller.user_id, "alice");
        assert_eq!(caller.name.as_deref(), Some("Alice A."));
    }

    #[test]
    fn bad_credentials_are_unauthenticated_without_echoing_the_token() {
        let keys = Arc::new(JwtKeys::new(SECRET).unwrap());
        let other = JwtKeys::new("another-secret-0123456789").unwrap();
        let forged = other.mint("alice", None, Duration::from_secs(60), None);
        let mut expired_keys = JwtKeys::new(SECRET).unwrap();
        expired_keys.validation.leeway = 0;
        let expired = {
            let claims = Claims {
                sub: "alice".into(),
                name: None,
                exp: 1_000,
                iat: 0,
                scope: None,
            };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
        };
        let mut auth = Authenticator::new(keys);
        for (header, expected) in [
            (None, "missing credentials"),
            (Some("Basic abc".to_owned()), "Bearer <token>"),
            (Some("Bearer ".to_owned()), "Bearer <token>"),
            (Some("Bearer not.a.jwt".to_owned()), "malformed"),
            (Some(format!("Bearer {forged}")), "signature"),
            (Some(format!("Bearer {expired}")), "expired"),
        ] {
            let status = auth.call(request_with(header.as_deref())).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
            assert!(status.message().contains(expected), "{header:?}: {}", status.message());
            assert!(!status.message().contains(&forged));
        }
    }

    #[test]
    fn a_scope_is_required_where_asked() {
        let keys = Arc::new(JwtKeys::new(SECRET).unwrap());
        let user = keys.mint("alice", None, Duration::from_secs(60), None);
        let service = keys.mint("invitation-service", None, Duration::from_secs(60), Some(PUBLISH_SCOPE));
        let mut auth = Authenticator::requiring_scope(keys, PUBLISH_SCOPE);
        let refused = auth.call(request_with(Some(&format!("Bearer {user}")))).unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(auth.call(request_with(Some(&format!("Bearer {service}")))).is_ok());
    }

    #[test]
    fn short_secrets_and_bad_subjects_are_refused() {
        assert!(JwtKeys::new("short").is_err());
        let keys = JwtKeys::new(SECRET).unwrap();
        for sub in ["", "has space", &"x".repeat(MAX_USER_ID_BYTES + 1)] {
            let token = keys.mint(sub, None, Duration::from_secs(60), None);
            assert_eq!(
                keys.verify(&token).unwrap_err().code(),
                Code::Unauthenticated,
                "{sub:?}"
            );
        }
        let longest = "x".repeat(MAX_USER_ID_BYTES);
        assert!(
            keys.verify(&keys.mint(&longest, None, Duration::from_secs(60), None))
                .is_ok()
        );
    }
}
