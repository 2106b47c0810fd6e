//! Reads rule files and the config file from disk (the IO side of `rules` and `config`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigProblem};
use crate::model::Lang;
use crate::rules::{Problem, RuleSet, RuleSource};

/// Why rules or config could not be loaded: every problem found, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<String>);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for Invalid {}

/// Reads rule files from files and folders (recursively, `*.yml`/`*.yaml`, in name order).
/// An empty `paths` means the shipped rules. Problems reading them are worded in `lang`.
pub fn rule_sources(paths: &[PathBuf], lang: Lang) -> Result<Vec<RuleSource>, Vec<Problem>> {
    if paths.is_empty() {
        return Ok(crate::rules::shipped_sources());
    }
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        collect(path, &mut files, &mut problems, true, lang);
    }
    let mut sources = Vec::new();
    for file in files {
        match fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => sources.push(RuleSource {
                    name: file.display().to_string(),
                    text,
                }),
                Err(err) => problems.push(problem(
                    &file,
                    0,
                    crate::tr!(lang, RuleNotUtf8, error = err),
                )),
            },
            Err(err) => problems.push(problem(
                &file,
                0,
                crate::tr!(lang, RuleCannotRead, error = err),
            )),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems)
    }
}

fn problem(path: &Path, line: usize, message: String) -> Problem {
    Problem {
        file: path.display().to_string(),
        line,
        message,
    }
}

fn collect(
    path: &Path,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
    named: bool,
    lang: Lang,
) {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            problems.push(problem(
                path,
                0,
                crate::tr!(lang, RuleCannotRead, error = err),
            ));
            return;
        }
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match fs::read_dir(path) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(err) => {
                problems.push(problem(
                    path,
                    0,
                    crate::tr!(lang, RuleCannotList, error = err),
                ));
                return;
            }
        };
        entries.sort();
        for entry in entries {
            collect(&entry, files, problems, false, lang);
        }
    } else if named
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        )
    {
        files.push(path.to_path_buf());
    }
}

/// Loads and compiles rules; every problem of every file on failure (for the daemon's log: English).
pub fn rules(paths: &[PathBuf]) -> Result<RuleSet, Invalid> {
    rules_in(paths, Lang::En)
}

/// [`rules`], with problems reading the files worded in `lang` for the CLI. What the rule parser
/// says about a file's content stays English: it names YAML keys and grammar terms.
pub fn rules_in(paths: &[PathBuf], lang: Lang) -> Result<RuleSet, Invalid> {
    let sources = rule_sources(paths, lang)
        .map_err(|problems| Invalid(problems.iter().map(ToString::to_string).collect()))?;
    RuleSet::build(&sources)
        .map_err(|problems| Invalid(problems.iter().map(ToString::to_string).collect()))
}

/// Reads the config file, or the built-in defaults when there is none (for the daemon's log: English).
pub fn config(path: Option<&Path>) -> Result<Config, Invalid> {
    config_in(path, Lang::En)
}

/// [`config`], with a file that cannot be read worded in `lang`; what the config parser says
/// about its content stays English (it names TOML keys).
pub fn config_in(path: Option<&Path>, lang: Lang) -> Result<Config, Invalid> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = fs::read_to_string(path).map_err(|err| {
        Invalid(vec![crate::tr!(
            lang,
            ConfigCannotRead,
            path = path.display(),
            error = err
        )])
    })?;
    Config::parse(&path.display().to_string(), &text)
        .map_err(|problems| Invalid(problems.iter().map(ConfigProblem::to_string).collect()))
}
