//! Runs the test cases embedded in rule files (`socwatch rules test`, and the test suite).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{RuleSet, TestCase};
use crate::correlate::{Change, Correlator, Limits, Observation, Origin};
use crate::decode::{DecodeContext, Decoder, detect_format, prepare_line};
use crate::model::{Format, SourceMeta};

/// The outcome of one embedded test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub rule_id: String,
    pub file: String,
    pub line: usize,
    /// `None` when it passed, else why not.
    pub failure: Option<String>,
}

/// Year-less test lines are read as if now were the end of 2026 in Vietnam, so results never
/// depend on the day the tests run.
fn test_context() -> DecodeContext {
    let zone = TimeZone::get("Asia/Ho_Chi_Minh").unwrap_or(TimeZone::UTC);
    let reference: Timestamp = "2026-12-31T16:59:59Z".parse().expect("valid timestamp");
    DecodeContext::new(zone, reference)
}

fn decoder_for(format: Format, lines: &[&str]) -> Decoder {
    let format = match format {
        Format::Auto => detect_format(lines),
        other => other,
    };
    Decoder::new(format, test_context())
}

/// Runs every test of every rule in the set.
pub fn run_all(set: &RuleSet) -> Vec<TestOutcome> {
    let meta = SourceMeta::new("rule-test");
    let mut outcomes = Vec::new();
    for (index, rule) in set.rules().iter().enumerate() {
        for test in &rule.tests {
            let failure = match &test.case {
                TestCase::Line {
                    line,
                    fields,
                    should_match,
                } => check_line(set, index, test.format, line, fields, *should_match, &meta),
                TestCase::Lines {
                    lines,
                    incidents,
                    count,
                } => check_lines(set, index, test.format, lines, *incidents, *count, &meta),
            };
            outcomes.push(TestOutcome {
                rule_id: rule.id.clone(),
                file: rule.file.clone(),
                line: test.line,
                failure,
            });
        }
    }
    outcomes
}

fn check_line(
    set: &RuleSet,
    index: usize,
    format: Format,
    line: &str,
    fields: &[(String, String)],
    should_match: bool,
    meta: &SourceMeta,
) -> Option<String> {
    let prepared = prepare_line(line.as_bytes(), usize::MAX);
    let mut decoder = decoder_for(format, &[&prepared.text]);
    let event = decoder.decode(&prepared.text);
    let direct = set.eval_rule(index, &event, meta);
    let via_prefilter = set
        .matches(&event, meta)
        .into_iter()
        .find(|m| m.rule == index);
    match (should_match, &direct, &via_prefilter) {
        (false, None, _) => None,
        (false, Some(_), _) => Some("matched, but the test says it must not".into()),
        (true, None, _) => Some(format!(
            "did not match (decoded as {}, logsource {:?}, message {:?})",
            event.format.as_str(),
            event.logsource,
            event.message()
        )),
        (true, Some(_), None) => Some(
            "the conditions hold but the literal prefilter skipped the rule (engine bug)".into(),
        ),
        (true, Some(captured), Some(_)) => {
            let wrong: Vec<String> = fields
                .iter()
                .filter_map(|(name, want)| {
                    let got = RuleSet::field_value(&event, meta, captured, name);
                    (got != Some(want.as_str()))
                        .then(|| format!("{name}: expected {want:?}, got {got:?}"))
                })
                .collect();
            (!wrong.is_empty()).then(|| wrong.join("; "))
        }
    }
}

fn check_lines(
    set: &RuleSet,
    index: usize,
    format: Format,
    lines: &[String],
    incidents: u64,
    count: Option<u64>,
    meta: &SourceMeta,
) -> Option<String> {
    let mut correlator = Correlator::new(set, Limits::default());
    let samples: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut decoder = decoder_for(format, &samples);
    let mut opened = 0;
    let mut last_count = 0;
    let mut last_ts = decoder.context().reference;
    let origin = Origin {
        host: "test",
        system: "",
        level: 0,
        unit: "",
    };
    for line in lines {
        let prepared = prepare_line(line.as_bytes(), usize::MAX);
        let event = decoder.decode(&prepared.text);
        last_ts = event.ts.unwrap_or(last_ts);
        // Other rules feed the correlator too, so `requires` tests see the rule they depend on.
        for found in set.matches(&event, meta) {
            let is_this = found.rule == index;
            let obs = Observation::of(set, &found, &event, meta, last_ts, origin);
            match correlator.observe(set, obs) {
                Some(Change::Opened(incident)) if is_this => {
                    opened += 1;
                    last_count = incident.count;
                }
                Some(Change::Updated { count, .. }) if is_this => last_count = count,
                _ => {}
            }
        }
    }
    let mut problems = Vec::new();
    if opened != incidents {
        problems.push(format!("expected {incidents} incident(s), got {opened}"));
    }
    if let Some(want) = count
        && want != last_count
    {
        problems.push(format!("expected count {want}, got {last_count}"));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}
