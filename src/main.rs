//! The `socwatch` command line.
fn main() {}
