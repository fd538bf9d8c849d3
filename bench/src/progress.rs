//! Progress of a long step on stderr: a line rewritten in place on a
//! terminal, a line every few seconds otherwise (CI logs).

use std::{
    io::{IsTerminal as _, Write as _},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How far a step has to go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    Secs(f64),
    Count(u64),
}

/// A step's progress; the printer stops when this is dropped.
#[derive(Debug)]
pub(crate) struct Progress {
    done: Arc<AtomicU64>,
    printer: tokio::task::JoinHandle<()>,
    tty: bool,
}

impl Progress {
    /// Starts printing progress of `label` towards `goal`.
    #[must_use]
    pub(crate) fn start(label: &str, goal: Goal) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let tty = std::io::stderr().is_terminal();
        let label = label.to_owned();
        let counter = Arc::clone(&done);
        let printer = tokio::spawn(async move {
            let started = Instant::now();
            let every = if tty {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(5)
            };
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticker.tick().await;
                let count = counter.load(Ordering::Relaxed);
                let elapsed = started.elapsed().as_secs_f64();
                let line = match goal {
                    Goal::Secs(total) => format!("[{label}] {elapsed:.0}/{total:.0} s, {count} done"),
                    Goal::Count(total) => format!("[{label}] {count}/{total} in {elapsed:.0} s"),
                };
                let mut err = std::io::stderr().lock();
                if tty {
                    let _ = write!(err, "\r\x1b[2K{line}");
                } else {
                    let _ = writeln!(err, "{line}");
                }
                let _ = err.flush();
            }
        });
        Self { done, printer, tty }
    }

    /// The counter the step advances.
    #[must_use]
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.done)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.printer.abort();
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Says which step starts, on stderr.
pub(crate) fn step(what: &str) {
    eprintln!("== {what}");
}
