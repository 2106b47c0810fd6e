//! Human-facing text: tables and summaries in Vietnamese or English, times as dd/mm/yyyy HH:mm in
//! Asia/Ho_Chi_Minh. Machine output (JSON) does not come through here.

use jiff::Timestamp;

use crate::cases::Case;
use crate::model::{Incident, Lang, Severity, Status, display_zone};
use crate::scan::{InputStats, ScanReport};

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

/// `src_ip=203.0.113.7 user=root`, or `-` for an incident without a group.
pub fn group_text(incident: &Incident) -> String {
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

/// Characters of an incident id shown in tables, accepted back by `show`, `ack`... as a prefix. A
/// ULID's first 10 characters are its first event's millisecond, which incidents opened by one line
/// share; 4 more (20 bits of the hash) tell them apart.
pub const SHORT_ID: usize = 14;

/// The first `SHORT_ID` characters of an id.
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

/// The incident table `scan` and `incidents list` print.
/// `scan --matches`: every rule hit, like `fail2ban-regex` lists them: input and line number,
/// time (dd/mm/yyyy HH:mm:ss, Asia/Ho_Chi_Minh), rule, and what the rule extracted.
pub fn matches_table(hits: &[crate::scan::MatchRecord], lang: Lang) -> String {
    let header: &[&str] = match lang {
        Lang::Vi => &["Tệp", "Dòng", "Thời điểm", "Quy tắc", "Trường trích xuất"],
        Lang::En => &["File", "Line", "Time", "Rule", "Extracted fields"],
    };
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|hit| {
            let fields: Vec<String> = hit.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                cell(&hit.source, 40),
                hit.line.to_string(),
                hit.ts
                    .to_zoned(display_zone())
                    .strftime("%d/%m/%Y %H:%M:%S")
                    .to_string(),
                cell(&hit.rule_id, 40),
                cell(&fields.join(" "), 80),
            ]
        })
        .collect();
    table(header, &rows)
}

pub fn incidents_table(incidents: &[Incident], lang: Lang) -> String {
    let header: &[&str] = match lang {
        Lang::Vi => &[
            "Mã",
            "Mức độ",
            "Trạng thái",
            "Quy tắc",
            "Nhóm",
            "Số lần",
            "Lần đầu",
            "Lần cuối",
            "Máy",
            "Mô tả",
        ],
        Lang::En => &[
            "Id",
            "Severity",
            "Status",
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
                short_id(&i.id).to_string(),
                severity_name(i.severity, lang).to_string(),
                status_name(i.status, lang).to_string(),
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

fn status_name(status: Status, lang: Lang) -> &'static str {
    crate::i18n::status_word(status, lang)
}

/// `incidents show`: every field of one incident, its evidence lines and its history.
pub fn incident_detail(incident: &Incident, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let title = match (lang, &incident.title_vi) {
        (Lang::Vi, Some(title)) => title,
        _ => &incident.title,
    };
    let labels: [&str; 13] = if vi {
        [
            "Mã",
            "Quy tắc",
            "Mô tả",
            "Mức độ",
            "Trạng thái",
            "Lần đầu",
            "Lần cuối",
            "Số lần",
            "Nhóm",
            "Máy",
            "Hệ thống",
            "Cấp độ",
            "Đơn vị",
        ]
    } else {
        [
            "Id",
            "Rule",
            "Title",
            "Severity",
            "Status",
            "First seen",
            "Last seen",
            "Count",
            "Group",
            "Host",
            "System",
            "Level",
            "Unit",
        ]
    };
    let values = [
        incident.id.clone(),
        cell(&incident.rule_id, 80),
        cell(title, 200),
        severity_name(incident.severity, lang).to_string(),
        status_name(incident.status, lang).to_string(),
        human_time(incident.first_seen),
        human_time(incident.last_seen),
        incident.count.to_string(),
        cell(&group_text(incident), 200),
        cell(&incident.host, 80),
        cell(&incident.system, 80),
        incident.level.to_string(),
        cell(&incident.unit, 80),
    ];
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in labels.iter().zip(values) {
        let pad = width - label.chars().count();
        out.push_str(&format!("{label}:{} {value}\n", " ".repeat(pad)));
    }
    if !incident.tags.is_empty() {
        let label = if vi { "Nhãn" } else { "Tags" };
        let pad = width.saturating_sub(label.chars().count());
        out.push_str(&format!(
            "{label}:{} {}\n",
            " ".repeat(pad),
            cell(&incident.tags.join(", "), 200)
        ));
    }
    out.push_str(if vi {
        "\nBằng chứng:\n"
    } else {
        "\nEvidence:\n"
    });
    for line in &incident.evidence {
        out.push_str(&format!(
            "  {}  {}  {}\n",
            human_time(line.ts),
            cell(&line.source, 60),
            cell(&line.line, 400)
        ));
    }
    if incident.evidence_omitted > 0 {
        let more = incident.evidence_omitted;
        out.push_str(&if vi {
            format!("  (và {more} dòng khác)\n")
        } else {
            format!("  (and {more} more lines)\n")
        });
    }
    out.push_str(&history_lines(&incident.history, lang));
    out
}

/// The "History:" block of `incidents show` and `cases show`: when, action, who and the note.
fn history_lines(history: &[crate::model::HistoryEntry], lang: Lang) -> String {
    let mut out = String::from(match lang {
        Lang::Vi => "\nLịch sử:\n",
        Lang::En => "\nHistory:\n",
    });
    if history.is_empty() {
        out.push_str("  -\n");
    }
    for entry in history {
        out.push_str(&format!(
            "  {}  {}  {}",
            human_time(entry.ts),
            cell(&crate::i18n::action_word(&entry.action, lang), 40),
            cell(&entry.by, 60)
        ));
        if !entry.note.is_empty() {
            out.push_str(&format!(": {}", cell(&entry.note, 400)));
        }
        out.push('\n');
    }
    out
}

/// What `scan` prints to stderr after its output: totals, then one line per input with anything odd.
pub fn scan_summary(
    result: &ScanReport,
    elapsed_secs: f64,
    max_line_bytes: usize,
    lang: Lang,
) -> String {
    let lines = result.lines();
    let rate = if elapsed_secs > 0.0 {
        lines as f64 / elapsed_secs
    } else {
        0.0
    };
    let (inputs, matches, incidents) =
        (result.inputs.len(), result.matches, result.incidents.len());
    let mut out = match lang {
        Lang::Vi => format!(
            "Đã đọc {lines} dòng từ {inputs} nguồn trong {elapsed_secs:.2} giây ({rate:.0} dòng/giây); {matches} lần khớp quy tắc; {incidents} sự cố.\n"
        ),
        Lang::En => format!(
            "Read {lines} lines from {inputs} inputs in {elapsed_secs:.2} s ({rate:.0} lines/s); {matches} rule matches; {incidents} incidents.\n"
        ),
    };
    for input in &result.inputs {
        if input.pieces > 1 {
            out.push_str(&match lang {
                Lang::Vi => format!(
                    "  {}: đọc song song thành {} phần\n",
                    input.source, input.pieces
                ),
                Lang::En => format!(
                    "  {}: read in {} pieces at once\n",
                    input.source, input.pieces
                ),
            });
        }
        let c = &input.counts;
        let odd = c.parse_errors + c.invalid_utf8 + c.nul_bytes + c.truncated;
        if odd > 0 || input.error.is_some() {
            out.push_str(&format!(
                "  {}: {}\n",
                input.source,
                input_oddities(input, max_line_bytes, lang)
            ));
        }
    }
    let evicted = result.correlation.evicted_groups;
    if evicted > 0 {
        out.push_str(&match lang {
            Lang::Vi => format!("  cảnh báo: {evicted} nhóm tương quan bị loại do đầy bộ nhớ\n"),
            Lang::En => {
                format!("  warning: {evicted} correlation groups evicted (state cap reached)\n")
            }
        });
    }
    out
}

fn input_oddities(input: &InputStats, max_line_bytes: usize, lang: Lang) -> String {
    let [lines_w, unparsed_w, utf8_w, nul_w, cut_w, bytes_w, error_w] = match lang {
        Lang::Vi => [
            "dòng",
            "không phân tích được",
            "sai UTF-8",
            "có byte NUL",
            "bị cắt ở",
            "byte",
            "lỗi",
        ],
        Lang::En => [
            "lines",
            "unparsed",
            "invalid UTF-8",
            "with NUL bytes",
            "cut at",
            "bytes",
            "error",
        ],
    };
    let c = &input.counts;
    let mut text = format!(
        "{} {lines_w}, {} {unparsed_w}, {} {utf8_w}, {} {nul_w}, {} {cut_w} {max_line_bytes} {bytes_w}",
        c.lines, c.parse_errors, c.invalid_utf8, c.nul_bytes, c.truncated
    );
    if let Some(err) = &input.error {
        text.push_str(&format!("; {error_w}: {}", err.text(lang)));
    }
    text
}

/// `2 giờ 5 phút` / `2h 5m`: how long the oldest alert has waited.
pub fn human_age(seconds: u64, lang: Lang) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    let units: [(u64, &str, &str); 4] = [
        (d, " ngày", "d"),
        (h, " giờ", "h"),
        (m, " phút", "m"),
        (s, " giây", "s"),
    ];
    let parts: Vec<String> = units
        .iter()
        .skip_while(|(n, ..)| *n == 0)
        .take(2)
        .filter(|(n, ..)| *n > 0)
        .map(|(n, vi, en)| match lang {
            Lang::Vi => format!("{n}{vi}"),
            Lang::En => format!("{n}{en}"),
        })
        .collect();
    if parts.is_empty() {
        match lang {
            Lang::Vi => "0 giây".into(),
            Lang::En => "0s".into(),
        }
    } else {
        parts.join(" ")
    }
}

/// `socwatch cluster status` as tables: the nodes that beat, and each partition's owner and lag.
pub fn cluster_text(
    report: &crate::cluster::status::ClusterReport,
    lang: Lang,
    now: Timestamp,
) -> String {
    let vi = lang == Lang::Vi;
    let header: &[&str] = if vi {
        &[
            "Nút",
            "Vai trò",
            "Nhịp cuối",
            "Phân vùng",
            "Đã gửi",
            "Quy tắc",
        ]
    } else {
        &[
            "Node",
            "Role",
            "Last beat",
            "Partitions",
            "Published",
            "Rules",
        ]
    };
    let nodes: Vec<Vec<String>> = report
        .nodes
        .iter()
        .map(|node| {
            vec![
                node.node.clone(),
                node.role.clone(),
                human_age(now.duration_since(node.at).as_secs().max(0) as u64, lang),
                node.partitions.len().to_string(),
                node.published.to_string(),
                node.rules.chars().take(12).collect(),
            ]
        })
        .collect();
    let mut out = table(header, &nodes);
    out.push('\n');
    let header: &[&str] = if vi {
        &["Phân vùng", "Chủ", "Tồn đọng"]
    } else {
        &["Partition", "Owner", "Lag"]
    };
    let partitions: Vec<Vec<String>> = report
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                p.owner.clone().unwrap_or_else(|| "-".into()),
                p.lag.map_or_else(|| "-".into(), |lag| lag.to_string()),
            ]
        })
        .collect();
    out.push_str(&table(header, &partitions));
    if let Some(lag) = report.console_lag {
        out.push('\n');
        out.push_str(&crate::tr!(lang, ClusterConsoleLag, lag = lag));
        out.push('\n');
    }
    out
}

/// `socwatch status`: what the daemon is doing, for an administrator at a terminal. A source with
/// no line for `SILENT_AFTER` (or none yet) is flagged.
pub fn status_text(status: &crate::api::DaemonStatus, lang: Lang, now: Timestamp) -> String {
    const SILENT_AFTER: i64 = 3600;
    let vi = lang == Lang::Vi;
    let age = |ts: Timestamp| now.duration_since(ts).as_secs().max(0) as u64;
    let mut lines = vec![
        crate::tr!(
            lang,
            StatusRunningSince,
            version = status.version,
            since = human_time(status.started_at),
            age = human_age(age(status.started_at), lang)
        ),
        crate::tr!(
            lang,
            StatusRulesLine,
            loaded = status.rules_loaded,
            idle = status.rules_idle
        ),
        crate::tr!(
            lang,
            StatusStoreLine,
            path = status.store_path,
            size = human_bytes(status.store_bytes),
            open = status.incidents_open,
            cases = status.cases_open
        ),
    ];
    if status.syslog_dropped > 0 || status.parse_errors > 0 {
        lines.push(crate::tr!(
            lang,
            StatusDropsLine,
            dropped = status.syslog_dropped,
            undecoded = status.parse_errors
        ));
    }
    if let Some(cluster) = &status.cluster {
        lines.push(match cluster.waiting_since {
            None if cluster.connected => crate::tr!(
                lang,
                StatusClusterUp,
                role = cluster.role,
                published = cluster.published,
                failures = cluster.failures
            ),
            since => crate::tr!(
                lang,
                StatusClusterWaiting,
                role = cluster.role,
                since = since.map(human_time).unwrap_or_default(),
                error = cluster.last_error
            ),
        });
        if !cluster.partitions.is_empty() {
            let partitions: Vec<String> = cluster.partitions.iter().map(u32::to_string).collect();
            lines.push(crate::tr!(
                lang,
                StatusClusterPartitions,
                partitions = partitions.join(", ")
            ));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.push('\n');
    let header: &[&str] = if vi {
        &[
            "Loại",
            "Nguồn",
            "Số dòng",
            "Dòng cuối",
            "Dòng/phút",
            "Ghi chú",
        ]
    } else {
        &["Kind", "Source", "Lines", "Last line", "Lines/min", "Note"]
    };
    let rows: Vec<Vec<String>> = status
        .sources
        .iter()
        .map(|source| {
            let silent = source
                .last_line
                .is_none_or(|at| now.duration_since(at).as_secs() > SILENT_AFTER);
            let note = match (silent, source.last_line.is_some()) {
                (false, _) => "",
                (true, false) => crate::i18n::Msg::StatusNoLineYet.template(lang),
                (true, true) => crate::i18n::Msg::StatusSilent.template(lang),
            };
            vec![
                cell(&source.kind, 10),
                cell(&source.name, 60),
                source.lines.to_string(),
                source.last_line.map_or_else(|| "-".into(), human_time),
                source.lines_per_minute.to_string(),
                note.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str(crate::i18n::Msg::StatusNoSource.template(lang));
        out.push('\n');
    } else {
        out.push_str(&table(header, &rows));
    }
    if !status.outbox.is_empty() {
        out.push('\n');
        let header: &[&str] = if vi {
            &["Đích", "Đang chờ", "Chờ lâu nhất", "Bị từ chối"]
        } else {
            &["Destination", "Pending", "Oldest", "Dead letters"]
        };
        let rows: Vec<Vec<String>> = status
            .outbox
            .iter()
            .map(|d| {
                vec![
                    cell(&d.destination, 20),
                    d.pending.to_string(),
                    d.oldest_age_seconds
                        .map_or_else(|| "-".into(), |s| human_age(s, lang)),
                    d.dead_letters.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(header, &rows));
    }
    out
}

fn human_bytes(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / MB)
    } else {
        format!("{} kB", bytes.div_ceil(1024))
    }
}

/// `outbox status`: one row per destination, then the dead letters.
pub fn outbox_table(report: &crate::store::OutboxReport, lang: Lang) -> String {
    let header: &[&str] = match lang {
        Lang::Vi => &[
            "Đích",
            "Đang chờ",
            "Chờ lâu nhất",
            "Đã gửi",
            "Bị từ chối",
            "Bị bỏ (đầy)",
            "Gửi được lần cuối",
            "Lỗi gần nhất",
        ],
        Lang::En => &[
            "Destination",
            "Pending",
            "Oldest",
            "Delivered",
            "Dead letters",
            "Dropped (full)",
            "Last delivered",
            "Last error",
        ],
    };
    let rows: Vec<Vec<String>> = report
        .destinations
        .iter()
        .map(|d| {
            let error = match (&d.state.last_error, d.state.last_error_at) {
                (Some(error), Some(at)) => format!("{} {}", human_time(at), cell(error, 80)),
                (Some(error), None) => cell(error, 80),
                _ => "-".into(),
            };
            vec![
                cell(&d.destination, 20),
                d.pending.to_string(),
                d.oldest_age_seconds
                    .map_or_else(|| "-".into(), |s| human_age(s, lang)),
                d.state.delivered.to_string(),
                d.dead_letters.to_string(),
                d.state.evicted.to_string(),
                d.state
                    .last_delivered_at
                    .map_or_else(|| "-".into(), human_time),
                error,
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        match lang {
            Lang::Vi => {
                "Chưa cấu hình đích gửi cảnh báo nào ([forward.national], [email]).\n".into()
            }
            Lang::En => {
                "No alert destination is configured ([forward.national], [email]).\n".into()
            }
        }
    } else {
        table(header, &rows)
    };
    if !report.dead_letters.is_empty() {
        out.push('\n');
        out.push_str(match lang {
            Lang::Vi => "Cảnh báo bị từ chối (gửi lại: socwatch outbox retry):\n",
            Lang::En => "Refused alerts (send again: socwatch outbox retry):\n",
        });
        let header: &[&str] = match lang {
            Lang::Vi => &["Đích", "Sự cố", "Phiên bản", "Xếp hàng lúc", "Lỗi"],
            Lang::En => &["Destination", "Incident", "Revision", "Queued", "Error"],
        };
        let rows: Vec<Vec<String>> = report
            .dead_letters
            .iter()
            .map(|dead| {
                vec![
                    cell(&dead.destination, 20),
                    dead.incident_id.clone(),
                    dead.revision.to_string(),
                    human_time(dead.enqueued),
                    cell(&dead.error, 100),
                ]
            })
            .collect();
        out.push_str(&table(header, &rows));
    }
    out
}

/// A case's title in `lang` (the Vietnamese one when the rules give one).
fn case_title(case: &Case, lang: Lang) -> &str {
    match (lang, &case.title_vi) {
        (Lang::Vi, Some(vi)) => vi,
        _ => &case.title,
    }
}

/// `kind=value, …` of a case's entities, the keyed one first.
fn entities_text(case: &Case) -> String {
    let mut parts = vec![format!(
        "{}={}",
        case.entity.kind.field(),
        case.entity.value
    )];
    for (kind, values) in &case.entities {
        for value in values {
            let part = format!("{kind}={value}");
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
    }
    parts.join(", ")
}

/// `cases list`: one row per case, most recently active first (as given).
pub fn cases_table(cases: &[Case], lang: Lang) -> String {
    let header: &[&str] = match lang {
        Lang::Vi => &[
            "Mã",
            "Mức độ",
            "Trạng thái",
            "Đối tượng",
            "Chiến thuật",
            "Sự cố",
            "Lần đầu",
            "Lần cuối",
            "Phụ trách",
            "Mô tả",
        ],
        Lang::En => &[
            "Id",
            "Severity",
            "Status",
            "Entities",
            "Tactics",
            "Incidents",
            "First seen",
            "Last seen",
            "Assignee",
            "Title",
        ],
    };
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                short_id(&c.id).to_string(),
                severity_name(c.severity, lang).to_string(),
                status_name(c.status, lang).to_string(),
                cell(&entities_text(c), 48),
                cell(&c.tactics.join(" → "), 60),
                c.incident_count().to_string(),
                human_time(c.first_seen),
                human_time(c.last_seen),
                cell(c.assignee.as_deref().unwrap_or("-"), 24),
                cell(case_title(c, lang), 60),
            ]
        })
        .collect();
    table(header, &rows)
}

/// `cases show`: the case, its incidents in the order they opened, and its history.
pub fn case_detail(case: &Case, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let labels: [&str; 11] = if vi {
        [
            "Mã",
            "Mô tả",
            "Mức độ",
            "Trạng thái",
            "Lần đầu",
            "Lần cuối",
            "Đối tượng",
            "Chiến thuật",
            "Hệ thống",
            "Cấp độ",
            "Phụ trách",
        ]
    } else {
        [
            "Id",
            "Title",
            "Severity",
            "Status",
            "First seen",
            "Last seen",
            "Entities",
            "Tactics",
            "System",
            "Level",
            "Assignee",
        ]
    };
    let mut severity = severity_name(case.severity, lang).to_string();
    if case.progressed {
        severity.push_str(if vi {
            " (nâng một bậc: tấn công tiến triển)"
        } else {
            " (raised one step: the attack progressed)"
        });
    }
    let values = [
        case.id.clone(),
        cell(case_title(case, lang), 200),
        severity,
        status_name(case.status, lang).to_string(),
        human_time(case.first_seen),
        human_time(case.last_seen),
        cell(&entities_text(case), 200),
        cell(&case.tactics.join(" → "), 200),
        cell(&case.system, 80),
        case.level.to_string(),
        cell(case.assignee.as_deref().unwrap_or("-"), 80),
    ];
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in labels.iter().zip(values) {
        let pad = width - label.chars().count();
        out.push_str(&format!("{label}:{} {value}\n", " ".repeat(pad)));
    }
    out.push_str(if vi {
        "\nSự cố:\n"
    } else {
        "\nIncidents:\n"
    });
    let header: &[&str] = if vi {
        &[
            "Mã",
            "Quy tắc",
            "Mức độ",
            "Trạng thái",
            "Số lần",
            "Lần đầu",
            "Lần cuối",
        ]
    } else {
        &[
            "Id",
            "Rule",
            "Severity",
            "Status",
            "Count",
            "First seen",
            "Last seen",
        ]
    };
    let rows: Vec<Vec<String>> = case
        .incidents
        .iter()
        .map(|i| {
            vec![
                short_id(&i.id).to_string(),
                cell(&i.rule_id, 40),
                severity_name(i.severity, lang).to_string(),
                status_name(i.status, lang).to_string(),
                i.count.to_string(),
                human_time(i.first_seen),
                human_time(i.last_seen),
            ]
        })
        .collect();
    out.push_str(&table(header, &rows));
    if case.incidents_omitted > 0 {
        let more = case.incidents_omitted;
        out.push_str(&if vi {
            format!("  (và {more} sự cố khác)\n")
        } else {
            format!("  (and {more} more incidents)\n")
        });
    }
    out.push_str(&history_lines(&case.history, lang));
    out
}

/// `rules list --stats`: incidents, false positives and open incidents per rule; a rule whose
/// closed incidents are mostly false positives is flagged as noisy.
pub fn rule_stats_table(stats: &[crate::store::RuleStats], lang: Lang) -> String {
    let header: &[&str] = match lang {
        Lang::Vi => &["Quy tắc", "Sự cố", "Cảnh báo nhầm", "Đang mở", "Ghi chú"],
        Lang::En => &["Rule", "Incidents", "False positives", "Open", "Note"],
    };
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            let note = if is_noisy(s) {
                match lang {
                    Lang::Vi => "nhiều cảnh báo nhầm",
                    Lang::En => "noisy",
                }
            } else {
                ""
            };
            vec![
                cell(&s.rule_id, 48),
                s.incidents.to_string(),
                s.false_positives.to_string(),
                s.open.to_string(),
                note.to_string(),
            ]
        })
        .collect();
    table(header, &rows)
}

/// Noisy: at least 3 false positives, and they are at least half of the rule's closed incidents.
pub fn is_noisy(stats: &crate::store::RuleStats) -> bool {
    let closed = stats.incidents.saturating_sub(stats.open);
    stats.false_positives >= 3 && stats.false_positives * 2 >= closed
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
