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
    /// IIS W3C extended logs (the `#Fields:` header names the columns).
    Iis,
    /// One JSON object per line.
    Json,
    /// The whole line is `message`.
    Plain,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Auto,
        Format::Syslog,
        Format::Nginx,
        Format::Apache,
        Format::Iis,
        Format::Json,
        Format::Plain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Syslog => "syslog",
            Format::Nginx => "nginx",
            Format::Apache => "apache",
            Format::Iis => "iis",
            Format::Json => "json",
            Format::Plain => "plain",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown format '{s}' (expected auto, syslog, nginx, apache, iis, json or plain)"
                )
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

impl Logsource {
    /// A logsource from `(key, value)` pairs (`--logsource product=windows`, a source's `logsource` table).
    pub fn from_pairs<'p>(
        pairs: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) -> Result<Logsource, String> {
        let mut logsource = Logsource::default();
        for (key, value) in pairs {
            let value = Some(Cow::Owned(value.to_string()));
            match key {
                "product" => logsource.product = value,
                "service" => logsource.service = value,
                "category" => logsource.category = value,
                other => {
                    return Err(format!(
                        "logsource key must be product, service or category, got '{other}'"
                    ));
                }
            }
        }
        Ok(logsource)
    }

    /// Replaces what the decoder said with what the operator said, attribute by attribute.
    pub fn override_with(&mut self, given: &Logsource) {
        if given.product.is_some() {
            self.product = given.product.clone();
        }
        if given.service.is_some() {
            self.service = given.service.clone();
        }
        if given.category.is_some() {
            self.category = given.category.clone();
        }
    }
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

/// The language of human-facing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vi" => Ok(Lang::Vi),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language '{other}' (expected vi or en)")),
        }
    }
}

/// An incident's place in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Open,
    Acknowledged,
    Resolved,
    FalsePositive,
}

/// One line kept as evidence of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(with = "rfc3339")]
    pub ts: Timestamp,
    pub source: String,
    pub line: String,
}

/// A lifecycle action on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(with = "rfc3339")]
    pub ts: Timestamp,
    pub action: String,
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One attack, folded: every matching event of one rule and group while it goes on (INTERFACE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The case the incident belongs to (see `cases`); empty only in stores from before cases.
    #[serde(default)]
    pub case_id: String,
    pub rule_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_vi: Option<String>,
    pub severity: Severity,
    pub status: Status,
    #[serde(with = "rfc3339")]
    pub first_seen: Timestamp,
    #[serde(with = "rfc3339")]
    pub last_seen: Timestamp,
    pub count: u64,
    pub group: std::collections::BTreeMap<String, String>,
    pub host: String,
    pub system: String,
    pub level: u8,
    pub unit: String,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub evidence: Vec<Evidence>,
    /// Matching lines beyond the kept evidence.
    pub evidence_omitted: u64,
    pub history: Vec<HistoryEntry>,
    /// Grows with every change; (id, revision) identifies one state of the incident.
    pub revision: u64,
}

/// The zone human-facing times are shown in, and the offset machine timestamps are written with.
pub fn display_zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh")
        .unwrap_or(jiff::tz::TimeZone::fixed(jiff::tz::offset(7)))
}

/// RFC 3339 timestamps with the Asia/Ho_Chi_Minh offset (`2026-11-22T10:01:02+07:00`).
pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(ts: &Timestamp) -> String {
        let offset = super::display_zone().to_offset(*ts);
        ts.display_with_offset(offset).to_string()
    }

    pub fn serialize<S: Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a source stopped reading: the file's identity (a fingerprint of its first bytes) and the
/// byte offset after the last line whose consequences are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Checkpoint {
    pub fingerprint: u64,
    pub offset: u64,
}
