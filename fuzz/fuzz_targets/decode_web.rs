//! The nginx and apache decoders (access and error logs) on arbitrary bytes: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socwatch::model::Format;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::decode_lines(Format::Nginx, data);
    common::decode_lines(Format::Apache, data);
});
