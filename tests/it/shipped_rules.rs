//! House rules for the shipped rule set (`rules/`), beyond what the loader enforces.

use socwatch::rules::{RuleSet, TestCase, testing};

#[test]
fn every_shipped_rule_is_complete_and_prefilterable() {
    let set = RuleSet::shipped();
    let mut problems = Vec::new();
    for rule in set.unfiltered() {
        problems.push(format!(
            "{}: no literal text for the prefilter (checked on every line)",
            rule.id
        ));
    }
    for rule in set.rules() {
        let id = &rule.id;
        if rule.title_vi.as_deref().is_none_or(str::is_empty) {
            problems.push(format!("{id}: no title_vi"));
        }
        if rule.description.trim().is_empty() {
            problems.push(format!("{id}: no description"));
        }
        if !rule.tags.iter().any(|t| t.starts_with("attack.t")) {
            problems.push(format!("{id}: no ATT&CK technique tag"));
        }
        let matching = rule.tests.iter().any(|t| {
            matches!(
                t.case,
                TestCase::Line {
                    should_match: true,
                    ..
                }
            )
        });
        let clean = rule.tests.iter().any(|t| {
            matches!(
                t.case,
                TestCase::Line {
                    should_match: false,
                    ..
                }
            )
        });
        if !matching || !clean {
            problems.push(format!(
                "{id}: needs a matching and a non-matching test line"
            ));
        }
        let correlated = rule.threshold.count > 1 || rule.threshold.distinct.is_some();
        if (correlated || rule.requires.is_some())
            && !rule
                .tests
                .iter()
                .any(|t| matches!(t.case, TestCase::Lines { .. }))
        {
            problems.push(format!(
                "{id}: threshold or requires without a `lines:` test"
            ));
        }
        if !rule.threshold.group_by.is_empty()
            && rule
                .threshold
                .group_by
                .iter()
                .any(|g| g == "c-ip" || g == "ip")
        {
            problems.push(format!(
                "{id}: group by `src_ip`, the shipped name for addresses"
            ));
        }
    }
    for outcome in testing::run_all(&set) {
        if let Some(why) = outcome.failure {
            problems.push(format!(
                "{}:{} {}: {why}",
                outcome.file, outcome.line, outcome.rule_id
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
