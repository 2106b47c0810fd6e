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

    /// The built-in template's text (what a `template_dir` copy starts from): both reports are a
    /// document of sections and share one layout.
    pub fn builtin_source(self) -> &'static str {
        include_str!("templates/report.html")
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
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

/// The built-in template's page (one layout for both reports).
pub fn builtin(doc: &Document) -> Result<String, HtmlError> {
    Ok(ReportPage {
        lang: doc.lang,
        title: &doc.title,
        subtitle: &doc.subtitle,
        generated: &doc.generated,
        sections: &doc.sections,
    }
    .render()?)
}

/// `source` (a template's text, named `name` in errors) rendered with MiniJinja, values escaped.
pub fn with_source(
    kind: Kind,
    name: &str,
    source: &str,
    doc: &Document,
) -> Result<String, HtmlError> {
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
pub fn render(
    kind: Kind,
    doc: &Document,
    template_dir: Option<&Path>,
) -> Result<String, HtmlError> {
    let Some(dir) = template_dir else {
        return builtin(doc);
    };
    let path = dir.join(kind.file_name());
    match std::fs::read_to_string(&path) {
        Ok(source) => with_source(kind, &path.display().to_string(), &source, doc),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => builtin(doc),
        Err(source) => Err(HtmlError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lang;
    use crate::reports::{Authors, MonitoringData, monitoring_document};

    fn doc(unit: &str) -> Document {
        let at = "2026-11-22T03:00:00Z".parse().unwrap();
        let data = MonitoringData {
            since: at,
            until: at,
            incidents: Vec::new(),
            cases: Vec::new(),
            deliveries: Vec::new(),
            undelivered: Vec::new(),
            log_size: 3,
            checkpoint: Some((3, "socwatch/vm\n3\nroot\n\n— socwatch/vm sig\n".into())),
        };
        let authors = Authors {
            unit: unit.into(),
            agency: "Sở Khoa học và Công nghệ".into(),
        };
        monitoring_document(&data, &authors, Lang::Vi, at)
    }

    /// The two engines spell escapes differently (askama `&#60;`, MiniJinja `&lt;`, `&#x2f;`).
    fn unescaped(html: &str) -> String {
        [
            ("&#x2f;", "/"),
            ("&#60;", "<"),
            ("&lt;", "<"),
            ("&#62;", ">"),
            ("&gt;", ">"),
            ("&#34;", "\""),
            ("&quot;", "\""),
            ("&#39;", "'"),
            ("&#x27;", "'"),
            ("&#38;", "&"),
            ("&amp;", "&"),
        ]
        .iter()
        .fold(html.to_string(), |text, (from, to)| text.replace(from, to))
    }

    /// The built-in files are a working start for `template_dir`: MiniJinja renders them as askama
    /// does, up to the spelling of escapes.
    #[test]
    fn askama_and_minijinja_render_the_built_in_templates_alike() {
        for kind in [Kind::Incident, Kind::Monitoring] {
            let doc = doc("Trung tâm Giám sát");
            let compiled = builtin(&doc).unwrap();
            let runtime = with_source(kind, "copy", kind.builtin_source(), &doc).unwrap();
            assert_eq!(unescaped(&compiled), unescaped(&runtime), "{kind:?}");
            assert!(compiled.contains("Trung tâm Giám sát"));
        }
    }

    #[test]
    fn both_engines_escape_every_value() {
        let doc = doc("<b onmouseover=\"x\">&");
        for kind in [Kind::Incident, Kind::Monitoring] {
            for html in [
                builtin(&doc).unwrap(),
                with_source(kind, "copy", kind.builtin_source(), &doc).unwrap(),
            ] {
                assert!(!html.contains("<b onmouseover"), "{html}");
                assert!(!html.contains("\"x\""), "{html}");
            }
        }
    }
}
