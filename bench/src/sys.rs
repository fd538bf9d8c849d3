//! What the operating system tells about processes and the machine: CPU
//! time and memory from `/proc`, disk use of a folder, the load average, and
//! pinning to cores with `taskset` (util-linux) when it is installed.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use serde::Serialize;

/// Clock ticks per second in `/proc/<pid>/stat`: Linux reports user-visible
/// times in USER_HZ, which is 100 on every architecture it exposes.
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU seconds used so far by process `pid` (all threads),
/// or by this process when `pid` is `None`.
#[must_use]
pub(crate) fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counting from 1 over the whole line;
    // `rest` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// Resident memory of `pid` (this process when `None`), in bytes.
#[must_use]
pub(crate) fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    status_kb(pid, "VmRSS:").map(|kb| kb * 1024)
}

fn status_kb(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// Bytes the files under `dir` occupy on disk (allocated blocks, as `du`).
#[must_use]
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// The 1, 5 and 15 minute load averages.
#[must_use]
pub(crate) fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
    ]
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpu_model: String,
    pub(crate) cpus: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
}

impl Machine {
    #[must_use]
    pub(crate) fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, name)| name.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count().max(1);
        let memory_kb: f64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        Self {
            cpu_model,
            cpus,
            memory_gib: (memory_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel,
        }
    }
}

/// Whether `program` runs (it is on PATH and answers `arg`).
#[must_use]
pub(crate) fn has_program(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Pins every thread of `pid` (this process when `None`) to `cpus` (a
/// taskset list such as `0` or `1-3`). Threads started later inherit it.
///
/// # Errors
///
/// When taskset is missing or refuses.
pub(crate) fn pin(pid: Option<u32>, cpus: &str) -> Result<(), String> {
    let pid = pid.unwrap_or_else(std::process::id);
    let status = Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset -a -c -p {cpus} {pid} failed: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(cpu_secs(None).is_some());
        assert!(rss_bytes(None).unwrap() > 0);
        assert!(Machine::describe().cpus >= 1);
    }
}
