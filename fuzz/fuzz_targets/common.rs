//! Shared by the fuzz targets: a decode context and the checks every decoded event must pass.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use socwatch::decode::{DecodeContext, Decoder, prepare_line};
use socwatch::model::{Event, Format};

/// A small cap, so the fuzzer reaches truncation (at char boundaries) with short inputs.
pub const MAX_LINE: usize = 256;

/// The first byte picks the zone and the reference time, so year inference and zones get exercised.
pub fn context(selector: u8) -> DecodeContext {
    let zone = match selector % 4 {
        0 => TimeZone::UTC,
        1 => TimeZone::get("Asia/Ho_Chi_Minh").expect("bundled tzdb"),
        2 => TimeZone::get("America/New_York").expect("bundled tzdb"),
        _ => TimeZone::fixed(jiff::tz::offset(-12)),
    };
    let reference: Timestamp = match (selector / 4) % 3 {
        0 => "2026-11-22T10:00:00Z",
        1 => "2027-01-01T00:30:00Z",
        _ => "2024-02-29T23:59:59Z",
    }
    .parse()
    .expect("valid stamp");
    DecodeContext::new(zone, reference)
}

/// Decodes every line of `data` with `format` and checks what must hold of any event.
pub fn decode_lines(format: Format, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new(format, context(selector));
    for line in rest.split(|&b| b == b'\n') {
        let max = if selector & 0x80 != 0 {
            MAX_LINE
        } else {
            64 * 1024
        };
        let prepared = prepare_line(line, max);
        let event = decoder.decode(&prepared.text);
        check(&event, &prepared.text);
    }
}

/// What holds of every event: `raw` is the line and every field can be looked up by its name.
/// (A field name may be empty: JSON allows `{"": 1}`.)
pub fn check(event: &Event<'_>, text: &str) {
    assert_eq!(event.raw, text, "raw must be the prepared line");
    let _ = event.message();
    for (key, _) in &event.fields {
        assert!(
            event.get(key).is_some(),
            "field {key:?} cannot be looked up"
        );
    }
    if event.parse_error {
        assert_eq!(
            event.format,
            Format::Plain,
            "a failed parse falls back to plain"
        );
    }
}
