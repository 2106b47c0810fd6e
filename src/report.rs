//! Human-facing text: tables and summaries in Vietnamese or English, times as dd/mm/yyyy HH:mm in
//! Asia/Ho_Chi_Minh. Machine output (JSON) does not come through here.

use jiff::Timestamp;

use crate::model::{Incident, Lang, Severity, display_zone};

/// `22/11/2026 10:01` in Asia/Ho_Chi_Minh.
pub fn human_time(ts: Timestamp) -> String {
    ts.to_zoned(display_zone())
        .strftime("%d/%m/%Y %H:%M")
        .to_string()
}

pub fn severity_name(severity: Severity, lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => severity.vietnamese(),
        Lang::En => severity.as_str(),
    }
}

/// Renders rows under a header with columns padded to their widest cell (counted in characters).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', widths[i] - width(cell)));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Makes text safe for one table cell: control characters (from log lines) shown escaped.
pub fn cell(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i >= max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn group_text(incident: &Incident) -> String {
    if incident.group.is_empty() {
        return "-".into();
    }
    incident
        .group
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The incident table `scan` and `incidents list` print.
pub fn incidents_table(incidents: &[Incident], lang: Lang) -> String {
    let header: &[&str] = match lang {
        Lang::Vi => &[
            "Mức độ",
            "Quy tắc",
            "Nhóm",
            "Số lần",
            "Lần đầu",
            "Lần cuối",
            "Máy",
            "Mô tả",
        ],
        Lang::En => &[
            "Severity",
            "Rule",
            "Group",
            "Count",
            "First seen",
            "Last seen",
            "Host",
            "Title",
        ],
    };
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .map(|i| {
            let title = match (lang, &i.title_vi) {
                (Lang::Vi, Some(vi)) => vi,
                _ => &i.title,
            };
            vec![
                severity_name(i.severity, lang).to_string(),
                cell(&i.rule_id, 40),
                cell(&group_text(i), 48),
                i.count.to_string(),
                human_time(i.first_seen),
                human_time(i.last_seen),
                cell(&i.host, 24),
                cell(title, 60),
            ]
        })
        .collect();
    table(header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_vietnam_as_day_month_year() {
        let ts: Timestamp = "2026-11-22T03:01:02Z".parse().unwrap();
        assert_eq!(human_time(ts), "22/11/2026 10:01");
        let new_year: Timestamp = "2026-12-31T17:30:00Z".parse().unwrap();
        assert_eq!(human_time(new_year), "01/01/2027 00:30");
    }

    #[test]
    fn tables_align_vietnamese_text_and_escape_control_characters() {
        let out = table(
            &["Mức độ", "X"],
            &[vec!["Cao".into(), cell("a\r\nb\x1b[31m", 20)]],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Mức độ  X");
        assert_eq!(lines[2], "Cao     a\\r\\nb\\u{1b}[31m");
    }
}
