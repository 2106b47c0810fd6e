//! Matches to incidents: thresholds over sliding windows per group, suppression that folds repeats
//! into one incident, and `requires` between rules. Pure: event time comes in with each observation,
//! so an archive scanned today gives the same incidents as the same lines watched live.
//!
//! The correlator's whole state (open incidents with their suppression deadlines, pending windows,
//! distinct sets, `requires` memory, the incident sequence) can be saved group by group
//! (`take_state_changes`) and taken back (`restore_state`): the daemon saves it with every batch, in
//! the same transaction as the source positions, so a restart continues exactly where the last
//! durable batch stopped, whatever the wall clock says.
//!
//! State is bounded: at most `Limits::max_groups_per_rule` groups per rule; quiet groups expire, and
//! when a rule is full the least recently seen groups are evicted and counted. "Quiet" is judged on
//! the clock of the source that last fed the group, so a days-old file read beside a live source
//! keeps its state.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// The maps the per-line path looks groups, incidents and cases up in (several lookups per rule
/// match). Group values come from log lines, so their hash must be keyed at random as std's is:
/// ahash is, and costs a fraction of SipHash per lookup.
pub(crate) type Map<K, V> = HashMap<K, V, ahash::RandomState>;
pub(crate) type Set<K> = HashSet<K, ahash::RandomState>;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Event, Evidence, Incident, SourceMeta, Status};
use crate::rules::{RuleMatch, RuleSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_groups_per_rule: usize,
    /// Evidence lines kept per incident; the rest are counted.
    pub evidence_lines: usize,
}

/// Evidence lines an incident keeps by default; the rest are counted in `evidence_omitted`.
pub const EVIDENCE_LINES: usize = 10;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups_per_rule: 100_000,
            evidence_lines: EVIDENCE_LINES,
        }
    }
}

/// The cap on remembered match times for a distinct-count threshold's window.
const MAX_DISTINCT_WINDOW: usize = 256;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Groups dropped because their rule had too many; each may split an attack into two incidents.
    pub evicted_groups: u64,
    /// Groups forgotten because they were quiet longer than their rule cares about.
    pub expired_groups: u64,
    /// Matches that did not count because a `requires` rule had no incident for their group.
    pub unmet_requires: u64,
}

/// What an observation changed. `Incident::apply` folds it into the incident it names.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Opened(Box<Incident>),
    Updated {
        id: String,
        rule: usize,
        count: u64,
        last_seen: Timestamp,
        /// The new line, when the incident's evidence list still has room (else it is only counted).
        evidence: Option<Evidence>,
    },
}

impl Change {
    pub fn id(&self) -> &str {
        match self {
            Change::Opened(incident) => &incident.id,
            Change::Updated { id, .. } => id,
        }
    }
}

impl Incident {
    /// Folds a correlation change into this incident: the one place where a change becomes
    /// incident state, for `scan` and the store alike. An `Opened` replaces the incident's
    /// correlation fields (it names a new incident); an `Updated` moves count and last_seen and
    /// adds the line to the evidence, or counts it when the correlator said there is no room.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Opened(opened) => {
                let history = std::mem::take(&mut self.history);
                *self = (**opened).clone();
                self.history = history;
            }
            Change::Updated {
                count,
                last_seen,
                evidence,
                ..
            } => {
                self.count = *count;
                self.last_seen = *last_seen;
                match evidence {
                    Some(line) => self.evidence.push(line.clone()),
                    None => self.evidence_omitted += 1,
                }
                self.revision += 1;
            }
        }
    }
}

/// Where the incident happened, for the incident record.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub host: &'a str,
    pub system: &'a str,
    pub level: u8,
    pub unit: &'a str,
}

/// A source's clock: the latest event time seen on one source, against which that source's quiet
/// groups expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClockId(u32);

/// One rule match ready for correlation.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub rule: usize,
    pub group: Vec<String>,
    pub distinct: Option<String>,
    pub ts: Timestamp,
    pub evidence: Evidence,
    pub origin: Origin<'a>,
    /// The clock of the source the line came from (`Correlator::clock`).
    pub clock: ClockId,
}

impl<'a> Observation<'a> {
    /// Builds the observation of `found` on `event`: group values from captures and fields
    /// (a missing field groups as the empty string).
    pub fn of(
        rules: &RuleSet,
        found: &RuleMatch,
        event: &Event<'_>,
        meta: &SourceMeta,
        ts: Timestamp,
        origin: Origin<'a>,
    ) -> Self {
        let rule = rules.rule(found.rule);
        let value = |name: &str| {
            RuleSet::field_value(event, meta, &found.captured, name)
                .unwrap_or("")
                .to_string()
        };
        Observation {
            rule: found.rule,
            group: rule.threshold.group_by.iter().map(|f| value(f)).collect(),
            distinct: rule.threshold.distinct.as_deref().map(value),
            ts,
            evidence: Evidence {
                ts,
                // Copied as a `str`: `Arc<str>::to_string` goes through `Display` and its formatter.
                source: String::from(&*meta.source),
                line: event.raw.to_string(),
            },
            origin,
            clock: ClockId::default(),
        }
    }

    pub fn on_clock(mut self, clock: ClockId) -> Self {
        self.clock = clock;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenIncident {
    id: String,
    #[serde(with = "micros")]
    last_seen: Timestamp,
    count: u64,
    /// Evidence lines the incident holds, so the correlator alone decides what is kept.
    evidence: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct GroupState {
    #[serde(with = "micros_opt")]
    last_seen: Option<Timestamp>,
    /// Times of the matches in the current window, oldest first.
    #[serde(with = "micros_deque")]
    window: VecDeque<Timestamp>,
    /// The first lines of the current window.
    window_evidence: Vec<Evidence>,
    /// Distinct values seen in the window, with when each was last seen (microseconds).
    distinct: Vec<(String, i64)>,
    open: Option<OpenIncident>,
    /// Last time an incident of this group was updated, for other rules' `requires`.
    #[serde(with = "micros_opt")]
    last_incident: Option<Timestamp>,
    /// The source clock the group was last fed from (saved by name, see `SavedGroup`).
    #[serde(skip)]
    clock: ClockId,
}

/// A group's state as saved: the state, the clock's name, and the rule's correlation parameters,
/// so a rule changed while the daemon was down does not take back state it no longer means.
/// Borrowed when saving (every batch saves the groups it changed: no copy of each), owned when
/// restoring.
#[derive(Debug, Serialize, Deserialize)]
struct SavedGroup<'a> {
    rule_id: Cow<'a, str>,
    signature: Cow<'a, str>,
    group: Cow<'a, [String]>,
    clock: Cow<'a, str>,
    state: Cow<'a, GroupState>,
}

/// Saved-state changes of one batch: `(key, Some(value))` to store, `(key, None)` to delete.
pub type StateDelta = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The key of the incident sequence in the saved state.
const SEQ_KEY: &[u8] = b"seq";

fn group_key(rule_id: &str, group: &[String]) -> Vec<u8> {
    // JSON keeps any rule id and group value apart without an escaping scheme of our own.
    let mut key = b"g".to_vec();
    key.extend(serde_json::to_vec(&(rule_id, group)).unwrap_or_default());
    key
}

/// What `restore_state` took back and what it dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub groups: usize,
    /// Saved groups of rules that are gone or whose threshold, suppression or `requires` changed.
    pub dropped: usize,
    /// Saved values that could not be read (counted, deleted).
    pub unreadable: usize,
    /// Open cases taken back (filled in by the engine, which owns the case book).
    pub cases: usize,
}

/// What correlation needs of a rule, copied out so the hot path reads it without allocating.
#[derive(Debug, Clone, Copy)]
struct RuleParams {
    count: usize,
    within: Duration,
    distinct: bool,
    /// Distinct values are steps that must come in order (Sigma `temporal_ordered`).
    ordered: bool,
    suppress: Duration,
    requires: Option<(usize, Duration)>,
    /// How long a quiet group is still useful to remember.
    memory: Duration,
}

/// Everything of a rule that gives its saved state its meaning.
fn signature(rules: &RuleSet, index: usize) -> String {
    let rule = rules.rule(index);
    let requires = rule
        .requires
        .as_ref()
        .map(|r| (r.rule.as_str(), r.within.as_millis()));
    format!(
        "{}|{}|{:?}|{:?}|{}|{}|{}|{:?}",
        rule.threshold.count,
        rule.threshold.within.as_millis(),
        rule.threshold.group_by,
        rule.threshold.distinct,
        rule.threshold.ordered,
        rule.suppress.as_millis(),
        rule.emit,
        requires
    )
}

#[derive(Debug, Clone)]
pub struct Correlator {
    params: Vec<RuleParams>,
    signatures: Vec<String>,
    rule_ids: Vec<String>,
    groups: Vec<Map<Vec<String>, GroupState>>,
    /// Groups whose state changed since `take_state_changes` last ran (deleted ones included).
    dirty: Set<(usize, Vec<String>)>,
    /// Saved keys to delete that no group of this rule set stands for (dropped by a reload or a restore).
    stale_keys: Vec<Vec<u8>>,
    since_sweep: Vec<usize>,
    clock_names: Vec<Arc<str>>,
    clock_now: Vec<Timestamp>,
    clock_of: HashMap<Arc<str>, ClockId>,
    /// Incidents opened so far: part of every new incident's id, so two incidents never share one.
    next_seq: u64,
    seq_dirty: bool,
    limits: Limits,
    stats: Stats,
}

impl Correlator {
    pub fn new(rules: &RuleSet, limits: Limits) -> Self {
        let mut params: Vec<RuleParams> = rules
            .rules()
            .iter()
            .map(|rule| RuleParams {
                count: rule.threshold.count.max(1) as usize,
                within: rule.threshold.within,
                distinct: rule.threshold.distinct.is_some(),
                ordered: rule.threshold.ordered,
                suppress: rule.suppress,
                requires: rule.requires.as_ref().map(|r| (r.rule_index, r.within)),
                memory: rule.threshold.within.max(rule.suppress),
            })
            .collect();
        for i in 0..params.len() {
            if let Some((other, within)) = params[i].requires {
                params[other].memory = params[other].memory.max(within);
            }
        }
        let mut correlator = Correlator {
            groups: vec![Map::default(); params.len()],
            signatures: (0..params.len()).map(|i| signature(rules, i)).collect(),
            rule_ids: rules.rules().iter().map(|r| r.id.clone()).collect(),
            dirty: Set::default(),
            stale_keys: Vec::new(),
            since_sweep: vec![0; params.len()],
            clock_names: Vec::new(),
            clock_now: Vec::new(),
            clock_of: HashMap::new(),
            next_seq: 0,
            seq_dirty: false,
            params,
            limits,
            stats: Stats::default(),
        };
        correlator.clock("");
        correlator
    }

    /// The clock of the source called `name`, made on first use.
    pub fn clock(&mut self, name: &str) -> ClockId {
        if let Some(id) = self.clock_of.get(name) {
            return *id;
        }
        let id = ClockId(self.clock_names.len() as u32);
        let name: Arc<str> = Arc::from(name);
        self.clock_names.push(name.clone());
        self.clock_now.push(Timestamp::MIN);
        self.clock_of.insert(name, id);
        id
    }

    /// The name of a clock made by `clock`.
    pub fn clock_name(&self, id: ClockId) -> &str {
        self.clock_names
            .get(id.0 as usize)
            .map(|name| name.as_ref())
            .unwrap_or("")
    }

    /// Forgets an incident an operator closed (or that the store no longer has): the next match of
    /// its group starts over (threshold and all) and opens a new incident instead of updating it.
    pub fn forget(&mut self, id: &str) {
        for (rule, groups) in self.groups.iter_mut().enumerate() {
            for (key, state) in groups.iter_mut() {
                if state.open.as_ref().is_some_and(|open| open.id == id) {
                    state.open = None;
                    state.window.clear();
                    state.window_evidence.clear();
                    state.distinct.clear();
                    self.dirty.insert((rule, key.clone()));
                }
            }
        }
    }

    /// The ids of the incidents the correlator is still folding repeats into.
    pub fn open_incidents(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|groups| groups.values())
            .filter_map(|state| state.open.as_ref().map(|open| open.id.clone()))
            .collect()
    }

    /// The saved-state changes since the last call, to write with the batch they came from.
    pub fn take_state_changes(&mut self) -> StateDelta {
        let mut out: StateDelta = Vec::with_capacity(self.dirty.len() + 1);
        for key in self.stale_keys.drain(..) {
            out.push((key, None));
        }
        for (rule, group) in self.dirty.drain() {
            let rule_id = &self.rule_ids[rule];
            let key = group_key(rule_id, &group);
            let value = self.groups[rule].get(&group).map(|state| {
                let saved = SavedGroup {
                    rule_id: Cow::Borrowed(rule_id),
                    signature: Cow::Borrowed(&self.signatures[rule]),
                    group: Cow::Borrowed(&group),
                    clock: Cow::Borrowed(&self.clock_names[state.clock.0 as usize]),
                    state: Cow::Borrowed(state),
                };
                serde_json::to_vec(&saved).expect("correlation state serializes")
            });
            out.push((key, value));
        }
        if std::mem::take(&mut self.seq_dirty) {
            out.push((SEQ_KEY.to_vec(), Some(self.next_seq.to_be_bytes().to_vec())));
        }
        out
    }

    /// Every group's state as saved, for a full rewrite of the saved state.
    pub fn mark_all_changed(&mut self) {
        for (rule, groups) in self.groups.iter().enumerate() {
            for key in groups.keys() {
                self.dirty.insert((rule, key.clone()));
            }
        }
        self.seq_dirty = true;
    }

    /// Takes back saved state after a restart. Groups of rules that are gone or changed are dropped
    /// (and deleted by the next `take_state_changes`); nothing here looks at the wall clock.
    pub fn restore_state(
        &mut self,
        saved: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> RestoreReport {
        let mut report = RestoreReport::default();
        for (key, value) in saved {
            if key == SEQ_KEY {
                match <[u8; 8]>::try_from(value.as_slice()) {
                    Ok(bytes) => self.next_seq = self.next_seq.max(u64::from_be_bytes(bytes)),
                    Err(_) => {
                        report.unreadable += 1;
                        self.stale_keys.push(key);
                    }
                }
                continue;
            }
            let Ok(saved) = serde_json::from_slice::<SavedGroup>(&value) else {
                report.unreadable += 1;
                self.stale_keys.push(key);
                continue;
            };
            let rule = self.rule_ids.iter().position(|id| *id == saved.rule_id);
            match rule {
                Some(rule)
                    if self.signatures[rule] == saved.signature
                        && group_key(&saved.rule_id, &saved.group) == key =>
                {
                    let mut state = saved.state.into_owned();
                    state.clock = self.clock(&saved.clock);
                    self.groups[rule].insert(saved.group.into_owned(), state);
                    report.groups += 1;
                }
                _ => {
                    report.dropped += 1;
                    self.stale_keys.push(key);
                }
            }
        }
        report
    }

    /// Moves the state of rules that survive a reload from `old` into this correlator: a rule keeps
    /// its groups (windows, open incidents) when its id and correlation parameters are unchanged.
    /// The saved state of the other rules is deleted with the next batch. Returns how many rules
    /// kept their state.
    pub fn carry_over(&mut self, mut old: Correlator) -> usize {
        let mut kept = 0;
        for (old_index, groups) in old.groups.iter_mut().enumerate() {
            let rule_id = &old.rule_ids[old_index];
            let new_index = self
                .rule_ids
                .iter()
                .position(|id| id == rule_id)
                .filter(|&i| self.signatures[i] == old.signatures[old_index]);
            match new_index {
                Some(new_index) => {
                    self.groups[new_index] = std::mem::take(groups);
                    kept += 1;
                }
                None => {
                    for group in groups.keys() {
                        self.stale_keys.push(group_key(rule_id, group));
                    }
                }
            }
        }
        self.stale_keys.append(&mut old.stale_keys);
        self.clock_names = old.clock_names;
        self.clock_now = old.clock_now;
        self.clock_of = old.clock_of;
        self.next_seq = old.next_seq;
        self.stats = old.stats;
        // Rule indexes moved: write every kept group under its (unchanged) key again.
        self.mark_all_changed();
        kept
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Groups currently tracked, over all rules.
    pub fn tracked_groups(&self) -> usize {
        self.groups.iter().map(Map::len).sum()
    }

    /// Feeds one match. Returns the incident it opened or updated, if any.
    pub fn observe(&mut self, rules: &RuleSet, mut obs: Observation<'_>) -> Option<Change> {
        let params = self.params[obs.rule];
        if let Some(now) = self.clock_now.get_mut(obs.clock.0 as usize) {
            *now = (*now).max(obs.ts);
        }
        if let Some((other, within)) = params.requires {
            let recent = self.groups[other]
                .get(&obs.group)
                .and_then(|g| g.last_incident)
                .is_some_and(|at| obs.ts.duration_since(at).unsigned_abs() <= within);
            if !recent {
                self.stats.unmet_requires += 1;
                return None;
            }
        }
        self.maybe_sweep(obs.rule);
        if self.groups[obs.rule].len() >= self.limits.max_groups_per_rule
            && !self.groups[obs.rule].contains_key(&obs.group)
        {
            self.evict(obs.rule);
        }
        let limits = self.limits;
        // Most matches fall in a group already marked changed: copy the group only when not.
        let key = (obs.rule, std::mem::take(&mut obs.group));
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        obs.group = key.1;
        let groups = &mut self.groups[obs.rule];
        if !groups.contains_key(&obs.group) {
            groups.insert(obs.group.clone(), GroupState::default());
        }
        let state = groups.get_mut(&obs.group).expect("inserted above");
        state.clock = obs.clock;
        state.last_seen = Some(state.last_seen.map_or(obs.ts, |seen| seen.max(obs.ts)));

        if let Some(open) = &mut state.open {
            if obs.ts.duration_since(open.last_seen).unsigned_abs() <= params.suppress
                || obs.ts < open.last_seen
            {
                open.count += 1;
                open.last_seen = open.last_seen.max(obs.ts);
                state.last_incident = Some(open.last_seen);
                let evidence = (open.evidence < limits.evidence_lines).then(|| {
                    open.evidence += 1;
                    obs.evidence
                });
                return Some(Change::Updated {
                    id: open.id.clone(),
                    rule: obs.rule,
                    count: open.count,
                    last_seen: open.last_seen,
                    evidence,
                });
            }
            // Quiet longer than the suppression window: that incident is over.
            state.open = None;
        }

        let at = state.window.partition_point(|t| *t <= obs.ts);
        state.window.insert(at, obs.ts);
        if state.window_evidence.len() < limits.evidence_lines {
            state.window_evidence.push(obs.evidence);
        }
        let newest = *state.window.back().expect("just inserted");
        let cutoff = newest
            .checked_sub(signed(params.within))
            .unwrap_or(Timestamp::MIN);
        let cutoff_us = cutoff.as_microsecond();
        while state.window.front().is_some_and(|t| *t < cutoff) {
            state.window.pop_front();
        }
        state.window_evidence.retain(|e| e.ts >= cutoff);
        let crossed = if params.distinct && params.ordered {
            // Each entry is (step, start of the latest chain of steps 0..=step seen so far): a
            // step extends the chain of the step before it, so the last step completes the
            // sequence only if every step came in order, all within the window.
            let value = obs.distinct.unwrap_or_default();
            state.distinct.retain(|(_, start)| *start >= cutoff_us);
            let step: Option<usize> = value.parse().ok();
            let start = match step {
                Some(0) => Some(obs.ts.as_microsecond()),
                Some(n) => {
                    let before = (n - 1).to_string();
                    state
                        .distinct
                        .iter()
                        .find(|(v, _)| *v == before)
                        .map(|(_, t)| *t)
                }
                None => None,
            };
            if let Some(start) = start {
                match state.distinct.iter_mut().find(|(v, _)| *v == value) {
                    Some(entry) => entry.1 = entry.1.max(start),
                    None => state.distinct.push((value, start)),
                }
            }
            if state.window.len() > MAX_DISTINCT_WINDOW {
                state.window.pop_front();
            }
            let last = (params.count - 1).to_string();
            state.distinct.iter().any(|(v, _)| *v == last)
        } else if params.distinct {
            let value = obs.distinct.unwrap_or_default();
            state
                .distinct
                .retain(|(v, t)| *t >= cutoff_us && *v != value);
            state.distinct.push((value, obs.ts.as_microsecond()));
            if state.window.len() > MAX_DISTINCT_WINDOW {
                state.window.pop_front();
            }
            state.distinct.len() >= params.count
        } else {
            if state.window.len() > params.count {
                state.window.pop_front();
            }
            state.window.len() >= params.count
        };
        if !crossed {
            return None;
        }

        let first_seen = *state.window.front().expect("window is not empty");
        let count = state.window.len() as u64;
        let evidence = std::mem::take(&mut state.window_evidence);
        state.window.clear();
        state.distinct.clear();
        let rule = rules.rule(obs.rule);
        let id = incident_id(&rule.id, &obs.group, first_seen, self.next_seq);
        self.next_seq += 1;
        self.seq_dirty = true;
        state.open = Some(OpenIncident {
            id: id.clone(),
            last_seen: newest,
            count,
            evidence: evidence.len(),
        });
        state.last_incident = Some(newest);
        let group: BTreeMap<String, String> = rule
            .threshold
            .group_by
            .iter()
            .cloned()
            .zip(obs.group.iter().cloned())
            .collect();
        Some(Change::Opened(Box::new(Incident {
            id,
            // The engine's case book fills it in.
            case_id: String::new(),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            title_vi: rule.title_vi.clone(),
            severity: rule.severity,
            status: Status::Open,
            first_seen,
            last_seen: newest,
            count,
            group,
            host: obs.origin.host.to_string(),
            system: obs.origin.system.to_string(),
            level: obs.origin.level,
            unit: obs.origin.unit.to_string(),
            tags: rule.tags.clone(),
            author: rule.author.clone(),
            evidence_omitted: count.saturating_sub(evidence.len() as u64),
            evidence,
            history: Vec::new(),
            revision: 1,
        })))
    }

    /// Whether a group has been quiet longer than its rule cares about, on its source's clock.
    fn is_quiet(clock_now: &[Timestamp], memory: jiff::SignedDuration, g: &GroupState) -> bool {
        let now = clock_now
            .get(g.clock.0 as usize)
            .copied()
            .unwrap_or(Timestamp::MIN);
        g.last_seen
            .is_none_or(|seen| seen.checked_add(memory).is_ok_and(|end| end < now))
    }

    fn maybe_sweep(&mut self, rule: usize) {
        self.since_sweep[rule] += 1;
        let groups = &mut self.groups[rule];
        if self.since_sweep[rule] < groups.len().max(1024) {
            return;
        }
        self.since_sweep[rule] = 0;
        let memory = signed(self.params[rule].memory);
        let before = groups.len();
        let dirty = &mut self.dirty;
        let clock_now = &self.clock_now;
        groups.retain(|key, g| {
            let keep = !Self::is_quiet(clock_now, memory, g);
            if !keep {
                dirty.insert((rule, key.clone()));
            }
            keep
        });
        self.stats.expired_groups += (before - groups.len()) as u64;
    }

    /// Makes room in a full rule: first forget expired groups, then the least recently seen sixteenth.
    fn evict(&mut self, rule: usize) {
        self.since_sweep[rule] = usize::MAX / 2;
        self.maybe_sweep(rule);
        let groups = &mut self.groups[rule];
        if groups.len() < self.limits.max_groups_per_rule {
            return;
        }
        let mut seen: Vec<Timestamp> = groups.values().filter_map(|g| g.last_seen).collect();
        let drop = (seen.len() / 16).max(1);
        let (_, cut, _) = seen.select_nth_unstable(drop - 1);
        let cut = *cut;
        let before = groups.len();
        let mut budget = drop;
        let dirty = &mut self.dirty;
        groups.retain(|key, g| {
            if budget > 0 && g.last_seen.is_some_and(|t| t <= cut) {
                budget -= 1;
                dirty.insert((rule, key.clone()));
                false
            } else {
                true
            }
        });
        self.stats.evicted_groups += (before - groups.len()) as u64;
    }
}

pub(crate) fn signed(duration: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX)
}

/// A ULID whose time part is the incident's first event and whose rest is a hash of the rule, the
/// group, the first event time and the correlator's incident sequence number. The sequence is saved
/// with the correlator's state, so no two incidents of one store share an id, and scanning the same
/// lines twice gives the same ids.
pub fn incident_id(rule_id: &str, group: &[String], first_seen: Timestamp, seq: u64) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
    };
    // A version tag, so ids made before the sequence existed can never equal one made after.
    feed(b"v2");
    feed(rule_id.as_bytes());
    for value in group {
        feed(&[0]);
        feed(value.as_bytes());
    }
    feed(&first_seen.as_nanosecond().to_le_bytes());
    feed(&seq.to_le_bytes());
    let millis = u64::try_from(first_seen.as_millisecond()).unwrap_or(0);
    ulid::Ulid::from_parts(millis, hash).to_string()
}

/// Timestamps as microseconds since the epoch in saved state: compact and exact.
mod micros {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(ts.as_microsecond())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Timestamp::from_microsecond(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod micros_opt {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_some(&ts.as_microsecond()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<i64>::deserialize(d)?
            .map(|us| Timestamp::from_microsecond(us).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A window's times as the first one and the steps after it (the window is sorted, so each step
/// is small, and 0 for matches in the same microsecond): a distinct-count rule's window holds up
/// to `MAX_DISTINCT_WINDOW` times and is saved again whenever it grows, and written out in full
/// (16 digits a time) it was most of what a batch of a brute force wrote. Windows saved as a
/// plain list of times (before this form) are read too.
mod micros_deque {
    use std::collections::VecDeque;

    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Saved {
        Steps { from: i64, steps: Vec<i64> },
        Times(Vec<i64>),
    }

    pub fn serialize<S: Serializer>(ts: &VecDeque<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        let mut times = ts.iter().map(|t| t.as_microsecond());
        let Some(from) = times.next() else {
            return Saved::Times(Vec::new()).serialize(s);
        };
        let mut last = from;
        let steps = times
            .map(|us| {
                let step = us - last;
                last = us;
                step
            })
            .collect();
        Saved::Steps { from, steps }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<Timestamp>, D::Error> {
        let times = match Saved::deserialize(d)? {
            Saved::Times(times) => times,
            Saved::Steps { from, steps } => {
                let mut last = from;
                std::iter::once(from)
                    .chain(steps.into_iter().map(|step| {
                        last = last.saturating_add(step);
                        last
                    }))
                    .collect()
            }
        };
        times
            .into_iter()
            .map(|us| Timestamp::from_microsecond(us).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSource;

    const RULES: &str = r#"
id: brute
title: brute force
severity: high
match:
  message: 'fail user=(?P<user>\S+) ip=(?P<src_ip>\S+)'
threshold: {count: 3, within: 60s, group_by: [src_ip]}
suppress: 5m
---
id: spray
title: many users
severity: medium
match:
  message: 'fail user=(?P<user>\S+) ip=(?P<src_ip>\S+)'
threshold: {distinct: user, count: 3, within: 60s, group_by: [src_ip]}
---
id: success-after
title: login after brute force
severity: critical
match:
  message: 'ok user=(?P<user>\S+) ip=(?P<src_ip>\S+)'
threshold: {group_by: [src_ip]}
requires: {rule: brute, within: 1h}
"#;

    fn rules() -> RuleSet {
        RuleSet::build(&[RuleSource {
            name: "t.yml".into(),
            text: RULES.into(),
        }])
        .unwrap()
    }

    /// Feeds one plain line at `1_800_000_000 + secs` through the rules and the correlator.
    fn feed(set: &RuleSet, correlator: &mut Correlator, secs: i64, line: &str) -> Vec<Change> {
        let meta = SourceMeta::new("test");
        let origin = Origin {
            host: "h",
            system: "s",
            level: 3,
            unit: "u",
        };
        let event = Event::plain(line);
        let ts = Timestamp::from_second(1_800_000_000 + secs).unwrap();
        set.matches(&event, &meta)
            .into_iter()
            .filter_map(|found| {
                correlator.observe(set, Observation::of(set, &found, &event, &meta, ts, origin))
            })
            .collect()
    }

    /// Feeds `(seconds, line)` pairs; returns per rule id the (opened, last count) seen.
    fn run(
        set: &RuleSet,
        limits: Limits,
        lines: &[(i64, &str)],
    ) -> (BTreeMap<String, (u64, u64)>, Correlator) {
        let mut correlator = Correlator::new(set, limits);
        let mut result: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (secs, line) in lines {
            for change in feed(set, &mut correlator, *secs, line) {
                match change {
                    Change::Opened(inc) => {
                        let entry = result.entry(inc.rule_id.clone()).or_default();
                        entry.0 += 1;
                        entry.1 = inc.count;
                    }
                    Change::Updated { rule, count, .. } => {
                        result.entry(set.rule(rule).id.clone()).or_default().1 = count
                    }
                }
            }
        }
        (result, correlator)
    }

    /// A slow rule watches days: its state per group must stay bounded by the rule (the count's
    /// timestamps, at most 256 for a distinct count, 10 evidence lines), never grow with the lines.
    #[test]
    fn long_windows_keep_bounded_state_per_group() {
        let set = RuleSet::build(&[RuleSource {
            name: "slow.yml".into(),
            text: r#"
id: slow-count
title: slow count
severity: low
match:
  message: 'fail user=(?P<user>\S+) ip=(?P<src_ip>\S+)'
threshold: {count: 20, within: 3d, group_by: [src_ip]}
suppress: 1d
---
id: slow-distinct
title: slow distinct
severity: low
match:
  message: 'fail user=(?P<user>\S+) ip=(?P<src_ip>\S+)'
threshold: {distinct: user, count: 50, within: 3d, group_by: [src_ip]}
suppress: 1d
"#
            .into(),
        }])
        .unwrap();
        let mut correlator = Correlator::new(&set, Limits::default());
        let mut largest = [0usize; 2];
        // 60 days: 19 failures every 3 days and 4 minutes (never 20 in 3 days) from one address,
        // cycling over 30 user names (never 50 distinct), with a long user name so that keeping
        // evidence beyond its cap would show.
        let long = "x".repeat(500);
        let mut ts = 0i64;
        for round in 0..20 {
            for i in 0..19 {
                ts = round * (3 * 86_400 + 240) + i * 600;
                let line = format!("fail user=u{}{long} ip=203.0.113.7", (round * 19 + i) % 30);
                let changes = feed(&set, &mut correlator, ts, &line);
                assert!(
                    changes.is_empty(),
                    "no threshold is ever crossed: {changes:?}"
                );
            }
            for (key, value) in correlator.take_state_changes() {
                let rule = usize::from(key.windows(8).any(|w| w == b"distinct"));
                largest[rule] = largest[rule].max(value.map_or(0, |v| v.len()));
            }
        }
        // And 50,000 failures in the distinct rule's window, which keeps at most 256 times.
        for i in 0..50_000 {
            let line = format!("fail user=u{} ip=198.51.100.9", i % 30);
            feed(&set, &mut correlator, ts + i, &line);
        }
        for (key, value) in correlator.take_state_changes() {
            if key.windows(12).any(|w| w == b"198.51.100.9") {
                let rule = usize::from(key.windows(8).any(|w| w == b"distinct"));
                largest[rule] = largest[rule].max(value.map_or(0, |v| v.len()));
            }
        }
        // 20 times and 10 evidence lines of about 560 bytes; 256 times, 30 names, 10 lines.
        assert!(
            largest[0] < 10 * 600 + 20 * 40 + 1_000,
            "count rule state: {largest:?}"
        );
        assert!(
            largest[1] < 10 * 600 + 256 * 40 + 30 * 560 + 1_000,
            "distinct rule state: {largest:?}"
        );
    }

    #[test]
    fn threshold_opens_once_and_suppression_folds_repeats() {
        let set = rules();
        let mut lines = vec![];
        for i in 0..10_000 {
            lines.push((i / 10, "fail user=root ip=203.0.113.7"));
        }
        let (got, _) = run(&set, Limits::default(), &lines);
        assert_eq!(
            got["brute"],
            (1, 10_000),
            "one incident holding every event"
        );
    }

    #[test]
    fn below_threshold_or_outside_window_opens_nothing() {
        let set = rules();
        let spread = [
            (0, "fail user=a ip=1.1.1.1"),
            (61, "fail user=a ip=1.1.1.1"),
            (122, "fail user=a ip=1.1.1.1"),
        ];
        let (got, _) = run(&set, Limits::default(), &spread);
        assert!(!got.contains_key("brute"), "{got:?}");
        let other_groups = [
            (0, "fail user=a ip=1.1.1.1"),
            (1, "fail user=a ip=2.2.2.2"),
            (2, "fail user=a ip=3.3.3.3"),
        ];
        let (got, _) = run(&set, Limits::default(), &other_groups);
        assert!(!got.contains_key("brute"), "{got:?}");
    }

    #[test]
    fn a_quiet_spell_longer_than_suppress_starts_a_new_incident() {
        let set = rules();
        let mut lines = vec![];
        for t in [0, 1, 2, 3, 400, 401, 402] {
            lines.push((t, "fail user=root ip=1.1.1.1"));
        }
        let (got, _) = run(&set, Limits::default(), &lines);
        assert_eq!(got["brute"], (2, 3));
    }

    #[test]
    fn distinct_counts_values_not_events() {
        let set = rules();
        let same_user: Vec<_> = (0..5).map(|t| (t, "fail user=root ip=1.1.1.1")).collect();
        let (got, _) = run(&set, Limits::default(), &same_user);
        assert!(!got.contains_key("spray"));
        let users = [
            (0, "fail user=a ip=1.1.1.1"),
            (1, "fail user=b ip=1.1.1.1"),
            (2, "fail user=a ip=1.1.1.1"),
            (3, "fail user=c ip=1.1.1.1"),
        ];
        let (got, _) = run(&set, Limits::default(), &users);
        assert_eq!(got["spray"], (1, 4));
    }

    #[test]
    fn requires_needs_the_other_rules_incident_for_the_same_group() {
        let set = rules();
        let lonely = [(0, "ok user=a ip=1.1.1.1")];
        assert!(
            !run(&set, Limits::default(), &lonely)
                .0
                .contains_key("success-after")
        );
        let after = [
            (0, "fail user=a ip=1.1.1.1"),
            (1, "fail user=a ip=1.1.1.1"),
            (2, "fail user=a ip=1.1.1.1"),
            (3, "ok user=a ip=2.2.2.2"),
            (4, "ok user=a ip=1.1.1.1"),
        ];
        assert_eq!(
            run(&set, Limits::default(), &after).0["success-after"],
            (1, 1)
        );
    }

    #[test]
    fn state_is_bounded_and_evictions_are_counted() {
        let set = rules();
        let lines: Vec<String> = (0..5000)
            .map(|i| format!("fail user=a ip=10.0.{}.{}", i / 256, i % 256))
            .collect();
        let input: Vec<(i64, &str)> = lines.iter().map(|l| (0, l.as_str())).collect();
        let limits = Limits {
            max_groups_per_rule: 1000,
            evidence_lines: 10,
        };
        let (_, correlator) = run(&set, limits, &input);
        assert!(
            correlator.tracked_groups() <= 2 * 1000,
            "{}",
            correlator.tracked_groups()
        );
        assert!(
            correlator.stats().evicted_groups >= 2 * 4000,
            "{:?}",
            correlator.stats()
        );
    }

    #[test]
    fn a_reload_keeps_the_windows_of_unchanged_rules() {
        let set = rules();
        let two = [(0, "fail user=a ip=1.1.1.1"), (1, "fail user=b ip=1.1.1.1")];
        let (_, before) = run(&set, Limits::default(), &two);
        // The same rules reloaded, except `spray` now needs 4 distinct users.
        let changed = RuleSet::build(&[RuleSource {
            name: "t.yml".into(),
            text: RULES.replace("{distinct: user, count: 3", "{distinct: user, count: 4"),
        }])
        .unwrap();
        let mut after = Correlator::new(&changed, Limits::default());
        assert_eq!(
            after.carry_over(before),
            2,
            "brute and success-after kept, spray not"
        );
        let opened: Vec<String> = feed(&changed, &mut after, 2, "fail user=c ip=1.1.1.1")
            .into_iter()
            .filter_map(|change| match change {
                Change::Opened(incident) => Some(incident.rule_id),
                Change::Updated { .. } => None,
            })
            .collect();
        assert_eq!(
            opened,
            vec!["brute".to_string()],
            "the third failure completes the kept window"
        );
    }

    /// Saves the correlator's whole state as the daemon does, into a map standing for the store.
    fn save(correlator: &mut Correlator, saved: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        for (key, value) in correlator.take_state_changes() {
            match value {
                Some(value) => saved.insert(key, value),
                None => saved.remove(&key),
            };
        }
    }

    fn restored(set: &RuleSet, saved: &BTreeMap<Vec<u8>, Vec<u8>>) -> Correlator {
        let mut after = Correlator::new(set, Limits::default());
        after.restore_state(saved.clone());
        after
    }

    #[test]
    fn a_half_full_window_survives_a_restart() {
        let set = rules();
        let (_, mut before) = run(
            &set,
            Limits::default(),
            &[(0, "fail user=a ip=1.1.1.1"), (1, "fail user=a ip=1.1.1.1")],
        );
        let mut saved = BTreeMap::new();
        save(&mut before, &mut saved);
        assert!(before.take_state_changes().is_empty(), "taken once");
        let mut after = restored(&set, &saved);
        let opened = feed(&set, &mut after, 2, "fail user=a ip=1.1.1.1")
            .into_iter()
            .find_map(|change| match change {
                Change::Opened(incident) if incident.rule_id == "brute" => Some(incident.count),
                _ => None,
            });
        assert_eq!(
            opened,
            Some(3),
            "the third failure after a restart must open the incident"
        );
    }

    #[test]
    fn a_window_is_saved_as_steps_and_read_back_in_either_form() {
        let times = [5_000_000, 5_000_000, 5_000_000, 7_500_000];
        let state = GroupState {
            window: times
                .iter()
                .map(|&us| Timestamp::from_microsecond(us).unwrap())
                .collect(),
            ..GroupState::default()
        };
        let saved = serde_json::to_string(&state).unwrap();
        assert!(
            saved.contains(r#""window":{"from":5000000,"steps":[0,0,2500000]}"#),
            "{saved}"
        );
        assert_eq!(serde_json::from_str::<GroupState>(&saved).unwrap(), state);
        // As saved before the steps: a plain list of times.
        let plain = saved.replace(
            r#"{"from":5000000,"steps":[0,0,2500000]}"#,
            "[5000000,5000000,5000000,7500000]",
        );
        assert_eq!(serde_json::from_str::<GroupState>(&plain).unwrap(), state);
        let empty = serde_json::to_string(&GroupState::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<GroupState>(&empty).unwrap(),
            GroupState::default()
        );
    }

    #[test]
    fn an_open_incident_days_old_keeps_folding_after_a_restart() {
        // Event times far from any wall clock: the restore must not judge them against one.
        let set = rules();
        let (_, mut before) = run(
            &set,
            Limits::default(),
            &[
                (-900_000_000, "fail user=a ip=1.1.1.1"),
                (-900_000_000, "fail user=a ip=1.1.1.1"),
                (-900_000_000, "fail user=a ip=1.1.1.1"),
            ],
        );
        let open = before.open_incidents();
        assert_eq!(open.len(), 1);
        let mut saved = BTreeMap::new();
        save(&mut before, &mut saved);
        let mut after = restored(&set, &saved);
        let changes = feed(&set, &mut after, -900_000_000, "fail user=a ip=1.1.1.1");
        let brute: Vec<_> = changes
            .iter()
            .filter(|c| matches!(c, Change::Updated { rule, .. } if set.rule(*rule).id == "brute"))
            .collect();
        assert_eq!(brute.len(), 1, "{changes:?}");
        assert!(
            matches!(brute[0], Change::Updated { id, count: 4, .. } if *id == open[0]),
            "{changes:?}"
        );
    }

    #[test]
    fn ids_never_repeat_even_for_the_same_group_and_time() {
        let set = rules();
        let mut correlator = Correlator::new(&set, Limits::default());
        let mut ids = Vec::new();
        for round in 0..3 {
            for _ in 0..3 {
                for change in feed(&set, &mut correlator, 0, "fail user=a ip=1.1.1.1") {
                    if let Change::Opened(incident) = change
                        && incident.rule_id == "brute"
                    {
                        ids.push(incident.id.clone());
                    }
                }
            }
            // An operator closes it: the same lines at the same time open another incident.
            for id in correlator.open_incidents() {
                correlator.forget(&id);
            }
            assert_eq!(ids.len(), round + 1);
        }
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 3, "{ids:?}");
    }

    #[test]
    fn saved_state_of_a_changed_rule_is_dropped_and_deleted() {
        let set = rules();
        let (_, mut before) = run(&set, Limits::default(), &[(0, "fail user=a ip=1.1.1.1")]);
        let mut saved = BTreeMap::new();
        save(&mut before, &mut saved);
        let changed = RuleSet::build(&[RuleSource {
            name: "t.yml".into(),
            text: RULES.replace("{count: 3, within: 60s", "{count: 4, within: 60s"),
        }])
        .unwrap();
        let mut after = Correlator::new(&changed, Limits::default());
        let report = after.restore_state(saved.clone());
        assert_eq!(report.dropped, 1, "brute changed: {report:?}");
        assert_eq!(report.groups, 1, "spray kept: {report:?}");
        save(&mut after, &mut saved);
        assert_eq!(
            saved.keys().filter(|k| k.starts_with(b"g")).count(),
            1,
            "the changed rule's group is deleted"
        );
    }

    #[test]
    fn a_quiet_old_source_is_not_expired_by_a_newer_one() {
        let set = rules();
        let mut correlator = Correlator::new(&set, Limits::default());
        let old = correlator.clock("old.log");
        let live = correlator.clock("live.log");
        let meta = SourceMeta::new("test");
        let origin = Origin {
            host: "h",
            system: "s",
            level: 3,
            unit: "u",
        };
        let observe = |c: &mut Correlator, clock, secs: i64, line: &str| {
            let event = Event::plain(line);
            let ts = Timestamp::from_second(1_800_000_000 + secs).unwrap();
            set.matches(&event, &meta)
                .into_iter()
                .filter_map(|found| {
                    let obs =
                        Observation::of(&set, &found, &event, &meta, ts, origin).on_clock(clock);
                    c.observe(&set, obs)
                })
                .collect::<Vec<_>>()
        };
        observe(&mut correlator, old, 0, "fail user=a ip=9.9.9.9");
        observe(&mut correlator, old, 1, "fail user=a ip=9.9.9.9");
        // Many days later on the live source: enough matches to sweep the rule many times.
        for i in 0..5000 {
            observe(
                &mut correlator,
                live,
                864_000 + i,
                &format!("fail user=b ip=10.0.{}.{}", i / 256, i % 256),
            );
        }
        let third = observe(&mut correlator, old, 2, "fail user=a ip=9.9.9.9");
        assert!(
            third
                .iter()
                .any(|c| matches!(c, Change::Opened(i) if i.rule_id == "brute" && i.count == 3)),
            "the old source's window must still be there: {third:?}"
        );
    }

    #[test]
    fn ids_are_deterministic() {
        let ts = Timestamp::from_second(1_800_000_000).unwrap();
        let a = incident_id("r", &["1.1.1.1".into()], ts, 0);
        assert_eq!(a, incident_id("r", &["1.1.1.1".into()], ts, 0));
        assert_ne!(a, incident_id("r", &["1.1.1.2".into()], ts, 0));
        assert_ne!(
            a,
            incident_id("r", &["1.1.1.1".into()], ts, 1),
            "another sequence number"
        );
        assert_eq!(a.len(), 26);
    }
}
