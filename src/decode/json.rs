//! JSON lines: one object per line, every key flattened to `a.b.c` (array items as `a.0`).

use std::borrow::Cow;

use jiff::Timestamp;
use memchr::memchr2;

use super::{DecodeContext, parse_iso_timestamp};
use crate::model::{Event, Format, Logsource};

/// Deeper nesting is refused: the parser recurses, and a line of 64 KiB of `[` must not exhaust the stack.
const MAX_DEPTH: usize = 32;
const TIMESTAMP_KEYS: [&str; 4] = ["@timestamp", "timestamp", "time", "ts"];
const MESSAGE_KEYS: [&str; 2] = ["msg", "MESSAGE"];
const HOST_KEYS: [&str; 2] = ["hostname", "host.name"];
/// Epoch numbers at least this large are milliseconds (seconds this large are past the year 5000).
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Decodes one JSON object, or `None` if the line is not exactly one object. An object shaped like
/// a Windows event (evtx, NXLog, Winlogbeat) becomes one (`windows::from_json`).
pub(crate) fn decode<'a>(line: &'a str, ctx: &DecodeContext) -> Option<Event<'a>> {
    decode_as(line, ctx, false)
}

/// As `decode`, every object taken as a Windows event (a source configured `format = "windows"`).
pub(crate) fn decode_windows<'a>(line: &'a str, ctx: &DecodeContext) -> Option<Event<'a>> {
    decode_as(line, ctx, true)
}

fn decode_as<'a>(line: &'a str, ctx: &DecodeContext, windows: bool) -> Option<Event<'a>> {
    let mut parser = Parser {
        text: line,
        pos: 0,
        depth: 0,
    };
    let mut event = Event {
        raw: line,
        ts: None,
        format: Format::Json,
        parse_error: false,
        logsource: Logsource::default(),
        fields: Vec::with_capacity(8),
        derived: Vec::new(),
    };
    parser.skip_ws();
    if parser.peek()? != b'{' {
        return None;
    }
    parser.object(None, &mut event)?;
    parser.skip_ws();
    if parser.pos != line.len() {
        return None;
    }
    event.ts = TIMESTAMP_KEYS
        .iter()
        .find_map(|key| event.get(key).and_then(|value| parse_timestamp(value, ctx)));
    alias(&mut event, "message", &MESSAGE_KEYS);
    alias(&mut event, "host", &HOST_KEYS);
    if super::windows::from_json(&mut event, ctx, windows) {
        super::windows::complete(&mut event);
    }
    Some(event)
}

/// Gives `name` the value of the first of `sources` present, unless the line has `name` itself.
fn alias(event: &mut Event<'_>, name: &'static str, sources: &[&str]) {
    if event.get(name).is_some() {
        return;
    }
    let value = sources
        .iter()
        .find_map(|source| event.fields.iter().find(|(key, _)| key == source))
        .map(|(_, value)| value.clone());
    if let Some(value) = value {
        event.fields.push((Cow::Borrowed(name), value));
    }
}

/// RFC 3339 text, or epoch seconds (fractional allowed) or milliseconds.
fn parse_timestamp(value: &str, ctx: &DecodeContext) -> Option<Timestamp> {
    if let Ok(number) = value.parse::<i64>() {
        return if number.abs() >= MILLIS_THRESHOLD {
            Timestamp::from_millisecond(number).ok()
        } else {
            Timestamp::from_second(number).ok()
        };
    }
    if let Ok(number) = value.parse::<f64>() {
        if !number.is_finite() || number.abs() >= MILLIS_THRESHOLD as f64 {
            return None;
        }
        let seconds = number.floor();
        let nanos = ((number - seconds) * 1e9).round().min(999_999_999.0);
        return Timestamp::new(seconds as i64, nanos as i32).ok();
    }
    parse_iso_timestamp(value, &ctx.zone)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// At `{`: every member, named `prefix.key` (just `key` at the top).
    fn object(&mut self, prefix: Option<&str>, event: &mut Event<'a>) -> Option<()> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.skip_ws();
                if self.bump()? != b':' {
                    return None;
                }
                let name = match prefix {
                    None => key,
                    Some(prefix) => Cow::Owned(format!("{prefix}.{key}")),
                };
                self.value(name, event)?;
                self.skip_ws();
                match self.bump()? {
                    b',' => {}
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// At `[`: every item, named `prefix.index`.
    fn array(&mut self, prefix: &str, event: &mut Event<'a>) -> Option<()> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            for index in 0usize.. {
                self.value(Cow::Owned(format!("{prefix}.{index}")), event)?;
                self.skip_ws();
                match self.bump()? {
                    b',' => {}
                    b']' => break,
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn value(&mut self, name: Cow<'a, str>, event: &mut Event<'a>) -> Option<()> {
        self.skip_ws();
        let start = self.pos;
        match self.peek()? {
            b'{' => return self.object(Some(&name), event),
            b'[' => return self.array(&name, event),
            b'"' => {
                let value = self.string()?;
                if let Cow::Owned(unescaped) = &value {
                    event.derived.push(Cow::Owned(unescaped.clone()));
                }
                event.fields.push((name, value));
                return Some(());
            }
            b't' | b'f' | b'n' => {
                let word = ["true", "false", "null"]
                    .into_iter()
                    .find(|word| self.text[start..].starts_with(word))?;
                self.pos += word.len();
                // null says "no value": the key is left absent rather than given a made-up text.
                if word == "null" {
                    return Some(());
                }
            }
            b'-' | b'0'..=b'9' => {
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.pos += 1;
                }
                self.text[start..self.pos].parse::<f64>().ok()?;
            }
            _ => return None,
        }
        event
            .fields
            .push((name, Cow::Borrowed(&self.text[start..self.pos])));
        Some(())
    }

    /// At `"`: the string's value, borrowed unless it holds escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let text = self.text;
        let b = text.as_bytes();
        let start = self.pos + 1;
        let mut i = memchr2(b'"', b'\\', b.get(start..)?)? + start;
        if b[i] == b'"' {
            self.pos = i + 1;
            return Some(Cow::Borrowed(&text[start..i]));
        }
        let mut out = String::with_capacity(i - start + 16);
        let mut copied = start;
        loop {
            out.push_str(&text[copied..i]);
            if b[i] == b'"' {
                self.pos = i + 1;
                return Some(Cow::Owned(out));
            }
            let escape = *b.get(i + 1)?;
            i += 2;
            match escape {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let unit = hex4(text, i)?;
                    i += 4;
                    let low = (0xD800..0xDC00)
                        .contains(&unit)
                        .then(|| {
                            text.get(i..i + 2)
                                .filter(|s| *s == "\\u")
                                .and_then(|_| hex4(text, i + 2))
                        })
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    let code = match low {
                        Some(low) => {
                            i += 6;
                            0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        }
                        None => unit,
                    };
                    // A lone surrogate is not a character; say so rather than fail the line.
                    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                _ => return None,
            }
            copied = i;
            i = memchr2(b'"', b'\\', b.get(i..)?)? + i;
        }
    }
}

fn hex4(text: &str, at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::test_support::{assert_rendered, render, zurich_ctx};

    fn check(input: &str, expected: &str) {
        let actual =
            decode(input, &zurich_ctx()).map_or_else(|| "none".to_string(), |event| render(&event));
        assert_rendered(input, &actual, expected);
    }

    #[test]
    fn objects() {
        let cases = [
            (
                r#"{"@timestamp":"2026-11-22T10:01:02.5+07:00","message":"login failed","host":{"name":"web-01","ip":["10.0.0.1","::1"]},"n":-1.5e3,"ok":true,"gone":null,"e":{},"a":[]}"#,
                "json -/-/- 2026-11-22T03:01:02.5Z
                 @timestamp=2026-11-22T10:01:02.5+07:00
                 message=login failed
                 host.name=web-01
                 host.ip.0=10.0.0.1
                 host.ip.1=::1
                 n=-1.5e3
                 ok=true
                 host=web-01",
            ),
            (
                r#" { "ts" : 1763805662 , "msg" : "a\"b\\c\/d\u00e9\ud83d\ude00\n" , "hostname" : "h" } "#,
                "json -/-/- 2025-11-22T10:01:02Z
                 ts=1763805662
                 msg=a\"b\\c/dé😀\\n
                 hostname=h
                 message=a\"b\\c/dé😀\\n
                 host=h
                 ~a\"b\\c/dé😀\\n",
            ),
            (
                r#"{"time":1763805662123,"deep":{"er":[{"x":"nổ hũ"}]}}"#,
                "json -/-/- 2025-11-22T10:01:02.123Z
                 time=1763805662123
                 deep.er.0.x=nổ hũ",
            ),
            (
                r#"{"timestamp":"not a time","time":"2026-11-22 10:01:02","lone":"\ud800x"}"#,
                "json -/-/- 2026-11-22T09:01:02Z
                 timestamp=not a time
                 time=2026-11-22 10:01:02
                 lone=\u{fffd}x
                 ~\u{fffd}x",
            ),
            (
                r#"{"ts":1763805662.25}"#,
                "json -/-/- 2025-11-22T10:01:02.25Z\nts=1763805662.25",
            ),
            ("[1,2]", "none"),
            (r#"{"a":1} trailing"#, "none"),
            (r#"{"a":1,}"#, "none"),
            (r#"{"a":tru}"#, "none"),
            (r#"{"a":"\x"}"#, "none"),
            (r#"{"a":"unterminated}"#, "none"),
            ("", "none"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40_000), "]".repeat(40_000));
        assert!(decode(&deep, &zurich_ctx()).is_none());
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(20), "]".repeat(20));
        let event = decode(&ok, &zurich_ctx()).unwrap();
        assert_eq!(event.fields.len(), 1);
        assert!(event.fields[0].0.starts_with("a.0.0.0"));
    }
}
