//! Where lines come from: files (plain or gzip) and stdin for `scan`; the lossless file tailer for the daemon.

pub mod lines;
pub mod tail;
