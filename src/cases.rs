//! Cases: the incidents of one attack, gathered. Operators work cases, not single incidents: one
//! address that brute-forces SSH, floods the pre-auth stage and then logs in opens four incidents
//! (one per rule) but is one attack. Pure: no IO, no clock; the engine feeds it every incident it
//! opens or updates, in event-time order, so `scan` and the daemon give the same cases.
//!
//! The grouping (INTERFACE.md "Cases"):
//! - **Entity.** An incident's entity is its attacking address (`src_ip` or `c-ip`), else its
//!   account (`user`), else its target `host`: looked up in the incident's group first, then in the
//!   event that opened it. An SSH and a web incident from one address share the address entity.
//! - **Window.** An incident joins the case of its entity whose span (first to last event),
//!   widened by `window` on both sides, holds the incident's first event; otherwise it starts a new
//!   case. Widening both sides makes the answer the same whether an old file or the live log is
//!   read first; and when an incident (opened or grown) falls within the window of two of the
//!   entity's cases, they become one (the older absorbs the newer), so the cases are those that
//!   reading every line in time order gives, whatever order two sources came in. Closing a case
//!   (resolve, false positive) forgets it: the entity's next incident starts a new case.
//! - **Severity.** The highest severity of the case's incidents, raised one step (up to critical)
//!   once the case shows progress: an incident of a rule with `requires` joins it (such a rule fires
//!   only after another rule's incident on the same group, e.g. a successful login after a brute
//!   force) while the case already holds an incident of another rule that began no later. Tags alone
//!   never raise a case: the shipped rules tag the technique an attempt aims at, not its success.
//! - **Tactics.** The ATT&CK tactics of its incidents' tags, in the order they first appeared.
//!
//! The book's state (one record per open entity) is saved with each batch beside the correlator's,
//! so a restart continues the same cases.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::correlate::{Map, Set, StateDelta};
use crate::model::{HistoryEntry, Incident, Severity, Status, rfc3339};

/// `[cases] window` when the config says nothing.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A case lists at most this many incidents; beyond them it counts (`incidents_omitted`). Every
/// incident still names its case in `case_id`.
pub const MAX_CASE_INCIDENTS: usize = 200;

/// Values kept per entity kind in `entities`.
const MAX_ENTITY_VALUES: usize = 16;

/// Opened incidents between two sweeps of expired entities.
const SWEEP_EVERY: usize = 1024;

/// What a case is keyed on, in the order an incident's entity is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// `src_ip` or `c-ip`: shown as `src_ip`.
    Address,
    /// `user`.
    Account,
    /// The target `host`.
    Host,
}

impl EntityKind {
    /// The key in a case's `entities`.
    pub fn field(self) -> &'static str {
        match self {
            EntityKind::Address => "src_ip",
            EntityKind::Account => "user",
            EntityKind::Host => "host",
        }
    }

    /// The event or group fields that name this kind of entity.
    fn sources(self) -> &'static [&'static str] {
        match self {
            EntityKind::Address => &["src_ip", "c-ip"],
            EntityKind::Account => &["user"],
            EntityKind::Host => &["host"],
        }
    }

    const ALL: [EntityKind; 3] = [EntityKind::Address, EntityKind::Account, EntityKind::Host];
}

/// The entity a case gathers incidents on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub value: String,
}

impl Entity {
    /// The entity of an incident: the first non-empty value of the address, account and host
    /// fields, from its group, else from `lookup` (the fields of the event that opened it), and the
    /// incident's host as the last resort (every incident has one, maybe empty).
    pub fn of<'v>(incident: &Incident, lookup: impl Fn(&str) -> Option<&'v str>) -> Entity {
        for kind in EntityKind::ALL {
            for field in kind.sources() {
                let value = incident
                    .group
                    .get(*field)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty())
                    .or_else(|| lookup(field).filter(|v| !v.is_empty()));
                if let Some(value) = value {
                    return Entity {
                        kind,
                        value: value.to_string(),
                    };
                }
            }
        }
        Entity {
            kind: EntityKind::Host,
            value: incident.host.clone(),
        }
    }
}

/// An incident as its case lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseIncident {
    pub id: String,
    pub rule_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_vi: Option<String>,
    pub severity: Severity,
    /// As the book last saw it; the store fills in the incident's current status when it reads.
    #[serde(default)]
    pub status: Status,
    pub count: u64,
    #[serde(with = "rfc3339")]
    pub first_seen: Timestamp,
    #[serde(with = "rfc3339")]
    pub last_seen: Timestamp,
    /// Its rule fires only after another rule's incident (`requires`): a sign of progress.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_up: bool,
}

/// One attack: the incidents on one entity within the window (INTERFACE.md "Cases").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_vi: Option<String>,
    pub severity: Severity,
    pub status: Status,
    #[serde(with = "rfc3339")]
    pub first_seen: Timestamp,
    #[serde(with = "rfc3339")]
    pub last_seen: Timestamp,
    /// The entity the case is keyed on.
    pub entity: Entity,
    /// Addresses, accounts and hosts its incidents name, by kind (`src_ip`, `user`, `host`).
    pub entities: BTreeMap<String, Vec<String>>,
    /// Its incidents in the order they opened (the first `MAX_CASE_INCIDENTS`).
    pub incidents: Vec<CaseIncident>,
    /// Incidents of this case beyond the listed ones.
    #[serde(default)]
    pub incidents_omitted: u64,
    /// ATT&CK tactics of its incidents, in the order they first appeared.
    pub tactics: Vec<String>,
    /// The severity was raised one step because the attack progressed (see the module doc).
    #[serde(default)]
    pub progressed: bool,
    pub host: String,
    pub system: String,
    pub level: u8,
    pub unit: String,
    pub assignee: Option<String>,
    pub history: Vec<HistoryEntry>,
    /// Grows with every change; (id, revision) identifies one state of the case.
    pub revision: u64,
    /// Cases this one absorbed in this change (an incident bridged them, see the module doc): the
    /// store moves their incidents and history here and deletes them. Never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

impl Case {
    /// Incidents in the case, listed or not.
    pub fn incident_count(&self) -> u64 {
        self.incidents.len() as u64 + self.incidents_omitted
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.status, Status::Resolved | Status::FalsePositive)
    }

    /// Takes what the grouping decided (`core`, from the book) into this stored case, keeping what
    /// operators decided (status, assignee, history). A closed case that gains an incident opens
    /// again: an attack that goes on is never hidden behind an earlier "resolved". Returns whether
    /// it reopened.
    pub fn absorb(&mut self, core: &Case, now: Timestamp) -> bool {
        let gained = core
            .incidents
            .iter()
            .any(|new| !self.incidents.iter().any(|old| old.id == new.id))
            || core.incidents_omitted > self.incidents_omitted;
        let statuses: HashMap<&str, Status> = self
            .incidents
            .iter()
            .map(|i| (i.id.as_str(), i.status))
            .collect();
        let mut incidents = core.incidents.clone();
        for incident in &mut incidents {
            if let Some(status) = statuses.get(incident.id.as_str()) {
                incident.status = *status;
            }
        }
        let (status, assignee, history) = (
            self.status,
            self.assignee.take(),
            std::mem::take(&mut self.history),
        );
        *self = Case {
            incidents,
            status,
            assignee,
            history,
            revision: self.revision,
            merged_from: Vec::new(),
            ..core.clone()
        };
        let reopened = gained && self.is_closed();
        if reopened {
            self.status = Status::Open;
            let newest = core.incidents.last().map(|i| i.id.as_str()).unwrap_or("");
            self.history.push(HistoryEntry {
                ts: now,
                action: "reopen".to_string(),
                by: "socwatch".to_string(),
                note: format!("new incident {newest}"),
            });
        }
        reopened
    }
}

/// The ATT&CK tactics named by `tags` (`attack.credential_access`), not the techniques (`attack.t1110`).
pub fn tactics_of(tags: &[String]) -> impl Iterator<Item = &str> {
    tags.iter().filter_map(|tag| {
        let name = tag.strip_prefix("attack.")?;
        let technique = name.len() > 1
            && name.as_bytes()[0].eq_ignore_ascii_case(&b't')
            && name.as_bytes()[1].is_ascii_digit();
        (!technique && !name.is_empty()).then_some(name)
    })
}

/// A case id: a ULID whose time part is the first incident's first event and whose rest hashes
/// the entity and that incident's id, so the same incidents give the same case ids everywhere.
pub fn case_id(entity: &Entity, first_incident: &str, first_seen: Timestamp) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
    };
    feed(b"case");
    feed(entity.kind.field().as_bytes());
    feed(&[0]);
    feed(entity.value.as_bytes());
    feed(&[0]);
    feed(first_incident.as_bytes());
    let millis = u64::try_from(first_seen.as_millisecond()).unwrap_or(0);
    ulid::Ulid::from_parts(millis, hash).to_string()
}

fn raise(severity: Severity) -> Severity {
    match severity {
        Severity::Info => Severity::Low,
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

/// Recomputes what follows from a case's incidents: severity, progress, title, time span.
fn settle(case: &mut Case) {
    let top = case
        .incidents
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| a.severity.cmp(&b.severity).then(ib.cmp(ia)));
    let highest = top.map_or(Severity::Info, |(_, i)| i.severity);
    case.progressed = case.incidents.iter().any(|later| {
        later.follow_up
            && case.incidents.iter().any(|earlier| {
                earlier.rule_id != later.rule_id && earlier.first_seen <= later.first_seen
            })
    });
    let computed = if case.progressed {
        raise(highest)
    } else {
        highest
    };
    // Never lowered: incidents beyond the listed ones counted when they joined.
    case.severity = case.severity.max(computed);
    if let Some((_, top)) = top {
        case.title = format!("{} ({})", top.title, case.entity.value);
        case.title_vi = top
            .title_vi
            .as_ref()
            .map(|vi| format!("{vi} ({})", case.entity.value));
    }
    if let Some(first) = case.incidents.iter().map(|i| i.first_seen).min() {
        case.first_seen = case.first_seen.min(first);
    }
    if let Some(last) = case.incidents.iter().map(|i| i.last_seen).max() {
        case.last_seen = case.last_seen.max(last);
    }
}

fn add_entity(entities: &mut BTreeMap<String, Vec<String>>, kind: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let values = entities.entry(kind.to_string()).or_default();
    if values.len() < MAX_ENTITY_VALUES && !values.iter().any(|v| v == value) {
        values.push(value.to_string());
    }
}

/// A case the book can still add incidents to, with the clock it is judged against.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenCase {
    case: Case,
    /// The source clock that last fed it (by name): a quiet case expires against the time of the
    /// source its attack came from, not against a newer file read beside it.
    clock: String,
    /// Ids of its incidents beyond the listed ones, so their updates still reach the case.
    #[serde(default)]
    omitted_ids: Vec<String>,
}

/// What a case's key in the saved state looks like: `c` then the case id.
fn state_key(case_id: &str) -> Vec<u8> {
    let mut key = b"c".to_vec();
    key.extend_from_slice(case_id.as_bytes());
    key
}

/// Whether a saved-state key belongs to the case book (the correlator's start with `g` or are `seq`).
pub fn is_state_key(key: &[u8]) -> bool {
    key.first() == Some(&b'c')
}

/// Cases kept joinable per entity: the newest few (an address that attacks on many separate days
/// from files read out of order has several).
const CASES_PER_ENTITY: usize = 4;

/// The open cases: incidents in, cases out.
#[derive(Debug, Clone)]
pub struct CaseBook {
    window: Duration,
    open: Map<String, OpenCase>,
    /// Open case ids per entity, oldest first.
    by_entity: Map<Entity, Vec<String>>,
    case_of_incident: Map<String, String>,
    clock_now: Map<Arc<str>, Timestamp>,
    dirty: Set<String>,
    stale_keys: Vec<Vec<u8>>,
    since_sweep: usize,
    /// The clocks move only through `advance` (a cluster console), not with each incident.
    external_clocks: bool,
    /// Cases that left the book (their window closed, newer cases of the entity pushed them
    /// out), kept only when a reader wants every case of the run at its end (`keeping_left`).
    left: Option<Vec<Case>>,
    /// Cases that left the book since `take_departed` last ran, kept only for a reader that takes
    /// the cases a batch touched at its end (`keeping_departed`): a case changed and then swept in
    /// the same batch must still reach the store as its last change left it.
    departed: Option<Map<String, Case>>,
}

impl CaseBook {
    /// A book whose source clocks the caller moves with `advance`: a cluster's console gets the
    /// incidents of one source from several partitions, each at its own pace, and may only judge a
    /// case quiet once the slowest of them has passed it.
    pub fn with_external_clocks(mut self) -> CaseBook {
        self.external_clocks = true;
        self
    }

    /// Moves a source's clock (never backwards), for a book `with_external_clocks`.
    pub fn advance(&mut self, clock: &str, now: Timestamp) {
        self.tick(clock, now);
    }

    pub fn new(window: Duration) -> CaseBook {
        CaseBook {
            window,
            open: Map::default(),
            by_entity: Map::default(),
            case_of_incident: Map::default(),
            clock_now: Map::default(),
            dirty: Set::default(),
            stale_keys: Vec::new(),
            since_sweep: 0,
            external_clocks: false,
            left: None,
            departed: None,
        }
    }

    /// Keeps the cases that leave the book until `take_departed`, so a batch's reader can take
    /// every case the batch touched from the book at its end (`case_or_departed`).
    pub fn keeping_departed(mut self) -> CaseBook {
        self.departed = Some(Map::default());
        self
    }

    /// An open case as it now is, or one that left the book since the last `take_departed`.
    pub fn case_or_departed(&self, id: &str) -> Option<&Case> {
        self.open
            .get(id)
            .map(|open| &open.case)
            .or_else(|| self.departed.as_ref().and_then(|departed| departed.get(id)))
    }

    /// Forgets the cases that left the book (the batch that could still name them is done).
    pub fn take_departed(&mut self) {
        if let Some(departed) = &mut self.departed {
            departed.clear();
        }
    }

    /// Keeps the cases that leave the book, so `into_cases` returns every case of the run. For a
    /// reader that takes the cases once at the end (`scan`) instead of a copy on every change.
    pub fn keeping_left(mut self) -> CaseBook {
        self.left = Some(Vec::new());
        self
    }

    /// Every case of the run (with `keeping_left`; else the open ones), each as its last change
    /// left it, in no particular order. Cases absorbed by a merge are not among them.
    pub fn into_cases(self) -> Vec<Case> {
        let mut cases = self.left.unwrap_or_default();
        cases.extend(self.open.into_values().map(|open| open.case));
        cases
    }

    fn tick(&mut self, clock: &str, ts: Timestamp) {
        match self.clock_now.get_mut(clock) {
            Some(now) => *now = (*now).max(ts),
            None => {
                self.clock_now.insert(Arc::from(clock), ts);
            }
        }
    }

    /// The entity's case whose span, widened by the window on both sides, holds `at`: the same
    /// answer whichever order the incidents of two sources came in.
    /// Every such case, oldest first.
    fn joinable(&self, entity: &Entity, from: Timestamp, to: Timestamp) -> Vec<String> {
        self.joinable_cases(entity, from, to)
            .into_iter()
            .map(|case| case.id.clone())
            .collect()
    }

    /// As `joinable`, borrowed: an update asks on every line, and mostly finds only its own case.
    fn joinable_cases(&self, entity: &Entity, from: Timestamp, to: Timestamp) -> Vec<&Case> {
        let window = crate::correlate::signed(self.window);
        let Some(ids) = self.by_entity.get(entity) else {
            return Vec::new();
        };
        let mut found: Vec<&Case> = ids
            .iter()
            .filter_map(|id| self.open.get(id).map(|open| &open.case))
            .filter(|case| to >= case.first_seen - window && from <= case.last_seen + window)
            .collect();
        found.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
        found
    }

    /// Folds the cases `others` into `survivor`: their incidents (in opening order), entities,
    /// tactics and omitted ids move over, and they leave the book.
    fn merge_into(&mut self, survivor: &str, others: &[String]) {
        for other in others {
            let Some(old) = self.open.remove(other) else {
                continue;
            };
            if let Some(ids) = self.by_entity.get_mut(&old.case.entity) {
                ids.retain(|id| id != other);
            }
            self.dirty.insert(other.clone());
            for incident in &old.case.incidents {
                self.case_of_incident
                    .insert(incident.id.clone(), survivor.to_string());
            }
            for incident in &old.omitted_ids {
                self.case_of_incident
                    .insert(incident.clone(), survivor.to_string());
            }
            let open = self.open.get_mut(survivor).expect("the survivor is open");
            let case = &mut open.case;
            for incident in old.case.incidents {
                if case.incidents.len() < MAX_CASE_INCIDENTS {
                    case.incidents.push(incident);
                } else {
                    case.incidents_omitted += 1;
                    case.severity = case.severity.max(incident.severity);
                    open.omitted_ids.push(incident.id);
                }
            }
            case.incidents
                .sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
            case.incidents_omitted += old.case.incidents_omitted;
            case.severity = case.severity.max(old.case.severity);
            open.omitted_ids.extend(old.omitted_ids);
            for (kind, values) in &old.case.entities {
                for value in values {
                    add_entity(&mut case.entities, kind, value);
                }
            }
            for tactic in old.case.tactics {
                if !case.tactics.contains(&tactic) {
                    case.tactics.push(tactic);
                }
            }
            case.first_seen = case.first_seen.min(old.case.first_seen);
            case.last_seen = case.last_seen.max(old.case.last_seen);
            case.merged_from.push(other.clone());
            case.merged_from.extend(old.case.merged_from);
        }
    }

    /// A new incident: it joins its entity's case or starts one. Sets the incident's `case_id` and
    /// returns the case as it now is. `follow_up`: the incident's rule has `requires`.
    pub fn opened(
        &mut self,
        incident: &mut Incident,
        entity: Entity,
        follow_up: bool,
        clock: &str,
    ) -> &Case {
        if !self.external_clocks {
            self.tick(clock, incident.last_seen);
        }
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.sweep();
        }
        let summary = CaseIncident {
            id: incident.id.clone(),
            rule_id: incident.rule_id.clone(),
            title: incident.title.clone(),
            title_vi: incident.title_vi.clone(),
            severity: incident.severity,
            status: incident.status,
            count: incident.count,
            first_seen: incident.first_seen,
            last_seen: incident.last_seen,
            follow_up,
        };
        let joinable = self.joinable(&entity, incident.first_seen, incident.first_seen);
        let id = match joinable.split_first() {
            Some((oldest, others)) => {
                let oldest = oldest.clone();
                self.start_change(&oldest);
                self.merge_into(&oldest, others);
                oldest
            }
            None => {
                let id = case_id(&entity, &incident.id, incident.first_seen);
                let ids = self.by_entity.entry(entity.clone()).or_default();
                ids.push(id.clone());
                if ids.len() > CASES_PER_ENTITY {
                    let oldest = ids.remove(0);
                    self.drop_case(&oldest);
                }
                self.open.insert(
                    id.clone(),
                    OpenCase {
                        case: Case {
                            id: id.clone(),
                            title: String::new(),
                            title_vi: None,
                            severity: incident.severity,
                            status: Status::Open,
                            first_seen: incident.first_seen,
                            last_seen: incident.last_seen,
                            entity: entity.clone(),
                            entities: BTreeMap::new(),
                            incidents: Vec::new(),
                            incidents_omitted: 0,
                            tactics: Vec::new(),
                            progressed: false,
                            host: incident.host.clone(),
                            system: incident.system.clone(),
                            level: incident.level,
                            unit: incident.unit.clone(),
                            assignee: None,
                            history: Vec::new(),
                            revision: 0,
                            merged_from: Vec::new(),
                        },
                        clock: clock.to_string(),
                        omitted_ids: Vec::new(),
                    },
                );
                id
            }
        };
        let open = self.open.get_mut(&id).expect("joinable or inserted");
        open.clock = clock.to_string();
        let case = &mut open.case;
        add_entity(&mut case.entities, entity.kind.field(), &entity.value);
        for kind in EntityKind::ALL {
            for field in kind.sources() {
                if let Some(value) = incident.group.get(*field) {
                    add_entity(&mut case.entities, kind.field(), value);
                }
            }
        }
        add_entity(&mut case.entities, EntityKind::Host.field(), &incident.host);
        for tactic in tactics_of(&incident.tags) {
            if !case.tactics.iter().any(|t| t == tactic) {
                case.tactics.push(tactic.to_string());
            }
        }
        case.level = case.level.max(incident.level);
        if case.incidents.len() < MAX_CASE_INCIDENTS {
            case.incidents.push(summary);
        } else {
            // Still counted toward severity: an omitted critical incident must raise the case.
            case.incidents_omitted += 1;
            open.omitted_ids.push(incident.id.clone());
            case.severity = case.severity.max(summary.severity);
        }
        settle(case);
        incident.case_id = id.clone();
        self.case_of_incident
            .insert(incident.id.clone(), id.clone());
        self.dirty.insert(id.clone());
        &self.open[&id].case
    }

    /// An incident of an open case grew: its count and last event move the case's.
    pub fn updated(
        &mut self,
        incident_id: &str,
        count: u64,
        last_seen: Timestamp,
        clock: &str,
    ) -> Option<&Case> {
        if !self.external_clocks {
            self.tick(clock, last_seen);
        }
        let mut id = self.case_of_incident.get(incident_id)?.clone();
        self.start_change(&id);
        let open = self.open.get_mut(&id)?;
        if open.clock != clock {
            open.clock = clock.to_string();
        }
        let case = &mut open.case;
        if let Some(listed) = case.incidents.iter_mut().find(|i| i.id == incident_id) {
            listed.count = count;
            listed.last_seen = listed.last_seen.max(last_seen);
        }
        case.last_seen = case.last_seen.max(last_seen);
        // Grown, the case may now reach another of the entity's cases: they become one.
        let case = &self.open[&id].case;
        let reached = self.joinable_cases(&case.entity, case.first_seen, case.last_seen);
        if reached.len() > 1 {
            let reached: Vec<String> = reached.into_iter().map(|c| c.id.clone()).collect();
            let oldest = reached[0].clone();
            if oldest != id {
                self.start_change(&oldest);
            }
            self.merge_into(&oldest, &reached[1..]);
            id = oldest;
        }
        if !self.dirty.contains(&id) {
            self.dirty.insert(id.clone());
        }
        Some(&self.open[&id].case)
    }

    /// A change to case `id` begins: what the previous one merged has been told already.
    fn start_change(&mut self, id: &str) {
        if let Some(open) = self.open.get_mut(id) {
            open.case.merged_from.clear();
        }
    }

    /// Removes a case from the book (its saved record goes with the next batch).
    fn drop_case(&mut self, id: &str) {
        let Some(old) = self.open.remove(id) else {
            return;
        };
        for incident in &old.case.incidents {
            self.case_of_incident.remove(&incident.id);
        }
        for incident in &old.omitted_ids {
            self.case_of_incident.remove(incident);
        }
        if let Some(ids) = self.by_entity.get_mut(&old.case.entity) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_entity.remove(&old.case.entity);
            }
        }
        self.dirty.insert(id.to_string());
        match (&mut self.left, &mut self.departed) {
            (Some(left), Some(departed)) => {
                departed.insert(id.to_string(), old.case.clone());
                left.push(old.case);
            }
            (Some(left), None) => left.push(old.case),
            (None, Some(departed)) => {
                departed.insert(id.to_string(), old.case);
            }
            (None, None) => {}
        }
    }

    /// An operator closed the case (or it was purged): its entity's next incident starts a new one.
    /// Returns whether the id named an open case.
    pub fn forget(&mut self, case_id: &str) -> bool {
        let known = self.open.contains_key(case_id);
        self.drop_case(case_id);
        known
    }

    /// The ids of the cases incidents can still join.
    pub fn open_cases(&self) -> Vec<String> {
        self.open.keys().cloned().collect()
    }

    /// Cases tracked (for status and memory accounting).
    pub fn tracked(&self) -> usize {
        self.open.len()
    }

    /// Forgets cases whose window closed on their own source's clock.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let window = crate::correlate::signed(self.window);
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, open)| {
                self.clock_now
                    .get(open.clock.as_str())
                    .is_some_and(|now| open.case.last_seen + window < *now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.drop_case(&id);
        }
    }

    /// The saved-state changes since the last call (keys start with `c`), to write with the batch.
    pub fn take_state_changes(&mut self) -> StateDelta {
        let mut out: StateDelta = self.stale_keys.drain(..).map(|k| (k, None)).collect();
        for id in self.dirty.drain() {
            let value = self
                .open
                .get(&id)
                .map(|open| serde_json::to_vec(open).expect("case state serializes"));
            out.push((state_key(&id), value));
        }
        out
    }

    /// Takes back the saved state (the `c` keys) after a restart. Unreadable records are counted
    /// and deleted with the next batch. Returns (cases restored, unreadable).
    pub fn restore_state(
        &mut self,
        saved: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> (usize, usize) {
        let (mut restored, mut unreadable) = (0, 0);
        let mut cases: Vec<OpenCase> = Vec::new();
        for (key, value) in saved {
            match serde_json::from_slice::<OpenCase>(&value) {
                Ok(open) if state_key(&open.case.id) == key => cases.push(open),
                _ => {
                    unreadable += 1;
                    self.stale_keys.push(key);
                }
            }
        }
        // Oldest first, as they were opened, so each entity's list keeps its order.
        cases.sort_by(|a, b| (a.case.first_seen, &a.case.id).cmp(&(b.case.first_seen, &b.case.id)));
        for open in cases {
            let id = open.case.id.clone();
            if !self.external_clocks {
                self.tick(&open.clock.clone(), open.case.last_seen);
            }
            for incident in &open.case.incidents {
                self.case_of_incident
                    .insert(incident.id.clone(), id.clone());
            }
            for incident in &open.omitted_ids {
                self.case_of_incident.insert(incident.clone(), id.clone());
            }
            self.by_entity
                .entry(open.case.entity.clone())
                .or_default()
                .push(id.clone());
            self.open.insert(id, open);
            restored += 1;
        }
        (restored, unreadable)
    }
}

#[cfg(test)]
mod tests;
