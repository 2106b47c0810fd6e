//! Conditions on event fields, as a tree: evaluation against one event, and the literals a line
//! must contain for the tree to hold (the prefilter's input).

use std::net::IpAddr;

use ipnet::IpNet;

use super::literals;
use crate::model::{Event, SourceMeta};

/// A rule's regex. Built with a small one-pass DFA budget: the regex crate's default (1 MB per
/// regex) made 2,000 rules with Unicode classes cost 1.7 GB; capped, the same rules take 150 MB and
/// small one-pass regexes still get their fast captures.
#[derive(Debug, Clone)]
pub struct Regex {
    re: regex_automata::meta::Regex,
    pattern: String,
    /// Names of the capture groups, by group index.
    names: Vec<Option<String>>,
}

/// `\d`, `\D`, `\s` and `\S` as ASCII classes (`[0-9]`, whitespace `[\t\n\v\f\r ]`), as PCRE
/// and most Sigma backends read them; everything else (`\w`, `.`, `(?i)` on Vietnamese text) stays
/// Unicode.
///
/// Why: the Unicode `\S` and `\d` compile to large UTF-8 automata (every Unicode digit and space),
/// and capture extraction (the backtracker, which clears a visited set of span x states) costs in
/// proportion. Log fields (addresses, ports, pids, user names) are delimited by ASCII spaces, so
/// the ASCII classes find the same fields; the difference is only that a Unicode space such as
/// U+00A0 is part of a `\S+` token, and a non-ASCII digit is no `\d`.
pub fn ascii_perl_classes(pattern: &str) -> String {
    const SPACE: &str = "\\t\\n\\x0B\\x0C\\r\\x20";
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut depth = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(class @ ('d' | 'D' | 's' | 'S')) => {
                    let (items, negated) = match class {
                        'd' => ("0-9", false),
                        'D' => ("0-9", true),
                        's' => (SPACE, false),
                        _ => (SPACE, true),
                    };
                    match (depth > 0, negated) {
                        // Inside a bracket, a plain class is its items; a negated one nests.
                        (true, false) => out.push_str(items),
                        (_, true) => out.push_str(&format!("[^{items}]")),
                        (false, false) => out.push_str(&format!("[{items}]")),
                    }
                }
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' => {
                out.push('[');
                depth += 1;
                // `]` first in a bracket (after an optional `^`) is a literal.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().expect("peeked"));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().expect("peeked"));
                }
            }
            ']' if depth > 0 => {
                out.push(']');
                depth -= 1;
            }
            _ => out.push(c),
        }
    }
    out
}

impl Regex {
    /// The `regex` crate's syntax, Unicode and UTF-8, with the ASCII `\d` and `\s` of
    /// `ascii_perl_classes`.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        Regex::build(&ascii_perl_classes(pattern))
            .or_else(|_| Regex::build(pattern))
            .map(|re| Regex {
                pattern: pattern.to_string(),
                ..re
            })
    }

    fn build(pattern: &str) -> Result<Regex, String> {
        use regex_automata::meta;
        let re = meta::Regex::builder()
            .configure(
                meta::Config::new()
                    .nfa_size_limit(Some(8 << 20))
                    .onepass_size_limit(Some(64 * 1024)),
            )
            .build(pattern)
            .map_err(|err| {
                err.syntax_error()
                    .map(|syntax| {
                        syntax
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or("invalid")
                            .trim()
                            .to_string()
                    })
                    .unwrap_or_else(|| err.to_string())
            })?;
        let names = re
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .map(|name| name.map(str::to_string))
            .collect();
        Ok(Regex {
            re,
            pattern: pattern.to_string(),
            names,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }

    fn has_named_groups(&self) -> bool {
        self.names.iter().any(Option::is_some)
    }

    /// Searches `text`; on a match, pushes the named groups that took part onto `out` and their
    /// spans onto `spans` (so the memo can give them to the next rule without searching again).
    /// `caps` must come from this regex (`create_captures`): reused, it spares an allocation per
    /// search.
    fn captures_into(
        &self,
        text: &str,
        caps: &mut regex_automata::util::captures::Captures,
        out: &mut Captures,
        spans: &mut Vec<GroupSpan>,
    ) -> bool {
        self.re.captures(text, caps);
        if !caps.is_match() {
            return false;
        }
        for (group, name) in self.names.iter().enumerate() {
            if let (Some(name), Some(span)) = (name, caps.get_group(group)) {
                out.push((name.clone(), text[span.range()].to_string()));
                spans.push(GroupSpan {
                    group,
                    start: span.start,
                    end: span.end,
                });
            }
        }
        true
    }

    /// Pushes the groups a search of `text` found (`captures_into`'s spans) onto `out`.
    fn replay(&self, text: &str, spans: &[GroupSpan], out: &mut Captures) {
        for span in spans {
            if let Some(Some(name)) = self.names.get(span.group) {
                out.push((name.clone(), text[span.start..span.end].to_string()));
            }
        }
    }
}

/// Where a named group matched in the searched text.
#[derive(Debug, Clone, Copy)]
struct GroupSpan {
    group: usize,
    start: usize,
    end: usize,
}

/// How a field's value is tested.
#[derive(Debug, Clone)]
pub enum Test {
    /// Search; named groups become fields. `slot` numbers distinct (field, regex) pairs across
    /// the rule set for per-line memoization (`NO_SLOT` until the set is built).
    Regex {
        re: Regex,
        slot: u32,
    },
    /// Equals one of these (one value for `equals`).
    OneOf {
        values: Vec<String>,
        ignore_case: bool,
    },
    Contains {
        needles: Vec<String>,
        ignore_case: bool,
    },
    StartsWith {
        needles: Vec<String>,
        ignore_case: bool,
    },
    EndsWith {
        needles: Vec<String>,
        ignore_case: bool,
    },
    Cidr(Vec<IpNet>),
    Compare {
        op: CompareOp,
        value: f64,
    },
    Exists(bool),
    /// Compares with another field of the same event (Sigma's `fieldref`).
    FieldRef {
        other: String,
        how: RefMatch,
        ignore_case: bool,
    },
}

/// How a `FieldRef` compares the two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefMatch {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub enum Condition {
    Field {
        field: String,
        test: Test,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Holds only if one of these prefilter patterns occurred in the line (added when the rule set
    /// is built, around `any` branches); then as the inner condition.
    Gated {
        patterns: Box<[u32]>,
        inner: Box<Condition>,
    },
}

pub const NO_SLOT: u32 = u32::MAX;

/// Fields a regex captured, in group order.
type Captures = Vec<(String, String)>;

/// Results of regexes already run on the current line, by slot.
#[derive(Debug, Clone, Default)]
pub struct Memo {
    line: u64,
    results: Vec<MemoEntry>,
}

/// One slot's regex result, and its buffers, reused from line to line.
#[derive(Debug, Clone, Default)]
struct MemoEntry {
    /// The line the result belongs to.
    line: u64,
    matched: bool,
    /// Where its named groups matched (the text is the field's value, the same for every rule
    /// that shares the slot on this line).
    spans: Vec<GroupSpan>,
    /// The regex's capture buffer, made on the slot's first search.
    caps: Option<regex_automata::util::captures::Captures>,
}

impl Memo {
    pub fn next_line(&mut self, slots: usize) {
        self.line += 1;
        if self.results.len() < slots {
            self.results.resize(slots, MemoEntry::default());
        }
    }

    /// The slot's entry (it holds this line's result if its `line` is the one returned); `None`
    /// for a slot the set did not number.
    fn slot(&mut self, slot: u32) -> Option<(&mut MemoEntry, u64)> {
        let line = self.line;
        self.results
            .get_mut(slot as usize)
            .map(|entry| (entry, line))
    }
}

/// Which prefilter patterns occurred in the current line: a bit per pattern of the rule set.
#[derive(Debug, Clone, Default)]
pub struct Hits {
    words: Vec<u64>,
}

impl Hits {
    pub fn reset(&mut self, patterns: usize) {
        self.words.clear();
        self.words.resize(patterns.div_ceil(64), 0);
    }

    pub fn set(&mut self, pattern: usize) {
        if let Some(word) = self.words.get_mut(pattern / 64) {
            *word |= 1 << (pattern % 64);
        }
    }

    pub fn any(&self, patterns: &[u32]) -> bool {
        patterns.iter().any(|&p| {
            self.words
                .get(p as usize / 64)
                .is_some_and(|word| word & (1 << (p % 64)) != 0)
        })
    }
}

/// Fields that describe the source, not the line: the prefilter cannot find them in the text.
const SOURCE_FIELDS: [&str; 3] = ["source", "system", "level"];

/// The event being tested, plus the fields earlier regexes captured.
pub struct Evaluation<'e, 'a> {
    pub event: &'e Event<'a>,
    pub meta: &'e SourceMeta,
    pub captured: Vec<(String, String)>,
    /// The prefilter's findings for this line; `None` evaluates every branch.
    pub hits: Option<&'e Hits>,
    /// Regex results of this line shared between rules; `None` runs every regex.
    pub memo: Option<&'e mut Memo>,
}

impl<'e, 'a> Evaluation<'e, 'a> {
    pub fn new(event: &'e Event<'a>, meta: &'e SourceMeta) -> Self {
        Evaluation {
            event,
            meta,
            captured: Vec::new(),
            hits: None,
            memo: None,
        }
    }

    /// A field's value: captured by a regex first (the latest wins), then decoded, then the source's.
    pub fn get(&self, name: &str) -> Option<&str> {
        lookup(self.event, self.meta, &self.captured, name)
    }
}

/// See `Evaluation::get`.
pub fn lookup<'x>(
    event: &'x Event<'_>,
    meta: &'x SourceMeta,
    captured: &'x [(String, String)],
    name: &str,
) -> Option<&'x str> {
    if let Some((_, value)) = captured.iter().rev().find(|(key, _)| key == name) {
        return Some(value);
    }
    if let Some(value) = event.get(name) {
        return Some(value);
    }
    match name {
        "source" => Some(&meta.source),
        "system" => Some(&meta.system),
        "level" => Some(level_text(meta.level)),
        _ => None,
    }
}

fn level_text(level: u8) -> &'static str {
    const LEVELS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    LEVELS.get(level as usize).copied().unwrap_or("")
}

impl Condition {
    /// Whether the condition holds. Captures of branches that did not hold are rolled back.
    pub fn eval(&self, ev: &mut Evaluation<'_, '_>) -> bool {
        match self {
            Condition::Field { field, test } => eval_field(field, test, ev),
            Condition::All(children) => {
                let mark = ev.captured.len();
                let holds = children.iter().all(|child| child.eval(ev));
                if !holds {
                    ev.captured.truncate(mark);
                }
                holds
            }
            Condition::Any(children) => children.iter().any(|child| {
                let mark = ev.captured.len();
                let holds = child.eval(ev);
                if !holds {
                    ev.captured.truncate(mark);
                }
                holds
            }),
            Condition::Not(child) => {
                let mark = ev.captured.len();
                let holds = child.eval(ev);
                ev.captured.truncate(mark);
                !holds
            }
            Condition::Gated { patterns, inner } => {
                ev.hits.is_none_or(|hits| hits.any(patterns)) && inner.eval(ev)
            }
        }
    }

    /// Wraps every `any` branch that has required literals in a gate on those literals;
    /// `register` turns literals into pattern ids.
    pub fn gate_branches(self, register: &mut dyn FnMut(Vec<String>) -> Box<[u32]>) -> Condition {
        match self {
            Condition::Any(children) => Condition::Any(
                children
                    .into_iter()
                    .map(|child| match child.required_literals() {
                        Some(lits) => Condition::Gated {
                            patterns: register(lits),
                            inner: Box::new(child.gate_branches(register)),
                        },
                        None => child.gate_branches(register),
                    })
                    .collect(),
            ),
            Condition::All(children) => Condition::All(
                children
                    .into_iter()
                    .map(|c| c.gate_branches(register))
                    .collect(),
            ),
            Condition::Not(child) => Condition::Not(Box::new(child.gate_branches(register))),
            other => other,
        }
    }

    /// Numbers each distinct (field, regex) pair; equal pairs share a slot.
    pub fn assign_regex_slots(
        &mut self,
        slots: &mut std::collections::HashMap<(String, String), u32>,
    ) {
        match self {
            Condition::Field {
                field,
                test: Test::Regex { re, slot },
            } => {
                let next = slots.len() as u32;
                *slot = *slots
                    .entry((field.clone(), re.as_str().to_string()))
                    .or_insert(next);
            }
            Condition::Field { .. } => {}
            Condition::All(children) | Condition::Any(children) => children
                .iter_mut()
                .for_each(|c| c.assign_regex_slots(slots)),
            Condition::Not(child) => child.assign_regex_slots(slots),
            Condition::Gated { inner, .. } => inner.assign_regex_slots(slots),
        }
    }

    /// Adds `base` to every gate's pattern ids.
    pub fn shift_gates(&mut self, base: u32) {
        match self {
            Condition::Gated { patterns, inner } => {
                patterns.iter_mut().for_each(|p| *p += base);
                inner.shift_gates(base);
            }
            Condition::All(children) | Condition::Any(children) => {
                children.iter_mut().for_each(|c| c.shift_gates(base))
            }
            Condition::Not(child) => child.shift_gates(base),
            Condition::Field { .. } => {}
        }
    }

    /// Literals one of which every line that satisfies the condition contains (ASCII case aside).
    /// `None` when the condition cannot be tied to literal text.
    pub fn required_literals(&self) -> Option<Vec<String>> {
        match self {
            Condition::Field { field, test } => {
                if SOURCE_FIELDS.contains(&field.as_str()) {
                    return None;
                }
                match test {
                    Test::Regex { re, .. } => literals::regex_literals(re.as_str()),
                    Test::OneOf {
                        values: needles,
                        ignore_case,
                    }
                    | Test::Contains {
                        needles,
                        ignore_case,
                    }
                    | Test::StartsWith {
                        needles,
                        ignore_case,
                    }
                    | Test::EndsWith {
                        needles,
                        ignore_case,
                    } => {
                        if *ignore_case {
                            // The automaton folds ASCII case only: a needle's other cased letters
                            // may appear in either case, so only its ASCII part can be required.
                            let safe: Vec<String> =
                                needles.iter().map(|n| ascii_core(n).to_string()).collect();
                            literals::plain_literals(safe.iter().map(String::as_str))
                        } else {
                            literals::plain_literals(needles.iter().map(String::as_str))
                        }
                    }
                    Test::Cidr(_)
                    | Test::Compare { .. }
                    | Test::Exists(_)
                    | Test::FieldRef { .. } => None,
                }
            }
            Condition::All(children) => children
                .iter()
                .map(Condition::required_literals)
                .fold(None, literals::better),
            Condition::Any(children) => {
                let sets = children
                    .iter()
                    .map(Condition::required_literals)
                    .collect::<Option<Vec<_>>>()?;
                let mut union: Vec<String> = sets.concat();
                union.sort_unstable();
                union.dedup();
                Some(union)
            }
            Condition::Not(_) => None,
            Condition::Gated { inner, .. } => inner.required_literals(),
        }
    }
}

fn eval_field(field: &str, test: &Test, ev: &mut Evaluation<'_, '_>) -> bool {
    let event = ev.event;
    if field == "raw"
        && !event.derived.is_empty()
        && !matches!(test, Test::Exists(_))
        && !ev.captured.iter().any(|(k, _)| k == field)
    {
        // The whole line (Sigma keywords) is searched in its decoded texts too, as the prefilter
        // searches them: a JSON line holds `C:\\Windows` where the event says `C:\Windows`.
        return std::iter::once(event.raw)
            .chain(event.derived.iter().map(|d| d.as_ref()))
            .enumerate()
            .any(|(i, text)| eval_text(field, text, i == 0, test, ev));
    }
    if let Some(at) = ev.captured.iter().rposition(|(k, _)| k == field) {
        // Captured by an earlier regex of the rule (socwatch rules): rare, so copied.
        let value = ev.captured[at].1.clone();
        return eval_text(field, &value, true, test, ev);
    }
    // Looked up on the event itself, so the value does not borrow the evaluation.
    let Some(value) = lookup(event, ev.meta, &[], field) else {
        return matches!(test, Test::Exists(false));
    };
    eval_text(field, value, true, test, ev)
}

/// `test` on `value`, the text of `field`; `memo` allows sharing a regex result between rules
/// (only for the field's own value).
fn eval_text(
    field: &str,
    value: &str,
    memo: bool,
    test: &Test,
    ev: &mut Evaluation<'_, '_>,
) -> bool {
    match test {
        Test::Exists(want) => *want,
        Test::Regex { re, slot } => {
            // Memoize only on decoded fields: a captured field's value differs between rules.
            let shareable =
                memo && *slot != NO_SLOT && !ev.captured.iter().any(|(k, _)| k == field);
            let memo = match ev.memo.as_deref_mut() {
                Some(memo) if shareable => memo.slot(*slot),
                _ => None,
            };
            let Some((entry, line)) = memo else {
                if !re.has_named_groups() {
                    return re.is_match(value);
                }
                let mut caps = re.re.create_captures();
                return re.captures_into(value, &mut caps, &mut ev.captured, &mut Vec::new());
            };
            if entry.line == line {
                if entry.matched {
                    re.replay(value, &entry.spans, &mut ev.captured);
                }
                return entry.matched;
            }
            entry.spans.clear();
            entry.matched = if re.has_named_groups() {
                let caps = entry.caps.get_or_insert_with(|| re.re.create_captures());
                re.captures_into(value, caps, &mut ev.captured, &mut entry.spans)
            } else {
                re.is_match(value)
            };
            entry.line = line;
            entry.matched
        }
        Test::OneOf {
            values,
            ignore_case,
        } => values.iter().any(|want| text_eq(value, want, *ignore_case)),
        Test::Contains {
            needles,
            ignore_case,
        } => needles
            .iter()
            .any(|needle| text_contains(value, needle, *ignore_case)),
        Test::StartsWith {
            needles,
            ignore_case,
        } => needles.iter().any(|needle| {
            value
                .get(..needle.len())
                .is_some_and(|head| text_eq(head, needle, *ignore_case))
        }),
        Test::EndsWith {
            needles,
            ignore_case,
        } => needles.iter().any(|needle| {
            value
                .len()
                .checked_sub(needle.len())
                .and_then(|start| value.get(start..))
                .is_some_and(|tail| text_eq(tail, needle, *ignore_case))
        }),
        Test::Cidr(nets) => {
            parse_ip(value).is_some_and(|ip| nets.iter().any(|net| net.contains(&ip)))
        }
        Test::Compare { op, value: limit } => {
            value.trim().parse::<f64>().is_ok_and(|number| match op {
                CompareOp::Gt => number > *limit,
                CompareOp::Gte => number >= *limit,
                CompareOp::Lt => number < *limit,
                CompareOp::Lte => number <= *limit,
            })
        }
        Test::FieldRef {
            other,
            how,
            ignore_case,
        } => {
            let Some(want) = ev.get(other) else {
                return false;
            };
            let ic = *ignore_case;
            match how {
                RefMatch::Equals => text_eq(value, want, ic),
                RefMatch::Contains => text_contains(value, want, ic),
                RefMatch::StartsWith => value
                    .get(..want.len())
                    .is_some_and(|h| text_eq(h, want, ic)),
                RefMatch::EndsWith => value
                    .len()
                    .checked_sub(want.len())
                    .and_then(|start| value.get(start..))
                    .is_some_and(|t| text_eq(t, want, ic)),
            }
        }
    }
}

fn text_eq(a: &str, b: &str, ignore_case: bool) -> bool {
    if !ignore_case {
        a == b
    } else if a.is_ascii() || b.is_ascii() {
        // Sigma compares case-insensitively by default, so this runs for most Sigma values:
        // ASCII folding needs no allocation.
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn text_contains(hay: &str, needle: &str, ignore_case: bool) -> bool {
    if !ignore_case {
        return hay.contains(needle);
    }
    if needle.is_ascii() {
        let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
        let Some((&first, rest)) = needle.split_first() else {
            return true;
        };
        let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
        return hay.len() >= needle.len()
            && (0..=hay.len() - needle.len()).any(|at| {
                let b = hay[at];
                (b == lo || b == up) && hay[at + 1..at + needle.len()].eq_ignore_ascii_case(rest)
            });
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// The longest part of `needle` made of characters that ASCII case folding covers (ASCII, or
/// without case), for literals of case-insensitive tests.
fn ascii_core(needle: &str) -> &str {
    needle
        .split(|c: char| !c.is_ascii() && (c.is_lowercase() || c.is_uppercase()))
        .max_by_key(|part| part.len())
        .unwrap_or("")
}

/// An address as logs write it: bare, `[v6]`, or IPv4-mapped IPv6 (`::ffff:1.2.3.4`, taken as IPv4).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = text.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn perl_classes_become_ascii_and_nothing_else_changes() {
        let cases = [
            (
                r"from (?P<ip>\S+) port \d+",
                r"from (?P<ip>[^\t\n\x0B\x0C\r\x20]+) port [0-9]+",
            ),
            (r"[\d.]+", r"[0-9.]+"),
            (r"[^\s]", r"[^\t\n\x0B\x0C\r\x20]"),
            (r"[\S\d]", r"[[^\t\n\x0B\x0C\r\x20]0-9]"),
            (r"[]\d]", r"[]0-9]"),
            (r"\\d \w \p{L} \x41", r"\\d \w \p{L} \x41"),
            (r"[[:alpha:]]\D", r"[[:alpha:]][^0-9]"),
        ];
        for (pattern, want) in cases {
            assert_eq!(ascii_perl_classes(pattern), want, "{pattern}");
        }
        let re = Regex::new(r"user (?P<u>\S+) from (?P<ip>\S+) port \d+").unwrap();
        assert_eq!(re.as_str(), r"user (?P<u>\S+) from (?P<ip>\S+) port \d+");
        assert!(re.is_match("user nguyễn.văn.đức from 2001:db8::1 port 22"));
        // Arabic-Indic digits are no port.
        assert!(!re.is_match("user a from 10.0.0.1 port \u{0662}\u{0662}"));
        // Vietnamese case-insensitive matching stays Unicode.
        assert!(
            Regex::new("(?i)đăng nhập")
                .unwrap()
                .is_match("ĐĂNG NHẬP thất bại")
        );
        // A broken pattern reports the error of what the operator wrote.
        assert!(Regex::new(r"(\d").is_err());
    }

    use super::*;

    fn field(name: &str, test: Test) -> Condition {
        Condition::Field {
            field: name.into(),
            test,
        }
    }

    fn holds(cond: &Condition, line: &str) -> (bool, Vec<(String, String)>) {
        let event = Event::plain(line);
        let meta = SourceMeta::new("/var/log/test.log");
        let mut ev = Evaluation::new(&event, &meta);
        let result = cond.eval(&mut ev);
        (result, ev.captured)
    }

    #[test]
    fn regex_captures_become_fields_for_later_conditions() {
        let cond = Condition::All(vec![
            field(
                "message",
                Test::Regex {
                    slot: NO_SLOT,
                    re: Regex::new(r"from (?P<src_ip>\S+)").unwrap(),
                },
            ),
            field(
                "src_ip",
                Test::Cidr(vec!["203.0.113.0/24".parse().unwrap()]),
            ),
        ]);
        let (ok, caps) = holds(&cond, "Failed password for root from 203.0.113.7 port 22");
        assert!(ok);
        assert_eq!(
            caps,
            vec![("src_ip".to_string(), "203.0.113.7".to_string())]
        );
        assert!(!holds(&cond, "Failed password for root from 198.51.100.7 port 22").0);
    }

    #[test]
    fn failed_branches_leave_no_captures() {
        let cond = Condition::Any(vec![
            Condition::All(vec![
                field(
                    "message",
                    Test::Regex {
                        slot: NO_SLOT,
                        re: Regex::new(r"user (?P<user>\w+)").unwrap(),
                    },
                ),
                field(
                    "message",
                    Test::Contains {
                        needles: vec!["never".into()],
                        ignore_case: false,
                    },
                ),
            ]),
            field(
                "message",
                Test::Regex {
                    slot: NO_SLOT,
                    re: Regex::new(r"from (?P<src_ip>\S+)").unwrap(),
                },
            ),
        ]);
        let (ok, caps) = holds(&cond, "invalid user bob from 203.0.113.9");
        assert!(ok);
        assert_eq!(
            caps,
            vec![("src_ip".to_string(), "203.0.113.9".to_string())]
        );
    }

    #[test]
    fn operators_behave_as_documented() {
        let ip = |s: &str| field("message", Test::Cidr(vec![s.parse().unwrap()]));
        assert!(holds(&ip("10.0.0.0/8"), "::ffff:10.1.2.3").0);
        assert!(!holds(&ip("10.0.0.0/8"), "11.1.2.3").0);
        assert!(holds(&ip("2001:db8::/32"), "[2001:db8::1]").0);
        let gt = field(
            "message",
            Test::Compare {
                op: CompareOp::Gt,
                value: 400.0,
            },
        );
        assert!(holds(&gt, "404").0);
        assert!(!holds(&gt, "200").0);
        assert!(!holds(&gt, "abc").0);
        let eq = field(
            "message",
            Test::OneOf {
                values: vec!["Casino".into()],
                ignore_case: true,
            },
        );
        assert!(holds(&eq, "CASINO").0);
        let starts = field(
            "message",
            Test::StartsWith {
                needles: vec!["ổ".into()],
                ignore_case: false,
            },
        );
        assert!(!holds(&starts, "o").0, "must not slice inside a character");
        let missing = field("nope", Test::Exists(false));
        assert!(holds(&missing, "x").0);
        let not = Condition::Not(Box::new(field(
            "message",
            Test::Contains {
                needles: vec!["ok".into()],
                ignore_case: false,
            },
        )));
        assert!(holds(&not, "bad").0);
        assert!(!holds(&not, "ok").0);
    }

    #[test]
    fn literals_follow_the_tree() {
        let re = |p: &str| {
            field(
                "message",
                Test::Regex {
                    slot: NO_SLOT,
                    re: Regex::new(p).unwrap(),
                },
            )
        };
        let all = Condition::All(vec![re("ssh"), re("Failed password")]);
        assert_eq!(
            all.required_literals(),
            Some(vec!["failed password".to_string()])
        );
        let any = Condition::Any(vec![re("Invalid user"), re("Failed password")]);
        assert_eq!(
            any.required_literals(),
            Some(vec![
                "failed password".to_string(),
                "invalid user".to_string()
            ])
        );
        let any_open = Condition::Any(vec![re("Invalid user"), field("level", Test::Exists(true))]);
        assert_eq!(any_open.required_literals(), None);
        assert_eq!(
            field(
                "system",
                Test::OneOf {
                    values: vec!["dvc-portal".into()],
                    ignore_case: false
                }
            )
            .required_literals(),
            None
        );
    }
}
