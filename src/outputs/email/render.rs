//! Alert and digest emails as text: subject, plain-text body and HTML alternative, in Vietnamese or
//! English. Pure: no IO, no clock; every value that comes from a log line is made inert here.

use jiff::Timestamp;

use crate::cases::Case;
use crate::model::{Incident, Lang, Severity, display_zone};
use crate::report::{human_time, severity_name};

/// Subjects longer than this are cut (with `…`): mail clients show ~80 characters, and a title or
/// group value from a rule or a log line must not make a header of unbounded length.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// An evidence line in an email is cut here; the full line stays in the store (`incidents show`).
pub const MAX_EVIDENCE_CHARS: usize = 2000;
/// A digest lists at most this many incidents (the most severe first) and counts the rest.
pub const MAX_DIGEST_ROWS: usize = 200;

/// What an email needs beyond the incidents themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// Language of subject, labels and body (`daemon.lang`).
    pub lang: Lang,
    /// The operating unit (`daemon.unit`), named in digests.
    pub unit: String,
    /// This machine (`daemon.host`), named in digests.
    pub host: String,
    /// The evidence log's latest signed checkpoint, quoted in the footer so every recipient
    /// holds one (`socwatch verify`).
    pub checkpoint: Option<String>,
}

/// The plain-text footer: the notice, then the checkpoint when there is one.
fn text_footer(l: &Labels, ctx: &RenderContext) -> String {
    let mut footer = format!("\n-- \n{}\n", l.footer);
    if let Some(note) = &ctx.checkpoint {
        footer.push_str(&format!("\n{}:\n{note}", l.checkpoint));
    }
    footer
}

/// The HTML footer, ending the document.
fn html_footer(l: &Labels, ctx: &RenderContext) -> String {
    let mut footer = format!(
        "<p style=\"color:#777;font-size:11px\">{}</p>\n",
        h(l.footer)
    );
    if let Some(note) = &ctx.checkpoint {
        footer.push_str(&format!(
            "<p style=\"color:#777;font-size:11px\">{}:</p>\n<pre style=\"color:#777;font-size:11px\">{}</pre>\n",
            h(l.checkpoint),
            h(note)
        ));
    }
    footer.push_str("</body>\n</html>\n");
    footer
}

/// One email, ready for a transport: the subject (single line, bounded), a plain-text body and
/// an HTML alternative of the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The email for one incident.
pub fn render_alert(incident: &Incident, ctx: &RenderContext) -> RenderedEmail {
    let l = Labels::of(ctx.lang);
    let title = title(incident, ctx.lang);
    let subject = alert_subject(incident, ctx.lang);

    let mut rows: Vec<(&str, String)> = vec![
        (
            l.severity,
            severity_name(incident.severity, ctx.lang).to_string(),
        ),
        (l.title, title.to_string()),
        (l.rule, incident.rule_id.clone()),
        (l.first_seen, human_time(incident.first_seen)),
        (l.last_seen, human_time(incident.last_seen)),
        (l.count, incident.count.to_string()),
    ];
    if !incident.group.is_empty() {
        rows.push((l.group, crate::report::group_text(incident)));
    }
    rows.push((l.host, or_dash(&incident.host)));
    rows.push((l.system, system_text(incident, ctx.lang)));
    if !incident.unit.is_empty() {
        rows.push((l.unit, incident.unit.clone()));
    }
    if !incident.tags.is_empty() {
        rows.push((l.tags, incident.tags.join(", ")));
    }
    if let Some(author) = incident.author.as_deref().filter(|a| !a.is_empty()) {
        rows.push((l.author, author.to_string()));
    }
    rows.push((l.id, incident.id.clone()));
    let ack = ack_command(&incident.id);
    let more = (incident.evidence_omitted > 0).then(|| l.more_lines(incident.evidence_omitted));

    // Text: one `label: value` per line, values made inert so none can start a new line.
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!("{}\n\n", inert(&subject_line(incident, ctx.lang)));
    for (label, value) in &rows {
        let pad = " ".repeat(width - label.chars().count());
        text.push_str(&format!("{label}:{pad} {}\n", inert(value)));
    }
    text.push_str(&format!("\n{}:\n", l.evidence));
    for line in &incident.evidence {
        text.push_str(&format!(
            "  {}  {}  {}\n",
            evidence_time(line.ts),
            inert(&line.source),
            inert(&cut(&line.line, MAX_EVIDENCE_CHARS))
        ));
    }
    if incident.evidence.is_empty() {
        text.push_str("  -\n");
    }
    if let Some(more) = &more {
        text.push_str(&format!("  {more}\n"));
    }
    text.push_str(&format!("\n{}:\n  {}\n", l.to_ack, inert(&ack)));
    text.push_str(&text_footer(&l, ctx));

    // HTML: the same content; every value escaped after being made inert, no link and no remote
    // resource, so a log line can neither add markup nor make the client fetch anything.
    let mut html = html_head(ctx.lang, &subject);
    html.push_str(&format!(
        "<h2 style=\"{}\">{}</h2>\n<table style=\"border-collapse:collapse\">\n",
        severity_style(incident.severity),
        h(&subject_line(incident, ctx.lang))
    ));
    for (label, value) in &rows {
        html.push_str(&format!(
            "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{}</th><td>{}</td></tr>\n",
            h(label),
            h(value)
        ));
    }
    html.push_str(&format!("</table>\n<h3>{}</h3>\n", h(l.evidence)));
    html.push_str(
        "<table style=\"border-collapse:collapse;font-family:monospace;font-size:12px\">\n",
    );
    for line in &incident.evidence {
        html.push_str(&format!(
            "<tr><td style=\"padding:1px 8px 1px 0;white-space:nowrap;vertical-align:top\">{}</td><td style=\"padding:1px 8px 1px 0;vertical-align:top\">{}</td><td style=\"word-break:break-all\">{}</td></tr>\n",
            h(&evidence_time(line.ts)),
            h(&line.source),
            h(&cut(&line.line, MAX_EVIDENCE_CHARS))
        ));
    }
    html.push_str("</table>\n");
    if let Some(more) = &more {
        html.push_str(&format!("<p>{}</p>\n", h(more)));
    }
    html.push_str(&format!(
        "<h3>{}</h3>\n<pre style=\"background:#f4f4f4;padding:6px\">{}</pre>\n",
        h(l.to_ack),
        h(&ack)
    ));
    html.push_str(&html_footer(&l, ctx));

    RenderedEmail {
        subject,
        text,
        html,
    }
}

/// The email for one case: what the attack is (entities, tactics, how many incidents), its
/// incidents, and the evidence of `trigger`, the incident that raised the alert. One message per
/// case step (opened, severity raised, reopened) instead of one per incident.
pub fn render_case(case: &Case, trigger: &Incident, ctx: &RenderContext) -> RenderedEmail {
    let l = Labels::of(ctx.lang);
    let vi = ctx.lang == Lang::Vi;
    let case_title = match (ctx.lang, &case.title_vi) {
        (Lang::Vi, Some(t)) if !t.is_empty() => t.as_str(),
        _ => case.title.as_str(),
    };
    let mut line = case_title.to_string();
    if !case.host.is_empty() {
        line.push_str(&format!(" - {}", case.host));
    }
    if !case.system.is_empty() {
        line.push_str(&format!(" ({})", case.system));
    }
    let subject = clean_subject(&format!(
        "[socwatch][{}] {}",
        subject_severity(case.severity, ctx.lang),
        line
    ));
    let mut severity = severity_name(case.severity, ctx.lang).to_string();
    if case.progressed {
        severity.push_str(if vi {
            " (nâng một bậc: tấn công tiến triển)"
        } else {
            " (raised one step: the attack progressed)"
        });
    }
    let entities: Vec<String> = case
        .entities
        .iter()
        .map(|(kind, values)| format!("{kind}={}", values.join(", ")))
        .collect();
    let rows: Vec<(&str, String)> = vec![
        (l.severity, severity),
        (l.title, case_title.to_string()),
        (
            if vi { "Đối tượng" } else { "Entities" },
            entities.join("; "),
        ),
        (
            if vi { "Chiến thuật" } else { "Tactics" },
            or_dash(&case.tactics.join(" → ")),
        ),
        (l.first_seen, human_time(case.first_seen)),
        (l.last_seen, human_time(case.last_seen)),
        (
            if vi { "Số sự cố" } else { "Incidents" },
            case.incident_count().to_string(),
        ),
        (l.host, or_dash(&case.host)),
        (
            l.system,
            match (case.level, vi) {
                (0, _) => or_dash(&case.system),
                (level, true) => format!("{} (cấp độ {level})", or_dash(&case.system)),
                (level, false) => format!("{} (level {level})", or_dash(&case.system)),
            },
        ),
        (l.unit, or_dash(&case.unit)),
        (if vi { "Mã vụ việc" } else { "Case id" }, case.id.clone()),
    ];
    let incident_rows: Vec<[String; 5]> = case
        .incidents
        .iter()
        .map(|i| {
            let title = match (ctx.lang, &i.title_vi) {
                (Lang::Vi, Some(t)) if !t.is_empty() => t.clone(),
                _ => i.title.clone(),
            };
            [
                severity_name(i.severity, ctx.lang).to_string(),
                title,
                i.rule_id.clone(),
                i.count.to_string(),
                human_time(i.first_seen),
            ]
        })
        .collect();
    let ack = format!("socwatch cases ack {}", case.id);
    let incidents_label = if vi { "Các sự cố" } else { "Incidents" };
    let evidence_label = format!("{} ({})", l.evidence, trigger.rule_id);

    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!("{}\n\n", inert(&line));
    for (label, value) in &rows {
        let pad = " ".repeat(width - label.chars().count());
        text.push_str(&format!("{label}:{pad} {}\n", inert(value)));
    }
    text.push_str(&format!("\n{incidents_label}:\n"));
    for row in &incident_rows {
        let row: Vec<String> = row.iter().map(|cell| inert(cell)).collect();
        text.push_str(&format!("  {}\n", row.join("  ")));
    }
    text.push_str(&format!("\n{}:\n", inert(&evidence_label)));
    for ev in &trigger.evidence {
        text.push_str(&format!(
            "  {}  {}  {}\n",
            evidence_time(ev.ts),
            inert(&ev.source),
            inert(&cut(&ev.line, MAX_EVIDENCE_CHARS))
        ));
    }
    text.push_str(&format!("\n{}:\n  {}\n", l.to_ack, inert(&ack)));
    text.push_str(&text_footer(&l, ctx));

    let mut html = html_head(ctx.lang, &subject);
    html.push_str(&format!(
        "<h2 style=\"{}\">{}</h2>\n<table style=\"border-collapse:collapse\">\n",
        severity_style(case.severity),
        h(&line)
    ));
    for (label, value) in &rows {
        html.push_str(&format!(
            "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{}</th><td>{}</td></tr>\n",
            h(label),
            h(value)
        ));
    }
    html.push_str(&format!(
        "</table>\n<h3>{}</h3>\n<table style=\"border-collapse:collapse\">\n",
        h(incidents_label)
    ));
    for row in &incident_rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!(
                "<td style=\"padding:1px 8px 1px 0\">{}</td>",
                h(cell)
            ));
        }
        html.push_str("</tr>\n");
    }
    html.push_str(&format!("</table>\n<h3>{}</h3>\n", h(&evidence_label)));
    html.push_str(
        "<table style=\"border-collapse:collapse;font-family:monospace;font-size:12px\">\n",
    );
    for ev in &trigger.evidence {
        html.push_str(&format!(
            "<tr><td style=\"padding:1px 8px 1px 0;white-space:nowrap;vertical-align:top\">{}</td><td style=\"padding:1px 8px 1px 0;vertical-align:top\">{}</td><td style=\"word-break:break-all\">{}</td></tr>\n",
            h(&evidence_time(ev.ts)),
            h(&ev.source),
            h(&cut(&ev.line, MAX_EVIDENCE_CHARS))
        ));
    }
    html.push_str(&format!(
        "</table>\n<h3>{}</h3>\n<pre style=\"background:#f4f4f4;padding:6px\">{}</pre>\n",
        h(l.to_ack),
        h(&ack)
    ));
    html.push_str(&html_footer(&l, ctx));
    RenderedEmail {
        subject,
        text,
        html,
    }
}

/// One email for the incidents flood control folded between `window_start` and `window_end`.
/// `folded_total` is how many were folded, which may be more than `incidents` (the flood gate
/// keeps a bounded list); the most severe are listed first, at most [`MAX_DIGEST_ROWS`].
pub fn render_digest(
    incidents: &[Incident],
    folded_total: usize,
    window_start: Timestamp,
    window_end: Timestamp,
    ctx: &RenderContext,
) -> RenderedEmail {
    let l = Labels::of(ctx.lang);
    let total = folded_total.max(incidents.len());
    let mut sorted: Vec<&Incident> = incidents.iter().collect();
    sorted.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.first_seen.cmp(&b.first_seen))
            .then(a.id.cmp(&b.id))
    });
    let highest = sorted.first().map(|i| i.severity);
    let period = format!("{} - {}", human_time(window_start), human_time(window_end));

    let mut subject = format!("[socwatch][{}] {}", l.digest, l.incidents(total));
    if let Some(highest) = highest {
        subject.push_str(&format!(
            ", {} {}",
            l.highest,
            subject_severity(highest, ctx.lang)
        ));
    }
    subject.push_str(&format!(" ({period})"));
    let place = [ctx.host.as_str(), ctx.unit.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if !place.is_empty() {
        subject.push_str(&format!(" - {place}"));
    }
    let subject = clean_subject(&subject);

    let per_severity: Vec<(Severity, usize)> = Severity::ALL
        .iter()
        .rev()
        .map(|s| (*s, incidents.iter().filter(|i| i.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    let totals = per_severity
        .iter()
        .map(|(s, n)| format!("{}: {n}", severity_name(*s, ctx.lang)))
        .collect::<Vec<_>>()
        .join(", ");
    let listed = &sorted[..sorted.len().min(MAX_DIGEST_ROWS)];
    let unlisted = total - listed.len();
    let intro = l.digest_intro(total, &period);
    let list_command = format!(
        "socwatch incidents list --since {}",
        window_start
            .to_zoned(display_zone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
    );
    let ack = ack_command("<ID>");

    let mut text = format!("{intro}\n\n");
    if !totals.is_empty() {
        text.push_str(&format!("{}: {}\n\n", l.totals, totals));
    }
    for (n, incident) in listed.iter().enumerate() {
        text.push_str(&format!(
            "{}. [{}] {}\n   {}: {} | {}: {} | {}: {} - {}\n   {}: {}\n",
            n + 1,
            severity_name(incident.severity, ctx.lang),
            inert(&cut(title(incident, ctx.lang), 300)),
            l.group,
            inert(&cut(&group_or_dash(incident), 300)),
            l.count,
            incident.count,
            l.seen,
            human_time(incident.first_seen),
            human_time(incident.last_seen),
            l.id,
            inert(&incident.id),
        ));
    }
    if unlisted > 0 {
        text.push_str(&format!("\n{}\n", l.not_listed(unlisted)));
    }
    text.push_str(&format!(
        "\n{}:\n  {}\n{}:\n  {}\n",
        l.to_list,
        list_command,
        l.to_ack,
        inert(&ack)
    ));
    text.push_str(&text_footer(&l, ctx));

    let mut html = html_head(ctx.lang, &subject);
    html.push_str(&format!("<h2>{}</h2>\n<p>{}</p>\n", h(&subject), h(&intro)));
    if !totals.is_empty() {
        html.push_str(&format!("<p><b>{}:</b> {}</p>\n", h(l.totals), h(&totals)));
    }
    html.push_str("<table style=\"border-collapse:collapse;font-size:13px\">\n<tr>");
    for head in [
        l.severity,
        l.title,
        l.group,
        l.count,
        l.first_seen,
        l.last_seen,
        l.id,
    ] {
        html.push_str(&format!(
            "<th style=\"text-align:left;padding:2px 8px;border-bottom:1px solid #999\">{}</th>",
            h(head)
        ));
    }
    html.push_str("</tr>\n");
    for incident in listed {
        html.push_str(&format!(
            "<tr><td style=\"padding:2px 8px;{}\">{}</td><td style=\"padding:2px 8px\">{}</td><td style=\"padding:2px 8px\">{}</td><td style=\"padding:2px 8px\">{}</td><td style=\"padding:2px 8px\">{}</td><td style=\"padding:2px 8px\">{}</td><td style=\"padding:2px 8px;font-family:monospace\">{}</td></tr>\n",
            severity_style(incident.severity),
            h(severity_name(incident.severity, ctx.lang)),
            h(&cut(title(incident, ctx.lang), 300)),
            h(&cut(&group_or_dash(incident), 300)),
            incident.count,
            h(&human_time(incident.first_seen)),
            h(&human_time(incident.last_seen)),
            h(&incident.id),
        ));
    }
    html.push_str("</table>\n");
    if unlisted > 0 {
        html.push_str(&format!("<p>{}</p>\n", h(&l.not_listed(unlisted))));
    }
    html.push_str(&format!(
        "<p>{}:</p>\n<pre style=\"background:#f4f4f4;padding:6px\">{}</pre>\n<p>{}:</p>\n<pre style=\"background:#f4f4f4;padding:6px\">{}</pre>\n",
        h(l.to_list),
        h(&list_command),
        h(l.to_ack),
        h(&ack)
    ));
    html.push_str(&html_footer(&l, ctx));

    RenderedEmail {
        subject,
        text,
        html,
    }
}

/// `[socwatch][Cao] Dò mật khẩu SSH từ 203.0.113.7 - portal-01 (dvc-portal, cấp độ 3)`.
fn alert_subject(incident: &Incident, lang: Lang) -> String {
    clean_subject(&format!(
        "[socwatch][{}] {}",
        subject_severity(incident.severity, lang),
        subject_line(incident, lang)
    ))
}

/// The subject without its tags: title, main group value, host, system and level; empty parts
/// are left out.
fn subject_line(incident: &Incident, lang: Lang) -> String {
    let mut line = title(incident, lang).to_string();
    if let Some(value) = main_group_value(incident) {
        let from = match lang {
            Lang::Vi => "từ",
            Lang::En => "from",
        };
        line.push_str(&format!(" {from} {value}"));
    }
    if !incident.host.is_empty() {
        line.push_str(&format!(" - {}", incident.host));
    }
    let mut place = Vec::new();
    if !incident.system.is_empty() {
        place.push(incident.system.clone());
    }
    if incident.level > 0 {
        place.push(match lang {
            Lang::Vi => format!("cấp độ {}", incident.level),
            Lang::En => format!("level {}", incident.level),
        });
    }
    if !place.is_empty() {
        line.push_str(&format!(" ({})", place.join(", ")));
    }
    line
}

/// The group value that says "who": the attacker's address when the rule groups by one, else the
/// first group value.
fn main_group_value(incident: &Incident) -> Option<&str> {
    const PREFERRED: [&str; 8] = [
        "src_ip",
        "c-ip",
        "client_ip",
        "source_ip",
        "ip",
        "src",
        "user",
        "username",
    ];
    PREFERRED
        .iter()
        .find_map(|key| incident.group.get(*key))
        .or_else(|| incident.group.values().next())
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn title(incident: &Incident, lang: Lang) -> &str {
    match (lang, &incident.title_vi) {
        (Lang::Vi, Some(vi)) if !vi.is_empty() => vi,
        _ => &incident.title,
    }
}

/// Capitalised in English too: the subject tag is read at a glance in an inbox.
fn subject_severity(severity: Severity, lang: Lang) -> String {
    let name = severity_name(severity, lang);
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn group_or_dash(incident: &Incident) -> String {
    crate::report::group_text(incident)
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

fn system_text(incident: &Incident, lang: Lang) -> String {
    let system = or_dash(&incident.system);
    if incident.level == 0 {
        return system;
    }
    match lang {
        Lang::Vi => format!("{system} (cấp độ {})", incident.level),
        Lang::En => format!("{system} (level {})", incident.level),
    }
}

/// No `--by`: while the daemon runs, the token says who acts (an operator's own token through
/// `SOCWATCH_TOKEN_FILE`), and the shared token refuses a claimed name.
fn ack_command(id: &str) -> String {
    format!("socwatch incidents ack {id}")
}

/// Evidence times to the second: lines of a brute force are seconds apart.
fn evidence_time(ts: Timestamp) -> String {
    ts.to_zoned(display_zone())
        .strftime("%d/%m/%Y %H:%M:%S")
        .to_string()
}

/// A subject is one header line: every control character (CR and LF above all, which would end the
/// header and start another) and every invisible line or direction control becomes a space, runs
/// of spaces shrink to one, and the result is cut at [`MAX_SUBJECT_CHARS`].
pub fn clean_subject(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut last_space = false;
    for c in subject.chars() {
        let c = if c.is_control() || is_invisible_control(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    cut(out.trim(), MAX_SUBJECT_CHARS)
}

/// Log text made inert for a plain-text body: it stays on one line and cannot reorder the text
/// around it. CR, LF and TAB become `\r`, `\n`, `\t`; other C0 controls, DEL and C1 controls
/// `\xNN`; Unicode line separators and bidirectional controls `\u{NNNN}`.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_invisible_control(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that are not `char::is_control` but still move or hide text: line and paragraph
/// separators (some clients break lines there) and the bidirectional overrides and isolates that
/// make a line read differently from what it is.
fn is_invisible_control(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

/// HTML escape of a value that may come from a log line: made inert first (so it stays on one
/// line here too), then `& < > " '` escaped, which is enough inside element content and quoted
/// attributes.
fn h(text: &str) -> String {
    let text = inert(text);
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn html_head(lang: Lang, subject: &str) -> String {
    let code = match lang {
        Lang::Vi => "vi",
        Lang::En => "en",
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n<body style=\"font-family:sans-serif;font-size:14px\">\n",
        h(subject)
    )
}

fn severity_style(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "color:#b00020",
        Severity::High => "color:#d9480f",
        Severity::Medium => "color:#b08800",
        Severity::Low | Severity::Info => "color:#1f6feb",
    }
}

/// Every label in both languages, so no English word slips into a Vietnamese email.
struct Labels {
    lang: Lang,
    severity: &'static str,
    title: &'static str,
    rule: &'static str,
    first_seen: &'static str,
    last_seen: &'static str,
    seen: &'static str,
    count: &'static str,
    group: &'static str,
    host: &'static str,
    system: &'static str,
    unit: &'static str,
    tags: &'static str,
    author: &'static str,
    id: &'static str,
    evidence: &'static str,
    to_ack: &'static str,
    to_list: &'static str,
    digest: &'static str,
    highest: &'static str,
    totals: &'static str,
    footer: &'static str,
    checkpoint: &'static str,
}

impl Labels {
    fn of(lang: Lang) -> Labels {
        match lang {
            Lang::Vi => Labels {
                lang,
                severity: "Mức độ",
                title: "Mô tả",
                rule: "Quy tắc",
                first_seen: "Lần đầu",
                last_seen: "Lần cuối",
                seen: "Thời gian",
                count: "Số lần",
                group: "Nhóm",
                host: "Máy",
                system: "Hệ thống",
                unit: "Đơn vị",
                tags: "Nhãn",
                author: "Tác giả quy tắc",
                id: "Mã sự cố",
                evidence: "Bằng chứng",
                to_ack: "Để tiếp nhận sự cố",
                to_list: "Để xem các sự cố",
                digest: "Tổng hợp",
                highest: "cao nhất",
                totals: "Theo mức độ",
                footer: "Email tự động từ socwatch. Nội dung nhật ký được hiển thị nguyên văn và không được tin cậy.",
                checkpoint: "Điểm kiểm tra đã ký của nhật ký bằng chứng (đối chiếu bằng socwatch verify)",
            },
            Lang::En => Labels {
                lang,
                severity: "Severity",
                title: "Title",
                rule: "Rule",
                first_seen: "First seen",
                last_seen: "Last seen",
                seen: "Seen",
                count: "Count",
                group: "Group",
                host: "Host",
                system: "System",
                unit: "Unit",
                tags: "Tags",
                author: "Rule author",
                id: "Incident id",
                evidence: "Evidence",
                to_ack: "To acknowledge",
                to_list: "To list these incidents",
                digest: "Digest",
                highest: "highest",
                totals: "By severity",
                footer: "Automatic email from socwatch. Log content is shown verbatim and is not trusted.",
                checkpoint: "Signed checkpoint of the evidence log (check with socwatch verify)",
            },
        }
    }

    fn more_lines(&self, n: u64) -> String {
        match self.lang {
            Lang::Vi => format!("(và {n} dòng khác)"),
            Lang::En => format!("(and {n} more lines)"),
        }
    }

    fn incidents(&self, n: usize) -> String {
        match self.lang {
            Lang::Vi => format!("{n} sự cố"),
            Lang::En if n == 1 => "1 incident".into(),
            Lang::En => format!("{n} incidents"),
        }
    }

    fn digest_intro(&self, n: usize, period: &str) -> String {
        match self.lang {
            Lang::Vi => format!(
                "Giới hạn số email mỗi giờ đã đạt: {n} sự cố trong khoảng {period} được gộp vào email tổng hợp này thay vì gửi từng email."
            ),
            Lang::En => format!(
                "The hourly email limit was reached: {} from {period} are folded into this digest instead of one email each.",
                self.incidents(n)
            ),
        }
    }

    fn not_listed(&self, n: usize) -> String {
        match self.lang {
            Lang::Vi => format!("(và {n} sự cố khác không liệt kê ở đây)"),
            Lang::En => format!("(and {n} more incidents not listed here)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Evidence, Status};

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn ssh_incident() -> Incident {
        Incident {
            id: "01JD3V6X8Q4W0Z5N2K7M9P1R3T".into(),
            case_id: String::new(),
            rule_id: "ssh-bruteforce".into(),
            title: "SSH password brute force".into(),
            title_vi: Some("Dò mật khẩu SSH".into()),
            severity: Severity::High,
            status: Status::Open,
            first_seen: ts("2026-11-22T03:01:02Z"),
            last_seen: ts("2026-11-22T03:03:40Z"),
            count: 17,
            group: BTreeMap::from([("src_ip".to_string(), "203.0.113.7".to_string())]),
            host: "portal-01".into(),
            system: "dvc-portal".into(),
            level: 3,
            unit: "Sở KH&CN tỉnh X".into(),
            tags: vec!["attack.credential_access".into(), "attack.t1110.001".into()],
            author: Some("Florian Roth (Nextron Systems)".into()),
            evidence: vec![Evidence {
                ts: ts("2026-11-22T03:01:02Z"),
                source: "/var/log/auth.log".into(),
                line: "Nov 22 10:01:02 portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2".into(),
            }],
            evidence_omitted: 16,
            history: Vec::new(),
            revision: 1,
        }
    }

    fn ctx(lang: Lang) -> RenderContext {
        RenderContext {
            lang,
            unit: "Sở KH&CN tỉnh X".into(),
            host: "portal-01".into(),
            checkpoint: None,
        }
    }

    #[test]
    fn the_footer_quotes_the_checkpoint_in_every_kind_of_email() {
        let note = "socwatch/portal-01\n7\nAAAA\n\n\u{2014} socwatch/portal-01 a<b>\n";
        let ctx = RenderContext {
            checkpoint: Some(note.to_string()),
            ..ctx(Lang::Vi)
        };
        let incident = ssh_incident();
        for email in [
            render_alert(&incident, &ctx),
            render_digest(
                std::slice::from_ref(&incident),
                1,
                incident.first_seen,
                incident.last_seen,
                &ctx,
            ),
        ] {
            assert!(email.text.ends_with(note), "{}", email.text);
            assert!(email.text.contains("Điểm kiểm tra đã ký"), "{}", email.text);
            assert!(email.html.contains("a&lt;b&gt;"), "{}", email.html);
            assert!(email.html.ends_with("</html>\n"));
        }
        let plain = render_alert(&incident, &super::tests::ctx(Lang::En));
        assert!(!plain.text.contains("checkpoint"), "{}", plain.text);
    }

    const HOSTILE: &str = "user admin\r\nBcc: victim@example.com\r\n<script>alert(1)</script>";

    #[test]
    fn the_subject_is_the_one_in_the_issue_in_both_languages() {
        let vi = render_alert(&ssh_incident(), &ctx(Lang::Vi));
        assert_eq!(
            vi.subject,
            "[socwatch][Cao] Dò mật khẩu SSH từ 203.0.113.7 - portal-01 (dvc-portal, cấp độ 3)"
        );
        let en = render_alert(&ssh_incident(), &ctx(Lang::En));
        assert_eq!(
            en.subject,
            "[socwatch][High] SSH password brute force from 203.0.113.7 - portal-01 (dvc-portal, level 3)"
        );
    }

    #[test]
    fn empty_parts_are_left_out_of_the_subject() {
        let mut incident = ssh_incident();
        incident.group.clear();
        incident.system.clear();
        incident.level = 0;
        incident.title_vi = None;
        let vi = render_alert(&incident, &ctx(Lang::Vi));
        assert_eq!(
            vi.subject,
            "[socwatch][Cao] SSH password brute force - portal-01"
        );
        incident.host.clear();
        incident.level = 4;
        incident.group =
            BTreeMap::from([("user".into(), "root".into()), ("zone".into(), "a".into())]);
        let en = render_alert(&incident, &ctx(Lang::En));
        assert_eq!(
            en.subject,
            "[socwatch][High] SSH password brute force from root (level 4)"
        );
    }

    #[test]
    fn the_body_has_times_in_vietnam_count_evidence_and_the_ack_command() {
        let vi = render_alert(&ssh_incident(), &ctx(Lang::Vi));
        for expected in [
            "Lần đầu:         22/11/2026 10:01\n",
            "Lần cuối:        22/11/2026 10:03\n",
            "Số lần:          17\n",
            "Nhóm:            src_ip=203.0.113.7\n",
            "Hệ thống:        dvc-portal (cấp độ 3)\n",
            "Nhãn:            attack.credential_access, attack.t1110.001\n",
            "Tác giả quy tắc: Florian Roth (Nextron Systems)\n",
            "  22/11/2026 10:01:02  /var/log/auth.log  Nov 22 10:01:02 portal-01 sshd[811]: Failed password",
            "  (và 16 dòng khác)\n",
            "Để tiếp nhận sự cố:\n  socwatch incidents ack 01JD3V6X8Q4W0Z5N2K7M9P1R3T\n",
        ] {
            assert!(
                vi.text.contains(expected),
                "missing {expected:?} in\n{}",
                vi.text
            );
        }
        assert!(vi.html.contains("<html lang=\"vi\">"));
        assert!(vi.html.contains("Sở KH&amp;CN tỉnh X"), "{}", vi.html);
        assert!(
            vi.html
                .contains("socwatch incidents ack 01JD3V6X8Q4W0Z5N2K7M9P1R3T<")
        );

        let en = render_alert(&ssh_incident(), &ctx(Lang::En));
        for expected in [
            "First seen:  22/11/2026 10:01\n",
            "Count:       17\n",
            "(and 16 more lines)",
            "To acknowledge:\n  socwatch incidents ack 01JD3V6X8Q4W0Z5N2K7M9P1R3T\n",
        ] {
            assert!(
                en.text.contains(expected),
                "missing {expected:?} in\n{}",
                en.text
            );
        }
        // No Vietnamese label in the English email.
        for label in ["Lần đầu", "Bằng chứng", "Mức độ"] {
            assert!(!en.text.contains(label) && !en.html.contains(label));
        }
    }

    #[test]
    fn a_hostile_log_line_stays_one_inert_line_and_adds_no_markup() {
        let mut incident = ssh_incident();
        incident.evidence[0].line = format!("Failed password for {HOSTILE}\x1b[31m\u{202e}");
        incident.group.insert("user".into(), HOSTILE.into());
        incident.title = format!("brute force {HOSTILE}");
        let email = render_alert(&incident, &ctx(Lang::En));

        assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
        assert!(email.subject.chars().all(|c| !c.is_control()));
        assert!(
            email
                .subject
                .contains("brute force user admin Bcc: victim@example.com <script>")
        );

        // Text: the evidence line is still one line, its controls visible as escapes.
        let evidence_line = email
            .text
            .lines()
            .find(|l| l.contains("Failed password for"))
            .unwrap();
        assert!(evidence_line.ends_with(
            "Failed password for user admin\\r\\nBcc: victim@example.com\\r\\n<script>alert(1)</script>\\x1b[31m\\u{202e}"
        ), "{evidence_line}");
        assert!(
            !email.text.lines().any(|l| l.starts_with("Bcc:")),
            "{}",
            email.text
        );
        assert!(!email.text.contains('\r'));
        assert!(!email.text.contains('\x1b'));

        // HTML: escaped, and the only tags are ours.
        assert!(!email.html.contains("<script"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!email.html.contains('\r'));
        assert!(!email.html.lines().any(|l| l.starts_with("Bcc:")));
        assert!(
            !email.html.contains("http://")
                && !email.html.contains("https://")
                && !email.html.contains("src=")
        );
    }

    #[test]
    fn quotes_and_ampersands_are_escaped_in_html() {
        assert_eq!(
            h("a & b < c > d \" e ' f"),
            "a &amp; b &lt; c &gt; d &quot; e &#39; f"
        );
        assert_eq!(h("x\ny"), "x\\ny");
    }

    #[test]
    fn inert_escapes_every_control_and_keeps_vietnamese() {
        assert_eq!(
            inert("Đăng nhập thất bại\t\x00\x7f\u{85}\u{2028}"),
            "Đăng nhập thất bại\\t\\x00\\x7f\\x85\\u{2028}"
        );
    }

    #[test]
    fn subjects_are_bounded() {
        let mut incident = ssh_incident();
        incident.title_vi = Some("Rất dài ".repeat(100));
        let email = render_alert(&incident, &ctx(Lang::Vi));
        assert_eq!(email.subject.chars().count(), MAX_SUBJECT_CHARS + 1);
        assert!(email.subject.ends_with('…'));
        assert!(!email.subject.contains("  "));
    }

    #[test]
    fn long_evidence_lines_are_cut() {
        let mut incident = ssh_incident();
        incident.evidence[0].line = "A".repeat(10_000);
        let email = render_alert(&incident, &ctx(Lang::En));
        assert!(email.text.len() < 4_000, "{}", email.text.len());
        assert!(
            email
                .text
                .contains(&format!("{}…", "A".repeat(MAX_EVIDENCE_CHARS)))
        );
    }

    fn flood(n: usize) -> Vec<Incident> {
        (0..n)
            .map(|i| {
                let mut incident = ssh_incident();
                incident.id = format!("01JD3V6X8Q4W0Z5N2K7M9P{i:04}");
                incident.severity = [Severity::Medium, Severity::Critical, Severity::High][i % 3];
                incident
                    .group
                    .insert("src_ip".into(), format!("198.51.100.{}", i % 250));
                incident
            })
            .collect()
    }

    #[test]
    fn a_digest_lists_folded_incidents_most_severe_first_with_totals() {
        let incidents = flood(6);
        let start = ts("2026-11-22T03:00:00Z");
        let end = ts("2026-11-22T04:00:00Z");
        let vi = render_digest(&incidents, 6, start, end, &ctx(Lang::Vi));
        assert_eq!(
            vi.subject,
            "[socwatch][Tổng hợp] 6 sự cố, cao nhất Nghiêm trọng (22/11/2026 10:00 - 22/11/2026 11:00) - portal-01, Sở KH&CN tỉnh X"
        );
        assert!(
            vi.text
                .contains("Theo mức độ: Nghiêm trọng: 2, Cao: 2, Trung bình: 2\n"),
            "{}",
            vi.text
        );
        let first = vi.text.find("1. [Nghiêm trọng]").unwrap();
        let third = vi.text.find("3. [Cao]").unwrap();
        let fifth = vi.text.find("5. [Trung bình]").unwrap();
        assert!(first < third && third < fifth, "{}", vi.text);
        for incident in &incidents {
            assert!(vi.text.contains(&incident.id) && vi.html.contains(&incident.id));
        }
        assert!(
            vi.text
                .contains("socwatch incidents list --since 2026-11-22T10:00:00+07:00")
        );

        let en = render_digest(&incidents, 6, start, end, &ctx(Lang::En));
        assert!(
            en.subject
                .starts_with("[socwatch][Digest] 6 incidents, highest Critical ("),
            "{}",
            en.subject
        );
        assert!(
            en.text
                .contains("By severity: critical: 2, high: 2, medium: 2")
        );
    }

    #[test]
    fn a_digest_counts_what_it_does_not_list() {
        let incidents = flood(MAX_DIGEST_ROWS + 10);
        let at = ts("2026-11-22T03:00:00Z");
        let en = render_digest(&incidents, 500, at, at, &ctx(Lang::En));
        assert!(en.subject.contains("500 incidents"));
        assert!(
            en.text.contains("(and 300 more incidents not listed here)"),
            "{}",
            en.text
        );
        assert_eq!(en.text.matches("Incident id: ").count(), MAX_DIGEST_ROWS);
    }

    #[test]
    fn a_digest_escapes_log_derived_values() {
        let mut incidents = flood(1);
        incidents[0].group.insert("user".into(), HOSTILE.into());
        let at = ts("2026-11-22T03:00:00Z");
        let email = render_digest(&incidents, 1, at, at, &ctx(Lang::En));
        assert!(!email.html.contains("<script"));
        assert!(email.html.contains("&lt;script&gt;"));
        assert!(!email.text.lines().any(|l| l.starts_with("Bcc:")));
    }
}
