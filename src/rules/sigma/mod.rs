//! Sigma rules as SigmaHQ publishes them, compiled into socwatch's own rules: a detection becomes a
//! `Condition` tree over the same tests (so the literal prefilter covers it), a correlation becomes
//! a threshold on the same event-time correlator. Nothing here fails the load: a Sigma document
//! socwatch cannot run is reported as unsupported with its reason.

mod correlation;
mod expr;
pub mod logsource;
mod values;

use std::collections::BTreeMap;

use super::condition::Condition;
use super::yaml::{Node, Value};
use super::{Rule, RuleKind};
use crate::model::Severity;

pub use correlation::{Correlation, CorrelationType, STEP_FIELD};
pub use values::KEYWORD_FIELD;

/// A Sigma document, compiled.
#[derive(Debug, Clone)]
pub enum Compiled {
    /// A detection rule; `name` is what correlations may call it by.
    Detection { rule: Rule, name: Option<String> },
    /// A correlation rule, whose references are resolved once every file is read.
    Correlation {
        rule: Rule,
        name: Option<String>,
        correlation: Correlation,
    },
    /// Read but not runnable here.
    Unsupported { id: String, reason: String },
}

/// Whether a YAML document is a Sigma rule (rather than a socwatch rule).
pub fn is_sigma(doc: &Node) -> bool {
    doc.as_map().is_some_and(|entries| {
        entries.iter().any(|(k, _)| {
            matches!(
                k.as_scalar_text().as_deref(),
                Some("detection" | "correlation")
            )
        })
    })
}

fn get<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k.as_scalar_text().as_deref() == Some(key))
        .map(|(_, v)| v)
}

fn text(entries: &[(Node, Node)], key: &str) -> Option<String> {
    get(entries, key).and_then(Node::as_scalar_text)
}

fn texts(node: Option<&Node>) -> Vec<String> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(Node::as_scalar_text).collect(),
        Some(_) => node.and_then(Node::as_scalar_text).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Sigma levels to socwatch severities.
pub fn severity(level: &str) -> Option<Severity> {
    Some(match level.to_ascii_lowercase().as_str() {
        "informational" => Severity::Info,
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => return None,
    })
}

/// Compiles one Sigma document. `fallback_id` names rules that carry neither id nor name.
pub fn compile(doc: &Node, fallback_id: &str) -> Compiled {
    let Some(entries) = doc.as_map() else {
        return Compiled::Unsupported {
            id: fallback_id.into(),
            reason: "a Sigma rule must be a mapping".into(),
        };
    };
    let name = text(entries, "name");
    let id = text(entries, "id")
        .or_else(|| name.clone())
        .unwrap_or_else(|| fallback_id.to_string());
    let unsupported = |reason: String| Compiled::Unsupported {
        id: id.clone(),
        reason,
    };
    let Some(title) = text(entries, "title") else {
        return unsupported("a Sigma rule needs a title".into());
    };
    let mut rule = Rule {
        id: id.clone(),
        title,
        description: text(entries, "description").unwrap_or_default(),
        tags: texts(get(entries, "tags")),
        author: text(entries, "author"),
        line: doc.line,
        ..Rule::default()
    };
    if let Some(level) = text(entries, "level") {
        match severity(&level) {
            Some(sev) => rule.severity = sev,
            None => return unsupported(format!("unknown level '{level}'")),
        }
    }
    if let Some(corr) = get(entries, "correlation") {
        let generate_top = get(entries, "generate").map(|n| n.value == Value::Bool(true));
        return match correlation::parse(corr, generate_top) {
            Ok((correlation, threshold)) => {
                rule.kind = RuleKind::SigmaCorrelation;
                rule.threshold = threshold;
                rule.condition = Condition::Any(Vec::new());
                Compiled::Correlation {
                    rule,
                    name,
                    correlation,
                }
            }
            Err(reason) => unsupported(reason),
        };
    }
    rule.kind = RuleKind::Sigma;
    let source = get(entries, "logsource").and_then(Node::as_map);
    let field = |key: &str| source.and_then(|m| text(m, key));
    let mapped = logsource::map(
        field("product").as_deref(),
        field("service").as_deref(),
        field("category").as_deref(),
    );
    let detection = match get(entries, "detection") {
        Some(d) => detection(d),
        None => Err("missing 'detection'".into()),
    };
    let condition = match detection {
        Ok(c) => c,
        Err(reason) => return unsupported(reason),
    };
    rule.condition = condition;
    rule.logsource = mapped.selector;
    rule.idle = mapped.idle;
    rule.threshold.group_by = mapped.group_by;
    Compiled::Detection { rule, name }
}

/// The detection section: named search identifiers and the condition over them.
fn detection(node: &Node) -> Result<Condition, String> {
    let entries = node
        .as_map()
        .ok_or_else(|| format!("'detection' must be a mapping, found {}", node.kind()))?;
    let mut idents = BTreeMap::new();
    let mut conditions = Vec::new();
    for (key, value) in entries {
        let key = key
            .as_scalar_text()
            .ok_or("detection keys must be strings")?;
        match key.as_str() {
            "condition" => conditions = texts(Some(value)),
            // The deprecated v1 window of aggregations; a plain condition does not use it.
            "timeframe" => {}
            _ => {
                let cond = search(value).map_err(|err| format!("search '{key}': {err}"))?;
                idents.insert(key, cond);
            }
        }
    }
    if conditions.is_empty() {
        return Err("the detection has no condition".into());
    }
    let mut parsed = conditions
        .iter()
        .map(|c| expr::parse(c, &idents))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if parsed.len() == 1 {
        parsed.pop().expect("one condition")
    } else {
        // Several conditions in a list: any of them.
        Condition::Any(parsed)
    })
}

/// One search identifier: a map (AND of its fields), a list of maps (OR), or keywords.
fn search(node: &Node) -> Result<Condition, String> {
    match &node.value {
        Value::Map(entries) => {
            if entries.is_empty() {
                return Err("empty selection".into());
            }
            let mut all = Vec::new();
            for (key, value) in entries {
                let key = key.as_scalar_text().ok_or("field names must be strings")?;
                all.push(values::field_match(&key, value)?);
            }
            Ok(if all.len() == 1 {
                all.pop().expect("one field")
            } else {
                Condition::All(all)
            })
        }
        Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => {
            let any = items.iter().map(search).collect::<Result<Vec<_>, _>>()?;
            if any.is_empty() {
                return Err("empty list".into());
            }
            Ok(Condition::Any(any))
        }
        Value::Seq(items) if items.iter().all(|i| i.as_scalar_text().is_some()) => {
            values::field_match("", node)
        }
        Value::Str(_) | Value::Int(_) => values::field_match("", node),
        _ => Err(format!(
            "a search must be a mapping, a list of mappings or a list of keywords, found {}",
            node.kind()
        )),
    }
}

#[cfg(test)]
mod tests;
