//! Sigma field matches to socwatch conditions: wildcards and their escapes, null, and the value
//! modifiers (contains, startswith, endswith, all, re, cidr, base64, base64offset, utf16, windash,
//! exists, gt/gte/lt/lte, fieldref, cased). Everything compiles to `condition::Test`, so Sigma rules
//! share the prefilter and the evaluation of socwatch rules.

use ipnet::IpNet;

use crate::rules::condition::{self, CompareOp, Condition, RefMatch, Regex, Test};
use crate::rules::yaml::{Node, Value};

/// The field keyword searches look at: the whole line, which the prefilter searches too.
pub const KEYWORD_FIELD: &str = "raw";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Re,
    Cidr,
    Compare(CompareOp),
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    /// UTF-16LE with a byte order mark.
    Utf16,
    Windash,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Modifiers {
    kind: Kind,
    all: bool,
    cased: bool,
    fieldref: bool,
    re_flags: String,
    transforms: Vec<Transform>,
}

fn modifiers(names: &[&str]) -> Result<Modifiers, String> {
    let mut m = Modifiers {
        kind: Kind::Equals,
        all: false,
        cased: false,
        fieldref: false,
        re_flags: String::new(),
        transforms: Vec::new(),
    };
    let set_kind = |m: &mut Modifiers, kind: Kind| {
        if m.kind != Kind::Equals && m.kind != kind {
            return Err(format!("modifiers {:?} and {:?} contradict", m.kind, kind));
        }
        m.kind = kind;
        Ok(())
    };
    for &name in names {
        match name {
            "contains" => set_kind(&mut m, Kind::Contains)?,
            "startswith" => set_kind(&mut m, Kind::StartsWith)?,
            "endswith" => set_kind(&mut m, Kind::EndsWith)?,
            "re" => set_kind(&mut m, Kind::Re)?,
            "cidr" => set_kind(&mut m, Kind::Cidr)?,
            "exists" => set_kind(&mut m, Kind::Exists)?,
            "gt" => set_kind(&mut m, Kind::Compare(CompareOp::Gt))?,
            "gte" => set_kind(&mut m, Kind::Compare(CompareOp::Gte))?,
            "lt" => set_kind(&mut m, Kind::Compare(CompareOp::Lt))?,
            "lte" => set_kind(&mut m, Kind::Compare(CompareOp::Lte))?,
            "i" | "m" | "s" if m.kind == Kind::Re => m.re_flags.push_str(name),
            "all" => m.all = true,
            "cased" => m.cased = true,
            "fieldref" => m.fieldref = true,
            "base64" => m.transforms.push(Transform::Base64),
            "base64offset" => m.transforms.push(Transform::Base64Offset),
            "utf16le" | "wide" => m.transforms.push(Transform::Utf16Le),
            "utf16be" => m.transforms.push(Transform::Utf16Be),
            "utf16" => m.transforms.push(Transform::Utf16),
            "windash" => m.transforms.push(Transform::Windash),
            "expand" => {
                return Err(
                    "modifier 'expand': socwatch has no values for Sigma placeholders".into(),
                );
            }
            other => return Err(format!("unknown modifier '{other}'")),
        }
    }
    Ok(m)
}

/// One piece of a Sigma string value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
}

/// Splits a Sigma string into literal text and wildcards. `\*`, `\?` and `\\` escape; a
/// backslash before anything else is itself (Windows paths are written with single backslashes).
fn tokens(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    lit.push(next);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                out.push(if c == '*' { Tok::Star } else { Tok::One });
            }
            other => lit.push(other),
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    out
}

fn plain_text(toks: &[Tok], why: &str) -> Result<String, String> {
    let mut text = String::new();
    for tok in toks {
        match tok {
            Tok::Lit(s) => text.push_str(s),
            _ => return Err(format!("wildcards cannot be combined with '{why}'")),
        }
    }
    Ok(text)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three encodings of `bytes` as it may appear inside a longer base64 text, whatever its
/// offset: characters that depend on the unknown neighbours are cut off.
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    (0..3usize)
        .map(|shift| {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(bytes);
            let encoded = base64(&padded);
            // Leading characters carry bits of the `shift` unknown bytes before the value.
            let head = [0, 2, 3][shift];
            // Trailing characters carry bits of the unknown bytes after it, and padding.
            let tail = [0, 3, 2][padded.len() % 3];
            encoded
                .get(head..encoded.len().saturating_sub(tail))
                .unwrap_or("")
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Windows accepts `-`, `/` and dashes for command-line flags: every variant of the value.
fn windash(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let dashes: usize = toks
        .iter()
        .map(|t| match t {
            Tok::Lit(s) => s.matches('-').count(),
            _ => 0,
        })
        .sum();
    if dashes == 0 {
        return vec![toks.to_vec()];
    }
    // Each dash on its own for up to two dashes; beyond, every dash the same (5^n grows fast).
    let combos: Vec<Vec<char>> = if dashes <= 2 {
        let mut all = vec![Vec::new()];
        for _ in 0..dashes {
            all = all
                .into_iter()
                .flat_map(|prefix: Vec<char>| {
                    DASHES.iter().map(move |d| {
                        let mut next = prefix.clone();
                        next.push(*d);
                        next
                    })
                })
                .collect();
        }
        all
    } else {
        DASHES.iter().map(|d| vec![*d; dashes]).collect()
    };
    combos
        .into_iter()
        .map(|choice| {
            let mut choice = choice.into_iter();
            toks.iter()
                .map(|t| match t {
                    Tok::Lit(s) => Tok::Lit(
                        s.chars()
                            .map(|c| {
                                if c == '-' {
                                    choice.next().unwrap_or('-')
                                } else {
                                    c
                                }
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                })
                .collect()
        })
        .collect()
}

/// Applies the encoding modifiers in order. Returns the variants, any of which may match, and
/// whether they must be compared case-sensitively (base64 text is).
fn transform(toks: Vec<Tok>, transforms: &[Transform]) -> Result<(Vec<Vec<Tok>>, bool), String> {
    let mut variants = vec![toks];
    let mut bytes: Option<Vec<Vec<u8>>> = None;
    let mut cased = false;
    for t in transforms {
        match t {
            Transform::Windash => {
                if bytes.is_some() {
                    return Err("windash after an encoding modifier".into());
                }
                variants = variants.iter().flat_map(|v| windash(v)).collect();
            }
            Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16 => {
                let texts = variants
                    .iter()
                    .map(|v| plain_text(v, "utf16"))
                    .collect::<Result<Vec<_>, _>>()?;
                bytes = Some(
                    texts
                        .iter()
                        .map(|text| {
                            let mut out = Vec::new();
                            if *t == Transform::Utf16 {
                                out.extend_from_slice(&[0xff, 0xfe]);
                            }
                            for unit in text.encode_utf16() {
                                let pair = if *t == Transform::Utf16Be {
                                    unit.to_be_bytes()
                                } else {
                                    unit.to_le_bytes()
                                };
                                out.extend_from_slice(&pair);
                            }
                            out
                        })
                        .collect(),
                );
            }
            Transform::Base64 | Transform::Base64Offset => {
                let inputs = match bytes.take() {
                    Some(b) => b,
                    None => variants
                        .iter()
                        .map(|v| plain_text(v, "base64").map(String::into_bytes))
                        .collect::<Result<Vec<_>, _>>()?,
                };
                let encoded: Vec<String> = if *t == Transform::Base64 {
                    inputs.iter().map(|b| base64(b)).collect()
                } else {
                    inputs.iter().flat_map(|b| base64_offsets(b)).collect()
                };
                variants = encoded.into_iter().map(|s| vec![Tok::Lit(s)]).collect();
                cased = true;
            }
        }
    }
    if bytes.is_some() {
        return Err("utf16 modifiers need base64 or base64offset after them".into());
    }
    Ok((variants, cased))
}

/// A wildcard pattern as a `Test`: plain string tests where the shape allows, else an anchored regex.
fn pattern_test(toks: &[Tok], ignore_case: bool) -> Result<Test, String> {
    let lit = |t: &Tok| matches!(t, Tok::Lit(_));
    let text = |ts: &[Tok]| -> String {
        ts.iter()
            .map(|t| match t {
                Tok::Lit(s) => s.as_str(),
                _ => "",
            })
            .collect()
    };
    let n = toks.len();
    let needle = |needles| Ok(needles);
    if toks.iter().all(lit) {
        return needle(Test::OneOf {
            values: vec![text(toks)],
            ignore_case,
        });
    }
    if toks.iter().all(|t| *t == Tok::Star) {
        return Ok(Test::Exists(true));
    }
    let first_star = toks[0] == Tok::Star;
    let last_star = toks[n - 1] == Tok::Star;
    let inner = |from: usize, to: usize| toks[from..to].iter().all(lit);
    if first_star && last_star && n >= 3 && inner(1, n - 1) {
        return Ok(Test::Contains {
            needles: vec![text(&toks[1..n - 1])],
            ignore_case,
        });
    }
    if last_star && inner(0, n - 1) {
        return Ok(Test::StartsWith {
            needles: vec![text(&toks[..n - 1])],
            ignore_case,
        });
    }
    if first_star && inner(1, n) {
        return Ok(Test::EndsWith {
            needles: vec![text(&toks[1..])],
            ignore_case,
        });
    }
    let mut pattern = String::from(if ignore_case { "(?si)^" } else { "(?s)^" });
    for tok in toks {
        match tok {
            Tok::Lit(s) => pattern.push_str(&regex_syntax::escape(s)),
            Tok::Star => pattern.push_str(".*"),
            Tok::One => pattern.push('.'),
        }
    }
    pattern.push('$');
    let re = Regex::new(&pattern).map_err(|err| format!("wildcard pattern: {err}"))?;
    Ok(Test::Regex {
        re,
        slot: condition::NO_SLOT,
    })
}

fn field(name: &str, test: Test) -> Condition {
    Condition::Field {
        field: name.to_string(),
        test,
    }
}

/// A missing field, or an empty one: what Sigma's `null` stands for in logs.
fn null_condition(name: &str) -> Condition {
    Condition::Any(vec![
        field(name, Test::Exists(false)),
        field(
            name,
            Test::OneOf {
                values: vec![String::new()],
                ignore_case: false,
            },
        ),
    ])
}

/// Merges alternatives of the same plain shape into one test with several needles.
fn merge_alternatives(conds: Vec<Condition>) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::new();
    for cond in conds {
        if let (
            Some(Condition::Field {
                field: prev_field,
                test: prev,
            }),
            Condition::Field { field: f, test },
        ) = (out.last_mut(), &cond)
            && prev_field == f
        {
            let merged = match (prev, test) {
                (
                    Test::OneOf {
                        values: a,
                        ignore_case: ia,
                    },
                    Test::OneOf {
                        values: b,
                        ignore_case: ib,
                    },
                )
                | (
                    Test::Contains {
                        needles: a,
                        ignore_case: ia,
                    },
                    Test::Contains {
                        needles: b,
                        ignore_case: ib,
                    },
                )
                | (
                    Test::StartsWith {
                        needles: a,
                        ignore_case: ia,
                    },
                    Test::StartsWith {
                        needles: b,
                        ignore_case: ib,
                    },
                )
                | (
                    Test::EndsWith {
                        needles: a,
                        ignore_case: ia,
                    },
                    Test::EndsWith {
                        needles: b,
                        ignore_case: ib,
                    },
                ) if ia == ib => {
                    a.extend(b.iter().cloned());
                    true
                }
                _ => false,
            };
            if merged {
                continue;
            }
        }
        out.push(cond);
    }
    out
}

fn one_or(mut conds: Vec<Condition>, all: bool) -> Condition {
    if conds.len() == 1 {
        return conds.pop().expect("one element");
    }
    if all {
        Condition::All(conds)
    } else {
        Condition::Any(merge_alternatives(conds))
    }
}

/// Compiles `FIELD|mod|mod: values` (an empty field is a keyword search) to a condition.
pub fn field_match(key: &str, value: &Node) -> Result<Condition, String> {
    let mut parts = key.split('|');
    let name = parts.next().unwrap_or("");
    let mods: Vec<&str> = parts.collect();
    let mut m = modifiers(&mods)?;
    let keyword = name.is_empty();
    let name = if keyword { KEYWORD_FIELD } else { name };
    if keyword && m.kind == Kind::Equals && !m.fieldref {
        // A keyword occurs anywhere in the event.
        m.kind = Kind::Contains;
    }
    let items: Vec<&Node> = match &value.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![value],
    };
    if items.is_empty() {
        return Err(format!("field '{name}' has an empty list of values"));
    }
    let mut alternatives = Vec::new();
    for item in items {
        alternatives.push(one_value(name, &m, item)?);
    }
    Ok(one_or(alternatives, m.all))
}

fn one_value(name: &str, m: &Modifiers, item: &Node) -> Result<Condition, String> {
    if m.kind == Kind::Exists {
        return match item.value {
            Value::Bool(want) => Ok(field(name, Test::Exists(want))),
            _ => Err("'exists' takes true or false".into()),
        };
    }
    let text = match &item.value {
        Value::Null => {
            if m.kind != Kind::Equals {
                return Err("null can only be compared for equality".into());
            }
            return Ok(null_condition(name));
        }
        Value::Seq(_) | Value::Map(_) => {
            return Err(format!(
                "field '{name}' takes strings or numbers, found {}",
                item.kind()
            ));
        }
        _ => item.as_scalar_text().unwrap_or_default(),
    };
    let ignore_case = !m.cased;
    match m.kind {
        Kind::Re => {
            let flags = if m.re_flags.is_empty() {
                String::new()
            } else {
                format!("(?{})", m.re_flags)
            };
            let re = Regex::new(&format!("{flags}{text}")).map_err(|err| {
                format!("regex '{text}' is not supported by Rust's regex syntax: {err}")
            })?;
            return Ok(field(
                name,
                Test::Regex {
                    re,
                    slot: condition::NO_SLOT,
                },
            ));
        }
        Kind::Cidr => {
            let net: IpNet = text
                .parse()
                .map_err(|_| format!("bad CIDR '{text}' (expected e.g. 10.0.0.0/8)"))?;
            return Ok(field(name, Test::Cidr(vec![net])));
        }
        Kind::Compare(op) => {
            let value: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("'{text}' is not a number"))?;
            return Ok(field(name, Test::Compare { op, value }));
        }
        _ => {}
    }
    if m.fieldref {
        let how = match m.kind {
            Kind::Contains => RefMatch::Contains,
            Kind::StartsWith => RefMatch::StartsWith,
            Kind::EndsWith => RefMatch::EndsWith,
            _ => RefMatch::Equals,
        };
        return Ok(field(
            name,
            Test::FieldRef {
                other: text,
                how,
                ignore_case,
            },
        ));
    }
    let (variants, encoded) = transform(tokens(&text), &m.transforms)?;
    let ignore_case = ignore_case && !encoded;
    let mut tests = Vec::new();
    for mut toks in variants {
        if matches!(m.kind, Kind::Contains | Kind::EndsWith) && toks.first() != Some(&Tok::Star) {
            toks.insert(0, Tok::Star);
        }
        if matches!(m.kind, Kind::Contains | Kind::StartsWith) && toks.last() != Some(&Tok::Star) {
            toks.push(Tok::Star);
        }
        if toks.is_empty() {
            toks.push(Tok::Lit(String::new()));
        }
        tests.push(field(name, pattern_test(&toks, ignore_case)?));
    }
    Ok(one_or(tests, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_reference_encodings() {
        assert_eq!(base64(b"ping"), "cGluZw==");
        assert_eq!(base64(b"pin"), "cGlu");
        assert_eq!(base64(b"pi"), "cGk=");
        // pySigma's documented example: `/bin/bash` with base64offset.
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn wildcards_and_escapes() {
        assert_eq!(
            tokens(r"a*b?c\*d\?e\\*f\g"),
            vec![
                Tok::Lit("a".into()),
                Tok::Star,
                Tok::Lit("b".into()),
                Tok::One,
                Tok::Lit(r"c*d?e\".into()),
                Tok::Star,
                Tok::Lit(r"f\g".into()),
            ]
        );
    }
}
