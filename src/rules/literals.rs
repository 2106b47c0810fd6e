//! Required literals of a regex: a set of strings such that every match contains at least one of them.
//! The prefilter searches lines for these (ASCII case-insensitively) and runs a rule's regexes only
//! when one occurs. Soundness over completeness: when unsure, return `None` ("cannot constrain").

use regex_syntax::hir::{Class, Hir, HirKind};

/// Bound on alternatives kept while multiplying out concatenations and classes.
const MAX_ALTERNATIVES: usize = 32;
/// Literals shorter than this hit almost every line and are worth nothing as a prefilter.
pub const MIN_USEFUL_LEN: usize = 2;

/// What is known of a sub-expression.
#[derive(Debug, Clone)]
struct Info {
    /// Every string the expression can match, when that set is small and finite.
    exact: Option<Vec<String>>,
    /// A set such that every match contains one of them.
    required: Option<Vec<String>>,
}

/// The required literals of `pattern` (lower-cased for an ASCII case-insensitive search), or `None`.
pub fn regex_literals(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let info = walk(&hir);
    let best = better(info.required, info.exact);
    best.filter(|set| score(set).0 >= MIN_USEFUL_LEN)
}

/// The literal set of a whole value: an `equals`/`contains` needle. Lower-cased like the rest.
pub fn plain_literals<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let set = normalize(values.into_iter().map(str::to_owned).collect());
    (!set.is_empty() && score(&set).0 >= MIN_USEFUL_LEN).then_some(set)
}

/// Picks the more selective of two candidate sets.
pub fn better(a: Option<Vec<String>>, b: Option<Vec<String>>) -> Option<Vec<String>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, b) => a.or(b).filter(|set| !set.iter().any(String::is_empty)),
    }
}

/// Higher is better: the shortest literal's length first, then fewer alternatives.
pub fn score(set: &[String]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(String::len).min().unwrap_or(0);
    (shortest, std::cmp::Reverse(set.len()))
}

fn walk(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info {
            exact: Some(vec![String::new()]),
            required: None,
        },
        HirKind::Literal(lit) => {
            let text = String::from_utf8_lossy(&lit.0).into_owned();
            let set = normalize(vec![text]);
            Info {
                exact: Some(set.clone()),
                required: Some(set),
            }
        }
        HirKind::Class(class) => {
            let exact = class_chars(class)
                .map(|chars| normalize(chars.into_iter().map(String::from).collect()));
            Info {
                required: exact
                    .clone()
                    .filter(|set| !set.iter().any(String::is_empty)),
                exact,
            }
        }
        HirKind::Capture(capture) => walk(&capture.sub),
        HirKind::Repetition(rep) => {
            let sub = walk(&rep.sub);
            if rep.min == 0 {
                let exact = match (rep.max, sub.exact) {
                    (Some(1), Some(mut set)) => {
                        set.push(String::new());
                        Some(normalize(set))
                    }
                    _ => None,
                };
                return Info {
                    exact,
                    required: None,
                };
            }
            let exact = match (rep.min, rep.max, &sub.exact) {
                (1, Some(1), Some(set)) => Some(set.clone()),
                _ => None,
            };
            let required = better(sub.required, sub.exact);
            Info { exact, required }
        }
        HirKind::Concat(children) => concat(children.iter().map(walk).collect()),
        HirKind::Alternation(children) => {
            let infos: Vec<Info> = children.iter().map(walk).collect();
            let exact = infos
                .iter()
                .map(|info| info.exact.clone())
                .collect::<Option<Vec<_>>>()
                .map(|sets| normalize(sets.concat()))
                .filter(|set| set.len() <= MAX_ALTERNATIVES);
            let required = infos
                .into_iter()
                .map(|info| better(info.required, info.exact))
                .collect::<Option<Vec<_>>>()
                .map(|sets| normalize(sets.concat()))
                .filter(|set| !set.iter().any(String::is_empty));
            Info { exact, required }
        }
    }
}

fn concat(infos: Vec<Info>) -> Info {
    let mut best: Option<Vec<String>> = None;
    // Runs of children whose exact sets are known multiply out into longer literals.
    let mut run: Option<Vec<String>> = Some(vec![String::new()]);
    let mut whole: Option<Vec<String>> = Some(vec![String::new()]);
    for info in &infos {
        best = better(best, info.required.clone());
        whole = match (&whole, &info.exact) {
            (Some(prefix), Some(set)) => product(prefix, set),
            _ => None,
        };
        match &info.exact {
            Some(set) => {
                run = match run.as_ref().and_then(|prefix| product(prefix, set)) {
                    Some(next) => Some(next),
                    None => {
                        // Too many alternatives: close the run and start a new one here.
                        best = better(best, run.take());
                        Some(set.clone())
                    }
                }
            }
            None => {
                best = better(best, run.take());
                run = Some(vec![String::new()]);
            }
        }
    }
    best = better(best, run);
    Info {
        exact: whole,
        required: best,
    }
}

fn product(prefixes: &[String], suffixes: &[String]) -> Option<Vec<String>> {
    if prefixes.len() * suffixes.len() > MAX_ALTERNATIVES {
        return None;
    }
    let mut out = Vec::with_capacity(prefixes.len() * suffixes.len());
    for prefix in prefixes {
        for suffix in suffixes {
            out.push(format!("{prefix}{suffix}"));
        }
    }
    Some(normalize(out))
}

/// The characters of a small class. A class of one ASCII letter in both cases counts as that letter,
/// since the prefilter ignores ASCII case.
fn class_chars(class: &Class) -> Option<Vec<char>> {
    let mut chars = Vec::new();
    match class {
        Class::Unicode(unicode) => {
            for range in unicode.ranges() {
                let span = (range.end() as u32).checked_sub(range.start() as u32)? as usize + 1;
                if chars.len() + span > MAX_ALTERNATIVES {
                    return None;
                }
                chars.extend(range.start()..=range.end());
            }
        }
        Class::Bytes(bytes) => {
            for range in bytes.ranges() {
                let span = (range.end() - range.start()) as usize + 1;
                if chars.len() + span > MAX_ALTERNATIVES || !range.end().is_ascii() {
                    return None;
                }
                chars.extend((range.start()..=range.end()).map(char::from));
            }
        }
    }
    let mut lowered: Vec<char> = chars.iter().map(char::to_ascii_lowercase).collect();
    lowered.sort_unstable();
    lowered.dedup();
    (lowered.len() <= 8).then_some(lowered)
}

fn normalize(mut set: Vec<String>) -> Vec<String> {
    for text in &mut set {
        text.make_ascii_lowercase();
    }
    set.sort_unstable();
    set.dedup();
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, expected: Option<&[&str]>) {
        let got = regex_literals(pattern);
        let expected = expected.map(|set| set.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "pattern {pattern}");
    }

    #[test]
    fn extracts_the_most_selective_literals() {
        check(
            r"Failed password for (?:invalid user )?(?P<user>\S+) from (?P<src_ip>[0-9a-fA-F.:]+)",
            Some(&["failed password for "]),
        );
        check(r"(?i)union\s+select", Some(&["select", "\u{17f}elect"]));
        check(r"(?i)\bsqlmap\b", Some(&["sqlmap", "\u{17f}qlmap"]));
        check(
            r"(?:nikto|nuclei|sqlmap)/",
            Some(&["nikto/", "nuclei/", "sqlmap/"]),
        );
        check(r"\.(?:env|git)\b", Some(&[".env", ".git"]));
        check(
            r"n[ổỔ] h[ũŨ]",
            Some(&[
                "n\u{1ed4} h\u{168}",
                "n\u{1ed4} h\u{169}",
                "n\u{1ed5} h\u{168}",
                "n\u{1ed5} h\u{169}",
            ]),
        );
    }

    #[test]
    fn refuses_to_guess_when_nothing_is_required() {
        check(r".*", None);
        check(r"\d+\.\d+", None);
        check(r"(?:abc)?d?ef?", None);
        check(r"foo|.*", None);
        check(r"x", None);
    }

    #[test]
    fn every_match_contains_one_of_the_literals() {
        let cases = [
            (r"(?i)(?:GET|POST) /wp-(?:login|admin)", "post /WP-ADMIN/x"),
            (
                r"client (?P<ip>\S+)#\d+: query(?: \(cache\))? '[^']*' denied",
                "client 1.2.3.4#53: query (cache) 'x/A/IN' denied",
            ),
            (r"(?i)\$\{jndi:", "${JNDI:ldap://x}"),
        ];
        for (pattern, line) in cases {
            let re = regex::Regex::new(pattern).unwrap();
            assert!(re.is_match(line));
            let lits = regex_literals(pattern).expect(pattern);
            let lower = line.to_ascii_lowercase();
            assert!(
                lits.iter().any(|lit| lower.contains(lit.as_str())),
                "{pattern}: {lits:?}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Small regexes built from pieces that exercise every branch of `walk`.
    fn pattern() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            "[a-cA-C]{1,4}".prop_map(|s| s),
            Just(r"\d+".to_string()),
            Just(r"\s".to_string()),
            Just(".".to_string()),
            Just("[xy]".to_string()),
            Just("ổ".to_string()),
            Just(r"\b".to_string()),
        ];
        let piece = (
            atom,
            prop_oneof![Just(""), Just("?"), Just("*"), Just("+"), Just("{2}")],
        )
            .prop_map(|(a, q)| {
                if q.is_empty() {
                    a
                } else {
                    format!("(?:{a}){q}")
                }
            });
        let seq = proptest::collection::vec(piece, 1..5).prop_map(|v| v.concat());
        (proptest::collection::vec(seq, 1..3), any::<bool>()).prop_map(|(alts, ci)| {
            let body = alts.join("|");
            if ci { format!("(?i)(?:{body})") } else { body }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_match_contains_a_required_literal(pattern in pattern(), text in "[a-cA-Cxyổ0-9 ]{0,12}") {
            let re = regex::Regex::new(&pattern).unwrap();
            if let (Some(found), Some(lits)) = (re.find(&text), regex_literals(&pattern)) {
                let hay = text.to_ascii_lowercase();
                prop_assert!(
                    lits.iter().any(|lit| hay.contains(lit.as_str())),
                    "{pattern} matched {:?} in {text:?} but no literal of {lits:?} occurs", found.as_str()
                );
            }
        }
    }
}
