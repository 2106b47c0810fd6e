//! What `scan` does with a file of arbitrary bytes: prepare the first lines, detect the format,
//! decode every line with it; and the per-line `Auto` decoder on the same lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socwatch::decode::{Decoder, detect_format, prepare_line};
use socwatch::model::Format;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let prepared: Vec<_> = rest
        .split(|&b| b == b'\n')
        .map(|line| prepare_line(line, common::MAX_LINE))
        .collect();
    let sample: Vec<&str> = prepared
        .iter()
        .take(20)
        .map(|l| l.text.as_ref())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let format = detect_format(&sample);
    assert_ne!(format, Format::Auto, "detection picks a concrete format");
    let mut detected = Decoder::new(format, common::context(selector));
    let mut auto = Decoder::new(Format::Auto, common::context(selector));
    for line in &prepared {
        common::check(&detected.decode(&line.text), &line.text);
        common::check(&auto.decode(&line.text), &line.text);
    }
});
