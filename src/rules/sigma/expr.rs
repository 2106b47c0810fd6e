//! Sigma detection conditions (`selection and not 1 of filter_*`) to a condition tree over the
//! compiled search identifiers: and, or, not, parentheses, `1 of`/`all of` a pattern or `them`.

use std::collections::BTreeMap;

use crate::rules::condition::Condition;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' | ' ' | '\t' | '\n' | '\r' => {
                if !word.is_empty() {
                    out.push(Token::Word(std::mem::take(&mut word)));
                }
                match c {
                    '(' => out.push(Token::Open),
                    ')' => out.push(Token::Close),
                    _ => {}
                }
            }
            '|' => {
                return Err(
                    "aggregations ('| count() ...', 'near') are Sigma v1 syntax; \
                            write a Sigma correlation rule instead"
                        .into(),
                );
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(Token::Word(word));
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    idents: &'a BTreeMap<String, Condition>,
}

fn is(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.and()?];
        while is(self.peek(), "or") {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Condition::Any(terms)
        })
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.not()?];
        while is(self.peek(), "and") {
            self.at += 1;
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Condition::All(terms)
        })
    }

    fn not(&mut self) -> Result<Condition, String> {
        if is(self.peek(), "not") {
            self.at += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, String> {
        let token = self.peek().cloned();
        self.at += 1;
        match token {
            None => Err("the condition ends too early".into()),
            Some(Token::Close) => Err("unexpected ')' in the condition".into()),
            Some(Token::Open) => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("missing ')' in the condition".into());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Word(word)) => {
                if is(self.peek(), "of") {
                    self.at += 1;
                    let Some(Token::Word(pattern)) = self.peek().cloned() else {
                        return Err(format!("'{word} of' needs a name pattern or 'them'"));
                    };
                    self.at += 1;
                    return self.quantified(&word, &pattern);
                }
                match word.to_ascii_lowercase().as_str() {
                    "and" | "or" | "of" => Err(format!("unexpected '{word}' in the condition")),
                    _ => self.idents.get(&word).cloned().ok_or_else(|| {
                        format!("the condition names '{word}', which the detection does not define")
                    }),
                }
            }
        }
    }

    fn quantified(&self, quantifier: &str, pattern: &str) -> Result<Condition, String> {
        let chosen: Vec<Condition> = self
            .idents
            .iter()
            .filter(|(name, _)| {
                if pattern == "them" {
                    !name.starts_with('_')
                } else {
                    glob(pattern, name)
                }
            })
            .map(|(_, cond)| cond.clone())
            .collect();
        if chosen.is_empty() {
            return Err(format!(
                "'{quantifier} of {pattern}' matches no search identifier"
            ));
        }
        match quantifier.to_ascii_lowercase().as_str() {
            "1" | "any" => Ok(Condition::Any(chosen)),
            "all" => Ok(Condition::All(chosen)),
            other => Err(format!(
                "'{other} of': only '1 of' and 'all of' are Sigma conditions"
            )),
        }
    }
}

/// Sigma's identifier patterns: `*` is any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Parses one condition expression over the named search identifiers.
pub fn parse(text: &str, idents: &BTreeMap<String, Condition>) -> Result<Condition, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("empty condition".into());
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        idents,
    };
    let cond = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!(
            "unexpected {:?} in the condition '{text}'",
            parser.tokens[parser.at]
        ));
    }
    Ok(cond)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::Test;

    fn ident(name: &str) -> Condition {
        Condition::Field {
            field: name.into(),
            test: Test::Exists(true),
        }
    }

    /// A compact picture of a tree: names of the fields tested, with `&`, `|`, `!`.
    fn show(c: &Condition) -> String {
        match c {
            Condition::Field { field, .. } => field.clone(),
            Condition::All(cs) => {
                format!("({})", cs.iter().map(show).collect::<Vec<_>>().join("&"))
            }
            Condition::Any(cs) => {
                format!("({})", cs.iter().map(show).collect::<Vec<_>>().join("|"))
            }
            Condition::Not(c) => format!("!{}", show(c)),
            Condition::Gated { inner, .. } => show(inner),
        }
    }

    #[test]
    fn condition_forms() {
        let idents: BTreeMap<String, Condition> = ["sel", "sel_a", "sel_b", "filter_x", "_hidden"]
            .iter()
            .map(|n| (n.to_string(), ident(n)))
            .collect();
        let check = |text: &str, want: &str| {
            assert_eq!(show(&parse(text, &idents).unwrap()), want, "{text}");
        };
        check("sel", "sel");
        check("sel and not filter_x", "(sel&!filter_x)");
        check("sel or sel_a and sel_b", "(sel|(sel_a&sel_b))");
        check("(sel or sel_a) and sel_b", "((sel|sel_a)&sel_b)");
        check("not not sel", "!!sel");
        check("1 of sel_*", "(sel_a|sel_b)");
        check("all of sel_*", "(sel_a&sel_b)");
        check("1 of sel*", "(sel|sel_a|sel_b)");
        check("all of them", "(filter_x&sel&sel_a&sel_b)");
        check(
            "1 of them and not _hidden",
            "((filter_x|sel|sel_a|sel_b)&!_hidden)",
        );
        check("sel AND NOT filter_x", "(sel&!filter_x)");
        for bad in [
            "",
            "sel and",
            "(sel",
            "sel)",
            "unknown",
            "1 of nothing*",
            "2 of sel*",
            "sel | count() > 5",
        ] {
            assert!(parse(bad, &idents).is_err(), "{bad}");
        }
    }
}
