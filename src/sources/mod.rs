//! Where lines come from: files (plain, gzip, Windows `.evtx`) and stdin for `scan`; the lossless file tailer, the
//! syslog receiver and the journal reader for the daemon.

pub mod evtx;
pub mod journald;
pub mod lines;
pub mod syslog;
pub mod tail;
