//! socwatch's integration tests, in one binary: each module drives the real `socwatch` executable
//! or the library on real files in a temporary folder.

mod admin_evidence;
mod cases;
mod cli;
mod closed_pipe;
mod cluster;
mod config_check;
mod console;
mod daemon;
mod email;
mod evidence;
mod evtx_writer;
mod fail2ban_corpus;
mod i18n;
mod idle;
mod journald;
mod listeners;
mod national;
mod oracle;
mod prefilter;
mod reports;
mod restart;
mod scan_input;
mod security;
mod shipped_rules;
mod sigma;
mod sigma_windows;
mod status;
mod store;
mod support;
mod syslog;
mod syslog_tls;
mod systemd;
mod tail;
mod tls;
mod windows;
