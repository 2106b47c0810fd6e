//! The outbox: alerts waiting for their destination, written in the same transaction as the
//! incident change they report, removed only when the destination confirmed delivery.
//!
//! Trees:
//! - `outbox`: `destination \0 seq` → [`OutboxEntry`] as JSON. `seq` comes from sled's id
//!   generator, which only grows (across restarts too), so key order is enqueue order and thus
//!   revision order per incident.
//! - `outbox_sev`: `destination \0 severity \0 seq` → empty: the lowest severity, oldest first, for
//!   eviction when the cap is reached.
//! - `outbox_dead`: `destination \0 seq` → entry with its error: permanently refused alerts, kept
//!   for `outbox status` until an operator retries them.
//! - `outbox_meta`: per destination delivery state and counters; the email flood gate's state;
//!   `delivered:INCIDENT \0 DESTINATION \0 SEQ` → [`Delivered`]: who confirmed which alert, when.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionalTree;

use super::{Store, StoreError, TxResult, from_tx};
use crate::alerting::AlertReason;
use crate::model::{Incident, Severity};

/// One alert waiting for one destination: the incident as it was when the alert was raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub reason: AlertReason,
    #[serde(with = "crate::model::rfc3339")]
    pub enqueued: Timestamp,
    pub incident: Incident,
    /// For destinations that hear of cases (email): the case as it was when the alert was raised;
    /// `incident` is then the case's incident that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Box<crate::cases::Case>>,
    /// Why the destination refused it (dead letters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entry with its place in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub seq: u64,
    pub entry: OutboxEntry,
}

/// What a destination's sender last experienced; saved so `outbox status` can tell it while the
/// daemon is down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub last_delivered_at: Option<Timestamp>,
    /// Failed attempts since the last success.
    #[serde(default)]
    pub failures: u32,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Alerts confirmed by the destination, since the store was created.
    #[serde(default)]
    pub delivered: u64,
    /// Alerts dropped because the outbox was full.
    #[serde(default)]
    pub evicted: u64,
}

/// The outbox of one destination, as `outbox status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationStatus {
    pub destination: String,
    pub pending: u64,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub oldest_enqueued: Option<Timestamp>,
    /// Seconds the oldest pending alert has waited (when the report was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_age_seconds: Option<u64>,
    pub dead_letters: u64,
    #[serde(flatten)]
    pub state: DeliveryState,
}

/// A dead letter as listed by `outbox status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub destination: String,
    pub incident_id: String,
    pub revision: u64,
    pub reason: AlertReason,
    pub error: String,
    #[serde(with = "crate::model::rfc3339")]
    pub enqueued: Timestamp,
}

/// An alert a destination confirmed: who was notified of an incident, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub destination: String,
    pub incident_id: String,
    pub revision: u64,
    pub reason: AlertReason,
    #[serde(with = "crate::model::rfc3339")]
    pub enqueued: Timestamp,
    #[serde(with = "crate::model::rfc3339")]
    pub delivered: Timestamp,
}

/// `outbox status`: every destination, and the first dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxReport {
    pub destinations: Vec<DestinationStatus>,
    pub dead_letters: Vec<DeadLetter>,
}

/// Dead letters listed in a report; the count per destination is always complete.
pub const REPORTED_DEAD_LETTERS: usize = 100;

mod opt_time {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&crate::model::rfc3339::format(ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

pub(super) fn entry_key(destination: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(destination.len() + 9);
    key.extend_from_slice(destination.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn severity_key(destination: &str, severity: Severity, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(destination.len() + 11);
    key.extend_from_slice(destination.as_bytes());
    key.push(0);
    key.push(severity as u8);
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn prefix(destination: &str) -> Vec<u8> {
    let mut key = destination.as_bytes().to_vec();
    key.push(0);
    key
}

fn seq_of(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[tail..].try_into().ok()?))
}

/// `delivered:INCIDENT \0 DESTINATION \0 SEQ`: one alert a destination confirmed, kept for the
/// reports' "who was notified".
fn delivered_key(incident_id: &str, destination: &str, seq: u64) -> Vec<u8> {
    let mut key = format!("delivered:{incident_id}\0{destination}\0").into_bytes();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn output_key(key: &str) -> Vec<u8> {
    format!("output:{key}").into_bytes()
}

fn state_key(destination: &str) -> Vec<u8> {
    format!("state:{destination}").into_bytes()
}

fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<OutboxEntry, StoreError> {
    decode_json(key, bytes)
}

fn decode_json<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: err.to_string(),
    })
}

/// Queues `entry` for `destination` inside the caller's transaction.
pub(super) fn enqueue_tx(
    outbox: &TransactionalTree,
    by_severity: &TransactionalTree,
    destination: &str,
    entry: &OutboxEntry,
) -> TxResult<()> {
    let seq = outbox.generate_id()?;
    let bytes = serde_json::to_vec(entry).expect("outbox entry serializes");
    outbox.insert(entry_key(destination, seq), bytes)?;
    by_severity.insert(severity_key(destination, entry.severity(), seq), &[][..])?;
    Ok(())
}

impl OutboxEntry {
    /// The severity the cap's eviction goes by: the case's when it is a case alert.
    pub fn severity(&self) -> Severity {
        self.case
            .as_ref()
            .map_or(self.incident.severity, |case| case.severity)
    }
}

impl Store {
    fn outbox_trees(&self) -> (&sled::Tree, &sled::Tree, &sled::Tree, &sled::Tree) {
        let [outbox, by_severity, dead, meta] = &self.outbox;
        (outbox, by_severity, dead, meta)
    }

    /// Up to `max` entries waiting for `destination`, oldest first.
    pub fn outbox_peek(&self, destination: &str, max: usize) -> Result<Vec<Queued>, StoreError> {
        let (outbox, ..) = self.outbox_trees();
        let mut found = Vec::new();
        for item in outbox.scan_prefix(prefix(destination)).take(max) {
            let (key, value) = item?;
            let Some(seq) = seq_of(&key) else { continue };
            found.push(Queued {
                seq,
                entry: decode_entry(&key, &value)?,
            });
        }
        Ok(found)
    }

    /// Entries waiting for `destination`.
    pub fn outbox_depth(&self, destination: &str) -> u64 {
        self.depth
            .lock()
            .map(|d| d.get(destination).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub(super) fn adjust_depth(&self, destination: &str, delta: i64) -> u64 {
        let mut depth = self.depth.lock().unwrap_or_else(|e| e.into_inner());
        let value = depth.entry(destination.to_string()).or_insert(0);
        *value = value.saturating_add_signed(delta);
        *value
    }

    /// Counts every destination's entries: at open, so depth is right after a restart.
    pub(super) fn count_outbox(&self) -> Result<(), StoreError> {
        let (outbox, ..) = self.outbox_trees();
        let mut depth = std::collections::HashMap::<String, u64>::new();
        for key in outbox.iter().keys() {
            let key = key?;
            if let Some(end) = key.iter().position(|&b| b == 0) {
                *depth
                    .entry(String::from_utf8_lossy(&key[..end]).into_owned())
                    .or_default() += 1;
            }
        }
        *self.depth.lock().unwrap_or_else(|e| e.into_inner()) = depth;
        Ok(())
    }

    /// The destination confirmed these entries: they leave the outbox.
    pub fn outbox_delivered(
        &self,
        destination: &str,
        delivered: &[Queued],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.outbox_delivered_with_state(destination, delivered, now, None)
    }

    /// `outbox_delivered`, also saving an output's state (`output_state`'s key and value) in the
    /// same transaction: the email sender's flood gate changes with the alerts it takes.
    pub fn outbox_delivered_with_state(
        &self,
        destination: &str,
        delivered: &[Queued],
        now: Timestamp,
        output_state: Option<(&str, &[u8])>,
    ) -> Result<(), StoreError> {
        let (outbox, by_severity, _, meta) = self.outbox_trees();
        let removed = (outbox, by_severity, meta)
            .transaction(|(outbox, by_severity, meta)| {
                let mut removed = 0i64;
                for queued in delivered {
                    if outbox.remove(entry_key(destination, queued.seq))?.is_some() {
                        removed += 1;
                        let record = Delivered {
                            destination: destination.to_string(),
                            incident_id: queued.entry.incident.id.clone(),
                            revision: queued.entry.incident.revision,
                            reason: queued.entry.reason,
                            enqueued: queued.entry.enqueued,
                            delivered: now,
                        };
                        let bytes = serde_json::to_vec(&record).expect("delivery serializes");
                        meta.insert(
                            delivered_key(&record.incident_id, destination, queued.seq),
                            bytes,
                        )?;
                    }
                    by_severity.remove(severity_key(
                        destination,
                        queued.entry.severity(),
                        queued.seq,
                    ))?;
                }
                let mut state = load_state(meta, destination)?;
                state.delivered += removed as u64;
                state.last_delivered_at = Some(now);
                state.failures = 0;
                state.next_attempt_at = None;
                save_state(meta, destination, &state)?;
                if let Some((key, value)) = output_state {
                    meta.insert(output_key(key), value)?;
                }
                Ok(removed)
            })
            .map_err(from_tx)?;
        self.adjust_depth(destination, -removed);
        Ok(())
    }

    /// The destination refused this entry for good: it moves to the dead letters.
    pub fn outbox_dead_letter(
        &self,
        destination: &str,
        queued: &Queued,
        error: &str,
    ) -> Result<(), StoreError> {
        let (outbox, by_severity, dead, _) = self.outbox_trees();
        let mut entry = queued.entry.clone();
        entry.error = Some(error.to_string());
        let bytes = serde_json::to_vec(&entry).expect("outbox entry serializes");
        let key = entry_key(destination, queued.seq);
        let removed = (outbox, by_severity, dead)
            .transaction(|(outbox, by_severity, dead)| {
                let removed = outbox.remove(key.clone())?.is_some();
                by_severity.remove(severity_key(destination, entry.severity(), queued.seq))?;
                dead.insert(key.clone(), bytes.clone())?;
                Ok(removed)
            })
            .map_err(from_tx)?;
        if removed {
            self.adjust_depth(destination, -1);
        }
        Ok(())
    }

    /// Puts every dead letter back in its queue, at its original place, so revision order per
    /// incident still holds. Returns how many.
    pub fn outbox_requeue_dead(&self) -> Result<usize, StoreError> {
        let (outbox, by_severity, dead, _) = self.outbox_trees();
        let mut moved: Vec<String> = Vec::new();
        for item in dead.iter() {
            let (key, value) = item?;
            let mut entry = decode_entry(&key, &value)?;
            entry.error = None;
            let Some(end) = key.iter().position(|&b| b == 0) else {
                continue;
            };
            let destination = String::from_utf8_lossy(&key[..end]).into_owned();
            let Some(seq) = seq_of(&key) else { continue };
            let bytes = serde_json::to_vec(&entry).expect("outbox entry serializes");
            (outbox, by_severity, dead)
                .transaction(|(outbox, by_severity, dead)| {
                    dead.remove(key.clone())?;
                    outbox.insert(key.clone(), bytes.clone())?;
                    by_severity
                        .insert(severity_key(&destination, entry.severity(), seq), &[][..])?;
                    Ok(())
                })
                .map_err(from_tx)?;
            moved.push(destination);
        }
        for destination in &moved {
            self.adjust_depth(destination, 1);
        }
        self.flush()?;
        Ok(moved.len())
    }

    /// Drops entries beyond the cap: the lowest severity first, oldest first within it. Returns
    /// how many were dropped; each is counted in the destination's state and logged by the caller.
    pub(super) fn enforce_cap(&self, destination: &str, cap: usize) -> Result<u64, StoreError> {
        let excess = self.outbox_depth(destination).saturating_sub(cap as u64);
        if excess == 0 {
            return Ok(0);
        }
        let (outbox, by_severity, _, meta) = self.outbox_trees();
        let victims: Vec<sled::IVec> = by_severity
            .scan_prefix(prefix(destination))
            .keys()
            .take(excess as usize)
            .collect::<Result<_, _>>()?;
        let dropped = (outbox, by_severity, meta)
            .transaction(|(outbox, by_severity, meta)| {
                let mut dropped = 0u64;
                for key in &victims {
                    let Some(seq) = seq_of(key) else { continue };
                    by_severity.remove(key)?;
                    if outbox.remove(entry_key(destination, seq))?.is_some() {
                        dropped += 1;
                    }
                }
                let mut state = load_state(meta, destination)?;
                state.evicted += dropped;
                save_state(meta, destination, &state)?;
                Ok(dropped)
            })
            .map_err(from_tx)?;
        self.adjust_depth(destination, -(dropped as i64));
        Ok(dropped)
    }

    /// Records a failed attempt (and when the next one is due).
    pub fn outbox_failed(
        &self,
        destination: &str,
        error: &str,
        now: Timestamp,
        next_attempt_at: Timestamp,
    ) -> Result<DeliveryState, StoreError> {
        let (.., meta) = self.outbox_trees();
        let state = meta
            .transaction(|meta| {
                let mut state = load_state(meta, destination)?;
                state.last_error = Some(error.to_string());
                state.last_error_at = Some(now);
                state.failures = state.failures.saturating_add(1);
                state.next_attempt_at = Some(next_attempt_at);
                save_state(meta, destination, &state)?;
                Ok(state)
            })
            .map_err(from_tx)?;
        Ok(state)
    }

    pub fn delivery_state(&self, destination: &str) -> Result<DeliveryState, StoreError> {
        let (.., meta) = self.outbox_trees();
        Ok(meta
            .get(state_key(destination))?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default())
    }

    /// Every destination that has entries, dead letters or a recorded state, plus `known` ones;
    /// ages as of `now`.
    pub fn outbox_status(
        &self,
        known: &[&str],
        now: Timestamp,
    ) -> Result<Vec<DestinationStatus>, StoreError> {
        let (outbox, _, dead, meta) = self.outbox_trees();
        let mut names: std::collections::BTreeSet<String> =
            known.iter().map(|s| s.to_string()).collect();
        for key in meta.scan_prefix(b"state:").keys() {
            let key = key?;
            names.insert(String::from_utf8_lossy(&key[6..]).into_owned());
        }
        for key in dead.iter().keys() {
            let key = key?;
            if let Some(end) = key.iter().position(|&b| b == 0) {
                names.insert(String::from_utf8_lossy(&key[..end]).into_owned());
            }
        }
        if let Ok(depth) = self.depth.lock() {
            names.extend(depth.keys().cloned());
        }
        let mut found = Vec::new();
        for destination in names {
            let oldest = match outbox.scan_prefix(prefix(&destination)).next() {
                Some(item) => {
                    let (key, value) = item?;
                    Some(decode_entry(&key, &value)?.enqueued)
                }
                None => None,
            };
            found.push(DestinationStatus {
                pending: self.outbox_depth(&destination),
                oldest_enqueued: oldest,
                oldest_age_seconds: oldest.map(|at| now.duration_since(at).as_secs().max(0) as u64),
                dead_letters: dead.scan_prefix(prefix(&destination)).count() as u64,
                state: self.delivery_state(&destination)?,
                destination,
            });
        }
        Ok(found)
    }

    /// The whole `outbox status` answer, ages computed at `now`.
    pub fn outbox_report(
        &self,
        known: &[&str],
        now: Timestamp,
    ) -> Result<OutboxReport, StoreError> {
        Ok(OutboxReport {
            destinations: self.outbox_status(known, now)?,
            dead_letters: self.dead_letters(REPORTED_DEAD_LETTERS)?,
        })
    }

    /// Dead letters, oldest first, at most `limit`.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let (_, _, dead, _) = self.outbox_trees();
        let mut found = Vec::new();
        for item in dead.iter().take(limit) {
            let (key, value) = item?;
            let entry = decode_entry(&key, &value)?;
            let Some(end) = key.iter().position(|&b| b == 0) else {
                continue;
            };
            found.push(DeadLetter {
                destination: String::from_utf8_lossy(&key[..end]).into_owned(),
                incident_id: entry.incident.id.clone(),
                revision: entry.incident.revision,
                reason: entry.reason,
                error: entry.error.unwrap_or_default(),
                enqueued: entry.enqueued,
            });
        }
        Ok(found)
    }

    /// The alerts about `incident_id` that destinations confirmed, oldest first per destination;
    /// `None` for every incident.
    pub fn deliveries(&self, incident_id: Option<&str>) -> Result<Vec<Delivered>, StoreError> {
        let (.., meta) = self.outbox_trees();
        let prefix = match incident_id {
            Some(id) => format!("delivered:{id}\0"),
            None => "delivered:".to_string(),
        };
        let mut found = Vec::new();
        for item in meta.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item?;
            found.push(decode_json(&key, &value)?);
        }
        Ok(found)
    }

    /// What waits for a destination or was refused by it, about `incident_id` (`None`: every
    /// incident): (destination, entry, refused).
    pub fn undelivered(
        &self,
        incident_id: Option<&str>,
    ) -> Result<Vec<(String, OutboxEntry, bool)>, StoreError> {
        let (outbox, _, dead, _) = self.outbox_trees();
        let mut found = Vec::new();
        for (tree, refused) in [(outbox, false), (dead, true)] {
            for item in tree.iter() {
                let (key, value) = item?;
                let Some(end) = key.iter().position(|&b| b == 0) else {
                    continue;
                };
                let entry = decode_entry(&key, &value)?;
                if incident_id.is_none_or(|id| id == entry.incident.id) {
                    let destination = String::from_utf8_lossy(&key[..end]).into_owned();
                    found.push((destination, entry, refused));
                }
            }
        }
        Ok(found)
    }

    /// A small value an output keeps across restarts (the email flood gate).
    pub fn output_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (.., meta) = self.outbox_trees();
        Ok(meta.get(output_key(key))?.map(|v| v.to_vec()))
    }

    pub fn set_output_state(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (.., meta) = self.outbox_trees();
        meta.insert(output_key(key), value)?;
        Ok(())
    }
}

fn load_state(meta: &TransactionalTree, destination: &str) -> TxResult<DeliveryState> {
    Ok(meta
        .get(state_key(destination))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

fn save_state(meta: &TransactionalTree, destination: &str, state: &DeliveryState) -> TxResult<()> {
    meta.insert(
        state_key(destination),
        serde_json::to_vec(state).expect("state serializes"),
    )?;
    Ok(())
}
