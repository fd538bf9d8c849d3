//! Fault tests that need root: a service's data folder on a small tmpfs that
//! fills up. Run with `cargo test -p e2e --test faults -- --ignored
//! --test-threads=1` (as `.ci/run` does); each test mounts its own tmpfs.

mod disk_full;
mod load;
mod tmpfs;
