//! A report [`Document`] as HTML: the askama templates compiled into the binary, or, when
//! `[reports] template_dir` holds a file of the same name, that file rendered with MiniJinja.
//!
//! Why MiniJinja for the run-time templates: it reads the same Jinja syntax as askama, so the
//! built-in files are the starting point of an agency's own (a test renders them with both and
//! expects the same bytes); it escapes every value of an `.html` template by default, so a log
//! line can never become markup; and it runs no code of the template's author (no file access,
//! no Rust), unlike a template compiled into the binary.

use std::path::Path;

use askama::Template;

use super::Document;

/// Which report: its template's file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Incident,
    Monitoring,
}

impl Kind {
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Incident => "incident-report.html",
            Kind::Monitoring => "monitoring-report.html",
        }
    }

    /// The built-in template's text (what a `template_dir` copy starts from).
    pub fn builtin_source(self) -> &'static str {
        match self {
            Kind::Incident => include_str!("templates/incident-report.html"),
            Kind::Monitoring => include_str!("templates/monitoring-report.html"),
        }
    }
}

#[derive(Template)]
#[template(path = "incident-report.html")]
struct IncidentPage<'a> {
    lang: &'a str,
    title: &'a str,
    subtitle: &'a str,
    generated: &'a str,
    sections: &'a [super::Section],
}

#[derive(Template)]
#[template(path = "monitoring-report.html")]
struct MonitoringPage<'a> {
    lang: &'a str,
    title: &'a str,
    subtitle: &'a str,
    generated: &'a str,
    sections: &'a [super::Section],
}

/// Rendering failed: a template of `template_dir` could not be read or has an error.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template {path}: {source}")]
    Template {
        path: String,
        source: minijinja::Error,
    },
    #[error("built-in template: {0}")]
    Builtin(#[from] askama::Error),
}

/// The built-in template's page.
pub fn builtin(kind: Kind, doc: &Document) -> Result<String, HtmlError> {
    let (lang, title, subtitle, generated, sections) = (
        doc.lang,
        doc.title.as_str(),
        doc.subtitle.as_str(),
        doc.generated.as_str(),
        doc.sections.as_slice(),
    );
    Ok(match kind {
        Kind::Incident => IncidentPage {
            lang,
            title,
            subtitle,
            generated,
            sections,
        }
        .render()?,
        Kind::Monitoring => MonitoringPage {
            lang,
            title,
            subtitle,
            generated,
            sections,
        }
        .render()?,
    })
}

/// `source` (a template's text, named `name` in errors) rendered with MiniJinja, values escaped.
pub fn with_source(kind: Kind, name: &str, source: &str, doc: &Document) -> Result<String, HtmlError> {
    let error = |source| HtmlError::Template {
        path: name.to_string(),
        source,
    };
    let mut env = minijinja::Environment::new();
    // The auto-escape choice goes by the template's name: always the `.html` one.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template_owned(kind.file_name(), source.to_string())
        .map_err(error)?;
    env.get_template(kind.file_name())
        .and_then(|t| t.render(minijinja::value::Serde(doc)))
        .map_err(error)
}

/// The page: `template_dir`'s file when there is one, else the built-in template.
pub fn render(kind: Kind, doc: &Document, template_dir: Option<&Path>) -> Result<String, HtmlError> {
    let Some(dir) = template_dir else {
        return builtin(kind, doc);
    };
    let path = dir.join(kind.file_name());
    match std::fs::read_to_string(&path) {
        Ok(source) => with_source(kind, &path.display().to_string(), &source, doc),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => builtin(kind, doc),
        Err(source) => Err(HtmlError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}
