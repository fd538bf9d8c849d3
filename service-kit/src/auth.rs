//! JWT bearer authentication (HS256 with the shared `JWT_SECRET`): minting
//! tokens for people and for the services themselves, and a tonic
//! interceptor that puts the verified [`Caller`] into each request.
//!
//! The header is `authorization: Bearer <token>`: the scheme in any case,
//! then one or more spaces. A token is refused before its `nbf` and after
//! its `exp` (each with [`LEEWAY_SECS`] of clock skew), and when its `sub`
//! or `name` breaks the [`text`](crate::text) rules; `sub` becomes the
//! caller's id in NFC. Error messages say what is wrong with a token but
//! never echo it.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status, service::Interceptor};

use crate::text::{self, TextError};

/// The scope a token needs to publish events to notification-service.
pub const PUBLISH_SCOPE: &str = "events:publish";

/// The shortest secret accepted: HS256 with a short secret can be brute-forced.
pub const MIN_SECRET_BYTES: usize = 16;

/// Seconds of clock skew allowed: a token is still accepted this long after
/// its `exp`, and already this long before its `nbf`.
pub const LEEWAY_SECS: u64 = 5;

/// Most verified tokens remembered; when full, the memory starts afresh.
const MAX_CACHED_TOKENS: usize = 10_000;

/// The registered and private claims our tokens carry. A token from
/// elsewhere may also carry `nbf`, which verification checks.
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

/// Why a token was not minted: verification would refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("the user id {0}")]
    UserId(TextError),
    #[error("the display name {0}")]
    Name(TextError),
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
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: Arc::default(),
        })
    }

    /// Signs a token for `user_id` (in NFC) with its display name, valid
    /// for `ttl`.
    ///
    /// # Errors
    ///
    /// When the user id or the name breaks its [`text`] rule, as
    /// verification would refuse the token.
    ///
    /// # Panics
    ///
    /// Never in practice: HS256 signing of serialisable claims cannot fail.
    pub fn mint(
        &self,
        user_id: &str,
        name: Option<&str>,
        ttl: Duration,
        scope: Option<&str>,
    ) -> Result<String, MintError> {
        let sub = text::user_id(user_id).map_err(MintError::UserId)?;
        let name = match name {
            Some(raw) => text::display_name(raw).map_err(MintError::Name)?,
            None => None,
        };
        let now = unix_now();
        let claims = Claims {
            sub,
            name,
            exp: now.saturating_add(ttl.as_secs()),
            iat: now,
            scope: scope.map(str::to_owned),
        };
        Ok(
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .expect("HS256 signing does not fail"),
        )
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
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidSignature => "the token's signature does not match",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp)",
                ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
                _ => "the token is malformed",
            };
            Status::unauthenticated(reason)
        })?;
        let claims = data.claims;
        let user_id = text::user_id(&claims.sub).map_err(|reason| {
            Status::unauthenticated(format!("the token's subject is not a valid user id: {reason}"))
        })?;
        let name = match claims.name.as_deref() {
            Some(raw) => text::display_name(raw).map_err(|reason| {
                Status::unauthenticated(format!("the token's name claim is not a valid display name: {reason}"))
            })?,
            None => None,
        };
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let caller = Caller { user_id, name, scopes };
        Ok((caller, claims.exp))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The token of an `authorization` header: the scheme `Bearer` in any case,
/// one or more spaces, then the token (trailing blanks ignored).
fn bearer_token(header: &str) -> Option<&str> {
    const SCHEME: &str = "Bearer";
    let (scheme, rest) = header.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim_start_matches(' ').trim_end()).filter(|token| !token.is_empty())
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
            .and_then(bearer_token)
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

    fn mint(keys: &JwtKeys, user: &str, scope: Option<&str>) -> String {
        keys.mint(user, None, Duration::from_secs(60), scope).unwrap()
    }

    /// Signs any claims with `keys`, as a token from elsewhere would be.
    fn sign(keys: &JwtKeys, claims: &impl Serialize) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &keys.encoding).unwrap()
    }

    fn claims(sub: &str, name: Option<&str>) -> Claims {
        Claims {
            sub: sub.into(),
            name: name.map(str::to_owned),
            exp: unix_now() + 60,
            iat: 0,
            scope: None,
        }
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_tampered_one_is_still_refused() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let token = mint(&keys, "alice", Some("a b"));
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
        let token = keys
            .mint("alice", Some("Alice A."), Duration::from_secs(60), None)
            .unwrap();
        let mut auth = Authenticator::new(keys);
        let request = auth.call(request_with(Some(&format!("Bearer {token}")))).unwrap();
        let caller = caller(&request).unwrap();
        assert_eq!(caller.user_id, "alice");
        assert_eq!(caller.name.as_deref(), Some("Alice A."));
    }

    #[test]
    fn the_scheme_is_bearer_in_any_case_then_one_or_more_spaces() {
        for header in [
            "Bearer t.o.k",
            "bearer t.o.k",
            "BEARER t.o.k",
            "Bearer   t.o.k",
            "Bearer t.o.k  ",
        ] {
            assert_eq!(bearer_token(header), Some("t.o.k"), "{header:?}");
        }
        for header in [
            "Bearer",
            "Bearer ",
            "Bearer   ",
            "Bearert.o.k",
            "Bearer\tt.o.k",
            "Basic t.o.k",
            "Bear",
            "",
        ] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
        assert_eq!(bearer_token("Bearer \tt.o.k"), Some("\tt.o.k"), "only spaces separate");
    }

    #[test]
    fn bad_credentials_are_unauthenticated_without_echoing_the_token() {
        let keys = Arc::new(JwtKeys::new(SECRET).unwrap());
        let other = JwtKeys::new("another-secret-0123456789").unwrap();
        let forged = mint(&other, "alice", None);
        let expired = sign(
            &keys,
            &Claims {
                exp: 1_000,
                ..claims("alice", None)
            },
        );
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
    fn a_token_is_refused_before_its_nbf_beyond_the_leeway_and_never_remembered() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let now = unix_now();
        #[derive(Serialize)]
        struct WithNbf {
            sub: &'static str,
            exp: u64,
            nbf: u64,
        }
        let not_before = |nbf: u64| {
            sign(
                &keys,
                &WithNbf {
                    sub: "alice",
                    exp: now + 7200,
                    nbf,
                },
            )
        };

        let early = not_before(now + 3600);
        for _ in 0..2 {
            let status = keys.verify_at(&early, now).unwrap_err();
            assert_eq!(
                (status.code(), status.message()),
                (Code::Unauthenticated, "the token is not valid yet")
            );
        }
        assert!(
            keys.verified.lock().unwrap().is_empty(),
            "a refused token is not remembered"
        );

        // Within the clock skew allowed, or already valid: accepted.
        assert!(keys.verify(&not_before(now + LEEWAY_SECS - 2)).is_ok());
        assert!(keys.verify(&not_before(now - 60)).is_ok());
    }

    #[test]
    fn a_scope_is_required_where_asked() {
        let keys = Arc::new(JwtKeys::new(SECRET).unwrap());
        let user = mint(&keys, "alice", None);
        let service = mint(&keys, "invitation-service", Some(PUBLISH_SCOPE));
        let mut auth = Authenticator::requiring_scope(keys, PUBLISH_SCOPE);
        let refused = auth.call(request_with(Some(&format!("Bearer {user}")))).unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(auth.call(request_with(Some(&format!("Bearer {service}")))).is_ok());
    }

    #[test]
    fn short_secrets_and_bad_subjects_are_refused() {
        assert!(JwtKeys::new("short").is_err());
        let keys = JwtKeys::new(SECRET).unwrap();
        for (sub, reason) in [
            ("", "is required"),
            ("has space", "must not contain whitespace (found U+0020)"),
            (
                "bob\u{202e}",
                "must not contain control or invisible formatting characters (found U+202E)",
            ),
            (&"x".repeat(text::MAX_USER_ID_BYTES + 1), "must be at most 128 bytes"),
        ] {
            let status = keys.verify(&sign(&keys, &claims(sub, None))).unwrap_err();
            assert_eq!(
                (status.code(), status.message()),
                (
                    Code::Unauthenticated,
                    format!("the token's subject is not a valid user id: {reason}").as_str()
                ),
                "{sub:?}"
            );
        }
        let longest = "x".repeat(text::MAX_USER_ID_BYTES);
        assert!(keys.verify(&mint(&keys, &longest, None)).is_ok());
    }

    #[test]
    fn the_subject_becomes_its_nfc_form_and_the_name_follows_the_display_name_rule() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let caller = keys
            .verify(&sign(&keys, &claims("e\u{301}milie", Some("  Ren\u{e9}e "))))
            .unwrap();
        assert_eq!(caller.user_id, "\u{e9}milie");
        assert_eq!(caller.name.as_deref(), Some("Ren\u{e9}e"));
        assert_eq!(
            keys.verify(&sign(&keys, &claims("bob", Some("  ")))).unwrap().name,
            None
        );

        let status = keys
            .verify(&sign(&keys, &claims("bob", Some("Bob\u{1b}[0m"))))
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (
                Code::Unauthenticated,
                "the token's name claim is not a valid display name: must not contain control characters (found \
                 U+001B)"
            )
        );
    }

    #[test]
    fn mint_refuses_what_verification_would_refuse() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            keys.mint("bo\u{200b}b", None, ttl, None),
            Err(MintError::UserId(TextError::Invisible('\u{200b}')))
        );
        assert_eq!(
            keys.mint("bob", Some("Bob\nAdmin"), ttl, None),
            Err(MintError::Name(TextError::Control('\n')))
        );
        assert_eq!(
            keys.mint("bob", Some(&"é".repeat(101)), ttl, None)
                .unwrap_err()
                .to_string(),
            "the display name must be at most 100 characters (this one has 101)"
        );
        let token = keys.mint("e\u{301}milie", Some(" "), ttl, None).unwrap();
        let caller = keys.verify(&token).unwrap();
        assert_eq!((caller.user_id.as_str(), caller.name), ("\u{e9}milie", None));
    }
}
