//! The Json decoder on arbitrary bytes (lines split at \n): never panics; events are well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socwatch::model::Format;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::decode_lines(Format::Json, data);
});
