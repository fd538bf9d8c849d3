//! notification-service: not built yet. The contract is compiled in the
//! `proto` crate; the service itself is the subject of its own issue.

#![forbid(unsafe_code)]

fn main() {
    eprintln!("notification-service is not built yet: only invitation-service runs in this version");
    std::process::exit(2);
}
