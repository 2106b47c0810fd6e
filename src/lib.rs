//! socwatch: log monitoring for provincial SOCs. The library behind the `socwatch` binary.
#![forbid(unsafe_code)]

pub mod alerting;
pub mod api;
pub mod cases;
pub mod cluster;
pub mod config;
pub mod console;
pub mod correlate;
pub mod daemon;
pub mod decode;
pub mod duration;
pub mod engine;
pub mod evidence;
pub mod i18n;
pub mod load;
pub mod metrics;
pub mod model;
pub mod outputs;
pub mod query;
pub mod report;
pub mod reports;
pub mod rules;
pub mod scan;
pub mod security;
pub mod sources;
pub mod store;
#[cfg(test)]
mod tidy;
