//! IIS W3C extended logs: `#Fields:` names the columns of the lines after it, so the header, not a
//! fixed layout, decides which value is which. Fields take their Sigma webserver names (IIS's own
//! W3C names are Sigma's: `c-ip`, `cs-method`, `cs-uri-stem`, ...; `cs(User-Agent)` becomes
//! `cs-user-agent`, `cs(Referer)` `cs-referer`). Times are UTC, as IIS always writes them.

use std::borrow::Cow;

use jiff::Timestamp;

use super::{days_from_civil, digits};
use crate::model::{Event, Format, Logsource};

/// The columns IIS writes by default, for lines met before any `#Fields:` (a file cut mid-way).
const DEFAULT_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username \
                              c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

/// The current `#Fields:` layout of one stream.
#[derive(Debug, Clone)]
pub(crate) struct IisState {
    fields: Vec<Cow<'static, str>>,
}

impl Default for IisState {
    fn default() -> Self {
        IisState {
            fields: parse_fields(DEFAULT_FIELDS),
        }
    }
}

/// A W3C field name as an event field name (Sigma's); names we do not know keep their own, lower-cased.
fn field_name(w3c: &str) -> Cow<'static, str> {
    const KNOWN: &[(&str, &str)] = &[
        ("date", "date"),
        ("time", "time"),
        ("s-sitename", "s-sitename"),
        ("s-computername", "s-computername"),
        ("s-ip", "s-ip"),
        ("cs-method", "cs-method"),
        ("cs-uri-stem", "cs-uri-stem"),
        ("cs-uri-query", "cs-uri-query"),
        ("s-port", "s-port"),
        ("cs-username", "cs-username"),
        ("c-ip", "c-ip"),
        ("cs-version", "cs-version"),
        ("cs(user-agent)", "cs-user-agent"),
        ("cs(referer)", "cs-referer"),
        ("cs(cookie)", "cs-cookie"),
        ("cs-host", "cs-host"),
        ("sc-status", "sc-status"),
        ("sc-substatus", "sc-substatus"),
        ("sc-win32-status", "sc-win32-status"),
        ("sc-bytes", "sc-bytes"),
        ("cs-bytes", "cs-bytes"),
        ("time-taken", "time-taken"),
        ("x-forwarded-for", "x-forwarded-for"),
    ];
    let lower = w3c.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(name, _)| *name == lower)
        .map_or(Cow::Owned(lower), |(_, sigma)| Cow::Borrowed(*sigma))
}

fn parse_fields(list: &str) -> Vec<Cow<'static, str>> {
    list.split_ascii_whitespace().map(field_name).collect()
}

/// Whether `line` is a W3C directive (`#Software:`, `#Fields:`, ...).
pub(crate) fn is_directive(line: &str) -> bool {
    line.starts_with('#')
        && [
            "#Software:",
            "#Version:",
            "#Date:",
            "#Fields:",
            "#Start-Date:",
            "#End-Date:",
            "#Remark:",
        ]
        .iter()
        .any(|d| line.starts_with(d))
}

/// Decodes a W3C line. A directive updates the layout and is an event of its own without fields
/// beyond `message` (so it is neither a parse error nor matched as a request).
pub(crate) fn decode<'a>(line: &'a str, state: &mut IisState) -> Option<Event<'a>> {
    if is_directive(line) {
        if let Some(list) = line.strip_prefix("#Fields:") {
            state.fields = parse_fields(list);
        }
        let mut event = Event::plain(line);
        event.format = Format::Iis;
        return Some(event);
    }
    let values: Vec<&str> = line.split(' ').collect();
    if values.len() != state.fields.len() || !state.fields.iter().any(|f| f == "c-ip") {
        return None;
    }
    let value_of = |name: &str| {
        state
            .fields
            .iter()
            .position(|f| f == name)
            .map(|i| values[i])
    };
    let ts = match (value_of("date"), value_of("time")) {
        (Some(date), Some(time)) => Some(utc_stamp(date, time)?),
        _ => None,
    };
    let status = value_of("sc-status")?;
    if !status.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut event = Event {
        raw: line,
        ts,
        format: Format::Iis,
        parse_error: false,
        logsource: Logsource {
            product: Some(Cow::Borrowed("iis")),
            service: Some(Cow::Borrowed("access")),
            category: Some(Cow::Borrowed("webserver")),
        },
        fields: Vec::with_capacity(values.len() + 4),
        derived: Vec::new(),
    };
    for (name, value) in state.fields.iter().zip(&values) {
        if *value == "-" || name.is_empty() {
            continue;
        }
        // IIS writes spaces in header values as `+`.
        let value: Cow<'a, str> = match name.as_ref() {
            "cs-user-agent" | "cs-referer" | "cs-cookie" if value.contains('+') => {
                Cow::Owned(value.replace('+', " "))
            }
            _ => Cow::Borrowed(value),
        };
        if let Cow::Owned(text) = &value {
            event.derived.push(Cow::Owned(text.clone()));
        }
        event.fields.push((name.clone(), value));
    }
    if let Some(stem) = value_of("cs-uri-stem") {
        let uri: Cow<'a, str> = match value_of("cs-uri-query").filter(|q| *q != "-") {
            Some(query) => Cow::Owned(format!("{stem}?{query}")),
            None => Cow::Borrowed(stem),
        };
        let decoded = match super::web::decode_uri(&uri) {
            Cow::Borrowed(_) => uri.clone(),
            Cow::Owned(text) => Cow::Owned(text),
        };
        for text in [&uri, &decoded] {
            if let Cow::Owned(text) = text {
                event.derived.push(Cow::Owned(text.clone()));
            }
        }
        event.fields.push((Cow::Borrowed("uri"), uri));
        event.fields.push((Cow::Borrowed("uri_decoded"), decoded));
    }
    event
        .fields
        .push((Cow::Borrowed("message"), Cow::Borrowed(line)));
    Some(event)
}

/// `2026-11-22` and `03:01:02` (UTC).
fn utc_stamp(date: &str, time: &str) -> Option<Timestamp> {
    let (d, t) = (date.as_bytes(), time.as_bytes());
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() < 8 || t[2] != b':' || t[5] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(d, 0, 4)?, digits(d, 5, 2)?, digits(d, 8, 2)?);
    let (hour, minute, second) = (digits(t, 0, 2)?, digits(t, 3, 2)?, digits(t, 6, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let seconds = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second.min(59));
    Timestamp::from_second(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::test_support::{assert_rendered, render};

    fn check(lines: &[&str], expected: &str) {
        let mut state = IisState::default();
        let mut last = String::new();
        for line in lines {
            last = decode(line, &mut state).map_or_else(|| "none".into(), |e| render(&e));
        }
        assert_rendered(lines.last().unwrap(), &last, expected);
    }

    #[test]
    fn the_fields_header_decides_the_columns() {
        // The same request under two layouts: what the header says, not the position, names a value.
        check(
            &[
                "#Software: Microsoft Internet Information Services 10.0",
                "#Fields: date time cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) sc-status",
                "2026-11-22 03:01:02 GET /default.aspx id=1%27 203.0.113.7 Mozilla/5.0+(Windows+NT) 500",
            ],
            "iis iis/access/webserver 2026-11-22T03:01:02Z
             date=2026-11-22
             time=03:01:02
             cs-method=GET
             cs-uri-stem=/default.aspx
             cs-uri-query=id=1%27
             c-ip=203.0.113.7
             cs-user-agent=Mozilla/5.0 (Windows NT)
             sc-status=500
             uri=/default.aspx?id=1%27
             uri_decoded=/default.aspx?id=1'
             message=2026-11-22 03:01:02 GET /default.aspx id=1%27 203.0.113.7 Mozilla/5.0+(Windows+NT) 500
             ~Mozilla/5.0 (Windows NT)
             ~/default.aspx?id=1%27
             ~/default.aspx?id=1'",
        );
        check(
            &[
                "#Fields: c-ip sc-status date time cs-uri-stem",
                "198.51.100.2 404 2026-11-22 03:01:02 /.env",
            ],
            "iis iis/access/webserver 2026-11-22T03:01:02Z
             c-ip=198.51.100.2
             sc-status=404
             date=2026-11-22
             time=03:01:02
             cs-uri-stem=/.env
             uri=/.env
             uri_decoded=/.env
             message=198.51.100.2 404 2026-11-22 03:01:02 /.env",
        );
    }

    #[test]
    fn default_layout_directives_and_mismatches() {
        check(
            &["2026-11-22 03:01:02 10.0.0.5 POST /owa/auth.owa - 443 - 203.0.113.9 Mozilla/5.0 - 302 0 0 15"],
            "iis iis/access/webserver 2026-11-22T03:01:02Z
             date=2026-11-22
             time=03:01:02
             s-ip=10.0.0.5
             cs-method=POST
             cs-uri-stem=/owa/auth.owa
             s-port=443
             c-ip=203.0.113.9
             cs-user-agent=Mozilla/5.0
             sc-status=302
             sc-substatus=0
             sc-win32-status=0
             time-taken=15
             uri=/owa/auth.owa
             uri_decoded=/owa/auth.owa
             message=2026-11-22 03:01:02 10.0.0.5 POST /owa/auth.owa - 443 - 203.0.113.9 Mozilla/5.0 - 302 0 0 15",
        );
        check(
            &["#Date: 2026-11-22 03:00:00"],
            "iis -/-/- -\nmessage=#Date: 2026-11-22 03:00:00",
        );
        // Fewer values than the header names: not this format.
        check(
            &[
                "#Fields: date time c-ip sc-status",
                "2026-11-22 03:01:02 1.2.3.4",
            ],
            "none",
        );
        check(
            &[
                "#Fields: date time c-ip sc-status",
                "2026-11-22 03:01:02 1.2.3.4 OK",
            ],
            "none",
        );
        check(
            &[
                "#Fields: date time c-ip sc-status",
                "2026-13-22 03:01:02 1.2.3.4 200",
            ],
            "none",
        );
    }
}
