//! Rule files to a compiled `RuleSet`, and matching events against it. Pure: rule texts come in as
//! strings (the edges read files), events come in decoded.
//!
//! Matching cost does not grow with the number of rules: one Aho-Corasick pass over the line finds
//! the rules whose required literals occur, and only those rules' conditions run.

pub mod condition;
pub mod literals;
mod parse;
pub mod sigma;
pub mod testing;
pub mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aho_corasick::automaton::Automaton;
use aho_corasick::{Anchored, dfa, nfa};

use crate::model::{Event, Format, Logsource, Severity, SourceMeta};
use condition::{Condition, Evaluation};

/// Which events a rule sees. A named attribute must agree with the event's; `None` accepts anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsourceSelector {
    pub product: Option<Vec<String>>,
    pub service: Option<Vec<String>>,
    pub category: Option<Vec<String>>,
}

impl LogsourceSelector {
    pub fn accepts(&self, logsource: &Logsource) -> bool {
        fn agrees(
            want: &Option<Vec<String>>,
            have: &Option<std::borrow::Cow<'static, str>>,
        ) -> bool {
            match (want, have) {
                (None, _) => true,
                (Some(values), Some(have)) => values.iter().any(|v| v.eq_ignore_ascii_case(have)),
                (Some(_), None) => false,
            }
        }
        agrees(&self.product, &logsource.product)
            && agrees(&self.service, &logsource.service)
            && agrees(&self.category, &logsource.category)
    }

    pub fn is_empty(&self) -> bool {
        self.product.is_none() && self.service.is_none() && self.category.is_none()
    }
}

/// When matches become an incident: `count` matches of one group within `within`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    pub count: u32,
    pub within: Duration,
    pub group_by: Vec<String>,
    /// Count different values of this field instead of matches.
    pub distinct: Option<String>,
    /// With `distinct`: its values are steps `0..count` that must occur in that order (Sigma's
    /// `temporal_ordered`).
    pub ordered: bool,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            count: 1,
            within: Duration::ZERO,
            group_by: Vec::new(),
            distinct: None,
            ordered: false,
        }
    }
}

/// The rule fires only for groups another rule had an incident for recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requires {
    pub rule: String,
    pub within: Duration,
    pub line: usize,
    /// Index of `rule` in the rule set, resolved when the set is built.
    pub rule_index: usize,
}

#[derive(Debug, Clone)]
pub enum TestCase {
    Line {
        line: String,
        fields: Vec<(String, String)>,
        should_match: bool,
    },
    Lines {
        lines: Vec<String>,
        incidents: u64,
        count: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct RuleTest {
    /// Line of the test in the rule file.
    pub line: usize,
    pub format: Format,
    pub case: TestCase,
}

/// What language a rule was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleKind {
    #[default]
    Socwatch,
    Sigma,
    SigmaCorrelation,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Socwatch => "socwatch",
            RuleKind::Sigma => "sigma",
            RuleKind::SigmaCorrelation => "sigma-correlation",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub id: String,
    pub title: String,
    pub title_vi: Option<String>,
    pub description: String,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub author: Option<String>,
    pub logsource: LogsourceSelector,
    pub condition: Condition,
    pub threshold: Threshold,
    pub suppress: Duration,
    pub requires: Option<Requires>,
    pub tests: Vec<RuleTest>,
    /// The file it came from, as given to the loader.
    pub file: String,
    pub line: usize,
    /// Why nothing feeds the rule's logsource (it is loaded all the same).
    pub idle: Option<String>,
    /// Whether its matches open incidents of their own. A Sigma rule that a correlation refers
    /// to only feeds the correlation, unless the correlation says `generate: true`.
    pub emit: bool,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            id: String::new(),
            title: String::new(),
            title_vi: None,
            description: String::new(),
            severity: Severity::Medium,
            tags: Vec::new(),
            author: None,
            logsource: LogsourceSelector::default(),
            condition: Condition::All(Vec::new()),
            threshold: Threshold::default(),
            suppress: parse::DEFAULT_SUPPRESS,
            requires: None,
            tests: Vec::new(),
            file: String::new(),
            line: 0,
            kind: RuleKind::Socwatch,
            idle: None,
            emit: true,
        }
    }
}

impl Rule {
    /// The rule's title in the operator's language.
    pub fn title_in(&self, lang: crate::model::Lang) -> &str {
        match (lang, &self.title_vi) {
            (crate::model::Lang::Vi, Some(vi)) => vi,
            _ => &self.title,
        }
    }
}

/// One problem in a rule file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A rule document that was read but is not run, and why (a Sigma feature socwatch lacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub id: String,
    pub reason: String,
}

/// How a rule document fared at load time (`rules check` prints one line per document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStatus {
    Loaded,
    /// Loaded, but no decoder feeds its logsource.
    Idle(String),
    /// Read but not run.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadEntry {
    pub file: String,
    pub line: usize,
    pub id: String,
    pub kind: RuleKind,
    pub status: LoadStatus,
}

/// A Sigma rule a correlation counts: its matches also count toward rule `correlation`.
#[derive(Debug, Clone, Default)]
struct Feed {
    correlation: u32,
    /// Position of the referenced rule in the correlation's list (ordered correlations' step).
    step: String,
    /// (alias, field of this rule's events) for the correlation's `group-by`.
    aliases: Vec<(String, String)>,
}

/// A rule file's name and text, as the loader got them.
#[derive(Debug, Clone)]
pub struct RuleSource {
    pub name: String,
    pub text: String,
}

/// A rule that matched one event, with the fields its regexes captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule: usize,
    pub captured: Vec<(String, String)>,
}

/// Routes with more literals than this search with a contiguous NFA instead of a DFA.
const DFA_MAX_PATTERNS: usize = 4_000;

/// A route's literal automaton. Driven a byte at a time by `each_literal` rather than through
/// `AhoCorasick`'s overlapping iterator: the prefilter only needs which literals occur, and the
/// plain loop over the automaton costs a fraction of the iterator's per-byte work.
#[derive(Debug, Clone)]
enum Literals {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

impl Literals {
    fn build(patterns: &[String]) -> Literals {
        // A DFA costs memory (a few MB for the shipped rules) but is the fastest way to find
        // every overlapping occurrence, which the prefilter needs to stay sound. Past a few
        // thousand literals its memory grows to hundreds of MB: SigmaHQ's Windows rules (10,529
        // literals in the process creation route) took 312 MB with DFAs only, 121 MB with
        // contiguous NFAs for their two largest routes.
        if patterns.len() <= DFA_MAX_PATTERNS {
            Literals::Dfa(
                dfa::DFA::builder()
                    .ascii_case_insensitive(true)
                    .prefilter(false)
                    .build(patterns)
                    .expect("literal patterns always build"),
            )
        } else {
            Literals::Nfa(
                nfa::contiguous::NFA::builder()
                    .ascii_case_insensitive(true)
                    .prefilter(false)
                    .build(patterns)
                    .expect("literal patterns always build"),
            )
        }
    }

    /// Calls `found` with every literal that occurs in `text` (once or more per occurrence).
    fn each_literal(&self, text: &str, found: impl FnMut(usize)) {
        match self {
            Literals::Dfa(dfa) => each_literal(dfa, text, found),
            Literals::Nfa(nfa) => each_literal(nfa, text, found),
        }
    }
}

/// The overlapping search reduced to what the prefilter needs. With the standard match kind, a
/// state's matches are all the patterns that end where it is reached (those of its failure
/// chain included), so visiting every state the text leads through reports every occurrence of
/// every literal, as the overlapping iterator does.
fn each_literal(automaton: &impl Automaton, text: &str, mut found: impl FnMut(usize)) {
    let Ok(start) = automaton.start_state(Anchored::No) else {
        return;
    };
    let mut report = |sid| {
        for index in 0..automaton.match_len(sid) {
            found(automaton.match_pattern(sid, index).as_usize());
        }
    };
    if automaton.is_match(start) {
        report(start);
    }
    let mut sid = start;
    for &byte in text.as_bytes() {
        sid = automaton.next_state(Anchored::No, sid, byte);
        if automaton.is_special(sid) {
            if automaton.is_dead(sid) {
                return;
            }
            if automaton.is_match(sid) {
                report(sid);
            }
        }
    }
}

/// The literal prefilter of the rules that share one logsource selector.
#[derive(Debug, Clone, Default)]
struct Route {
    selector: LogsourceSelector,
    /// This route's first pattern in the set-wide numbering that `Hits` and gates use.
    base: u32,
    prefilter: Option<Literals>,
    /// The literals (lower-cased), and for each the rules that require it.
    patterns: Vec<String>,
    pattern_rules: Vec<Vec<u32>>,
    /// Rules with no usable literal: checked on every line of their logsource.
    unfiltered: Vec<u32>,
}

/// The compiled rules and the prefilter over them.
///
/// Rules are grouped by logsource selector into routes, each with its own Aho-Corasick automaton:
/// an event is searched only for the literals of the rules that can see it, so web rules' literals
/// cost nothing on syslog lines and the other way round.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    skipped: Vec<Skipped>,
    routes: Vec<Route>,
    /// The routes an event of each product named by some route can see (those of that product and
    /// those of none), and the routes of no product: thousands of Windows rules must cost a Linux
    /// line nothing, not one selector check per Windows route.
    by_product: Vec<(String, Vec<u32>)>,
    productless: Vec<u32>,
    pattern_count: usize,
    regex_slots: usize,
    /// Per rule, the correlations its matches feed (empty for most).
    feeds: Vec<Vec<Feed>>,
    correlated: bool,
    /// Names this set's routes for a `MatchScratch`'s memo of them (0: not built).
    routes_id: u64,
}

impl Route {
    fn pattern_id(&mut self, literal: String) -> u32 {
        match self.patterns.iter().position(|p| *p == literal) {
            Some(id) => id as u32,
            None => {
                self.patterns.push(literal);
                self.pattern_rules.push(Vec::new());
                (self.patterns.len() - 1) as u32
            }
        }
    }
}

/// Reusable buffers for matching, so the hot path does not allocate per line.
#[derive(Debug, Default)]
pub struct MatchScratch {
    candidates: Vec<u32>,
    hits: condition::Hits,
    memo: condition::Memo,
    seen_routes: SeenRoutes,
}

/// The routes the last line's logsource could see, by its (product, service, category) and the
/// rule set's routes: a source's lines almost always share one logsource, and checking every
/// route's selector per line grew with the routes (about 3,000 instructions a line with the 25
/// vendor routes of the 2,000 generated rules).
#[derive(Debug, Default)]
struct SeenRoutes {
    routes_id: u64,
    logsource: Logsource,
    accepted: Vec<u32>,
}

impl RuleSet {
    /// Compiles rule texts. Returns every problem of every file, or the set.
    pub fn build(sources: &[RuleSource]) -> Result<RuleSet, Vec<Problem>> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut skipped = Vec::new();
        let mut problems = Vec::new();
        let mut first_seen: HashMap<String, (String, usize)> = HashMap::new();
        let mut sigma_names: HashMap<String, usize> = HashMap::new();
        let mut correlations = Vec::new();
        for source in sources {
            let docs = match yaml::parse_documents(&source.text) {
                Ok(docs) => docs,
                Err((line, message)) => {
                    problems.push(Problem {
                        file: source.name.clone(),
                        line,
                        message: format!("YAML syntax: {message}"),
                    });
                    continue;
                }
            };
            for doc in docs {
                if matches!(doc.value, yaml::Value::Null) {
                    continue;
                }
                if sigma::is_sigma(&doc) {
                    let fallback = format!("{}:{}", source.name, doc.line);
                    let mut unsupported = |id: String, reason: String| {
                        skipped.push(Skipped {
                            file: source.name.clone(),
                            line: doc.line,
                            id,
                            reason,
                        })
                    };
                    match sigma::compile(&doc, &fallback) {
                        sigma::Compiled::Unsupported { id, reason } => unsupported(id, reason),
                        sigma::Compiled::Detection { mut rule, name } => {
                            if let Some((file, line)) = first_seen.get(&rule.id) {
                                unsupported(
                                    rule.id.clone(),
                                    format!("duplicate rule id (first defined at {file}:{line})"),
                                );
                                continue;
                            }
                            rule.file = source.name.clone();
                            first_seen.insert(rule.id.clone(), (rule.file.clone(), rule.line));
                            if let Some(name) = name {
                                sigma_names.insert(name, rules.len());
                            }
                            rules.push(rule);
                        }
                        sigma::Compiled::Correlation {
                            mut rule,
                            name,
                            correlation,
                        } => {
                            rule.file = source.name.clone();
                            correlations.push((rule, name, correlation));
                        }
                    }
                    continue;
                }
                let mut found = parse::Problems::default();
                let parsed = parse::parse_rule(&doc, &mut found);
                problems.extend(found.0.into_iter().map(|(line, message)| Problem {
                    file: source.name.clone(),
                    line,
                    message,
                }));
                let Some(mut rule) = parsed else { continue };
                rule.file = source.name.clone();
                if let Some((file, line)) = first_seen.get(&rule.id) {
                    problems.push(Problem {
                        file: source.name.clone(),
                        line: rule.line,
                        message: format!(
                            "duplicate rule id '{}' (first defined at {file}:{line})",
                            rule.id
                        ),
                    });
                    continue;
                }
                first_seen.insert(rule.id.clone(), (rule.file.clone(), rule.line));
                rules.push(rule);
            }
        }
        let mut feeds = vec![Vec::new(); rules.len()];
        resolve_correlations(
            &mut rules,
            &mut feeds,
            &mut skipped,
            &sigma_names,
            correlations,
        );
        feeds.resize(rules.len(), Vec::new());
        let index: HashMap<String, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for rule in &mut rules {
            if let Some(req) = &mut rule.requires {
                match index.get(&req.rule) {
                    Some(&i) => req.rule_index = i,
                    None => problems.push(Problem {
                        file: rule.file.clone(),
                        line: req.line,
                        message: format!("requires unknown rule '{}'", req.rule),
                    }),
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut set = RuleSet {
            rules,
            skipped,
            correlated: feeds.iter().any(|f| !f.is_empty()),
            feeds,
            ..RuleSet::default()
        };
        set.build_prefilter();
        Ok(set)
    }

    fn build_prefilter(&mut self) {
        let mut routes: Vec<Route> = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.kind == RuleKind::SigmaCorrelation {
                // Fed by the rules it correlates, never by the prefilter.
                continue;
            }
            let route = match routes.iter_mut().position(|r| r.selector == rule.logsource) {
                Some(at) => &mut routes[at],
                None => {
                    routes.push(Route {
                        selector: rule.logsource.clone(),
                        ..Route::default()
                    });
                    routes.last_mut().expect("just pushed")
                }
            };
            match rule.condition.required_literals() {
                Some(lits) => {
                    for lit in lits {
                        let id = route.pattern_id(lit);
                        route.pattern_rules[id as usize].push(i as u32);
                    }
                }
                None => route.unfiltered.push(i as u32),
            }
            // Branches of `any` get their own literals, so a rule with many alternatives runs
            // only the branches whose text occurs in the line.
            let condition = std::mem::replace(&mut rule.condition, Condition::All(Vec::new()));
            rule.condition = condition.gate_branches(&mut |lits| {
                lits.into_iter().map(|lit| route.pattern_id(lit)).collect()
            });
        }
        // Gates were numbered per route; shift them into one numbering across routes.
        let mut base = 0u32;
        for route in &mut routes {
            route.base = base;
            base += route.patterns.len() as u32;
        }
        for rule in &mut self.rules {
            let route_base = routes
                .iter()
                .find(|r| r.selector == rule.logsource)
                .map_or(0, |r| r.base);
            rule.condition.shift_gates(route_base);
        }
        for route in &mut routes {
            route.prefilter =
                (!route.patterns.is_empty()).then(|| Literals::build(&route.patterns));
        }
        self.pattern_count = base as usize;
        let mut products: Vec<String> = routes
            .iter()
            .flat_map(|r| r.selector.product.iter().flatten())
            .map(|p| p.to_ascii_lowercase())
            .collect();
        products.sort();
        products.dedup();
        let sees = |product: Option<&str>| -> Vec<u32> {
            (0..routes.len() as u32)
                .filter(|&i| match (&routes[i as usize].selector.product, product) {
                    (None, _) => true,
                    (Some(want), Some(have)) => want.iter().any(|w| w.eq_ignore_ascii_case(have)),
                    (Some(_), None) => false,
                })
                .collect()
        };
        self.by_product = products
            .iter()
            .map(|p| (p.clone(), sees(Some(p))))
            .collect();
        self.productless = sees(None);
        self.routes = routes;
        static NEXT_ROUTES_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.routes_id = NEXT_ROUTES_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Rules often share a regex on the same field (alternatives of one attack seen by several
        // rules); each distinct one gets a slot so a line runs it once.
        let mut slots = HashMap::new();
        for rule in &mut self.rules {
            rule.condition.assign_regex_slots(&mut slots);
        }
        self.regex_slots = slots.len();
    }

    /// Literals shorter than `min_len` and the rules that rely on them: they match most lines,
    /// so those rules' conditions run on most lines of their logsource (`rules check` warns).
    pub fn weak_literals(&self, min_len: usize) -> Vec<(String, Vec<&str>)> {
        let mut weak = Vec::new();
        for route in &self.routes {
            for (lit, rules) in route.patterns.iter().zip(&route.pattern_rules) {
                if lit.chars().count() < min_len {
                    let ids = rules
                        .iter()
                        .map(|&r| self.rules[r as usize].id.as_str())
                        .collect();
                    weak.push((lit.clone(), ids));
                }
            }
        }
        weak
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Rules that no literal can prefilter (they cost a condition check on every line they see).
    pub fn unfiltered(&self) -> impl Iterator<Item = &Rule> {
        self.routes
            .iter()
            .flat_map(|route| route.unfiltered.iter().map(|&i| &self.rules[i as usize]))
    }

    /// The rules built into the binary (the `rules/` folder of the source tree).
    pub fn shipped() -> RuleSet {
        RuleSet::build(&shipped_sources()).expect("shipped rules are checked by the test suite")
    }

    /// All rules that match the event, in rule order.
    pub fn matches(&self, event: &Event<'_>, meta: &SourceMeta) -> Vec<RuleMatch> {
        let mut out = Vec::new();
        self.matches_into(event, meta, &mut MatchScratch::default(), &mut out);
        out
    }

    /// As `matches`, reusing buffers. `out` is cleared first.
    pub fn matches_into(
        &self,
        event: &Event<'_>,
        meta: &SourceMeta,
        scratch: &mut MatchScratch,
        out: &mut Vec<RuleMatch>,
    ) {
        out.clear();
        let candidates = &mut scratch.candidates;
        candidates.clear();
        let hits = &mut scratch.hits;
        hits.reset(self.pattern_count);
        scratch.memo.next_line(self.regex_slots);
        let seen = &mut scratch.seen_routes;
        if seen.routes_id != self.routes_id || seen.logsource != event.logsource {
            let routes = match event.logsource.product.as_deref() {
                Some(product) => self
                    .by_product
                    .iter()
                    .find(|(p, _)| p.eq_ignore_ascii_case(product))
                    .map_or(&self.productless, |(_, routes)| routes),
                None => &self.productless,
            };
            seen.accepted.clear();
            seen.accepted.extend(
                routes
                    .iter()
                    .copied()
                    .filter(|&i| self.routes[i as usize].selector.accepts(&event.logsource)),
            );
            seen.routes_id = self.routes_id;
            seen.logsource.clone_from(&event.logsource);
        }
        for route in seen.accepted.iter().map(|&i| &self.routes[i as usize]) {
            candidates.extend_from_slice(&route.unfiltered);
            if let Some(literals) = &route.prefilter {
                for text in
                    std::iter::once(event.raw).chain(event.derived.iter().map(|d| d.as_ref()))
                {
                    literals.each_literal(text, |id| {
                        hits.set(route.base as usize + id);
                        candidates.extend_from_slice(&route.pattern_rules[id]);
                    });
                }
            }
        }
        if candidates.is_empty() {
            return;
        }
        candidates.sort_unstable();
        candidates.dedup();
        for &index in candidates.iter() {
            if let Some(captured) =
                self.eval_gated(index as usize, event, meta, Some((hits, &mut scratch.memo)))
            {
                out.push(RuleMatch {
                    rule: index as usize,
                    captured,
                });
            }
        }
        if self.correlated && !out.is_empty() {
            self.feed_correlations(event, meta, out);
        }
    }

    /// Adds a match of every correlation that a matched rule feeds (once per correlation and
    /// event), then drops the matches of rules that only feed correlations.
    fn feed_correlations(&self, event: &Event<'_>, meta: &SourceMeta, out: &mut Vec<RuleMatch>) {
        let direct = out.len();
        for i in 0..direct {
            for feed in &self.feeds[out[i].rule] {
                let correlation = feed.correlation as usize;
                if out[direct..].iter().any(|m| m.rule == correlation) {
                    continue;
                }
                let base = &out[i].captured;
                let mut captured = base.clone();
                for (alias, field) in &feed.aliases {
                    if let Some(value) = condition::lookup(event, meta, base, field) {
                        captured.push((alias.clone(), value.to_string()));
                    }
                }
                captured.push((sigma::STEP_FIELD.to_string(), feed.step.clone()));
                out.push(RuleMatch {
                    rule: correlation,
                    captured,
                });
            }
        }
        out.retain(|m| self.rules[m.rule].emit);
    }

    /// Every rule document read, with how it fared, in file and line order.
    pub fn load_report(&self) -> Vec<LoadEntry> {
        let mut report: Vec<LoadEntry> = self
            .rules
            .iter()
            .map(|rule| LoadEntry {
                file: rule.file.clone(),
                line: rule.line,
                id: rule.id.clone(),
                kind: rule.kind,
                status: match &rule.idle {
                    Some(reason) => LoadStatus::Idle(reason.clone()),
                    None => LoadStatus::Loaded,
                },
            })
            .chain(self.skipped.iter().map(|s| LoadEntry {
                file: s.file.clone(),
                line: s.line,
                id: s.id.clone(),
                kind: RuleKind::Sigma,
                status: LoadStatus::Unsupported(s.reason.clone()),
            }))
            .collect();
        report.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        report
    }

    /// One rule's conditions against an event, without the prefilter. `Some(captures)` if it holds.
    pub fn eval_rule(
        &self,
        index: usize,
        event: &Event<'_>,
        meta: &SourceMeta,
    ) -> Option<Vec<(String, String)>> {
        self.eval_gated(index, event, meta, None)
    }

    fn eval_gated(
        &self,
        index: usize,
        event: &Event<'_>,
        meta: &SourceMeta,
        line_state: Option<(&condition::Hits, &mut condition::Memo)>,
    ) -> Option<Vec<(String, String)>> {
        let rule = &self.rules[index];
        if !rule.logsource.accepts(&event.logsource) {
            return None;
        }
        let mut ev = Evaluation::new(event, meta);
        if let Some((hits, memo)) = line_state {
            ev.hits = Some(hits);
            ev.memo = Some(memo);
        }
        rule.condition.eval(&mut ev).then_some(ev.captured)
    }

    /// A field as the rule sees it after matching: captured first, then decoded, then the source's.
    pub fn field_value<'x>(
        event: &'x Event<'_>,
        meta: &'x SourceMeta,
        captured: &'x [(String, String)],
        name: &str,
    ) -> Option<&'x str> {
        condition::lookup(event, meta, captured, name)
    }
}

/// Turns Sigma correlations into rules fed by the Sigma rules they name (by id or `name`).
/// A correlation that cannot run is reported as unsupported, never as a load error.
fn resolve_correlations(
    rules: &mut Vec<Rule>,
    feeds: &mut [Vec<Feed>],
    skipped: &mut Vec<Skipped>,
    names: &HashMap<String, usize>,
    correlations: Vec<(Rule, Option<String>, sigma::Correlation)>,
) {
    let ids: HashMap<String, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    let correlation_names: Vec<&str> = correlations
        .iter()
        .flat_map(|(rule, name, _)| std::iter::once(rule.id.as_str()).chain(name.as_deref()))
        .collect();
    let mut generate = vec![false; rules.len()];
    let mut referenced = vec![false; rules.len()];
    let mut accepted = Vec::new();
    for (mut rule, _name, correlation) in correlations.iter().cloned() {
        let mut bases = Vec::new();
        let mut problem = None;
        if ids.contains_key(&rule.id)
            || accepted
                .iter()
                .any(|(r, _, _): &(Rule, _, _)| r.id == rule.id)
        {
            problem = Some("duplicate rule id".to_string());
        }
        for reference in &correlation.rules {
            match ids.get(reference).or_else(|| names.get(reference)) {
                Some(&i) if rules[i].kind == RuleKind::Sigma => bases.push(i),
                Some(_) => {
                    problem = Some(format!(
                        "refers to '{reference}', which is not a Sigma detection rule"
                    ))
                }
                None if skipped.iter().any(|s| s.id == *reference) => {
                    problem = Some(format!("refers to '{reference}', which is unsupported"))
                }
                None if correlation_names.contains(&reference.as_str()) => {
                    problem = Some(format!(
                        "refers to the correlation '{reference}': chained correlations are not supported"
                    ))
                }
                None => problem = Some(format!("refers to unknown rule '{reference}'")),
            }
        }
        if let Some(reason) = problem {
            skipped.push(Skipped {
                file: rule.file.clone(),
                line: rule.line,
                id: rule.id.clone(),
                reason,
            });
            continue;
        }
        if bases.iter().all(|&b| rules[b].idle.is_some()) {
            rule.idle = Some("every rule it correlates is idle".into());
        }
        accepted.push((rule, bases, correlation));
    }
    for (rule, bases, correlation) in accepted {
        let index = rules.len() as u32;
        for (step, &base) in bases.iter().enumerate() {
            referenced[base] = true;
            generate[base] |= correlation.generate;
            let reference = &correlation.rules[step];
            let base_name = names
                .iter()
                .find(|(_, i)| **i == base)
                .map(|(n, _)| n.as_str());
            let aliases = correlation
                .aliases
                .iter()
                .filter_map(|(alias, per_rule)| {
                    per_rule
                        .iter()
                        .find(|(r, _)| {
                            r == reference || Some(r.as_str()) == base_name || *r == rules[base].id
                        })
                        .map(|(_, field)| (alias.clone(), field.clone()))
                })
                .collect();
            feeds[base].push(Feed {
                correlation: index,
                step: step.to_string(),
                aliases,
            });
        }
        rules.push(rule);
    }
    for (i, rule) in rules.iter_mut().enumerate().take(referenced.len()) {
        if referenced[i] && !generate[i] {
            rule.emit = false;
        }
    }
}

/// The shipped rule files, embedded at build time.
pub fn shipped_sources() -> Vec<RuleSource> {
    include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"))
        .iter()
        .map(|(name, text)| RuleSource {
            name: format!("rules/{name}"),
            text: (*text).to_string(),
        })
        .collect()
}
