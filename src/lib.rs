//! socwatch: log monitoring for provincial SOCs. The library behind the `socwatch` binary.
#![forbid(unsafe_code)]

pub mod config;
pub mod correlate;
pub mod decode;
pub mod duration;
pub mod load;
pub mod model;
pub mod report;
pub mod rules;
pub mod scan;
pub mod sources;
pub mod store;
