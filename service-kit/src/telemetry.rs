//! One place that sets up tracing for a binary: `RUST_LOG` filters, logs go
//! to stderr (stdout stays free for command output such as tokens), readable
//! text by default and JSON lines when `LOG_FORMAT=json`.

use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG`
/// is unset. Calling it twice is harmless (the second call does nothing).
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

/// For tests: logs print only when `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init("info");
    }
}
