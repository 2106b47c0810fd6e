//! Bytes to events: line preparation (bad bytes, NULs, CRLF, over-long lines) and the per-format decoders.
//! Pure: no IO, no clock. A line that a decoder cannot parse becomes a plain event flagged `parse_error`;
//! nothing here drops a line or panics on input.

mod iis;
mod json;
mod syslog;
mod web;

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::model::{Event, Format, LineFlags};

/// Default cap on one line's length; longer lines are cut and flagged with their original length.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// How many non-empty lines `detect_format` looks at.
const DETECT_SAMPLE_LINES: usize = 20;

/// A line ready for decoding: text plus what was wrong with its bytes.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    pub text: Cow<'a, str>,
    pub flags: LineFlags,
}

/// Turns one line's bytes (without its `\n`) into text: a trailing `\r` is removed, lines over
/// `max_bytes` are cut at a character boundary, invalid UTF-8 is replaced lossily. All of it flagged.
pub fn prepare_line(bytes: &[u8], max_bytes: usize) -> Line<'_> {
    let mut flags = LineFlags::default();
    let mut bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.len() > max_bytes {
        flags.truncated_from = Some(bytes.len());
        bytes = &bytes[..max_bytes];
    }
    flags.nul_bytes = memchr::memchr(0, bytes).is_some();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(err) if flags.truncated_from.is_some() && err.error_len().is_none() => {
            // The cut fell inside a multi-byte character: drop its head, the text is otherwise valid.
            Cow::Borrowed(std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => {
            flags.invalid_utf8 = true;
            String::from_utf8_lossy(bytes)
        }
    };
    Line { text, flags }
}

/// Settings a decoder needs that the line does not carry.
#[derive(Debug, Clone)]
pub struct DecodeContext {
    /// Zone of timestamps that carry none (RFC 3164 syslog, apache error logs).
    pub zone: TimeZone,
    /// "Now" for inferring the year of RFC 3164 timestamps: a date more than a day after this
    /// belongs to the previous year. Live tailing passes the clock; scanning a file passes its mtime.
    pub reference: Timestamp,
}

impl DecodeContext {
    pub fn new(zone: TimeZone, reference: Timestamp) -> Self {
        DecodeContext { zone, reference }
    }
}

/// A decoder for one stream of lines (one file, one syslog peer). Keeps small caches, so reuse it.
#[derive(Debug)]
pub struct Decoder {
    format: Format,
    ctx: DecodeContext,
    syslog: syslog::SyslogState,
    iis: iis::IisState,
}

impl Decoder {
    /// `format` may be `Auto` only if `detect_format` was not possible; it then decodes each line
    /// with whatever parses it.
    pub fn new(format: Format, ctx: DecodeContext) -> Self {
        let syslog = syslog::SyslogState::new(&ctx);
        Decoder {
            format,
            ctx,
            syslog,
            iis: iis::IisState::default(),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn context(&self) -> &DecodeContext {
        &self.ctx
    }

    /// Decodes one prepared line. Never fails: what no decoder parses is a plain event.
    pub fn decode<'a>(&mut self, text: &'a str) -> Event<'a> {
        let parsed = match self.format {
            Format::Syslog => syslog::decode(text, &self.ctx, &mut self.syslog)
                .map(|event| unwrap_web(event, &self.ctx)),
            Format::Nginx => web::decode(text, &self.ctx, Some("nginx")),
            Format::Apache => web::decode(text, &self.ctx, Some("apache")),
            Format::Iis => iis::decode(text, &mut self.iis),
            Format::Json => json::decode(text, &self.ctx),
            Format::Plain => return Event::plain(text),
            Format::Auto => {
                // Nothing was configured, so a line no decoder knows is not an error.
                return syslog::decode(text, &self.ctx, &mut self.syslog)
                    .map(|event| unwrap_web(event, &self.ctx))
                    .or_else(|| web::decode(text, &self.ctx, None))
                    .or_else(|| iis::decode(text, &mut self.iis))
                    .or_else(|| json::decode(text, &self.ctx))
                    .unwrap_or_else(|| Event::plain(text));
            }
        };
        parsed.unwrap_or_else(|| {
            let mut event = Event::plain(text);
            event.parse_error = true;
            event
        })
    }
}

/// Web servers that log through syslog (`nginx[123]: 1.2.3.4 - - [...] "GET ..."`, `error_log
/// syslog:server=...`, apache's `ErrorLog syslog`): the message is an access or error line, decoded
/// as one, so web rules (Sigma's included) see the request under its webserver field names. The
/// syslog `host`, `program` and `pid` stay; the time is the web line's own when it has one.
fn unwrap_web<'a>(event: Event<'a>, ctx: &DecodeContext) -> Event<'a> {
    let product = match event.logsource.service.as_deref() {
        Some("nginx") => "nginx",
        Some("apache" | "apache2" | "httpd") => "apache",
        _ => return event,
    };
    let Some(message) = event.fields.iter().find_map(|(name, value)| match value {
        std::borrow::Cow::Borrowed(text) if name == "message" => Some(*text),
        _ => None,
    }) else {
        return event;
    };
    let Some(mut web) = web::decode(message, ctx, Some(product)) else {
        return event;
    };
    web.raw = event.raw;
    web.ts = web.ts.or(event.ts);
    let syslog_fields = event
        .fields
        .into_iter()
        .filter(|(name, _)| matches!(name.as_ref(), "host" | "program" | "pid"));
    let mut fields: Vec<_> = syslog_fields.collect();
    fields.extend(web.fields.drain(..).filter(|(name, _)| name != "pid"));
    web.fields = fields;
    web
}

/// Picks the format of a file from its first lines: the one that parses most of them; plain if none does.
pub fn detect_format(sample: &[&str]) -> Format {
    // IIS names itself in its header; a file that starts so is IIS whatever else parses.
    if sample.iter().take(DETECT_SAMPLE_LINES).any(|line| {
        line.starts_with("#Software: Microsoft Internet Information Services")
            || line.starts_with("#Fields: ")
    }) {
        return Format::Iis;
    }
    // Only whether a line parses matters here, not its time, so any zone and reference will do.
    let ctx = DecodeContext::new(TimeZone::UTC, Timestamp::UNIX_EPOCH);
    let mut state = syslog::SyslogState::new(&ctx);
    let mut iis_state = iis::IisState::default();
    let (mut syslog_hits, mut web_hits, mut json_hits, mut iis_hits) =
        (0usize, 0usize, 0usize, 0usize);
    let mut apache_error_seen = false;
    for line in sample
        .iter()
        .filter(|line| !line.trim().is_empty())
        .take(DETECT_SAMPLE_LINES)
    {
        if syslog::decode(line, &ctx, &mut state).is_some() {
            syslog_hits += 1;
        }
        if let Some(event) = web::decode(line, &ctx, None) {
            web_hits += 1;
            let is_error = event.logsource.service.as_deref() == Some("error");
            apache_error_seen |= is_error && event.logsource.product.as_deref() == Some("apache");
        }
        if json::decode(line, &ctx).is_some() {
            json_hits += 1;
        }
        if iis::decode(line, &mut iis_state).is_some() {
            iis_hits += 1;
        }
    }
    if iis_hits > syslog_hits.max(web_hits).max(json_hits) {
        return Format::Iis;
    }
    if syslog_hits > 0 && syslog_hits >= web_hits && syslog_hits >= json_hits {
        Format::Syslog
    } else if web_hits > 0 && web_hits >= json_hits {
        // Access logs of nginx and apache look the same; only apache's error log gives it away.
        if apache_error_seen {
            Format::Apache
        } else {
            Format::Nginx
        }
    } else if json_hits > 0 {
        Format::Json
    } else {
        Format::Plain
    }
}

/// `Jan`..`Dec` (any case) to 1..=12.
fn month_from_abbr(b: &[u8]) -> Option<u8> {
    let [a, b, c] = *b else { return None };
    let key = [
        a.to_ascii_lowercase(),
        b.to_ascii_lowercase(),
        c.to_ascii_lowercase(),
    ];
    let month = match &key {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(month)
}

/// The value of `n` ASCII digits at `b[at..]`, if all of them are digits.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at.checked_add(n)?)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Fractional seconds `.123456` at `b[at..]`: nanoseconds and the index after them.
/// Without a `.` it is zero nanoseconds and `at` unchanged.
fn fraction(b: &[u8], at: usize) -> (u32, usize) {
    if b.get(at) != Some(&b'.') {
        return (0, at);
    }
    let mut i = at + 1;
    let mut nanos = 0u32;
    let mut scale = 100_000_000u32;
    while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        nanos += u32::from(c - b'0') * scale;
        scale /= 10;
        i += 1;
    }
    if i == at + 1 { (0, at) } else { (nanos, i) }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm): the web access
/// log carries its own offset, so no zone lookup is needed and this is far cheaper than one.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A civil date and time in `zone`; gaps and folds resolved the way jiff calls compatible.
#[allow(clippy::too_many_arguments)]
fn civil_to_timestamp(
    zone: &TimeZone,
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
) -> Option<Timestamp> {
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    zone.to_ambiguous_timestamp(dt).compatible().ok()
}

/// An ISO 8601 / RFC 3339 stamp; one without an offset is read in `zone`.
fn parse_iso_timestamp(text: &str, zone: &TimeZone) -> Option<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let dt = text.parse::<jiff::civil::DateTime>().ok()?;
    zone.to_ambiguous_timestamp(dt).compatible().ok()
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests;
