//! Sigma correlation rules (specification v2: event_count, value_count, temporal,
//! temporal_ordered) as thresholds of socwatch's correlator, which already counts per group on
//! event time with bounded state.

use std::time::Duration;

use crate::duration::parse_duration;
use crate::rules::Threshold;
use crate::rules::yaml::{Node, Value};

/// The field a correlation's match carries to say which referenced rule it came from: temporal
/// correlations count its distinct values.
pub const STEP_FIELD: &str = "sigma.rule";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

/// What a correlation needs once every rule is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub kind: CorrelationType,
    /// Ids or names of the rules it correlates, in order.
    pub rules: Vec<String>,
    /// alias → (rule name or id → field of that rule's events).
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    /// Whether the referenced rules also open incidents of their own (Sigma's default: no).
    pub generate: bool,
}

fn strings(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items.iter().filter_map(Node::as_scalar_text).collect(),
        _ => node.as_scalar_text().into_iter().collect(),
    }
}

/// Parses a `correlation:` section. `generate_top` is a top-level `generate` attribute.
pub fn parse(node: &Node, generate_top: Option<bool>) -> Result<(Correlation, Threshold), String> {
    let entries = node
        .as_map()
        .ok_or_else(|| format!("'correlation' must be a mapping, found {}", node.kind()))?;
    let mut kind = None;
    let mut rules = Vec::new();
    let mut group_by = Vec::new();
    let mut timespan: Option<Duration> = None;
    let mut condition: Vec<(String, f64)> = Vec::new();
    let mut field = None;
    let mut aliases = Vec::new();
    let mut generate = generate_top.unwrap_or(false);
    for (key, value) in entries {
        match key.as_scalar_text().as_deref() {
            Some("type") => {
                kind = Some(match value.as_scalar_text().as_deref() {
                    Some("event_count") => CorrelationType::EventCount,
                    Some("value_count") => CorrelationType::ValueCount,
                    Some("temporal") => CorrelationType::Temporal,
                    Some("temporal_ordered") => CorrelationType::TemporalOrdered,
                    other => {
                        return Err(format!(
                            "unknown correlation type '{}'",
                            other.unwrap_or("?")
                        ));
                    }
                })
            }
            Some("rules") => rules = strings(value),
            Some("group-by") => group_by = strings(value),
            Some("timespan") => {
                let text = value.as_scalar_text().unwrap_or_default();
                timespan = Some(parse_duration(&text).map_err(|err| format!("timespan: {err}"))?);
            }
            Some("condition") => {
                let pairs = value
                    .as_map()
                    .ok_or("the correlation condition must be a mapping")?;
                for (op, arg) in pairs {
                    let op = op.as_scalar_text().unwrap_or_default();
                    if op == "field" {
                        field = arg.as_scalar_text();
                        continue;
                    }
                    let n = match arg.value {
                        Value::Int(n) => n as f64,
                        Value::Float(f) => f,
                        _ => return Err(format!("condition '{op}' needs a number")),
                    };
                    condition.push((op, n));
                }
            }
            Some("aliases") => {
                for (alias, per_rule) in value.as_map().ok_or("aliases must be a mapping")? {
                    let pairs = per_rule
                        .as_map()
                        .ok_or("each alias maps rule names to fields")?
                        .iter()
                        .filter_map(|(r, f)| Some((r.as_scalar_text()?, f.as_scalar_text()?)))
                        .collect();
                    aliases.push((alias.as_scalar_text().unwrap_or_default(), pairs));
                }
            }
            Some("generate") => generate = value.value == Value::Bool(true),
            Some(other) => return Err(format!("unknown correlation attribute '{other}'")),
            None => return Err("correlation keys must be strings".into()),
        }
    }
    let kind = kind.ok_or("the correlation has no type")?;
    if rules.is_empty() {
        return Err("the correlation refers to no rules".into());
    }
    let within = timespan.ok_or("the correlation has no timespan")?;
    let temporal = matches!(
        kind,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    // Counts cross a lower bound the moment an event arrives; an upper bound ("fewer than") would
    // need the window's end, which an event-driven correlator does not see.
    let count = match condition.as_slice() {
        [] if temporal => rules.len() as f64,
        [(op, n)] if op == "gte" => *n,
        [(op, n)] if op == "gt" => n.floor() + 1.0,
        [] => return Err("the correlation has no condition".into()),
        _ => {
            let ops: Vec<&str> = condition.iter().map(|(op, _)| op.as_str()).collect();
            return Err(format!(
                "correlation condition '{}' is not supported: only gte and gt (a lower bound) can fire on an event stream",
                ops.join("+")
            ));
        }
    };
    if !(1.0..=1_000_000.0).contains(&count) {
        return Err(format!(
            "correlation count {count} is out of range 1..1000000"
        ));
    }
    if kind == CorrelationType::ValueCount && field.is_none() {
        return Err("a value_count correlation needs 'field' in its condition".into());
    }
    let threshold = Threshold {
        count: count as u32,
        within,
        group_by,
        distinct: match kind {
            CorrelationType::ValueCount => field,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
                Some(STEP_FIELD.to_string())
            }
            CorrelationType::EventCount => None,
        },
        ordered: kind == CorrelationType::TemporalOrdered,
    };
    Ok((
        Correlation {
            kind,
            rules,
            aliases,
            generate,
        },
        threshold,
    ))
}
