//! The incident store, the only module that knows sled: incidents by id, secondary indexes for
//! queries, source checkpoints, all changed together in one transaction per batch.
//!
//! Trees (one sled database, so one transaction can span them all):
//! - `incidents`: ULID id → incident as JSON. ULIDs sort by first_seen.
//! - `checkpoints`: source key → fingerprint and offset (16 bytes).
//! - `idx_time`: `last_seen id` → [`keys::Summary`] (severity, status, level).
//! - `idx_severity`, `idx_status`, `idx_rule`, `idx_host`, `idx_system`, `idx_field` (`src_ip=…`):
//!   `value \0 id` → empty.
//! - `idx_case`: `case_id \0 id` → empty: the incidents of a case.
//! - `cases`: case id → case as JSON; `case_time`: `last_seen id` → summary (see `store::cases`).
//! - `engine`: the correlator's and the case book's saved state, group by group (see `correlate`), written with the
//!   checkpoints so positions and the counts derived from the lines before them are one state.
//! - `evidence_log`: the tamper-evident log, one leaf per change, written in each change's transaction;
//!   `evidence_checkpoints`: the signed checkpoints; `admin_actions`: admin actions with their leaves
//!   (see `store::evidence`).
//! - `meta`: the schema version.
//!
//! Durability: `apply` is atomic (all trees or none) but only durable after the `flush` that
//! follows it; `transition` flushes before it returns. See ARCHITECTURE.md.

mod cases;
mod evidence;
mod keys;
mod outbox;
#[cfg(test)]
pub(crate) mod tests;
mod views;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::alerting::OutboxPolicy;
use crate::correlate::Change;
use crate::model::{Checkpoint, HistoryEntry, Incident, Severity, Status};
use keys::{ID_LEN, Index, Summary};

pub use crate::cases::Case;
pub use cases::CaseQuery;
pub use keys::status_name;
pub use outbox::{
    DeadLetter, Delivered, DeliveryState, DestinationStatus, OutboxEntry, OutboxReport, Queued,
};
pub use views::{Glance, Tally};

/// Bumped whenever the layout of keys or values changes; a store of another version is refused
/// rather than misread.
pub const SCHEMA_VERSION: u32 = 2;

/// Where a source has been read up to, saved with what the lines before it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A file: fingerprint and offset (key `file:DEV:INO`).
    File(Checkpoint),
    /// A journal cursor (key `journal:N`).
    Cursor(String),
}

/// One saved (key, value) of the correlator's state.
pub type SavedState = (Vec<u8>, Vec<u8>);

/// Version 1 kept pending threshold windows under these keys in `checkpoints`; version 2 keeps the
/// whole correlation state in `engine`. Opening a version-1 store deletes them (see `migrate_v1`).
const V1_PENDING_PREFIX: &[u8] = b"pending:";

pub use crate::correlate::EVIDENCE_LINES;

/// An index whose matching entries are at most this many is read whole; above it, the time index
/// is walked newest first with the filters applied, which stops as soon as `limit` is reached.
const INDEX_SCAN_CAP: usize = 4096;

/// The shortest id prefix `find` accepts: 8 characters of a ULID give its first event's time to a
/// quarter of a second; shorter prefixes name too many incidents to be worth typing.
pub const MIN_ID_PREFIX: usize = 8;

/// Incidents deleted per purge transaction, so a purge never holds a long write.
const PURGE_CHUNK: usize = 512;

const SCHEMA_KEY: &[u8] = b"schema";

const T_INCIDENTS: usize = 0;
const T_CHECKPOINTS: usize = 1;
const T_TIME: usize = 2;

fn tree_of(index: Index) -> usize {
    3 + index as usize
}

const T_OUTBOX: usize = 3 + Index::ALL.len();
const T_OUTBOX_SEVERITY: usize = T_OUTBOX + 1;
const T_ENGINE: usize = T_OUTBOX + 2;
const T_CASES: usize = T_OUTBOX + 3;
const T_CASE_TIME: usize = T_OUTBOX + 4;
const T_EVIDENCE: usize = T_OUTBOX + 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {} is in use by another process (is socwatch run active?)", .0.display())]
    Locked(PathBuf),
    /// This user may not open the store's files (it belongs to the service user).
    #[error("permission denied opening the store at {}", .0.display())]
    Denied(PathBuf),
    #[error("store at {} has schema {found}, this socwatch expects {expected}", path.display())]
    Schema {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("no incident with id {0}")]
    NotFound(String),
    #[error("no case with id {0}")]
    CaseNotFound(String),
    #[error("id prefix {prefix} names {matches} incidents: give more characters")]
    Ambiguous { prefix: String, matches: usize },
    #[error("an incident id needs at least {MIN_ID_PREFIX} characters, got '{0}'")]
    IdTooShort(String),
    #[error("cannot {action} incident {id}: it is {status}")]
    InvalidTransition {
        id: String,
        action: &'static str,
        status: &'static str,
    },
    #[error("corrupt record {key} in the store: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
}

/// An operator's lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ack,
    Resolve,
    FalsePositive,
    Reopen,
}

impl Action {
    /// The name recorded in history (and used in the API paths, with `-` for `_`).
    pub fn name(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Resolve => "resolve",
            Action::FalsePositive => "false_positive",
            Action::Reopen => "reopen",
        }
    }

    /// The status the action leads to from `from`, or None when it makes no sense there
    /// (acknowledging a resolved incident, reopening an open one, repeating an action).
    pub fn target(self, from: Status) -> Option<Status> {
        use Status::*;
        match (self, from) {
            (Action::Ack, Open) => Some(Acknowledged),
            (Action::Resolve, Open | Acknowledged) => Some(Resolved),
            // An incident closed as resolved may be recognised as a false positive later.
            (Action::FalsePositive, Open | Acknowledged | Resolved) => Some(FalsePositive),
            (Action::Reopen, Acknowledged | Resolved | FalsePositive) => Some(Open),
            _ => None,
        }
    }
}

/// What the store says about one rule's incidents (`rules list --stats`, `/api/v1/rules/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleStats {
    pub rule_id: String,
    /// Incidents stored.
    pub incidents: u64,
    /// Of them, closed as false positives (directly, or with their case).
    pub false_positives: u64,
    /// Of them, still open or acknowledged.
    pub open: u64,
}

/// Filters of `incidents list` and `export`. Empty means everything, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Last seen at or after.
    pub since: Option<Timestamp>,
    /// Last seen at or before.
    pub until: Option<Timestamp>,
    /// This severity and above.
    pub min_severity: Option<Severity>,
    pub status: Option<Status>,
    pub rule: Option<String>,
    pub host: Option<String>,
    pub system: Option<String>,
    /// Group values that must all hold (`src_ip`, `203.0.113.7`).
    pub fields: Vec<(String, String)>,
    pub limit: Option<usize>,
}

impl Query {
    pub fn matches(&self, incident: &Incident) -> bool {
        self.since.is_none_or(|t| incident.last_seen >= t)
            && self.until.is_none_or(|t| incident.last_seen <= t)
            && self.summary_matches(Summary::of(incident))
            && self.rule.as_ref().is_none_or(|r| *r == incident.rule_id)
            && self.host.as_ref().is_none_or(|h| *h == incident.host)
            && self.system.as_ref().is_none_or(|s| *s == incident.system)
            && self
                .fields
                .iter()
                .all(|(k, v)| incident.group.get(k) == Some(v))
    }

    fn summary_matches(&self, summary: Summary) -> bool {
        self.min_severity.is_none_or(|min| summary.severity >= min)
            && self.status.is_none_or(|s| s == summary.status)
    }

    /// The index scans that could answer this query, each a list of `value \0` prefixes.
    fn index_candidates(&self) -> Vec<(Index, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        for (k, v) in &self.fields {
            out.push((Index::Field, vec![keys::prefix(&format!("{k}={v}"))]));
        }
        for (index, value) in [
            (Index::Rule, &self.rule),
            (Index::Host, &self.host),
            (Index::System, &self.system),
        ] {
            if let Some(value) = value {
                out.push((index, vec![keys::prefix(value)]));
            }
        }
        if let Some(status) = self.status {
            out.push((Index::Status, vec![keys::prefix(status_name(status))]));
        }
        if let Some(min) = self.min_severity.filter(|m| *m > Severity::Info) {
            let prefixes = Severity::ALL
                .into_iter()
                .filter(|s| *s >= min)
                .map(|s| keys::prefix(s.as_str()))
                .collect();
            out.push((Index::Severity, prefixes));
        }
        out
    }
}

pub use crate::config::default_floors;

/// The longest floor configured for `level` or any lower level: a more sensitive system never keeps
/// its incidents for less time than a less sensitive one. Level 0 (not configured) has none.
pub fn floor_for(floors: &BTreeMap<u8, Duration>, level: u8) -> Duration {
    if level == 0 {
        return Duration::ZERO;
    }
    floors
        .range(..=level)
        .map(|(_, d)| *d)
        .max()
        .unwrap_or(Duration::ZERO)
}

/// The incident store. Cheap to share by reference; sled handles concurrency inside.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    /// incidents, checkpoints, time, the `Index` trees in `Index::ALL` order, outbox, outbox by
    /// severity: every tree an incident change writes, so one transaction spans them.
    trees: Vec<sled::Tree>,
    /// outbox, outbox by severity, dead letters, outbox meta.
    outbox: [sled::Tree; 4],
    /// Where alerts go; empty until the daemon or CLI sets it from the config.
    policy: std::sync::RwLock<OutboxPolicy>,
    /// Entries per destination, counted at open and kept current by every outbox write.
    depth: std::sync::Mutex<HashMap<String, u64>>,
    /// Set when a transaction queued alerts; the next flush then calls `on_alerts`.
    alerts_queued: std::sync::atomic::AtomicBool,
    /// Wakes the outputs once queued alerts are durable.
    on_alerts: std::sync::Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Incidents an operator closed (resolved, false positive) since the pipeline last asked: their
    /// group's next match must start a new incident, not update the closed one.
    closed: std::sync::Mutex<Vec<String>>,
    /// Signed checkpoints of the evidence log: size → note (outside the transactions).
    evidence_checkpoints: sled::Tree,
    /// Admin actions, each written with its evidence leaf (see `store::evidence`).
    admin_actions: sled::Tree,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(err: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(err))
}

fn from_tx(err: TransactionError<StoreError>) -> StoreError {
    match err {
        TransactionError::Abort(err) => err,
        TransactionError::Storage(err) => StoreError::Sled(err),
    }
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Incident, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: err.to_string(),
    })
}

fn encode(incident: &Incident) -> Vec<u8> {
    // An Incident is strings, numbers and maps: serializing it cannot fail.
    serde_json::to_vec(incident).expect("incident serializes")
}

fn load_tx(tree: &TransactionalTree, id: &str) -> TxResult<Option<Incident>> {
    match tree.get(id.as_bytes())? {
        Some(bytes) => match decode(id.as_bytes(), &bytes) {
            Ok(incident) => Ok(Some(incident)),
            Err(err) => abort(err),
        },
        None => Ok(None),
    }
}

/// Writes `after` and moves its index entries from what `before` had to what `after` has, and
/// logs the change (`action`) in the evidence log.
fn write_tx(
    t: &[TransactionalTree],
    before: Option<&Incident>,
    after: &Incident,
    action: &str,
    now: Timestamp,
) -> TxResult<()> {
    let old = before.map(keys::entries).unwrap_or_default();
    let new = keys::entries(after);
    for entry in &old {
        if !new.contains(entry) {
            t[tree_of(entry.0)].remove(entry.1.as_slice())?;
        }
    }
    for entry in &new {
        if !old.contains(entry) {
            t[tree_of(entry.0)].insert(entry.1.as_slice(), &[][..])?;
        }
    }
    if let Some(before) = before {
        t[T_TIME].remove(keys::time_entry(before))?;
    }
    t[T_TIME].insert(keys::time_entry(after), &Summary::of(after).encode()[..])?;
    let bytes = encode(after);
    evidence::append_tx(
        t,
        crate::evidence::Kind::Incident,
        &after.id,
        &bytes,
        action,
        now,
    )?;
    t[T_INCIDENTS].insert(after.id.as_bytes(), bytes)?;
    Ok(())
}

/// Deletes an incident (retention), logged as purged so verification expects it gone.
fn remove_tx(t: &[TransactionalTree], incident: &Incident, now: Timestamp) -> TxResult<()> {
    evidence::append_tx(
        t,
        crate::evidence::Kind::Incident,
        &incident.id,
        &encode(incident),
        crate::evidence::PURGED,
        now,
    )?;
    for (index, key) in keys::entries(incident) {
        t[tree_of(index)].remove(key)?;
    }
    t[T_TIME].remove(keys::time_entry(incident))?;
    t[T_INCIDENTS].remove(incident.id.as_bytes())?;
    Ok(())
}

/// The full key of the one record of `tree` whose key starts with `given` (at least
/// `MIN_ID_PREFIX` characters, any case); `not_found` words the miss (an incident or a case).
fn resolve_prefix(
    tree: &sled::Tree,
    given: &str,
    not_found: fn(String) -> StoreError,
) -> Result<String, StoreError> {
    let prefix = given.trim().to_ascii_uppercase();
    if prefix.len() < MIN_ID_PREFIX {
        return Err(StoreError::IdTooShort(given.to_string()));
    }
    let mut found = tree
        .scan_prefix(prefix.as_bytes())
        .keys()
        .take(2)
        .collect::<Result<Vec<_>, _>>()?;
    match found.len() {
        0 => Err(not_found(given.to_string())),
        1 => Ok(String::from_utf8_lossy(&found.remove(0)).into_owned()),
        _ => Err(StoreError::Ambiguous {
            prefix: given.to_string(),
            matches: tree.scan_prefix(prefix.as_bytes()).keys().count(),
        }),
    }
}

/// One more alert queued for `destination` in a transaction's tally.
fn count_queued(queued: &mut Vec<(String, u64)>, destination: &str) {
    match queued.iter_mut().find(|(name, _)| *name == destination) {
        Some((_, n)) => *n += 1,
        None => queued.push((destination.to_string(), 1)),
    }
}

fn open_error(path: &Path, err: sled::Error) -> StoreError {
    // sled reports a held lock as a plain io::Error; its text is the only way to tell.
    if let sled::Error::Io(io) = &err
        && (io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock"))
    {
        return StoreError::Locked(path.to_path_buf());
    }
    if let sled::Error::Io(io) = &err
        && io.kind() == std::io::ErrorKind::PermissionDenied
    {
        return StoreError::Denied(path.to_path_buf());
    }
    StoreError::Sled(err)
}

/// Version 1 → 2: the pending windows of version 1 cannot be turned into the correlator's state
/// (they lack the open incidents' suppression state), so they are deleted and counted; attacks in
/// progress during the upgrade may start a new incident once.
fn migrate_v1(db: &sled::Db) -> Result<(), StoreError> {
    let checkpoints = db.open_tree("checkpoints")?;
    let mut dropped = 0;
    for key in checkpoints.scan_prefix(V1_PENDING_PREFIX).keys() {
        checkpoints.remove(key?)?;
        dropped += 1;
    }
    tracing::warn!(
        pending_windows_dropped = dropped,
        "store upgraded from schema 1 to 2: correlation state starts afresh"
    );
    Ok(())
}

/// sled's page cache. Its default (1 GiB) let the daemon's memory grow with everything it ever
/// wrote; a batch reads back only the incidents, cases and groups it touches, which stay hot.
const CACHE_BYTES: u64 = 16 << 20;

impl Store {
    /// Opens (or creates) the store in `dir`, checking its schema version. `policy` says where the
    /// alerts of every incident change written through this handle go.
    pub fn open(dir: impl AsRef<Path>, policy: OutboxPolicy) -> Result<Store, StoreError> {
        let path = dir.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|err| open_error(&path, err))?;
        let meta = db.open_tree("meta")?;
        match meta.get(SCHEMA_KEY)? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if found == 1 {
                    migrate_v1(&db)?;
                    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                    db.flush()?;
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        path,
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
        }
        let mut trees = vec![
            db.open_tree("incidents")?,
            db.open_tree("checkpoints")?,
            db.open_tree("idx_time")?,
        ];
        for index in Index::ALL {
            trees.push(db.open_tree(index.tree_name())?);
        }
        let outbox = [
            db.open_tree("outbox")?,
            db.open_tree("outbox_sev")?,
            db.open_tree("outbox_dead")?,
            db.open_tree("outbox_meta")?,
        ];
        trees.push(outbox[0].clone());
        trees.push(outbox[1].clone());
        trees.push(db.open_tree("engine")?);
        trees.push(db.open_tree("cases")?);
        trees.push(db.open_tree("case_time")?);
        trees.push(db.open_tree("evidence_log")?);
        let evidence_checkpoints = db.open_tree("evidence_checkpoints")?;
        let admin_actions = db.open_tree("admin_actions")?;
        let store = Store {
            path,
            db,
            trees,
            outbox,
            policy: std::sync::RwLock::new(policy),
            depth: Default::default(),
            alerts_queued: Default::default(),
            on_alerts: Default::default(),
            closed: std::sync::Mutex::new(Vec::new()),
            evidence_checkpoints,
            admin_actions,
        };
        store.count_outbox()?;
        store.baseline_evidence()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn policy(&self) -> OutboxPolicy {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The destinations alerts are queued for.
    pub fn destinations(&self) -> Vec<String> {
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        policy.destinations.iter().map(|d| d.name.clone()).collect()
    }

    /// Called after a flush that made newly queued alerts durable (the daemon wakes its outputs).
    pub fn on_alerts(&self, wake: impl Fn() + Send + Sync + 'static) {
        *self.on_alerts.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(wake));
    }

    /// Queues alerts for the changes in `touched` (inside the transaction), returning how many per
    /// destination.
    fn enqueue_alerts_tx(
        t: &[TransactionalTree],
        policy: &OutboxPolicy,
        touched: &[(Option<Incident>, Incident)],
        now: Timestamp,
    ) -> TxResult<Vec<(String, u64)>> {
        let mut queued: Vec<(String, u64)> = Vec::new();
        for (before, after) in touched {
            if before.as_ref() == Some(after) {
                continue;
            }
            for (destination, reason) in policy.targets(before.as_ref(), after) {
                let entry = OutboxEntry {
                    reason,
                    enqueued: now,
                    incident: after.clone(),
                    case: None,
                    error: None,
                };
                outbox::enqueue_tx(
                    &t[T_OUTBOX],
                    &t[T_OUTBOX_SEVERITY],
                    &destination.name,
                    &entry,
                )?;
                count_queued(&mut queued, &destination.name);
            }
        }
        Ok(queued)
    }

    /// Queues the alerts of destinations that hear of cases, not incidents (email): for each case
    /// that opened, rose in severity or reopened. The entry carries the case and, as its incident,
    /// the most severe incident of the case this change touched.
    fn enqueue_case_alerts_tx(
        t: &[TransactionalTree],
        policy: &OutboxPolicy,
        cases: &[(Option<crate::cases::Case>, crate::cases::Case)],
        incidents: &[(Option<Incident>, Incident)],
        now: Timestamp,
    ) -> TxResult<Vec<(String, u64)>> {
        let mut queued: Vec<(String, u64)> = Vec::new();
        for (before, after) in cases {
            let Some(reason) = crate::alerting::case_alert_reason(before.as_ref(), after) else {
                continue;
            };
            let trigger = incidents
                .iter()
                .map(|(_, incident)| incident)
                .filter(|incident| incident.case_id == after.id)
                .max_by_key(|incident| incident.severity);
            let Some(trigger) = trigger else {
                continue;
            };
            for destination in policy.case_targets(reason, after) {
                let entry = OutboxEntry {
                    reason,
                    enqueued: now,
                    incident: trigger.clone(),
                    case: Some(Box::new(after.clone())),
                    error: None,
                };
                outbox::enqueue_tx(
                    &t[T_OUTBOX],
                    &t[T_OUTBOX_SEVERITY],
                    &destination.name,
                    &entry,
                )?;
                count_queued(&mut queued, &destination.name);
            }
        }
        Ok(queued)
    }

    /// After a committed transaction: counts what it queued and enforces the cap.
    fn after_enqueue(&self, queued: Vec<(String, u64)>) -> Result<(), StoreError> {
        if queued.is_empty() {
            return Ok(());
        }
        let cap = self.policy.read().unwrap_or_else(|e| e.into_inner()).cap;
        for (destination, n) in queued {
            self.adjust_depth(&destination, n as i64);
            let dropped = self.enforce_cap(&destination, cap)?;
            if dropped > 0 {
                tracing::warn!(
                    destination = %destination,
                    dropped,
                    cap,
                    "outbox full: dropped the oldest lowest-severity alerts"
                );
            }
        }
        self.alerts_queued
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Applies correlation changes and source checkpoints in one transaction: after a crash either
    /// all of them are in the store or none. Returns each touched incident once, as stored after the
    /// batch, in the order first touched. Durable only after the next `flush`.
    pub fn apply(
        &self,
        changes: &[Change],
        checkpoints: &[(String, Checkpoint)],
    ) -> Result<Vec<Incident>, StoreError> {
        let positions: Vec<(String, Position)> = checkpoints
            .iter()
            .map(|(key, checkpoint)| (key.clone(), Position::File(*checkpoint)))
            .collect();
        self.apply_batch(changes, &[], &positions, &[])
    }

    /// `apply`, also writing the correlator's state changes (`Some` to store, `None` to delete) in
    /// the same transaction: positions, incidents and the correlation state derived from the lines
    /// before those positions are one state, so a restart never sees a line twice and never forgets
    /// one. Every change is folded with `Incident::apply`. An `Opened` whose id is already stored
    /// cannot come from the engine (ids carry its saved sequence); it is logged as a collision and
    /// the stored incident is kept. An `Updated` of an id not stored (purged since) is skipped.
    /// `cases` are the case states the engine reported with the changes (see `Case::absorb`).
    pub fn apply_batch(
        &self,
        changes: &[Change],
        cases: &[crate::cases::Case],
        positions: &[(String, Position)],
        state: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<Vec<Incident>, StoreError> {
        let policy = self.policy();
        let now = Timestamp::now();
        let (touched, queued, collisions) = self
            .trees
            .as_slice()
            .transaction(|t| {
                // The closure may run again on a conflict, so it keeps no state outside itself.
                let mut touched: Vec<(Option<Incident>, Incident)> = Vec::new();
                let mut slot_of: HashMap<&str, usize> = HashMap::new();
                let mut collisions: Vec<String> = Vec::new();
                for change in changes {
                    let id = change.id();
                    let slot = match slot_of.get(id) {
                        Some(&slot) => Some(slot),
                        None => load_tx(&t[T_INCIDENTS], id)?.map(|stored| {
                            slot_of.insert(id, touched.len());
                            touched.push((Some(stored.clone()), stored));
                            touched.len() - 1
                        }),
                    };
                    match (change, slot) {
                        (Change::Opened(incident), None) => {
                            slot_of.insert(id, touched.len());
                            let mut new = (**incident).clone();
                            new.revision = 1;
                            touched.push((None, new));
                        }
                        (Change::Opened(_), Some(_)) => collisions.push(id.to_string()),
                        (Change::Updated { .. }, Some(slot)) => touched[slot].1.apply(change),
                        (Change::Updated { .. }, None) => {}
                    }
                }
                // An incident names the case it ended in: cases a later incident bridged became one.
                let case_of: HashMap<&str, &str> = cases
                    .iter()
                    .flat_map(|c| c.incidents.iter().map(|i| (i.id.as_str(), c.id.as_str())))
                    .collect();
                for (_, after) in &mut touched {
                    if let Some(case) = case_of.get(after.id.as_str()) {
                        after.case_id = case.to_string();
                    }
                }
                for (before, after) in &touched {
                    if before.as_ref() != Some(after) {
                        let action = if before.is_some() {
                            "updated"
                        } else {
                            "opened"
                        };
                        write_tx(t, before.as_ref(), after, action, now)?;
                    }
                }
                let mut queued = Self::enqueue_alerts_tx(t, &policy, &touched, now)?;
                let written: std::collections::HashSet<&str> =
                    touched.iter().map(|(_, i)| i.id.as_str()).collect();
                let touched_cases = cases::apply_cases_tx(t, cases, &written, now)?;
                queued.extend(Self::enqueue_case_alerts_tx(
                    t,
                    &policy,
                    &touched_cases,
                    &touched,
                    now,
                )?);
                for (key, position) in positions {
                    match position {
                        Position::File(checkpoint) => {
                            let mut value = [0u8; 16];
                            value[..8].copy_from_slice(&checkpoint.fingerprint.to_be_bytes());
                            value[8..].copy_from_slice(&checkpoint.offset.to_be_bytes());
                            t[T_CHECKPOINTS].insert(key.as_bytes(), &value[..])?
                        }
                        Position::Cursor(cursor) => {
                            t[T_CHECKPOINTS].insert(key.as_bytes(), cursor.as_bytes())?
                        }
                    };
                }
                for (key, value) in state {
                    match value {
                        Some(bytes) => t[T_ENGINE].insert(key.as_slice(), bytes.as_slice())?,
                        None => t[T_ENGINE].remove(key.as_slice())?,
                    };
                }
                Ok((touched, queued, collisions))
            })
            .map_err(from_tx)?;
        for id in collisions {
            tracing::error!(id = %id, "incident id collision: the stored incident is kept");
        }
        self.after_enqueue(queued)?;
        Ok(touched.into_iter().map(|(_, after)| after).collect())
    }

    /// The correlation state saved with the last batch (`apply_batch`), for the engine to take back.
    pub fn engine_state(&self) -> Result<Vec<SavedState>, StoreError> {
        self.trees[T_ENGINE]
            .iter()
            .map(|item| {
                let (key, value) = item?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// Text checkpoints (a journal cursor), kept beside the file positions and written in the same
    /// transaction as everything a batch derived from the entries before them.
    pub fn text_checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.trees[T_CHECKPOINTS]
            .get(key.as_bytes())?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Makes everything applied so far durable. Returns once it is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        if self
            .alerts_queued
            .swap(false, std::sync::atomic::Ordering::AcqRel)
            && let Some(wake) = self
                .on_alerts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
        {
            wake();
        }
        Ok(())
    }

    /// Every saved checkpoint whose key starts with `prefix` (`file:` for the tailers).
    pub fn checkpoints(&self, prefix: &str) -> Result<Vec<(String, Checkpoint)>, StoreError> {
        let mut found = Vec::new();
        for item in self.trees[T_CHECKPOINTS].scan_prefix(prefix.as_bytes()) {
            let (key, _) = item?;
            let key = String::from_utf8_lossy(&key).into_owned();
            if let Some(checkpoint) = self.checkpoint(&key)? {
                found.push((key, checkpoint));
            }
        }
        Ok(found)
    }

    pub fn checkpoint(&self, key: &str) -> Result<Option<Checkpoint>, StoreError> {
        let Some(bytes) = self.trees[T_CHECKPOINTS].get(key.as_bytes())? else {
            return Ok(None);
        };
        let raw: [u8; 16] = bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            key: key.to_string(),
            reason: format!("checkpoint of {} bytes", bytes.len()),
        })?;
        let (fingerprint, offset) = raw.split_at(8);
        Ok(Some(Checkpoint {
            fingerprint: u64::from_be_bytes(fingerprint.try_into().expect("8 bytes")),
            offset: u64::from_be_bytes(offset.try_into().expect("8 bytes")),
        }))
    }

    /// The full id of the one incident whose id starts with `given` (at least `MIN_ID_PREFIX`
    /// characters, any case): what operators type after reading a short id in a table.
    pub fn resolve_id(&self, given: &str) -> Result<String, StoreError> {
        resolve_prefix(&self.trees[T_INCIDENTS], given, StoreError::NotFound)
    }

    /// The incident named by a full id or a unique prefix of one (`resolve_id`).
    pub fn find(&self, given: &str) -> Result<Incident, StoreError> {
        let id = self.resolve_id(given)?;
        self.get(&id)?.ok_or(StoreError::NotFound(id))
    }

    pub fn get(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        match self.trees[T_INCIDENTS].get(id.as_bytes())? {
            Some(bytes) => Ok(Some(decode(id.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// An operator's action: new status, a history entry, revision + 1. Durable when it returns.
    pub fn transition(
        &self,
        id: &str,
        action: Action,
        by: &str,
        note: &str,
        now: Timestamp,
    ) -> Result<Incident, StoreError> {
        let id = &self.resolve_id(id)?;
        let policy = self.policy();
        let (after, queued) = self
            .trees
            .as_slice()
            .transaction(|t| {
                let Some(before) = load_tx(&t[T_INCIDENTS], id)? else {
                    return abort(StoreError::NotFound(id.to_string()));
                };
                let Some(status) = action.target(before.status) else {
                    return abort(StoreError::InvalidTransition {
                        id: id.to_string(),
                        action: action.name(),
                        status: status_name(before.status),
                    });
                };
                let mut after = before.clone();
                after.status = status;
                after.history.push(HistoryEntry {
                    ts: now,
                    action: action.name().to_string(),
                    by: by.to_string(),
                    note: note.to_string(),
                });
                after.revision += 1;
                write_tx(t, Some(&before), &after, action.name(), now)?;
                let touched = [(Some(before), after)];
                let queued = Self::enqueue_alerts_tx(t, &policy, &touched, now)?;
                let [(_, after)] = touched;
                Ok((after, queued))
            })
            .map_err(from_tx)?;
        self.after_enqueue(queued)?;
        self.flush()?;
        if matches!(after.status, Status::Resolved | Status::FalsePositive)
            && let Ok(mut closed) = self.closed.lock()
        {
            closed.push(after.id.clone());
        }
        Ok(after)
    }

    /// The incidents closed by operators or purged since the last call (for the pipeline's correlator).
    pub fn take_closed(&self) -> Vec<String> {
        self.closed
            .lock()
            .map(|mut closed| std::mem::take(&mut *closed))
            .unwrap_or_default()
    }

    /// Incidents matching `query`, most recently seen first (ties: newest id first).
    ///
    /// Plan: each filter backed by a `value \0 id` index is sized by counting its keys up to
    /// `INDEX_SCAN_CAP`; the smallest one under the cap is read whole and the other filters applied
    /// to what it names. Otherwise the time index is walked from `until` down to `since`, severity
    /// and status checked on the entry itself, and the walk stops at `limit`.
    pub fn list(&self, query: &Query) -> Result<Vec<Incident>, StoreError> {
        let limit = query.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut best: Option<(usize, Index, Vec<Vec<u8>>)> = None;
        for (index, prefixes) in query.index_candidates() {
            let bound = best.as_ref().map_or(INDEX_SCAN_CAP, |b| b.0);
            let count = self.count_prefixes(index, &prefixes, bound + 1)?;
            if count <= bound {
                best = Some((count, index, prefixes));
            }
        }
        match best {
            Some((_, index, prefixes)) => self.list_by_index(query, index, &prefixes, limit),
            None => self.list_by_time(query, limit),
        }
    }

    fn count_prefixes(
        &self,
        index: Index,
        prefixes: &[Vec<u8>],
        cap: usize,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for prefix in prefixes {
            for key in self.trees[tree_of(index)].scan_prefix(prefix).keys() {
                key?;
                count += 1;
                if count >= cap {
                    return Ok(count);
                }
            }
        }
        Ok(count)
    }

    fn list_by_index(
        &self,
        query: &Query,
        index: Index,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let mut found = Vec::new();
        for prefix in prefixes {
            for key in self.trees[tree_of(index)].scan_prefix(prefix).keys() {
                let key = key?;
                let Some(id) = keys::id_after(&key, prefix) else {
                    continue;
                };
                if let Some(incident) = self.get(id)?
                    && query.matches(&incident)
                {
                    found.push(incident);
                }
            }
        }
        found.sort_by(|a, b| (b.last_seen, &b.id).cmp(&(a.last_seen, &a.id)));
        found.truncate(limit);
        Ok(found)
    }

    fn time_range(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> sled::Iter {
        let lower = match since {
            Some(t) => Bound::Included(keys::time_bytes(t).to_vec()),
            None => Bound::Unbounded,
        };
        let upper = match until {
            Some(t) => {
                let mut key = keys::time_bytes(t).to_vec();
                key.extend_from_slice(&[0xff; ID_LEN]);
                Bound::Included(key)
            }
            None => Bound::Unbounded,
        };
        self.trees[T_TIME].range::<Vec<u8>, _>((lower, upper))
    }

    fn list_by_time(&self, query: &Query, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let mut found = Vec::new();
        for item in self.time_range(query.since, query.until).rev() {
            let (key, value) = item?;
            let Some(summary) = Summary::decode(&value) else {
                continue;
            };
            if !query.summary_matches(summary) {
                continue;
            }
            let Ok(id) = std::str::from_utf8(&key[8..]) else {
                continue;
            };
            if let Some(incident) = self.get(id)?
                && query.matches(&incident)
            {
                found.push(incident);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Open and acknowledged incidents last seen at or after `since`, oldest activity first: what the correlator
    /// needs to keep folding repeats into them after a restart.
    pub fn open_incidents_since(&self, since: Timestamp) -> Result<Vec<Incident>, StoreError> {
        let mut found = Vec::new();
        for item in self.time_range(Some(since), None) {
            let (key, value) = item?;
            if Summary::decode(&value)
                .is_some_and(|s| matches!(s.status, Status::Open | Status::Acknowledged))
                && let Ok(id) = std::str::from_utf8(&key[8..])
                && let Some(incident) = self.get(id)?
            {
                found.push(incident);
            }
        }
        Ok(found)
    }

    /// Deletes incidents last seen longer than `retention` before `now`, except those still within
    /// the floor of their security level. Works in transactions of at most `PURGE_CHUNK` incidents
    /// so writers are never held up for long. Returns how many were deleted.
    pub fn purge(
        &self,
        now: Timestamp,
        retention: Duration,
        floors: &BTreeMap<u8, Duration>,
    ) -> Result<usize, StoreError> {
        let age_limit = |level: u8| retention.max(floor_for(floors, level));
        let expired = |last_seen: Timestamp, level: u8| {
            now.duration_since(last_seen)
                .try_into()
                .is_ok_and(|age: Duration| age > age_limit(level))
        };
        let cutoff = now
            .checked_sub(
                jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MIN);
        let end = keys::time_bytes(cutoff).to_vec();
        let mut start: Vec<u8> = Vec::new();
        let mut deleted = 0;
        loop {
            let mut chunk: Vec<String> = Vec::new();
            let mut exhausted = true;
            for item in self.trees[T_TIME].range(start.clone()..end.clone()) {
                let (key, value) = item?;
                start = key.to_vec();
                start.push(0);
                let (Some(last_seen), Some(summary)) =
                    (keys::time_from_bytes(&key), Summary::decode(&value))
                else {
                    continue;
                };
                if expired(last_seen, summary.level)
                    && let Ok(id) = std::str::from_utf8(&key[8..])
                {
                    chunk.push(id.to_string());
                    if chunk.len() >= PURGE_CHUNK {
                        exhausted = false;
                        break;
                    }
                }
            }
            if !chunk.is_empty() {
                let (n, case_ids) = self
                    .trees
                    .as_slice()
                    .transaction(|t| {
                        let mut n = 0;
                        let mut case_ids: Vec<String> = Vec::new();
                        for id in &chunk {
                            // Checked again inside: it may have been updated since the scan.
                            if let Some(incident) = load_tx(&t[T_INCIDENTS], id)?
                                && expired(incident.last_seen, incident.level)
                            {
                                remove_tx(t, &incident, now)?;
                                n += 1;
                                if !incident.case_id.is_empty()
                                    && !case_ids.contains(&incident.case_id)
                                {
                                    case_ids.push(incident.case_id.clone());
                                }
                            }
                        }
                        Ok((n, case_ids))
                    })
                    .map_err(from_tx)?;
                deleted += n;
                // A case is kept while any of its incidents is.
                self.purge_orphan_cases(&case_ids, now)?;
                // The correlator may still fold repeats into a purged incident: let it start over.
                if let Ok(mut closed) = self.closed.lock() {
                    closed.extend(chunk.iter().cloned());
                }
            }
            if exhausted {
                return Ok(deleted);
            }
        }
    }

    /// Incidents, false positives and open incidents per rule, from the rule and status indexes (no
    /// incident is read), in rule id order.
    pub fn rule_stats(&self) -> Result<Vec<RuleStats>, StoreError> {
        let ids_with = |status: Status| -> Result<std::collections::HashSet<Vec<u8>>, StoreError> {
            let prefix = keys::prefix(status_name(status));
            self.trees[tree_of(Index::Status)]
                .scan_prefix(&prefix)
                .keys()
                .map(|key| Ok(key?[prefix.len()..].to_vec()))
                .collect()
        };
        let false_positive = ids_with(Status::FalsePositive)?;
        let mut open = ids_with(Status::Open)?;
        open.extend(ids_with(Status::Acknowledged)?);
        let mut stats: Vec<RuleStats> = Vec::new();
        for key in self.trees[tree_of(Index::Rule)].iter().keys() {
            let key = key?;
            let Some(split) = key.len().checked_sub(ID_LEN + 1) else {
                continue;
            };
            let (rule, id) = (&key[..split], &key[split + 1..]);
            let rule = String::from_utf8_lossy(rule);
            if stats.last().is_none_or(|last| last.rule_id != rule) {
                stats.push(RuleStats {
                    rule_id: rule.into_owned(),
                    ..RuleStats::default()
                });
            }
            let last = stats.last_mut().expect("pushed above");
            last.incidents += 1;
            last.false_positives += u64::from(false_positive.contains(id));
            last.open += u64::from(open.contains(id));
        }
        Ok(stats)
    }

    /// How many incidents have `status`, from the status index (no incident is read).
    pub fn count_status(&self, status: Status) -> Result<usize, StoreError> {
        self.count_prefixes(
            Index::Status,
            &[keys::prefix(status_name(status))],
            usize::MAX,
        )
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Incidents stored (walks the whole primary tree: for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.trees[T_INCIDENTS].len()
    }

    pub fn is_empty(&self) -> bool {
        self.trees[T_INCIDENTS].is_empty()
    }

    /// Checks that every index entry names a stored incident that has that value, and that every
    /// incident has all its entries. For tests and a future `socwatch store check`.
    pub fn check_indexes(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let mut expected: std::collections::HashSet<(usize, Vec<u8>)> = Default::default();
        for item in self.trees[T_INCIDENTS].iter() {
            let (key, value) = item?;
            let incident = decode(&key, &value)?;
            for (index, entry) in keys::entries(&incident) {
                expected.insert((tree_of(index), entry));
            }
            expected.insert((T_TIME, keys::time_entry(&incident)));
        }
        let mut seen = 0;
        for tree in std::iter::once(T_TIME).chain(Index::ALL.map(tree_of)) {
            for key in self.trees[tree].iter().keys() {
                let key = key?;
                if expected.contains(&(tree, key.to_vec())) {
                    seen += 1;
                } else {
                    problems.push(format!(
                        "stale entry in tree {tree}: {:?}",
                        String::from_utf8_lossy(&key)
                    ));
                }
            }
        }
        if seen != expected.len() {
            problems.push(format!(
                "{} index entries missing",
                expected.len() - seen.min(expected.len())
            ));
        }
        Ok(problems)
    }
}
