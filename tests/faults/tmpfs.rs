//! A tmpfs of a chosen size at a temporary folder: a disk that fills up on
//! cue and can be grown again, unmounted when dropped.

use std::{path::Path, process::Command};

/// A mounted tmpfs. Mounting needs root; without it the test panics, so an
/// unprivileged run fails loudly instead of passing untested.
#[derive(Debug)]
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` at a new temporary folder.
    pub(crate) fn mount(megabytes: u32) -> Self {
        assert!(
            effective_uid() == Some(0),
            "the fault suite mounts a tmpfs and must run as root (uid 0), as `.ci/run` does: \
             sudo cargo test -p e2e --test faults -- --ignored --test-threads=1"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let size = format!("size={megabytes}m");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir.path()));
        Self { dir }
    }

    #[must_use]
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the tmpfs `megabytes` large, keeping what is on it.
    pub(crate) fn grow(&self, megabytes: u32) {
        let options = format!("remount,size={megabytes}m");
        run(Command::new("mount").args(["-o", &options]).arg(self.dir.path()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process that still holds a file there cannot keep the
        // mount, and the folder underneath is then removed empty.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The effective user id, from `/proc/self/status` (`Uid: real effective ...`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}
