//! Matches to incidents: thresholds over sliding windows per group, suppression that folds repeats
//! into one incident, and `requires` between rules. Pure: event time comes in with each observation,
//! so an archive scanned today gives the same incidents as the same lines watched live.
//!
//! State is bounded: at most `Limits::max_groups_per_rule` groups per rule; quiet groups expire, and
//! when a rule is full the least recently seen groups are evicted and counted.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

use crate::model::{Event, Evidence, Incident, SourceMeta, Status};
use crate::rules::{RuleMatch, RuleSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_groups_per_rule: usize,
    /// Evidence lines kept per incident; the rest are counted.
    pub evidence_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups_per_rule: 100_000,
            evidence_lines: 10,
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

/// What an observation changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Opened(Box<Incident>),
    Updated {
        id: String,
        rule: usize,
        count: u64,
        last_seen: Timestamp,
        /// The new line, for the evidence list if it has room.
        evidence: Evidence,
    },
}

/// Where the incident happened, for the incident record.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub host: &'a str,
    pub system: &'a str,
    pub level: u8,
    pub unit: &'a str,
}

/// One rule match ready for correlation.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub rule: usize,
    pub group: Vec<String>,
    pub distinct: Option<String>,
    pub ts: Timestamp,
    pub evidence: Evidence,
    pub origin: Origin<'a>,
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
                source: meta.source.to_string(),
                line: event.raw.to_string(),
            },
            origin,
        }
    }
}

#[derive(Debug, Clone)]
struct OpenIncident {
    id: String,
    last_seen: Timestamp,
    count: u64,
}

#[derive(Debug, Clone, Default)]
struct GroupState {
    last_seen: Option<Timestamp>,
    /// Times of the matches in the current window, oldest first.
    window: VecDeque<Timestamp>,
    /// The first lines of the current window.
    window_evidence: Vec<Evidence>,
    /// Distinct values seen in the window, with when each was last seen.
    distinct: Vec<(String, Timestamp)>,
    open: Option<OpenIncident>,
    /// Last time an incident of this group was updated, for other rules' `requires`.
    last_incident: Option<Timestamp>,
    /// Incidents of this group an operator closed while it was tracked: part of the next incident's
    /// id, so a new incident whose first event has the same time as the closed one's gets its own id.
    generation: u32,
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

/// A threshold window that has not fired yet, as the daemon saves it with each batch, so a crash
/// loses none of the matches that were counting toward an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingWindow {
    pub rule_id: String,
    pub group: Vec<String>,
    /// Match times in the window, microseconds since the epoch.
    pub window_us: Vec<i64>,
    pub evidence: Vec<Evidence>,
    pub distinct: Vec<(String, i64)>,
}

/// The store key prefix of saved pending windows.
pub const PENDING_PREFIX: &str = "pending:";

fn pending_key(rule_id: &str, group: &[String]) -> String {
    let mut key = format!("{PENDING_PREFIX}{rule_id}");
    for value in group {
        key.push('\u{1f}');
        key.push_str(value);
    }
    key
}

#[derive(Debug, Clone)]
pub struct Correlator {
    params: Vec<RuleParams>,
    groups: Vec<HashMap<Vec<String>, GroupState>>,
    /// Groups whose window changed since `take_pending` last ran.
    dirty: HashSet<(usize, Vec<String>)>,
    since_sweep: Vec<usize>,
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
        Correlator {
            groups: vec![HashMap::new(); params.len()],
            dirty: HashSet::new(),
            since_sweep: vec![0; params.len()],
            params,
            limits,
            stats: Stats::default(),
        }
    }

    /// Takes back an open incident from the store after a restart, so repeats of its group keep
    /// folding into it instead of opening a second one. Unknown rules (removed since) are ignored.
    pub fn restore(&mut self, rules: &RuleSet, incident: &Incident) {
        let Some(rule) = rules.rules().iter().position(|r| r.id == incident.rule_id) else {
            return;
        };
        let group: Vec<String> = rules
            .rule(rule)
            .threshold
            .group_by
            .iter()
            .map(|field| incident.group.get(field).cloned().unwrap_or_default())
            .collect();
        let state = self.groups[rule].entry(group).or_default();
        state.last_seen = Some(incident.last_seen);
        state.last_incident = Some(incident.last_seen);
        state.open = Some(OpenIncident {
            id: incident.id.clone(),
            last_seen: incident.last_seen,
            count: incident.count,
        });
    }

    /// Forgets an incident an operator closed: the next match of its group starts over (threshold
    /// and all) and opens a new incident instead of updating the closed one.
    pub fn forget(&mut self, id: &str) {
        for groups in &mut self.groups {
            for state in groups.values_mut() {
                if state.open.as_ref().is_some_and(|open| open.id == id) {
                    state.open = None;
                    state.generation += 1;
                    state.window.clear();
                    state.window_evidence.clear();
                    state.distinct.clear();
                }
            }
        }
    }

    /// The windows that changed since the last call, to save with the batch: `Some(bytes)` to store,
    /// `None` to delete (the window fired, emptied or was forgotten).
    pub fn take_pending(&mut self, rules: &RuleSet) -> Vec<(String, Option<Vec<u8>>)> {
        let mut out = Vec::with_capacity(self.dirty.len());
        for (rule, group) in self.dirty.drain() {
            let rule_id = &rules.rule(rule).id;
            let key = pending_key(rule_id, &group);
            let value = self.groups[rule]
                .get(&group)
                .filter(|s| s.open.is_none() && !s.window.is_empty())
                .map(|state| {
                    let window = PendingWindow {
                        rule_id: rule_id.clone(),
                        group: group.clone(),
                        window_us: state.window.iter().map(|t| t.as_microsecond()).collect(),
                        evidence: state.window_evidence.clone(),
                        distinct: state
                            .distinct
                            .iter()
                            .map(|(v, t)| (v.clone(), t.as_microsecond()))
                            .collect(),
                    };
                    serde_json::to_vec(&window).unwrap_or_default()
                });
            out.push((key, value));
        }
        out
    }

    /// Takes back a saved window after a restart (ignored if its rule is gone or its group already
    /// has an incident).
    pub fn restore_pending(&mut self, rules: &RuleSet, saved: &[u8]) {
        let Ok(window) = serde_json::from_slice::<PendingWindow>(saved) else {
            return;
        };
        let Some(rule) = rules.rules().iter().position(|r| r.id == window.rule_id) else {
            return;
        };
        let state = self.groups[rule].entry(window.group).or_default();
        if state.open.is_some() {
            return;
        }
        let times = |us: &[i64]| -> Vec<Timestamp> {
            us.iter()
                .filter_map(|u| Timestamp::from_microsecond(*u).ok())
                .collect()
        };
        state.window = times(&window.window_us).into();
        state.window_evidence = window.evidence;
        state.distinct = window
            .distinct
            .into_iter()
            .filter_map(|(v, u)| Some((v, Timestamp::from_microsecond(u).ok()?)))
            .collect();
        state.last_seen = state.window.back().copied();
    }

    /// Moves the state of rules that survive a reload from `old` into this correlator: a rule keeps
    /// its groups (windows, open incidents) when its id, threshold and suppression are unchanged.
    /// Returns how many rules kept their state.
    pub fn carry_over(
        &mut self,
        rules: &RuleSet,
        mut old: Correlator,
        old_rules: &RuleSet,
    ) -> usize {
        let mut kept = 0;
        for (new_index, rule) in rules.rules().iter().enumerate() {
            let Some(old_index) = old_rules.rules().iter().position(|r| r.id == rule.id) else {
                continue;
            };
            let before = old_rules.rule(old_index);
            if before.threshold == rule.threshold && before.suppress == rule.suppress {
                self.groups[new_index] = std::mem::take(&mut old.groups[old_index]);
                kept += 1;
            }
        }
        self.stats = old.stats;
        kept
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Groups currently tracked, over all rules.
    pub fn tracked_groups(&self) -> usize {
        self.groups.iter().map(HashMap::len).sum()
    }

    /// Feeds one match. Returns the incident it opened or updated, if any.
    pub fn observe(&mut self, rules: &RuleSet, obs: Observation<'_>) -> Option<Change> {
        let params = self.params[obs.rule];
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
        self.maybe_sweep(obs.rule, obs.ts);
        if !self.groups[obs.rule].contains_key(&obs.group)
            && self.groups[obs.rule].len() >= self.limits.max_groups_per_rule
        {
            self.evict(obs.rule, obs.ts);
        }
        let limits = self.limits;
        let groups = &mut self.groups[obs.rule];
        if !groups.contains_key(&obs.group) {
            groups.insert(obs.group.clone(), GroupState::default());
        }
        let state = groups.get_mut(&obs.group).expect("inserted above");
        state.last_seen = Some(state.last_seen.map_or(obs.ts, |seen| seen.max(obs.ts)));

        if let Some(open) = &mut state.open {
            if obs.ts.duration_since(open.last_seen).unsigned_abs() <= params.suppress
                || obs.ts < open.last_seen
            {
                open.count += 1;
                open.last_seen = open.last_seen.max(obs.ts);
                state.last_incident = Some(open.last_seen);
                return Some(Change::Updated {
                    id: open.id.clone(),
                    rule: obs.rule,
                    count: open.count,
                    last_seen: open.last_seen,
                    evidence: obs.evidence,
                });
            }
            // Quiet longer than the suppression window: that incident is over.
            state.open = None;
        }

        self.dirty.insert((obs.rule, obs.group.clone()));
        let at = state.window.partition_point(|t| *t <= obs.ts);
        state.window.insert(at, obs.ts);
        if state.window_evidence.len() < limits.evidence_lines {
            state.window_evidence.push(obs.evidence);
        }
        let newest = *state.window.back().expect("just inserted");
        let cutoff = newest
            .checked_sub(signed(params.within))
            .unwrap_or(Timestamp::MIN);
        while state.window.front().is_some_and(|t| *t < cutoff) {
            state.window.pop_front();
        }
        state.window_evidence.retain(|e| e.ts >= cutoff);
        let crossed = if params.distinct && params.ordered {
            // Each entry is (step, start of the latest chain of steps 0..=step seen so far): a
            // step extends the chain of the step before it, so the last step completes the
            // sequence only if every step came in order, all within the window.
            let value = obs.distinct.unwrap_or_default();
            state.distinct.retain(|(_, start)| *start >= cutoff);
            let step: Option<usize> = value.parse().ok();
            let start = match step {
                Some(0) => Some(obs.ts),
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
            state.distinct.retain(|(v, t)| *t >= cutoff && *v != value);
            state.distinct.push((value, obs.ts));
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
        let id = incident_id(&rule.id, &obs.group, first_seen, state.generation);
        state.open = Some(OpenIncident {
            id: id.clone(),
            last_seen: newest,
            count,
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

    fn maybe_sweep(&mut self, rule: usize, now: Timestamp) {
        self.since_sweep[rule] += 1;
        let groups = &mut self.groups[rule];
        if self.since_sweep[rule] < groups.len().max(1024) {
            return;
        }
        self.since_sweep[rule] = 0;
        let memory = signed(self.params[rule].memory);
        let before = groups.len();
        let dirty = &mut self.dirty;
        groups.retain(|key, g| {
            let keep = g
                .last_seen
                .is_some_and(|seen| seen.checked_add(memory).map_or(true, |end| end >= now));
            if !keep && !g.window.is_empty() {
                dirty.insert((rule, key.clone()));
            }
            keep
        });
        self.stats.expired_groups += (before - groups.len()) as u64;
    }

    /// Makes room in a full rule: first forget expired groups, then the least recently seen sixteenth.
    fn evict(&mut self, rule: usize, now: Timestamp) {
        self.since_sweep[rule] = usize::MAX / 2;
        self.maybe_sweep(rule, now);
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
        groups.retain(|_, g| {
            if budget > 0 && g.last_seen.is_some_and(|t| t <= cut) {
                budget -= 1;
                false
            } else {
                true
            }
        });
        self.stats.evicted_groups += (before - groups.len()) as u64;
    }
}

fn signed(duration: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX)
}

/// A ULID whose time part is the incident's first event and whose rest is a hash of what identifies
/// it, so replaying the same lines (after a crash, or scanning twice) yields the same id.
pub fn incident_id(
    rule_id: &str,
    group: &[String],
    first_seen: Timestamp,
    generation: u32,
) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
    };
    feed(rule_id.as_bytes());
    for value in group {
        feed(&[0]);
        feed(value.as_bytes());
    }
    feed(&first_seen.as_nanosecond().to_le_bytes());
    if generation > 0 {
        // Only after an operator closed an incident of the group, so ids before that stay as they were.
        feed(&generation.to_le_bytes());
    }
    let millis = u64::try_from(first_seen.as_millisecond()).unwrap_or(0);
    ulid::Ulid::from_parts(millis, hash).to_string()
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
            after.carry_over(&changed, before, &set),
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

    #[test]
    fn pending_windows_survive_a_restart() {
        let set = rules();
        let (_, mut before) = run(
            &set,
            Limits::default(),
            &[(0, "fail user=a ip=1.1.1.1"), (1, "fail user=a ip=1.1.1.1")],
        );
        let saved = before.take_pending(&set);
        assert!(before.take_pending(&set).is_empty(), "taken once");
        let mut after = Correlator::new(&set, Limits::default());
        for (_, bytes) in &saved {
            after.restore_pending(&set, bytes.as_ref().expect("a live window"));
        }
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
        let cleared = after.take_pending(&set);
        assert!(
            cleared
                .iter()
                .any(|(k, v)| k.contains("brute") && v.is_none()),
            "a fired window is deleted: {cleared:?}"
        );
    }

    #[test]
    fn ids_are_deterministic() {
        let ts = Timestamp::from_second(1_800_000_000).unwrap();
        let a = incident_id("r", &["1.1.1.1".into()], ts, 0);
        assert_eq!(a, incident_id("r", &["1.1.1.1".into()], ts, 0));
        assert_ne!(a, incident_id("r", &["1.1.1.2".into()], ts, 0));
        assert_ne!(a, incident_id("r", &["1.1.1.1".into()], ts, 1));
        assert_eq!(a.len(), 26);
    }
}
