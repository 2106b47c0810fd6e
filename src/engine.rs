//! The one path from a line to incident changes: prepare the bytes, decode, match, correlate. `scan`,
//! the daemon and the tests all drive this engine, each with its own [`Sink`] (collect the changes,
//! or write them to the store with the batch), so watching lines live and scanning them give the
//! same incidents by construction. Pure: no IO, no clock; "now" comes in with each line.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cases::{Case, CaseBook, Entity};
use crate::correlate::{
    Change, ClockId, Correlator, Limits, Observation, Origin, RestoreReport, StateDelta, Stats,
};
use crate::decode::{DecodeContext, Decoder, prepare_line};
use crate::model::{Format, Logsource, SourceMeta};
use crate::rules::{MatchScratch, RuleMatch, RuleSet};

/// Where the engine's changes go: incident changes, and the case each one touched as it now is
/// (after the change that touched it).
pub trait Sink {
    fn change(&mut self, change: Change);
    fn case(&mut self, case: &Case);
}

/// The latest state of each case a run of changes touched, in the order first touched. A case
/// that absorbed others keeps every `merged_from` it reported (a later change clears the book's),
/// and an absorbed case leaves the list: `TouchedCases`' bookkeeping, with a copy of each case as
/// its last change left it (for a reader without the case book, the cluster's console).
#[derive(Debug, Default)]
pub struct CaseStates {
    touched: TouchedCases,
    latest: crate::correlate::Map<String, Case>,
}

impl CaseStates {
    pub fn record(&mut self, case: &Case) {
        self.touched.record(case);
        self.latest.insert(case.id.clone(), case.clone());
    }

    pub fn into_cases(mut self) -> Vec<Case> {
        self.touched
            .ids
            .iter()
            .zip(self.touched.merged)
            .filter_map(|(id, merged)| {
                let mut case = self.latest.remove(id)?;
                case.merged_from = merged;
                Some(case)
            })
            .collect()
    }
}

/// The cases a run of changes touched, by id, in the order first touched, with every case each
/// absorbed (`merged_from`, which the book clears at the case's next change); an absorbed case
/// leaves the list. Without a copy of the case on every change: the daemon takes each touched
/// case from the engine once, at the end of its batch (`Engine::touched_cases`).
#[derive(Debug, Default)]
pub struct TouchedCases {
    ids: Vec<String>,
    merged: Vec<Vec<String>>,
    slot: crate::correlate::Map<String, usize>,
}

impl TouchedCases {
    pub fn record(&mut self, case: &Case) {
        let at = match self.slot.get(&case.id) {
            Some(&at) => at,
            None => {
                self.slot.insert(case.id.clone(), self.ids.len());
                self.ids.push(case.id.clone());
                self.merged.push(Vec::new());
                self.ids.len() - 1
            }
        };
        if !case.merged_from.is_empty() {
            // This change's merges first, then those reported earlier.
            let mut merged = case.merged_from.clone();
            for id in std::mem::take(&mut self.merged[at]) {
                if !merged.contains(&id) {
                    merged.push(id);
                }
            }
            self.merged[at] = merged;
            let gone: std::collections::HashSet<&String> = case.merged_from.iter().collect();
            let (ids, merged): (Vec<String>, Vec<Vec<String>>) = std::mem::take(&mut self.ids)
                .into_iter()
                .zip(std::mem::take(&mut self.merged))
                .filter(|(id, _)| !gone.contains(id))
                .unzip();
            self.ids = ids;
            self.merged = merged;
            self.slot = self
                .ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect();
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Incident changes and case states in the order they came (tests and tools).
#[derive(Debug, Default)]
pub struct Recorded {
    pub changes: Vec<Change>,
    pub cases: Vec<Case>,
}

impl Sink for Recorded {
    fn change(&mut self, change: Change) {
        self.changes.push(change);
    }
    fn case(&mut self, case: &Case) {
        self.cases.push(case.clone());
    }
}

/// What a source is, as its config (or `scan`'s options) says.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The name lines are attributed to in evidence (file path, `-`, `syslog://peer`).
    pub name: String,
    /// The name of the clock its event times run on; sources sharing one share a clock.
    pub clock: String,
    pub format: Format,
    /// Overrides of the logsource the decoder gives.
    pub logsource: Logsource,
    /// Zone of timestamps that carry none.
    pub zone: TimeZone,
    pub system: String,
    pub level: u8,
    /// Host for events that do not name one.
    pub host: String,
}

/// What was wrong with a source's lines, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    pub lines: u64,
    pub bytes: u64,
    pub parse_errors: u64,
    pub invalid_utf8: u64,
    pub nul_bytes: u64,
    pub truncated: u64,
    pub matches: u64,
}

/// One source's decoding state: its decoder (with the year inference of RFC 3164 stamps), the time
/// of its latest line (lines without a time take it), and its counters.
#[derive(Debug)]
pub struct Source {
    meta: SourceMeta,
    decoder: Decoder,
    logsource: Logsource,
    host: String,
    clock: ClockId,
    last_ts: Option<Timestamp>,
    /// `last_ts` is `received`, not a time some line carried (no line so far had one).
    last_ts_guessed: bool,
    pub stats: LineStats,
}

impl Source {
    pub fn meta(&self) -> &SourceMeta {
        &self.meta
    }

    pub fn format(&self) -> Format {
        self.decoder.format()
    }

    /// Decodes again with `format` (after `scan` detected it).
    pub fn set_format(&mut self, format: Format) {
        self.decoder = Decoder::new(format, self.decoder.context().clone());
    }

    /// Moves the reference for the year of RFC 3164 stamps (the daemon passes its clock now and then).
    pub fn set_reference(&mut self, reference: Timestamp) {
        let zone = self.decoder.context().zone.clone();
        self.decoder = Decoder::new(self.decoder.format(), DecodeContext::new(zone, reference));
    }

    /// The event time of `line` without feeding it (for merging several inputs by time).
    pub fn peek_time(&mut self, line: &[u8], max_line_bytes: usize) -> Option<Timestamp> {
        let prepared = prepare_line(line, max_line_bytes);
        self.decoder.decode(&prepared.text).ts
    }

    /// The time of the latest line that had one.
    pub fn last_time(&self) -> Option<Timestamp> {
        self.last_ts
    }

    /// The time the next line without one takes, if a line so far carried a time (`scan --jobs`
    /// hands it from one piece of a file to the next).
    pub fn carried_time(&self) -> Option<Timestamp> {
        self.last_ts.filter(|_| !self.last_ts_guessed)
    }

    /// The clock its event times run on, for `Engine::correlate`.
    pub fn clock(&self) -> ClockId {
        self.clock
    }

    /// A source for a `Matcher` on a thread without the engine: its `clock` is not numbered (the
    /// engine's first clock stands in), so whoever correlates its lines numbers `spec.clock` with
    /// `Engine::clock`. `Engine::source` is this plus the number.
    pub fn unclocked(spec: SourceSpec, reference: Timestamp) -> Source {
        let ctx = DecodeContext::new(spec.zone, reference);
        Source {
            meta: SourceMeta {
                source: Arc::from(spec.name.as_str()),
                system: Arc::from(spec.system.as_str()),
                level: spec.level,
            },
            decoder: Decoder::new(spec.format, ctx),
            logsource: spec.logsource,
            host: spec.host,
            clock: ClockId::default(),
            last_ts: None,
            last_ts_guessed: false,
            stats: LineStats::default(),
        }
    }
}

/// Rules plus correlation plus cases: lines in, changes out.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    correlator: Correlator,
    cases: CaseBook,
    limits: Limits,
    matcher: Matcher,
    unit: String,
    max_line_bytes: usize,
}

/// One rule hit of a line, owned: everything correlation needs, and the fields for `scan --matches`.
#[derive(Debug, Clone)]
pub struct Hit {
    pub rule: usize,
    pub group: Vec<String>,
    pub distinct: Option<String>,
    pub evidence: crate::model::Evidence,
    pub host: String,
    pub system: Arc<str>,
    pub level: u8,
    /// What the rule extracted (its named groups), in order.
    pub captured: Vec<(String, String)>,
    /// The line's address and account (`src_ip`, `c-ip`, `user`), for the case an incident joins.
    pub entity_fields: Vec<(&'static str, String)>,
}

/// What one line matched: its event time and its hits.
#[derive(Debug, Clone)]
pub struct Matched {
    pub ts: Timestamp,
    /// No line up to this one in its source carried a time: `ts` is the source's `received`.
    pub ts_guessed: bool,
    /// The line's number in its source (1 for the first).
    pub line_no: u64,
    pub hits: Vec<Hit>,
}

impl Matched {
    /// Gives the line another event time (and its evidence with it).
    pub fn retime(&mut self, ts: Timestamp) {
        self.ts = ts;
        for hit in &mut self.hits {
            hit.evidence.ts = ts;
        }
    }
}

impl LineStats {
    pub fn add(&mut self, other: &LineStats) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.parse_errors += other.parse_errors;
        self.invalid_utf8 += other.invalid_utf8;
        self.nul_bytes += other.nul_bytes;
        self.truncated += other.truncated;
        self.matches += other.matches;
    }
}

/// Decoding and matching, the part of the engine that needs no correlation state, so several
/// sources can be matched on several threads while one engine correlates in a defined order.
#[derive(Debug)]
pub struct Matcher {
    rules: Arc<RuleSet>,
    scratch: MatchScratch,
    found: Vec<RuleMatch>,
    max_line_bytes: usize,
    /// Hand each hit's extracted fields on in `Hit::captured` (only `scan --matches` prints them).
    keep_captured: bool,
}

impl Matcher {
    /// Matches with `rules`, cutting lines at `max_line_bytes` as the engine does.
    pub fn new(rules: Arc<RuleSet>, max_line_bytes: usize) -> Matcher {
        Matcher {
            rules,
            scratch: MatchScratch::default(),
            found: Vec::new(),
            max_line_bytes,
            keep_captured: true,
        }
    }

    /// Leaves `Hit::captured` empty: correlation reads none of it (the group, distinct value and
    /// entity fields are taken out before), and a hit handed to another thread costs a free there
    /// for every string it carries (a failed SSH login hits four rules with two or three fields).
    pub fn without_captured(mut self) -> Matcher {
        self.keep_captured = false;
        self
    }

    /// The rules it matches with (the hits' rule numbers index them).
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Decodes and matches one line of `source`, counting it; `None` when no rule matched. A line
    /// without a time takes the time of the source's previous line, else `received`.
    pub fn match_line(
        &mut self,
        source: &mut Source,
        line: &[u8],
        full_len: usize,
        received: Timestamp,
    ) -> Option<Matched> {
        let stats = &mut source.stats;
        stats.lines += 1;
        stats.bytes += full_len as u64 + 1;
        if full_len > self.max_line_bytes {
            stats.truncated += 1;
        }
        let prepared = prepare_line(line, self.max_line_bytes);
        if prepared.flags.invalid_utf8 {
            stats.invalid_utf8 += 1;
        }
        if prepared.flags.nul_bytes {
            stats.nul_bytes += 1;
        }
        let mut event = source.decoder.decode(&prepared.text);
        if event.parse_error {
            stats.parse_errors += 1;
        }
        event.logsource.override_with(&source.logsource);
        // A configured logsource can make an event Windows, or name its service.
        crate::decode::windows::complete(&mut event);
        let ts = event.ts.or(source.last_ts).unwrap_or(received);
        let ts_guessed = event.ts.is_none() && (source.last_ts.is_none() || source.last_ts_guessed);
        source.last_ts = Some(ts);
        source.last_ts_guessed = ts_guessed;
        self.rules
            .matches_into(&event, &source.meta, &mut self.scratch, &mut self.found);
        if self.found.is_empty() {
            return None;
        }
        source.stats.matches += self.found.len() as u64;
        let host = event.get("host").unwrap_or(&source.host);
        let rules = &self.rules;
        // Drained: each match's captures move into its hit rather than being copied.
        let hits = self
            .found
            .drain(..)
            .map(|found| {
                let origin = Origin {
                    host,
                    system: &source.meta.system,
                    level: source.meta.level,
                    unit: "",
                };
                let obs = Observation::of(rules, &found, &event, &source.meta, ts, origin);
                let entity_fields = ["src_ip", "c-ip", "user"]
                    .into_iter()
                    .filter_map(|field| {
                        RuleSet::field_value(&event, &source.meta, &found.captured, field)
                            .filter(|value| !value.is_empty())
                            .map(|value| (field, value.to_string()))
                    })
                    .collect();
                Hit {
                    rule: found.rule,
                    group: obs.group,
                    distinct: obs.distinct,
                    evidence: obs.evidence,
                    host: host.to_string(),
                    system: source.meta.system.clone(),
                    level: source.meta.level,
                    captured: if self.keep_captured {
                        found.captured
                    } else {
                        Vec::new()
                    },
                    entity_fields,
                }
            })
            .collect();
        Some(Matched {
            ts,
            ts_guessed,
            line_no: source.stats.lines,
            hits,
        })
    }
}

impl Engine {
    pub fn new(rules: Arc<RuleSet>, limits: Limits, unit: &str, max_line_bytes: usize) -> Engine {
        Engine {
            correlator: Correlator::new(&rules, limits),
            cases: CaseBook::new(crate::cases::DEFAULT_WINDOW),
            matcher: Matcher::new(rules.clone(), max_line_bytes),
            rules,
            limits,
            unit: unit.to_string(),
            max_line_bytes,
        }
    }

    /// Gathers incidents into cases over `window` of event time (`[cases] window`).
    pub fn with_case_window(mut self, window: std::time::Duration) -> Engine {
        self.cases = CaseBook::new(window);
        self
    }

    /// Keeps every case of the run for `into_cases`, also those whose window closed. `scan` takes
    /// the cases once at the end this way: recording each case's state from `Sink::case` would
    /// copy the whole case on every incident update.
    pub fn keeping_cases(mut self) -> Engine {
        self.cases = self.cases.keeping_left();
        self
    }

    /// Keeps the cases that leave the case book until the next `touched_cases`, for a caller that
    /// records only which cases its changes touched (`TouchedCases`, the daemon's batches).
    pub fn keeping_touched_cases(mut self) -> Engine {
        self.cases = self.cases.keeping_departed();
        self
    }

    /// The cases `touched` names, each as its last change left it (with what it absorbed during
    /// the run of changes), in the order first touched; then forgets the cases that left the book
    /// meanwhile. One copy per case per batch, not one per change.
    pub fn touched_cases(&mut self, touched: TouchedCases) -> Vec<Case> {
        let cases = touched
            .ids
            .iter()
            .zip(touched.merged)
            .filter_map(|(id, merged)| {
                let mut case = self.cases.case_or_departed(id)?.clone();
                case.merged_from = merged;
                Some(case)
            })
            .collect();
        self.cases.take_departed();
        cases
    }

    /// Every case of the run as its last change left it (see `keeping_cases`), in no particular
    /// order; cases absorbed by a merge are not among them.
    pub fn into_cases(self) -> Vec<Case> {
        self.cases.into_cases()
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// A source whose RFC 3164 years are inferred against `reference` (a file's mtime, the clock).
    pub fn source(&mut self, spec: SourceSpec, reference: Timestamp) -> Source {
        let clock = self.clock(&spec.clock);
        let mut source = Source::unclocked(spec, reference);
        source.clock = clock;
        source
    }

    /// The clock named `name` (a source's `SourceSpec::clock`), numbered on first use: for lines
    /// matched on another thread with `Source::unclocked` and correlated here.
    pub fn clock(&mut self, name: &str) -> ClockId {
        self.correlator.clock(name)
    }

    /// Feeds one line (without its `\n`; `full_len` is its length before any cut). A line without a
    /// time takes the time of the source's previous line, else `received`.
    pub fn feed(
        &mut self,
        source: &mut Source,
        line: &[u8],
        full_len: usize,
        received: Timestamp,
        sink: &mut impl Sink,
    ) {
        let matched = self.matcher.match_line(source, line, full_len, received);
        if let Some(matched) = matched {
            self.correlate(source.clock, matched, sink);
        }
    }

    /// The name of a source's clock (`Source::clock`).
    pub fn clock_name(&self, clock: ClockId) -> &str {
        self.correlator.clock_name(clock)
    }

    /// A matcher that decodes and matches apart from this engine (another thread), with the same
    /// rules and caps; its results go through `correlate` in the order the lines are to count.
    pub fn matcher(&self) -> Matcher {
        Matcher::new(self.rules.clone(), self.max_line_bytes)
    }

    /// Correlates what one line of the source on `clock` matched.
    pub fn correlate(&mut self, clock: ClockId, matched: Matched, sink: &mut impl Sink) {
        for hit in matched.hits {
            let origin = Origin {
                host: &hit.host,
                system: &hit.system,
                level: hit.level,
                unit: &self.unit,
            };
            let Hit {
                rule,
                group,
                distinct,
                evidence,
                entity_fields,
                ..
            } = hit;
            let observation = Observation {
                rule,
                group,
                distinct,
                ts: matched.ts,
                evidence,
                origin,
                clock,
            };
            let Some(mut change) = self.correlator.observe(&self.rules, observation) else {
                continue;
            };
            let clock_name = self.correlator.clock_name(clock);
            let case = match &mut change {
                Change::Opened(incident) => {
                    let entity = Entity::of(incident, |field| {
                        entity_fields
                            .iter()
                            .find(|(name, _)| *name == field)
                            .map(|(_, value)| value.as_str())
                    });
                    let follow_up = self.rules.rule(rule).requires.is_some();
                    Some(self.cases.opened(incident, entity, follow_up, clock_name))
                }
                Change::Updated {
                    id,
                    count,
                    last_seen,
                    ..
                } => self.cases.updated(id, *count, *last_seen, clock_name),
            };
            sink.change(change);
            if let Some(case) = case {
                sink.case(case);
            }
        }
    }

    /// Replaces the rules; rules whose correlation is unchanged keep their state. Returns how many.
    pub fn reload(&mut self, rules: Arc<RuleSet>) -> usize {
        let fresh = Correlator::new(&rules, self.limits);
        let old = std::mem::replace(&mut self.correlator, fresh);
        self.matcher = Matcher::new(rules.clone(), self.max_line_bytes);
        self.rules = rules;
        self.correlator.carry_over(old)
    }

    /// An operator closed the incident or the case (or it was purged): an incident's group starts
    /// over, a case's entity starts a new case with its next incident.
    pub fn forget(&mut self, id: &str) {
        self.correlator.forget(id);
        self.cases.forget(id);
    }

    /// Incidents the correlator still folds repeats into.
    pub fn open_incidents(&self) -> Vec<String> {
        self.correlator.open_incidents()
    }

    /// Cases new incidents can still join.
    pub fn open_cases(&self) -> Vec<String> {
        self.cases.open_cases()
    }

    /// The correlation and case state changed since the last call, to save with the batch.
    pub fn take_state_changes(&mut self) -> StateDelta {
        let mut delta = self.correlator.take_state_changes();
        delta.extend(self.cases.take_state_changes());
        delta
    }

    /// Takes back the correlation and case state saved with the last durable batch.
    pub fn restore_state(
        &mut self,
        saved: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> RestoreReport {
        let (cases, correlation): (Vec<_>, Vec<_>) = saved
            .into_iter()
            .partition(|(key, _)| crate::cases::is_state_key(key));
        let mut report = self.correlator.restore_state(correlation);
        let (restored, unreadable) = self.cases.restore_state(cases);
        report.cases = restored;
        report.unreadable += unreadable;
        report
    }

    pub fn correlation_stats(&self) -> Stats {
        self.correlator.stats()
    }

    pub fn tracked_groups(&self) -> usize {
        self.correlator.tracked_groups()
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
  message: 'fail ip=(?P<src_ip>\S+)'
threshold: {count: 3, within: 60s, group_by: [src_ip]}
suppress: 5m
"#;

    fn engine() -> Engine {
        let rules = RuleSet::build(&[RuleSource {
            name: "t.yml".into(),
            text: RULES.into(),
        }])
        .unwrap();
        Engine::new(Arc::new(rules), Limits::default(), "unit", 1024)
    }

    fn spec(name: &str) -> SourceSpec {
        SourceSpec {
            name: name.into(),
            clock: name.into(),
            format: Format::Syslog,
            logsource: Logsource::default(),
            zone: TimeZone::UTC,
            system: "dvc".into(),
            level: 3,
            host: "fallback".into(),
        }
    }

    #[test]
    fn lines_become_changes_and_bad_bytes_are_counted_not_lost() {
        let mut engine = engine();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut source = engine.source(spec("a.log"), now);
        let mut recorded = Recorded::default();
        let lines: [&[u8]; 4] = [
            b"2027-01-15T08:00:00Z web sshd[1]: fail ip=1.1.1.1",
            b"2027-01-15T08:00:01Z web sshd[1]: fail ip=1.1.1.1 \xff",
            b"2027-01-15T08:00:02Z web sshd[1]: fail ip=1.1.1.1 \0",
            b"no time here: fail ip=1.1.1.1",
        ];
        for line in lines {
            engine.feed(&mut source, line, line.len(), now, &mut recorded);
        }
        let changes = &recorded.changes;
        assert_eq!(source.stats.lines, 4);
        assert_eq!(source.stats.invalid_utf8, 1);
        assert_eq!(source.stats.nul_bytes, 1);
        let Change::Opened(incident) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(incident.count, 3);
        assert_eq!(incident.host, "web");
        assert_eq!(incident.system, "dvc");
        assert_eq!(incident.unit, "unit");
        assert!(
            matches!(&changes[1], Change::Updated { count: 4, last_seen, .. }
                if last_seen.as_second() == incident.last_seen.as_second()),
            "a line without a time takes the previous line's: {changes:?}"
        );
    }

    /// Records the cases both ways: a copy at every change (`CaseStates`) and ids only.
    #[derive(Default)]
    struct BothWays {
        copies: CaseStates,
        touched: TouchedCases,
        changes: usize,
    }

    impl Sink for BothWays {
        fn change(&mut self, _change: Change) {
            self.changes += 1;
        }
        fn case(&mut self, case: &Case) {
            self.copies.record(case);
            self.touched.record(case);
        }
    }

    #[test]
    fn the_cases_a_batch_touched_taken_at_its_end_are_those_copied_at_each_change() {
        let mut engine = engine().keeping_touched_cases();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut source = engine.source(spec("a.log"), now);
        for batch in 0..3 {
            let mut sink = BothWays::default();
            for s in 0..40 {
                // Four addresses, each its own incident and case, some quiet in some batches.
                let ip = (s + batch) % 4 + 1;
                if batch == 1 && ip == 4 {
                    continue;
                }
                let line =
                    format!("2027-01-15T08:{batch:02}:{s:02}Z web sshd[1]: fail ip=10.0.0.{ip}");
                engine.feed(&mut source, line.as_bytes(), line.len(), now, &mut sink);
            }
            assert!(sink.changes > 0);
            let copied = sink.copies.into_cases();
            assert_eq!(copied.len(), if batch == 1 { 3 } else { 4 });
            assert_eq!(engine.touched_cases(sink.touched), copied, "batch {batch}");
        }
    }

    #[test]
    fn applying_the_changes_gives_the_incident() {
        let mut engine = engine();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut source = engine.source(spec("a.log"), now);
        let mut recorded = Recorded::default();
        for s in 0..25 {
            let line = format!("2027-01-15T08:00:{s:02}Z web sshd[1]: fail ip=1.1.1.1");
            engine.feed(&mut source, line.as_bytes(), line.len(), now, &mut recorded);
        }
        let changes = &recorded.changes;
        let Some(Change::Opened(first)) = changes.first() else {
            panic!("{changes:?}")
        };
        let mut incident = (**first).clone();
        for change in &changes[1..] {
            incident.apply(change);
        }
        assert_eq!(incident.count, 25);
        assert_eq!(incident.evidence.len(), crate::correlate::EVIDENCE_LINES);
        assert_eq!(
            incident.evidence_omitted,
            25 - crate::correlate::EVIDENCE_LINES as u64
        );
        assert_eq!(incident.revision, 23);
    }
}
