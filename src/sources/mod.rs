//! Where lines come from: files (plain or gzip) and stdin for `scan`; the lossless file tailer, the
//! syslog receiver and the journal reader for the daemon.

pub mod journald;
pub mod lines;
pub mod syslog;
pub mod tail;
