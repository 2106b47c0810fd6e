//! Email alerts: rendering (`render`), flood control (`flood`) and the SMTP transport.

pub mod flood;
pub mod render;
