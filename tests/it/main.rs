//! socwatch's integration tests, in one binary: each module drives the real `socwatch` executable
//! or the library on real files in a temporary folder.

mod cli;
mod prefilter;
mod scan_input;
mod support;
