//! Out-of-process tests.
