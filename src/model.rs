//! Plain data shared by every layer: events, severities, incidents. No behaviour beyond conversions.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How serious a rule's finding is. Ordered, so `--severity medium` means "medium and above".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The Vietnamese name operators read in tables and emails (INTERFACE.md).
    pub fn vietnamese(self) -> &'static str {
        match self {
            Severity::Info => "Thông tin",
            Severity::Low => "Thấp",
            Severity::Medium => "Trung bình",
            Severity::High => "Cao",
            Severity::Critical => "Nghiêm trọng",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity '{s}' (expected info, low, medium, high or critical)")
            })
    }
}

/// Which decoder produced an event (and which one a source is configured with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detect per file from its first lines.
    Auto,
    /// RFC 3164, RFC 5424, rsyslog's ISO-timestamp form, and the journal's short form without a date.
    Syslog,
    /// nginx access (combined, common, vhost_combined) and error logs.
    Nginx,
    /// apache access (combined, common, vhost_combined) and error logs.
    Apache,
    /// One JSON object per line.
    Json,
    /// The whole line is `message`.
    Plain,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Syslog => "syslog",
            Format::Nginx => "nginx",
            Format::Apache => "apache",
            Format::Json => "json",
            Format::Plain => "plain",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Format::Auto,
            Format::Syslog,
            Format::Nginx,
            Format::Apache,
            Format::Json,
            Format::Plain,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| {
            format!("unknown format '{s}' (expected auto, syslog, nginx, apache, json or plain)")
        })
    }
}

/// Where lines come from, shared by every event of one source (cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMeta {
    /// File path, `-` for stdin, or `syslog://peer`.
    pub source: Arc<str>,
    /// The information system the logs belong to (empty when not configured).
    pub system: Arc<str>,
    /// Its security level (cấp độ) 1-5; 0 when not configured.
    pub level: u8,
}

impl SourceMeta {
    pub fn new(source: impl Into<Arc<str>>) -> Self {
        SourceMeta {
            source: source.into(),
            system: Arc::from(""),
            level: 0,
        }
    }
}

/// The Sigma-style logsource an event belongs to, used to route it to the rules that apply.
/// A missing attribute means "unknown": rules that name that attribute do not see the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Logsource {
    pub product: Option<Cow<'static, str>>,
    pub service: Option<Cow<'static, str>>,
    pub category: Option<Cow<'static, str>>,
}

/// What went wrong with a line's bytes before decoding; the line is still decoded and matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineFlags {
    /// Bytes that were not UTF-8 were replaced by U+FFFD.
    pub invalid_utf8: bool,
    /// The line held NUL bytes (kept in the text).
    pub nul_bytes: bool,
    /// The line was longer than the cap and was cut; this is its original length in bytes.
    pub truncated_from: Option<usize>,
}

impl LineFlags {
    pub fn any(&self) -> bool {
        self.invalid_utf8 || self.nul_bytes || self.truncated_from.is_some()
    }
}

/// One decoded line. Field values borrow from the line text where they can.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The line as text (after lossy UTF-8 decoding, CR stripping and truncation).
    pub raw: &'a str,
    /// When it happened, if the line says so.
    pub ts: Option<Timestamp>,
    /// The decoder that produced it; `Plain` also when the configured decoder could not parse it.
    pub format: Format,
    /// True when the configured decoder could not parse the line and it fell back to plain.
    pub parse_error: bool,
    pub logsource: Logsource,
    /// Named fields: `host`, `program`, `pid`, `message`, and per format more (`c-ip`, `sc-status`, JSON keys...).
    pub fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Texts rules can see that are not substrings of `raw` (URL-decoded values, unescaped JSON strings).
    /// The literal prefilter searches these too, so a rule on a decoded field is never skipped.
    pub derived: Vec<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// A plain event: the whole line is the message.
    pub fn plain(raw: &'a str) -> Self {
        Event {
            raw,
            ts: None,
            format: Format::Plain,
            parse_error: false,
            logsource: Logsource::default(),
            fields: vec![(Cow::Borrowed("message"), Cow::Borrowed(raw))],
            derived: Vec::new(),
        }
    }

    /// The value of a decoded field. `raw` names the whole line.
    pub fn get(&self, name: &str) -> Option<&str> {
        if name == "raw" {
            return Some(self.raw);
        }
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_ref())
    }

    pub fn message(&self) -> &str {
        self.get("message").unwrap_or(self.raw)
    }

    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let name = name.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(key, _)| *key == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }
}
