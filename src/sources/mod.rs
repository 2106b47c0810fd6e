//! Where lines come from: files (plain or gzip) and stdin for `scan`; the lossless file tailer and the
//! syslog receiver for the daemon.

pub mod lines;
pub mod syslog;
pub mod tail;
