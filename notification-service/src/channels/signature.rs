//! Webhook signatures as the Standard Webhooks specification defines them:
//! HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the secret's
//! bytes (the base64 after `whsec_`), sent as `v1,<base64>`.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ring::hmac;

/// The shortest and longest secrets the specification allows.
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;

/// A signing secret. Its `Debug` form shows nothing of it.
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` of 24 to 64 bytes.
    ///
    /// # Errors
    ///
    /// A message saying what form is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or("the webhook secret must look like whsec_<base64> (e.g. whsec_$(openssl rand -base64 32))")?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "the webhook secret's part after whsec_ is not base64")?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(format!(
                "the webhook secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes (it holds {})",
                bytes.len()
            ));
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The `webhook-signature` header's value for one try.
    #[must_use]
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector every Standard Webhooks library checks (e.g.
    /// libraries/go/webhook_test.go, TestWebhookSign, in the specification's
    /// repository).
    #[test]
    fn signs_the_specifications_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        assert!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap_err()
                .contains("whsec_")
        );
        assert!(
            WebhookSecret::parse("whsec_not base64!")
                .unwrap_err()
                .contains("base64")
        );
        // The specification's example key is 24 bytes, its floor.
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert!(WebhookSecret::parse(&short).unwrap_err().contains("24 to 64"));
        let good = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let secret = WebhookSecret::parse(&good).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
    }
}
