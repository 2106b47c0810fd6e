//! Rule documents (YAML trees with lines) to compiled rules, collecting every problem with its line.

use std::time::Duration;

use ipnet::IpNet;

use super::condition::{self, CompareOp, Condition, Regex, Test};
use super::yaml::{Node, Value};
use super::{LogsourceSelector, Requires, Rule, RuleTest, TestCase, Threshold};
use crate::duration::parse_duration;
use crate::model::{Format, Severity};

/// Default quiet time after which a group's incident is closed and the next match starts over.
pub const DEFAULT_SUPPRESS: Duration = Duration::from_secs(3600);

const RULE_KEYS: &[&str] = &[
    "id",
    "title",
    "title_vi",
    "description",
    "severity",
    "tags",
    "logsource",
    "match",
    "threshold",
    "suppress",
    "requires",
    "tests",
    "author",
    "references",
    "falsepositives",
];

/// Collects problems as (line, message) while a rule is read.
#[derive(Default)]
pub struct Problems(pub Vec<(usize, String)>);

impl Problems {
    fn add(&mut self, line: usize, message: impl Into<String>) {
        self.0.push((line, message.into()));
    }
}

/// Reads one socwatch rule document. Returns the rule only when it has no problem.
pub fn parse_rule(doc: &Node, problems: &mut Problems) -> Option<Rule> {
    let Some(entries) = doc.as_map() else {
        problems.add(
            doc.line,
            format!("a rule must be a mapping, found {}", doc.kind()),
        );
        return None;
    };
    let before = problems.0.len();
    let mut rule = Rule {
        line: doc.line,
        ..Rule::default()
    };
    let mut seen_match = false;
    for (key_node, value) in entries {
        let Some(key) = key_node.as_scalar_text() else {
            problems.add(key_node.line, "rule keys must be strings");
            continue;
        };
        match key.as_str() {
            "id" => {
                if let Some(id) = string(value, "id", problems) {
                    if id.is_empty()
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                    {
                        problems.add(
                            value.line,
                            format!("bad id '{id}': use letters, digits, '.', '_' and '-'"),
                        );
                    }
                    rule.id = id;
                }
            }
            "title" => rule.title = string(value, "title", problems).unwrap_or_default(),
            "title_vi" => rule.title_vi = string(value, "title_vi", problems),
            "description" => {
                rule.description = string(value, "description", problems).unwrap_or_default()
            }
            "author" => rule.author = string(value, "author", problems),
            "references" | "falsepositives" => {
                string_list(value, &key, problems);
            }
            "severity" => {
                if let Some(text) = string(value, "severity", problems) {
                    match text.parse::<Severity>() {
                        Ok(sev) => rule.severity = sev,
                        Err(err) => problems.add(value.line, err),
                    }
                }
            }
            "tags" => rule.tags = string_list(value, "tags", problems),
            "logsource" => rule.logsource = logsource(value, problems),
            "match" => {
                seen_match = true;
                rule.condition = block(value, problems);
            }
            "threshold" => rule.threshold = threshold(value, problems),
            "suppress" => {
                if let Some(d) = duration(value, "suppress", problems) {
                    rule.suppress = d;
                }
            }
            "requires" => rule.requires = requires(value, problems),
            "tests" => rule.tests = tests(value, problems),
            other => problems.add(
                key_node.line,
                format!(
                    "unknown key '{other}' (expected one of: {})",
                    RULE_KEYS.join(", ")
                ),
            ),
        }
    }
    if rule.id.is_empty() && !has_key(entries, "id") {
        problems.add(doc.line, "missing required key 'id'");
    }
    if rule.title.is_empty() && !has_key(entries, "title") {
        problems.add(doc.line, "missing required key 'title'");
    }
    if !has_key(entries, "severity") {
        problems.add(doc.line, "missing required key 'severity'");
    }
    if !seen_match {
        problems.add(doc.line, "missing required key 'match'");
    }
    if let (Some(distinct), false) = (&rule.threshold.distinct, rule.threshold.group_by.is_empty())
    {
        if rule.threshold.group_by.contains(distinct) {
            problems.add(
                doc.line,
                format!("threshold.distinct '{distinct}' is also in group_by"),
            );
        }
    }
    (problems.0.len() == before).then_some(rule)
}

fn has_key(entries: &[(Node, Node)], key: &str) -> bool {
    entries
        .iter()
        .any(|(k, _)| k.as_scalar_text().as_deref() == Some(key))
}

fn string(node: &Node, what: &str, problems: &mut Problems) -> Option<String> {
    match &node.value {
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.as_scalar_text(),
        _ => {
            problems.add(
                node.line,
                format!("'{what}' must be a string, found {}", node.kind()),
            );
            None
        }
    }
}

/// A string or a list of strings.
fn string_list(node: &Node, what: &str, problems: &mut Problems) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| string(item, what, problems))
            .collect(),
        _ => string(node, what, problems).into_iter().collect(),
    }
}

fn duration(node: &Node, what: &str, problems: &mut Problems) -> Option<Duration> {
    let text = string(node, what, problems)?;
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(err) => {
            problems.add(node.line, format!("{what}: {err}"));
            None
        }
    }
}

fn number(node: &Node, what: &str, problems: &mut Problems) -> Option<f64> {
    let parsed = match &node.value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    if parsed.is_none() {
        problems.add(
            node.line,
            format!("'{what}' must be a number, found {}", node.kind()),
        );
    }
    parsed
}

fn logsource(node: &Node, problems: &mut Problems) -> LogsourceSelector {
    let mut selector = LogsourceSelector::default();
    let Some(entries) = node.as_map() else {
        problems.add(
            node.line,
            format!("'logsource' must be a mapping, found {}", node.kind()),
        );
        return selector;
    };
    for (key, value) in entries {
        let values = string_list(value, "logsource", problems);
        match key.as_scalar_text().as_deref() {
            Some("product") => selector.product = Some(values),
            Some("service") => selector.service = Some(values),
            Some("category") => selector.category = Some(values),
            Some("definition") => {}
            other => problems.add(
                key.line,
                format!(
                    "unknown logsource key '{}' (expected product, service, category)",
                    other.unwrap_or("?")
                ),
            ),
        }
    }
    selector
}

/// A condition block: a mapping whose entries all hold.
fn block(node: &Node, problems: &mut Problems) -> Condition {
    let Some(entries) = node.as_map() else {
        problems.add(
            node.line,
            format!("a condition block must be a mapping, found {}", node.kind()),
        );
        return Condition::All(Vec::new());
    };
    if entries.is_empty() {
        problems.add(node.line, "empty condition block");
    }
    let mut all = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_scalar_text() else {
            problems.add(
                key.line,
                "condition keys must be field names or all/any/not",
            );
            continue;
        };
        match name.as_str() {
            "all" | "any" => {
                let Value::Seq(items) = &value.value else {
                    problems.add(
                        value.line,
                        format!("'{name}' takes a list of condition blocks"),
                    );
                    continue;
                };
                if items.is_empty() {
                    problems.add(value.line, format!("'{name}' needs at least one block"));
                }
                let children = items.iter().map(|item| block(item, problems)).collect();
                all.push(if name == "all" {
                    Condition::All(children)
                } else {
                    Condition::Any(children)
                });
            }
            "not" => all.push(Condition::Not(Box::new(block(value, problems)))),
            field => all.push(field_condition(field, value, problems)),
        }
    }
    if all.len() == 1 {
        all.pop().unwrap_or(Condition::All(Vec::new()))
    } else {
        Condition::All(all)
    }
}

fn compile_regex(node: &Node, pattern: &str, problems: &mut Problems) -> Option<Regex> {
    match Regex::new(pattern) {
        Ok(re) => Some(re),
        Err(reason) => {
            problems.add(node.line, format!("bad regex '{pattern}': {reason}"));
            None
        }
    }
}

fn field_condition(field: &str, node: &Node, problems: &mut Problems) -> Condition {
    let make = |test| Condition::Field {
        field: field.to_string(),
        test,
    };
    match &node.value {
        Value::Str(pattern) => match compile_regex(node, pattern, problems) {
            Some(re) => make(Test::Regex {
                re,
                slot: condition::NO_SLOT,
            }),
            None => Condition::All(Vec::new()),
        },
        Value::Seq(_) => make(Test::OneOf {
            values: string_list(node, field, problems),
            ignore_case: false,
        }),
        Value::Map(ops) => {
            let ignore_case = ops.iter().any(|(k, v)| {
                k.as_scalar_text().as_deref() == Some("ignore_case") && v.value == Value::Bool(true)
            });
            let mut tests = Vec::new();
            for (op_node, arg) in ops {
                let op = op_node.as_scalar_text().unwrap_or_default();
                let test = match op.as_str() {
                    "regex" => string(arg, "regex", problems)
                        .and_then(|p| compile_regex(arg, &p, problems))
                        .map(|re| Test::Regex {
                            re,
                            slot: condition::NO_SLOT,
                        }),
                    "equals" | "in" => Some(Test::OneOf {
                        values: string_list(arg, &op, problems),
                        ignore_case,
                    }),
                    "contains" => Some(Test::Contains {
                        needles: string_list(arg, &op, problems),
                        ignore_case,
                    }),
                    "startswith" => Some(Test::StartsWith {
                        needles: string_list(arg, &op, problems),
                        ignore_case,
                    }),
                    "endswith" => Some(Test::EndsWith {
                        needles: string_list(arg, &op, problems),
                        ignore_case,
                    }),
                    "cidr" => {
                        let nets: Vec<IpNet> = string_list(arg, "cidr", problems)
                            .iter()
                            .filter_map(|text| match text.parse::<IpNet>() {
                                Ok(net) => Some(net),
                                Err(_) => {
                                    problems.add(
                                        arg.line,
                                        format!("bad CIDR '{text}' (expected e.g. 10.0.0.0/8)"),
                                    );
                                    None
                                }
                            })
                            .collect();
                        Some(Test::Cidr(nets))
                    }
                    "gt" | "gte" | "lt" | "lte" => {
                        number(arg, &op, problems).map(|value| Test::Compare {
                            op: match op.as_str() {
                                "gt" => CompareOp::Gt,
                                "gte" => CompareOp::Gte,
                                "lt" => CompareOp::Lt,
                                _ => CompareOp::Lte,
                            },
                            value,
                        })
                    }
                    "exists" => match arg.value {
                        Value::Bool(want) => Some(Test::Exists(want)),
                        _ => {
                            problems.add(arg.line, "'exists' takes true or false");
                            None
                        }
                    },
                    "ignore_case" => {
                        if !matches!(arg.value, Value::Bool(_)) {
                            problems.add(arg.line, "'ignore_case' takes true or false");
                        }
                        continue;
                    }
                    other => {
                        problems.add(
                            op_node.line,
                            format!(
                                "unknown operator '{other}' on field '{field}' (expected regex, equals, in, contains, startswith, endswith, cidr, gt, gte, lt, lte, exists, ignore_case)"
                            ),
                        );
                        None
                    }
                };
                if let Some(test) = test {
                    if matches!(&test, Test::OneOf { values, .. } | Test::Contains { needles: values, .. } | Test::StartsWith { needles: values, .. } | Test::EndsWith { needles: values, .. } if values.is_empty())
                    {
                        problems.add(arg.line, format!("'{op}' needs at least one value"));
                    }
                    tests.push(make(test));
                }
            }
            if tests.is_empty() {
                problems.add(node.line, format!("no test on field '{field}'"));
            }
            if tests.len() == 1 {
                tests.pop().unwrap_or(Condition::All(Vec::new()))
            } else {
                Condition::All(tests)
            }
        }
        _ => match node.as_scalar_text() {
            // `sc-status: 404` is an exact value, not a regex.
            Some(text) => make(Test::OneOf {
                values: vec![text],
                ignore_case: false,
            }),
            None => {
                problems.add(
                    node.line,
                    format!("field '{field}' needs a regex, a list or operators"),
                );
                Condition::All(Vec::new())
            }
        },
    }
}

fn threshold(node: &Node, problems: &mut Problems) -> Threshold {
    let mut threshold = Threshold::default();
    let Some(entries) = node.as_map() else {
        problems.add(
            node.line,
            format!("'threshold' must be a mapping, found {}", node.kind()),
        );
        return threshold;
    };
    for (key, value) in entries {
        match key.as_scalar_text().as_deref() {
            Some("count") => match value.value {
                Value::Int(n) if (1..=1_000_000).contains(&n) => threshold.count = n as u32,
                _ => problems.add(
                    value.line,
                    "threshold.count must be a whole number from 1 to 1000000",
                ),
            },
            Some("within") => {
                if let Some(d) = duration(value, "threshold.within", problems) {
                    threshold.within = d;
                }
            }
            Some("group_by") => threshold.group_by = string_list(value, "group_by", problems),
            Some("distinct") => threshold.distinct = string(value, "distinct", problems),
            other => problems.add(
                key.line,
                format!(
                    "unknown threshold key '{}' (expected count, within, group_by, distinct)",
                    other.unwrap_or("?")
                ),
            ),
        }
    }
    let has_within = entries
        .iter()
        .any(|(k, _)| k.as_scalar_text().as_deref() == Some("within"));
    if threshold.count > 1 && !has_within {
        problems.add(node.line, "threshold with count > 1 needs 'within'");
    }
    threshold
}

fn requires(node: &Node, problems: &mut Problems) -> Option<Requires> {
    let entries = node.as_map().or_else(|| {
        problems.add(
            node.line,
            "'requires' must be a mapping with 'rule' and 'within'",
        );
        None
    })?;
    let mut rule = None;
    let mut within = None;
    for (key, value) in entries {
        match key.as_scalar_text().as_deref() {
            Some("rule") => rule = string(value, "requires.rule", problems),
            Some("within") => within = duration(value, "requires.within", problems),
            other => problems.add(
                key.line,
                format!(
                    "unknown requires key '{}' (expected rule, within)",
                    other.unwrap_or("?")
                ),
            ),
        }
    }
    match (rule, within) {
        (Some(rule), Some(within)) => Some(Requires {
            rule,
            within,
            line: node.line,
            rule_index: usize::MAX,
        }),
        _ => {
            problems.add(node.line, "'requires' needs both 'rule' and 'within'");
            None
        }
    }
}

fn tests(node: &Node, problems: &mut Problems) -> Vec<RuleTest> {
    let Value::Seq(items) = &node.value else {
        problems.add(node.line, "'tests' must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(entries) = item.as_map() else {
            problems.add(item.line, "a test must be a mapping");
            continue;
        };
        let mut line = None;
        let mut lines = None;
        let mut fields = Vec::new();
        let mut should_match = true;
        let mut incidents = None;
        let mut count = None;
        let mut format = Format::Auto;
        for (key, value) in entries {
            match key.as_scalar_text().as_deref() {
                Some("line") => line = string(value, "line", problems),
                Some("lines") => lines = Some(string_list(value, "lines", problems)),
                Some("fields") => match value.as_map() {
                    Some(pairs) => {
                        for (k, v) in pairs {
                            if let (Some(k), Some(v)) = (k.as_scalar_text(), string(v, "fields", problems)) {
                                fields.push((k, v));
                            }
                        }
                    }
                    None => problems.add(value.line, "'fields' must be a mapping"),
                },
                Some("match") => match value.value {
                    Value::Bool(b) => should_match = b,
                    _ => problems.add(value.line, "'match' takes true or false"),
                },
                Some("incidents") => match value.value {
                    Value::Int(n) if n >= 0 => incidents = Some(n as u64),
                    _ => problems.add(value.line, "'incidents' must be a whole number"),
                },
                Some("count") => match value.value {
                    Value::Int(n) if n >= 0 => count = Some(n as u64),
                    _ => problems.add(value.line, "'count' must be a whole number"),
                },
                Some("format") => {
                    if let Some(text) = string(value, "format", problems) {
                        match text.parse::<Format>() {
                            Ok(f) => format = f,
                            Err(err) => problems.add(value.line, err),
                        }
                    }
                }
                other => problems.add(
                    key.line,
                    format!(
                        "unknown test key '{}' (expected line, fields, match, lines, incidents, count, format)",
                        other.unwrap_or("?")
                    ),
                ),
            }
        }
        let case = match (line, lines, incidents) {
            (Some(line), None, None) => TestCase::Line {
                line,
                fields,
                should_match,
            },
            (None, Some(lines), Some(incidents)) => TestCase::Lines {
                lines,
                incidents,
                count,
            },
            _ => {
                problems.add(item.line, "a test has either 'line' (with optional 'fields'/'match') or 'lines' with 'incidents'");
                continue;
            }
        };
        out.push(RuleTest {
            line: item.line,
            format,
            case,
        });
    }
    out
}
