//! The channels' settings: flags, each also read from its environment
//! variable, and the checked values they produce (tests build those).

use std::{path::PathBuf, time::Duration};

use clap::Args;
use lettre::message::Mailbox;
use service_kit::config::{parse_duration, secret_value};

use super::signature::WebhookSecret;
use crate::domain::{Channel, Channels};

/// E-mail through SMTP.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// From `smtp://host[:port]`.
    pub host: String,
    pub port: u16,
    pub from: Mailbox,
    /// How long a mail is retried before it is marked failed.
    pub max_retry_age: Duration,
    /// How long one SMTP conversation may take.
    pub timeout: Duration,
}

/// Push through the operator's webhook. Its `Debug` form leaves the secret
/// out.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: http::Uri,
    pub secret: WebhookSecret,
    pub max_retry_age: Duration,
    /// How long one call may take (the specification suggests 15 to 30 s).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ChannelSettings {
    pub mail: Option<MailSettings>,
    pub webhook: Option<WebhookSettings>,
    /// The wait before the first retry; it doubles (with jitter) up to an
    /// hour.
    pub first_backoff: Duration,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            mail: None,
            webhook: None,
            first_backoff: Duration::from_secs(5),
        }
    }
}

impl ChannelSettings {
    /// The channels the server offers: IN_APP always.
    #[must_use]
    pub fn available(&self) -> Channels {
        let mut channels = Channels::IN_APP;
        if self.mail.is_some() {
            channels = channels.with(Channel::Email);
        }
        if self.webhook.is_some() {
            channels = channels.with(Channel::Push);
        }
        channels
    }
}

#[derive(Debug, Clone, Args)]
pub struct ChannelArgs {
    /// The SMTP server e-mail goes through, e.g. smtp://mail:25 (no TLS:
    /// relay through a local MTA for that); unset: no e-mail.
    #[arg(long, env = "NOTIFICATION_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of every mail.
    #[arg(
        long,
        env = "NOTIFICATION_MAIL_FROM",
        hide_env_values = true,
        default_value = "Notifications <notifications@localhost>"
    )]
    pub mail_from: String,
    /// How long a mail that cannot be sent is retried.
    #[arg(long, env = "NOTIFICATION_MAIL_MAX_RETRY_AGE", hide_env_values = true, default_value = "24h",
          value_parser = parse_duration)]
    pub mail_max_retry_age: Duration,
    /// The operator's webhook push goes to, e.g. http://relay:8080/push
    /// (http only); unset: no push.
    #[arg(long, env = "NOTIFICATION_WEBHOOK_URL", hide_env_values = true)]
    pub webhook_url: Option<String>,
    /// The signing secret, whsec_<base64 of 24 to 64 random bytes>.
    #[arg(long, env = "NOTIFICATION_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// A file holding the signing secret, used when
    /// NOTIFICATION_WEBHOOK_SECRET is unset.
    #[arg(long, env = "NOTIFICATION_WEBHOOK_SECRET_FILE", hide_env_values = true)]
    pub webhook_secret_file: Option<PathBuf>,
    /// How long a push that cannot be delivered is retried.
    #[arg(long, env = "NOTIFICATION_WEBHOOK_MAX_RETRY_AGE", hide_env_values = true, default_value = "24h",
          value_parser = parse_duration)]
    pub webhook_max_retry_age: Duration,
    /// How long one webhook call or SMTP conversation may take.
    #[arg(long, env = "NOTIFICATION_CHANNEL_TIMEOUT", hide_env_values = true, default_value = "15s",
          value_parser = parse_duration)]
    pub channel_timeout: Duration,
    /// The wait before a failed mail or push is first tried again; it
    /// doubles, with jitter, up to an hour.
    #[arg(long, env = "NOTIFICATION_RETRY_BACKOFF", hide_env_values = true, default_value = "5s",
          value_parser = parse_duration)]
    pub retry_backoff: Duration,
}

impl ChannelArgs {
    /// # Errors
    ///
    /// A message naming the setting that is wrong and how.
    pub fn into_settings(self) -> Result<ChannelSettings, String> {
        let Self {
            smtp_url,
            mail_from,
            mail_max_retry_age,
            webhook_url,
            webhook_secret,
            webhook_secret_file,
            webhook_max_retry_age,
            channel_timeout,
            retry_backoff,
        } = self;
        if channel_timeout.is_zero() || retry_backoff.is_zero() {
            return Err(
                "NOTIFICATION_CHANNEL_TIMEOUT and NOTIFICATION_RETRY_BACKOFF must be longer than 0s".to_owned(),
            );
        }
        let mail = match smtp_url.filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(url) => {
                let url = url.trim().to_owned();
                let uri: http::Uri = url
                    .parse()
                    .map_err(|e| format!("NOTIFICATION_SMTP_URL `{url}` is not a URL ({e}); e.g. smtp://mail:25"))?;
                let (Some("smtp"), Some(host), None | Some("/")) =
                    (uri.scheme_str(), uri.host(), uri.path_and_query().map(|p| p.as_str()))
                else {
                    return Err(format!(
                        "NOTIFICATION_SMTP_URL `{url}` must be smtp://host[:port] (TLS is not built in: relay through a local MTA)"
                    ));
                };
                let from = mail_from
                    .parse::<Mailbox>()
                    .map_err(|e| format!("NOTIFICATION_MAIL_FROM `{mail_from}` is not a mailbox ({e}); e.g. Notifications <notifications@example.com>"))?;
                Some(MailSettings {
                    host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
                    port: uri.port_u16().unwrap_or(25),
                    from,
                    max_retry_age: mail_max_retry_age,
                    timeout: channel_timeout,
                })
            }
        };
        let webhook = match webhook_url.filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(url) => {
                let uri: http::Uri = url
                    .trim()
                    .parse()
                    .map_err(|e| format!("NOTIFICATION_WEBHOOK_URL `{url}` is not a URL ({e})"))?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    return Err(format!(
                        "NOTIFICATION_WEBHOOK_URL `{url}` must be http://host[:port]/path (TLS is not built in: put a proxy in front)"
                    ));
                }
                let secret = secret_value(
                    "NOTIFICATION_WEBHOOK_SECRET",
                    webhook_secret.as_deref(),
                    webhook_secret_file.as_deref(),
                )?
                .ok_or("NOTIFICATION_WEBHOOK_URL is set but NOTIFICATION_WEBHOOK_SECRET (or _FILE) is not: every call is signed")?;
                Some(WebhookSettings {
                    url: uri,
                    secret: WebhookSecret::parse(&secret).map_err(|e| format!("NOTIFICATION_WEBHOOK_SECRET: {e}"))?,
                    max_retry_age: webhook_max_retry_age,
                    timeout: channel_timeout,
                })
            }
        };
        Ok(ChannelSettings {
            mail,
            webhook,
            first_backoff: retry_backoff,
        })
    }
}
