//! Helpers the decoder tests share: a fixed context and a one-line-per-fact rendering of events.

use std::fmt::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::DecodeContext;
use crate::model::Event;

/// fail2ban's test corpus resolves year-less stamps against this moment, in this zone.
pub(crate) fn zurich_ctx() -> DecodeContext {
    let zone = TimeZone::get("Europe/Zurich").expect("bundled tzdb has Europe/Zurich");
    let reference: Timestamp = "2005-08-14T12:00:00+02:00".parse().expect("valid stamp");
    DecodeContext::new(zone, reference)
}

/// The event as text: a header line `format product/service/category ts [parse_error]`, then every
/// field as `name=value` in order, then every derived text as `~text`; CR and LF shown as `\r`, `\n`.
pub(crate) fn render(event: &Event<'_>) -> String {
    let ls = &event.logsource;
    let part = |v: &Option<std::borrow::Cow<'static, str>>| v.as_deref().unwrap_or("-").to_string();
    let mut out = format!(
        "{} {}/{}/{} {}",
        event.format.as_str(),
        part(&ls.product),
        part(&ls.service),
        part(&ls.category),
        event
            .ts
            .map_or_else(|| "-".to_string(), |ts| ts.to_string()),
    );
    if event.parse_error {
        out.push_str(" parse_error");
    }
    for (name, value) in &event.fields {
        let _ = write!(out, "\n{name}={}", escape_newlines(value));
    }
    for text in &event.derived {
        let _ = write!(out, "\n~{}", escape_newlines(text));
    }
    out
}

/// Keeps one fact per rendered line when values hold line breaks.
fn escape_newlines(text: &str) -> String {
    text.replace('\r', "\\r").replace('\n', "\\n")
}

/// Compares line by line after trimming the indentation of a raw-string expectation.
pub(crate) fn assert_rendered(input: &str, actual: &str, expected: &str) {
    let expected: Vec<&str> = expected.trim().lines().map(str::trim).collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    assert_eq!(
        actual_lines, expected,
        "input: {input:?}\nactual:\n{actual}"
    );
}
