//! YAML documents as trees that remember the line of every node, so rule problems point at file:line.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// 1-based line in the file.
    pub line: usize,
}

impl Node {
    /// A scalar as text: numbers and booleans are spelled as YAML would print them.
    pub fn as_scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses every document of a YAML text. On a syntax error, returns its line and message.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, (usize, String)> {
    let docs = MarkedYaml::load_from_str(text)
        .map_err(|err| (err.marker().line(), err.info().to_string()))?;
    Ok(docs.iter().map(convert).collect())
}

fn convert(node: &MarkedYaml<'_>) -> Node {
    let line = node.span.start.line();
    let value = match &node.data {
        YamlData::Value(scalar) => match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Int(*i),
            Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            Scalar::String(s) => Value::Str(s.to_string()),
        },
        YamlData::Sequence(items) => Value::Seq(items.iter().map(convert).collect()),
        YamlData::Mapping(entries) => Value::Map(
            entries
                .iter()
                .map(|(key, value)| (convert(key), convert(value)))
                .collect(),
        ),
        YamlData::Tagged(_, inner) => return convert(inner),
        // Aliases are resolved by the loader; representations and bad values only occur
        // with options we do not use. Treat them as null so the caller reports a type problem.
        _ => Value::Null,
    };
    Node { value, line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_of_nested_nodes() {
        let docs = parse_documents("id: x\nmatch:\n  message: 'a'\n---\nid: y\n").unwrap();
        assert_eq!(docs.len(), 2);
        let map = docs[0].as_map().unwrap();
        assert_eq!(map[1].0.line, 2);
        let inner = map[1].1.as_map().unwrap();
        assert_eq!(inner[0].1.line, 3);
        assert_eq!(docs[1].as_map().unwrap()[0].0.line, 5);
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let err = parse_documents("id: x\nmatch: [unclosed\n").unwrap_err();
        assert!(err.0 >= 2, "line {err:?}");
    }
}
