//! Parsing helpers for configuration values given as flags or environment
//! variables.

use std::{net::SocketAddr, time::Duration};

/// Parses a duration such as `30s`, `15m`, `21d` or `1h 30m`.
///
/// # Errors
///
/// A message naming the accepted forms when `input` is not a duration.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    humantime::parse_duration(input.trim())
        .map_err(|e| format!("`{input}` is not a duration ({e}); use forms like 30s, 15m, 24h, 21d"))
}

/// The JWT secret's flags, which every binary that signs or checks tokens
/// takes. Their values are never shown in `--help`.
#[derive(Debug, Clone, clap::Args)]
pub struct SecretArgs {
    /// The HS256 secret shared by both services.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A file holding the secret, used when JWT_SECRET is unset.
    #[arg(long, env = "JWT_SECRET_FILE", hide_env_values = true)]
    pub jwt_secret_file: Option<std::path::PathBuf>,
}

impl SecretArgs {
    /// The secret, from the flags or their variables.
    ///
    /// # Errors
    ///
    /// A message saying how to set the secret.
    pub fn resolve(&self) -> Result<String, String> {
        resolve_jwt_secret(self.jwt_secret.as_deref(), self.jwt_secret_file.as_deref())
    }
}

/// An address that may be turned off: an empty value means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalAddr(pub Option<SocketAddr>);

/// Parses `HOST:PORT` (an IP address and a port), or nothing for none.
///
/// # Errors
///
/// A message with the expected form.
pub fn parse_optional_addr(input: &str) -> Result<OptionalAddr, String> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(OptionalAddr(None));
    }
    input
        .parse()
        .map(|addr| OptionalAddr(Some(addr)))
        .map_err(|_| format!("`{input}` is not an address such as 0.0.0.0:9464; leave it empty to turn this off"))
}

/// The JWT secret, from `JWT_SECRET` (which wins) or from the file named by
/// `JWT_SECRET_FILE`.
///
/// # Errors
///
/// A message saying how to set the secret when neither gives one, or when
/// the file cannot be read.
pub fn resolve_jwt_secret(secret: Option<&str>, file: Option<&std::path::Path>) -> Result<String, String> {
    if let Some(secret) = secret_value("JWT_SECRET", secret, file)? {
        return Ok(secret);
    }
    Err(
        "JWT_SECRET is not set: both services need the same secret to sign and check tokens, \
         for example `export JWT_SECRET=$(openssl rand -hex 32)`"
            .to_owned(),
    )
}

/// A secret given as `VARIABLE` (which wins) or in the file named by
/// `VARIABLE_FILE`, trimmed; `None` when neither is set.
///
/// # Errors
///
/// When the file cannot be read or holds nothing.
pub fn secret_value(
    variable: &str,
    secret: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, String> {
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        return Ok(Some(secret.to_owned()));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {variable}_FILE {}: {e}", path.display()))?;
    match text.trim() {
        "" => Err(format!("{variable}_FILE {} is empty", path.display())),
        secret => Ok(Some(secret.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_documented_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("21d"), Ok(Duration::from_secs(21 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        let err = parse_duration("soon").unwrap_err();
        assert!(err.contains("30s"), "{err}");
    }

    #[test]
    fn an_optional_address_may_be_empty() {
        assert_eq!(parse_optional_addr(""), Ok(OptionalAddr(None)));
        assert_eq!(parse_optional_addr(" "), Ok(OptionalAddr(None)));
        assert_eq!(
            parse_optional_addr("127.0.0.1:9464"),
            Ok(OptionalAddr(Some(SocketAddr::from(([127, 0, 0, 1], 9464)))))
        );
        let err = parse_optional_addr("localhost").unwrap_err();
        assert!(err.contains("empty to turn this off"), "{err}");
    }

    #[test]
    fn secret_from_variable_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file-0123456789\n").unwrap();
        assert_eq!(resolve_jwt_secret(Some("from-env"), Some(&path)).unwrap(), "from-env");
        assert_eq!(resolve_jwt_secret(None, Some(&path)).unwrap(), "from-file-0123456789");
        let missing = resolve_jwt_secret(None, None).unwrap_err();
        assert!(missing.contains("JWT_SECRET"), "{missing}");
        let unreadable = resolve_jwt_secret(None, Some(&dir.path().join("nope"))).unwrap_err();
        assert!(unreadable.contains("JWT_SECRET_FILE"), "{unreadable}");
    }
}
