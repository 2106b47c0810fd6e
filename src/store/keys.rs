//! Byte layouts of the store's keys: index entries `value \0 id`, time entries `last_seen id`, and
//! the small summary a time entry carries so scans can filter without loading incidents.

use jiff::Timestamp;

use crate::model::{Incident, Severity, Status};

/// Incident ids are ULIDs in Crockford base32: always 26 bytes. Index scans rely on it to tell
/// `value \0 id` from a longer value that happens to contain a NUL (values come from log lines).
pub const ID_LEN: usize = 26;

/// The secondary indexes whose keys are `value \0 id`, in the order their trees are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Severity,
    Status,
    Rule,
    Host,
    System,
    /// Every group value as `field=value`.
    Field,
    /// The incident's case id (incidents stored before cases have none and no entry).
    Case,
}

impl Index {
    pub const ALL: [Index; 7] = [
        Index::Severity,
        Index::Status,
        Index::Rule,
        Index::Host,
        Index::System,
        Index::Field,
        Index::Case,
    ];

    pub fn tree_name(self) -> &'static str {
        match self {
            Index::Severity => "idx_severity",
            Index::Status => "idx_status",
            Index::Rule => "idx_rule",
            Index::Host => "idx_host",
            Index::System => "idx_system",
            Index::Field => "idx_field",
            Index::Case => "idx_case",
        }
    }
}

pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Open => "open",
        Status::Acknowledged => "acknowledged",
        Status::Resolved => "resolved",
        Status::FalsePositive => "false_positive",
    }
}

/// `value \0`: the prefix shared by every entry of one value.
pub fn prefix(value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 1 + ID_LEN);
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key
}

pub fn entry(value: &str, id: &str) -> Vec<u8> {
    let mut key = prefix(value);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The id at the end of an index entry found under `prefix`, if the entry belongs to exactly that value.
pub fn id_after<'k>(key: &'k [u8], prefix: &[u8]) -> Option<&'k str> {
    if key.len() != prefix.len() + ID_LEN {
        return None;
    }
    std::str::from_utf8(&key[prefix.len()..]).ok()
}

/// Every `value \0 id` entry an incident has, per index.
pub fn entries(incident: &Incident) -> Vec<(Index, Vec<u8>)> {
    let id = &incident.id;
    let mut out = vec![
        (Index::Severity, entry(incident.severity.as_str(), id)),
        (Index::Status, entry(status_name(incident.status), id)),
        (Index::Rule, entry(&incident.rule_id, id)),
        (Index::Host, entry(&incident.host, id)),
        (Index::System, entry(&incident.system, id)),
    ];
    for (field, value) in &incident.group {
        out.push((Index::Field, entry(&format!("{field}={value}"), id)));
    }
    if !incident.case_id.is_empty() {
        out.push((Index::Case, entry(&incident.case_id, id)));
    }
    out
}

/// Timestamps as 8 big-endian bytes that sort like the times (sign bit flipped).
pub fn time_bytes(ts: Timestamp) -> [u8; 8] {
    let nanos = i64::try_from(ts.as_nanosecond()).unwrap_or(if ts.as_second() < 0 {
        i64::MIN
    } else {
        i64::MAX
    });
    ((nanos as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn time_from_bytes(bytes: &[u8]) -> Option<Timestamp> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let nanos = (u64::from_be_bytes(raw) ^ (1 << 63)) as i64;
    Timestamp::from_nanosecond(i128::from(nanos)).ok()
}

/// The time index key: `last_seen id`, so a range scan walks incidents by last activity.
pub fn time_entry(incident: &Incident) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + ID_LEN);
    key.extend_from_slice(&time_bytes(incident.last_seen));
    key.extend_from_slice(incident.id.as_bytes());
    key
}

/// What a time entry's value says about its incident: enough for the severity and status filters
/// and for retention floors, so those never load the incident itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub severity: Severity,
    pub status: Status,
    pub level: u8,
}

impl Summary {
    pub fn of(incident: &Incident) -> Self {
        Summary {
            severity: incident.severity,
            status: incident.status,
            level: incident.level,
        }
    }

    pub fn encode(self) -> [u8; 3] {
        let status = match self.status {
            Status::Open => 0,
            Status::Acknowledged => 1,
            Status::Resolved => 2,
            Status::FalsePositive => 3,
        };
        [self.severity as u8, status, self.level]
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let [severity, status, level] = *bytes else {
            return None;
        };
        Some(Summary {
            severity: *Severity::ALL.get(usize::from(severity))?,
            status: match status {
                0 => Status::Open,
                1 => Status::Acknowledged,
                2 => Status::Resolved,
                3 => Status::FalsePositive,
                _ => return None,
            },
            level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bytes_sort_like_times_and_round_trip() {
        let times: Vec<Timestamp> = [
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2026-11-22T03:01:02Z",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        for pair in times.windows(2) {
            assert!(time_bytes(pair[0]) < time_bytes(pair[1]));
        }
        for t in times {
            assert_eq!(time_from_bytes(&time_bytes(t)), Some(t));
        }
    }

    #[test]
    fn an_entry_belongs_only_to_its_exact_value() {
        let id = "01JD3V6X8Q4W0Z5N2K7M9P1R3T";
        let short = prefix("a");
        assert_eq!(id_after(&entry("a", id), &short), Some(id));
        assert_eq!(id_after(&entry("a\0x", id), &short), None);
    }
}
