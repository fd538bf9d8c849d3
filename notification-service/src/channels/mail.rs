//! EMAIL: one mail per message through SMTP (lettre), with a text and an
//! HTML part, and the message's id as its Message-ID on every try, so a
//! mail sent again after a crash is recognisably the same mail.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

use super::{MailSettings, Try};
use crate::{domain, storage::Job};

/// Sends e-mail through one SMTP server.
#[derive(Debug, Clone)]
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub(crate) fn new(settings: &MailSettings) -> Self {
        // Plain SMTP, as the URL's scheme says: TLS is not built in.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .build();
        Self {
            transport,
            from: settings.from.clone(),
        }
    }

    /// The mail about `job`: `None` for messages e-mail has no part in
    /// (revisions and retractions cannot recall a mail).
    pub(crate) fn message(&self, job: &Job) -> Result<Option<Message>, String> {
        let domain::UpdateKind::Delivered(notification) = &job.update.kind else {
            return Ok(None);
        };
        let content = domain::email(notification);
        let to: lettre::Address = job
            .email
            .parse()
            .map_err(|e| format!("the address is not usable: {e}"))?;
        let host = self.from.email.domain().to_owned();
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(content.subject)
            .message_id(Some(format!("<{}@{host}>", job.id)))
            .multipart(MultiPart::alternative_plain_html(content.text, content.html))
            .map(Some)
            .map_err(|e| format!("cannot build the mail: {e}"))
    }

    /// One try: a permanent SMTP refusal (5xx) fails for good; a temporary
    /// one (4xx), a refused connection or a timeout is tried again.
    pub(crate) async fn send(&self, job: &Job) -> Try {
        let message = match self.message(job) {
            Ok(Some(message)) => message,
            Ok(None) => return Try::Sent,
            Err(reason) => return Try::Failed(reason),
        };
        match self.transport.send(message).await {
            Ok(_) => Try::Sent,
            Err(e) if e.is_permanent() => Try::Failed(format!("the mail server refused it: {e}")),
            Err(e) => Try::Retry {
                reason: format!("cannot send it now: {e}"),
                after: None::<Duration>,
            },
        }
    }
}
