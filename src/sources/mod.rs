//! Where lines come from: files (plain or gzip) and stdin for `scan`; the daemon's tailers later.

pub mod lines;
pub mod syslog;
