//! Where alerts go: email (and, from the outbox's issue, the national endpoint).

pub mod email;
