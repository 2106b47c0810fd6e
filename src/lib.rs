//! socwatch: log monitoring for provincial SOCs. The library behind the `socwatch` binary.
#![forbid(unsafe_code)]

pub mod decode;
pub mod model;
