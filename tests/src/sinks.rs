//! Real receivers for what notification-service sends outside gRPC: an SMTP
//! server in a process of its own (`smtp_sink`, which a test can kill and
//! restart) and an HTTP server in the test's runtime that checks Standard
//! Webhooks signatures with the reference implementation, not ours.
//!
//! Both can be told to fail: the SMTP sink answers the code written to its
//! `reply` file, the webhook receiver the statuses it is given, as slowly as
//! it is told.

mod mail;
mod smtp;
mod webhook;

use std::{fs, io, path::Path};

pub use mail::Mail;
pub use smtp::SmtpSink;
pub use webhook::{Call, WebhookReceiver};

/// Writes `bytes` to `path` through a temporary file beside it and a rename,
/// so that a reader in another process sees the old content or the new, never
/// part of it. Not synced: these files need to survive a killed process, not
/// a crashed machine.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a path to a file"))?;
    let mut temporary = name.to_os_string();
    temporary.push(".tmp");
    // A dot first: readers listing the folder skip it.
    let temporary = path.with_file_name(format!(".{}", temporary.to_string_lossy()));
    fs::write(&temporary, bytes)?;
    fs::rename(&temporary, path)
}
