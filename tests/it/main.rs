//! socwatch's integration tests, in one binary: each module drives the real `socwatch` executable
//! or the library on real files in a temporary folder.

mod cli;
mod daemon;
mod email;
mod fail2ban_corpus;
mod journald;
mod national;
mod prefilter;
mod scan_input;
mod shipped_rules;
mod sigma;
mod store;
mod support;
mod syslog;
mod systemd;
mod tail;
mod tls;
