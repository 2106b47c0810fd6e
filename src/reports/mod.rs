//! The national forms: `socwatch report incident ID` (initial incident report) and `socwatch report
//! monitoring --since --until` (periodic monitoring report). The store (or the daemon's API) gives
//! the facts ([`IncidentData`], [`MonitoringData`]); [`incident_document`] and
//! [`monitoring_document`] word them in Vietnamese or English as a [`Document`] of sections; `html`
//! and `pdf` lay out the same document, so the two formats never say different things.

pub mod html;
pub mod pdf;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cases::Case;
use crate::evidence::Proof;
use crate::evidence::note::NoteVerifier;
use crate::i18n::{action_word, status_word};
use crate::model::{Incident, Lang, Severity, Status};
use crate::report::{group_text, human_time, severity_name};
use crate::store::{Delivered, Query, Store, StoreError};

/// An alert about the incident that has not reached its destination: waiting, or refused for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undelivered {
    pub destination: String,
    pub revision: u64,
    #[serde(with = "crate::model::rfc3339")]
    pub enqueued: Timestamp,
    pub refused: bool,
    #[serde(default)]
    pub error: String,
}

/// What the initial incident report tells, as read from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentData {
    pub incident: Incident,
    pub deliveries: Vec<Delivered>,
    pub undelivered: Vec<Undelivered>,
    /// The inclusion proof of the incident's last change (None: no leaf names it).
    pub proof: Option<Proof>,
}

/// What the periodic monitoring report tells: the incidents whose first event falls in
/// `[since, until)`, their cases, the alerts delivered in the period, and the log's latest checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringData {
    #[serde(with = "crate::model::rfc3339")]
    pub since: Timestamp,
    #[serde(with = "crate::model::rfc3339")]
    pub until: Timestamp,
    pub incidents: Vec<Incident>,
    pub cases: Vec<Case>,
    pub deliveries: Vec<Delivered>,
    pub undelivered: Vec<Undelivered>,
    pub log_size: u64,
    /// The latest signed checkpoint (tree size, note).
    pub checkpoint: Option<(u64, String)>,
}

fn undelivered(store: &Store, id: Option<&str>) -> Result<Vec<Undelivered>, StoreError> {
    Ok(store
        .undelivered(id)?
        .into_iter()
        .map(|(destination, entry, refused)| Undelivered {
            destination,
            revision: entry.incident.revision,
            enqueued: entry.enqueued,
            refused,
            error: entry.error.unwrap_or_default(),
        })
        .collect())
}

/// The facts of one incident's report; `given` may be an id prefix.
pub fn incident_data(
    store: &Store,
    given: &str,
    verifier: Option<&NoteVerifier>,
) -> Result<IncidentData, StoreError> {
    let incident = store.find(given)?;
    let proof = crate::evidence::notary::incident_proof(store, &incident.id, verifier)?;
    Ok(IncidentData {
        deliveries: store.deliveries(Some(&incident.id))?,
        undelivered: undelivered(store, Some(&incident.id))?,
        proof,
        incident,
    })
}

/// The facts of the monitoring report of `[since, until)`.
pub fn monitoring_data(
    store: &Store,
    since: Timestamp,
    until: Timestamp,
) -> Result<MonitoringData, StoreError> {
    let query = Query {
        since: Some(since),
        ..Query::default()
    };
    let mut incidents: Vec<Incident> = store
        .list(&query)?
        .into_iter()
        .filter(|i| i.first_seen >= since && i.first_seen < until)
        .collect();
    incidents.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.id.cmp(&b.id)));
    let mut cases = Vec::new();
    let ids: std::collections::BTreeSet<&str> = incidents
        .iter()
        .map(|i| i.case_id.as_str())
        .filter(|c| !c.is_empty())
        .collect();
    for id in ids {
        if let Some(case) = store.case(id)? {
            cases.push(case);
        }
    }
    let deliveries = store
        .deliveries(None)?
        .into_iter()
        .filter(|d| d.delivered >= since && d.delivered < until)
        .collect();
    Ok(MonitoringData {
        since,
        until,
        incidents,
        cases,
        deliveries,
        undelivered: undelivered(store, None)?,
        log_size: store.evidence_size()?,
        checkpoint: store.latest_signed_checkpoint()?,
    })
}

/// Who the report names as its authors (`[reports]`).
#[derive(Debug, Clone, Default)]
pub struct Authors {
    pub unit: String,
    pub agency: String,
}

impl Authors {
    pub fn from_config(config: &crate::config::Config) -> Authors {
        Authors {
            unit: config.reports.unit.clone(),
            agency: config.reports.agency.clone(),
        }
    }
}

/// One label and its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub label: String,
    pub value: String,
}

/// A part of a report: fields, a table, preformatted lines, or some of each. The `has_` flags let
/// a template test for a part the same way in askama and MiniJinja.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Stable name for templates: `general`, `detection`, `status`, `actions`, `notified`,
    /// `evidence`, `proof`; `by_severity`, `by_system`, `by_rule`, `by_status`, `cases`,
    /// `incidents`, `deliveries`, `checkpoint`.
    pub id: &'static str,
    pub title: String,
    pub fields: Vec<Field>,
    pub has_fields: bool,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub has_table: bool,
    pub pre: Vec<String>,
    pub has_pre: bool,
    /// Shown when the section has nothing else ("none").
    pub empty: String,
    pub is_empty: bool,
}

impl Section {
    fn new(id: &'static str, title: String, lang: Lang) -> Section {
        Section {
            id,
            title,
            fields: Vec::new(),
            has_fields: false,
            header: Vec::new(),
            rows: Vec::new(),
            has_table: false,
            pre: Vec::new(),
            has_pre: false,
            empty: l(lang, "Không có", "None").to_string(),
            is_empty: true,
        }
    }

    fn field(mut self, label: &str, value: impl Into<String>) -> Section {
        let value = value.into();
        self.fields.push(Field {
            label: label.to_string(),
            value: if value.is_empty() { "-".into() } else { value },
        });
        self.refresh()
    }

    fn table(mut self, header: &[&str], rows: Vec<Vec<String>>) -> Section {
        if !rows.is_empty() {
            self.header = header.iter().map(|h| h.to_string()).collect();
            self.rows = rows;
        }
        self.refresh()
    }

    fn pre(mut self, lines: Vec<String>) -> Section {
        self.pre.extend(lines);
        self.refresh()
    }

    fn refresh(mut self) -> Section {
        self.has_fields = !self.fields.is_empty();
        self.has_table = !self.rows.is_empty();
        self.has_pre = !self.pre.is_empty();
        self.is_empty = !(self.has_fields || self.has_table || self.has_pre);
        self
    }
}

/// A whole report, ready for a template or the PDF writer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    /// `vi` or `en`, for `<html lang>`.
    pub lang: &'static str,
    pub title: String,
    /// The authors' line under the title.
    pub subtitle: String,
    pub generated: String,
    pub sections: Vec<Section>,
}

impl Document {
    /// A report titled `title`, signed by `authors`, made at `now`.
    fn new(
        lang: Lang,
        title: String,
        authors: &Authors,
        now: Timestamp,
        sections: Vec<Section>,
    ) -> Document {
        Document {
            lang: lang_code(lang),
            title,
            subtitle: authors_line(authors, lang),
            generated: format!(
                "{}: {}",
                l(lang, "Ngày lập báo cáo", "Report made"),
                human_time(now)
            ),
            sections,
        }
    }
}

fn l(lang: Lang, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

fn lang_code(lang: Lang) -> &'static str {
    l(lang, "vi", "en")
}

/// The protection level (cấp độ, 1-5) of the information system, or "not set" for 0.
fn level_text(level: u8, lang: Lang) -> String {
    if level == 0 {
        l(lang, "chưa xác định", "not set").to_string()
    } else {
        level.to_string()
    }
}

fn rfc3339_time(text: &str) -> String {
    text.parse::<Timestamp>()
        .map(human_time)
        .unwrap_or_else(|_| text.to_string())
}

/// Makes a log line printable: control characters shown escaped, at most `max` characters.
fn printable(text: &str) -> String {
    crate::report::cell(text, 2000)
}

fn destination_name(destination: &str, lang: Lang) -> String {
    match destination {
        "national" => l(
            lang,
            "Hệ thống giám sát quốc gia",
            "National monitoring endpoint",
        )
        .into(),
        "email" => l(lang, "Thư điện tử", "Email").into(),
        other => other.to_string(),
    }
}

fn authors_line(authors: &Authors, lang: Lang) -> String {
    format!(
        "{}: {} — {}: {}",
        l(lang, "Đơn vị vận hành", "Operating unit"),
        if authors.unit.is_empty() {
            "-"
        } else {
            &authors.unit
        },
        l(lang, "Cơ quan chủ quản", "Owning agency"),
        if authors.agency.is_empty() {
            "-"
        } else {
            &authors.agency
        },
    )
}

fn general(authors: &Authors, lang: Lang) -> Section {
    Section::new(
        "general",
        l(lang, "Thông tin chung", "General").into(),
        lang,
    )
    .field(l(lang, "Đơn vị vận hành", "Operating unit"), &authors.unit)
    .field(
        l(lang, "Cơ quan chủ quản", "Owning agency"),
        &authors.agency,
    )
}

/// The initial incident report, worded in `lang`, made at `now`.
pub fn incident_document(
    data: &IncidentData,
    authors: &Authors,
    lang: Lang,
    now: Timestamp,
) -> Document {
    let i = &data.incident;
    let title = i
        .title_vi
        .as_ref()
        .filter(|_| lang == Lang::Vi)
        .unwrap_or(&i.title);
    let opened = data
        .proof
        .as_ref()
        .and_then(|p| p.history.iter().find(|leaf| leaf.action == "opened"))
        .map(|leaf| rfc3339_time(&leaf.ts))
        .unwrap_or_else(|| human_time(i.first_seen));
    let mut sections = Vec::new();
    sections.push(
        general(authors, lang)
            .field(l(lang, "Mã sự cố", "Incident"), &i.id)
            .field(
                l(lang, "Hệ thống thông tin", "Information system"),
                &i.system,
            )
            .field(
                l(lang, "Cấp độ", "Protection level (cấp độ)"),
                level_text(i.level, lang),
            )
            .field(l(lang, "Máy", "Host"), &i.host)
            .field(
                l(lang, "Mức độ nghiêm trọng", "Severity"),
                severity_name(i.severity, lang),
            )
            .field(l(lang, "Mã vụ việc", "Case"), &i.case_id),
    );
    let tags = if i.tags.is_empty() {
        "-".to_string()
    } else {
        i.tags.join(", ")
    };
    sections.push(
        Section::new("detection", l(lang, "Phát hiện", "Detection").into(), lang)
            .field(
                l(lang, "Thời điểm phát hiện", "Detected (first event)"),
                human_time(i.first_seen),
            )
            .field(
                l(lang, "Thời điểm socwatch mở sự cố", "Opened by socwatch"),
                opened,
            )
            .field(
                l(lang, "Lần ghi nhận cuối", "Last event"),
                human_time(i.last_seen),
            )
            .field(l(lang, "Số lần", "Count"), i.count.to_string())
            .field(
                l(lang, "Phương thức phát hiện", "Detection method"),
                l(lang, "tự động, socwatch", "automatic, socwatch"),
            )
            .field(l(lang, "Luật", "Rule"), &i.rule_id)
            .field(l(lang, "Tên luật", "Rule title"), title)
            .field(l(lang, "Kỹ thuật / nhãn", "Techniques / tags"), tags)
            .field(l(lang, "Đối tượng", "Entity"), group_text(i)),
    );
    let history: Vec<Vec<String>> = i
        .history
        .iter()
        .map(|h| {
            vec![
                human_time(h.ts),
                action_word(&h.action, lang),
                h.by.clone(),
                printable(&h.note),
            ]
        })
        .collect();
    sections.push(
        Section::new(
            "status",
            l(lang, "Trạng thái hiện tại", "Current status").into(),
            lang,
        )
        .field(l(lang, "Trạng thái", "Status"), status_word(i.status, lang))
        .table(
            &[
                l(lang, "Thời điểm", "Time"),
                l(lang, "Hành động", "Action"),
                l(lang, "Người thực hiện", "By"),
                l(lang, "Ghi chú", "Note"),
            ],
            history,
        ),
    );
    let actions: Vec<Vec<String>> = i
        .history
        .iter()
        .filter(|h| !h.note.trim().is_empty())
        .map(|h| vec![human_time(h.ts), h.by.clone(), printable(&h.note)])
        .collect();
    sections.push(
        Section::new(
            "actions",
            l(lang, "Biện pháp đã thực hiện", "Actions taken").into(),
            lang,
        )
        .table(
            &[
                l(lang, "Thời điểm", "Time"),
                l(lang, "Người thực hiện", "By"),
                l(lang, "Biện pháp", "Action"),
            ],
            actions,
        ),
    );
    let mut notified: Vec<Vec<String>> = data
        .deliveries
        .iter()
        .map(|d| {
            vec![
                destination_name(&d.destination, lang),
                human_time(d.delivered),
                l(lang, "đã nhận", "delivered").into(),
                format!("r{}", d.revision),
            ]
        })
        .collect();
    notified.extend(data.undelivered.iter().map(|u| {
        let status = if u.refused {
            l(lang, "bị từ chối", "refused")
        } else {
            l(lang, "đang chờ gửi", "pending")
        };
        vec![
            destination_name(&u.destination, lang),
            human_time(u.enqueued),
            status.into(),
            format!("r{} {}", u.revision, printable(&u.error))
                .trim()
                .to_string(),
        ]
    }));
    sections.push(
        Section::new("notified", l(lang, "Đã thông báo", "Notified").into(), lang).table(
            &[
                l(lang, "Nơi nhận", "Destination"),
                l(lang, "Thời điểm", "Time"),
                l(lang, "Trạng thái", "Status"),
                l(lang, "Phiên bản", "Revision"),
            ],
            notified,
        ),
    );
    let mut lines: Vec<String> = i
        .evidence
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                human_time(e.ts),
                printable(&e.source),
                printable(&e.line)
            )
        })
        .collect();
    if i.evidence_omitted > 0 {
        lines.push(match lang {
            Lang::Vi => format!("… và {} dòng khác không lưu", i.evidence_omitted),
            Lang::En => format!("… and {} more lines not kept", i.evidence_omitted),
        });
    }
    sections
        .push(Section::new("evidence", l(lang, "Chứng cứ", "Evidence").into(), lang).pre(lines));
    let mut proof = Section::new(
        "proof",
        l(lang, "Bằng chứng toàn vẹn", "Inclusion proof").into(),
        lang,
    );
    if let Some(p) = &data.proof {
        proof = proof
            .field(l(lang, "Chỉ số lá", "Leaf index"), p.leaf_index.to_string())
            .field(
                l(lang, "Kích thước cây", "Tree size"),
                p.tree_size.to_string(),
            )
            .field(l(lang, "Gốc", "Root"), &p.root)
            .field(l(lang, "Băm của lá", "Leaf hash"), &p.leaf_hash)
            .field(l(lang, "Đường kiểm chứng", "Audit path"), p.proof.join(" "));
        let note = p.checkpoint.clone().unwrap_or_else(|| {
            l(
                lang,
                "(chưa có điểm kiểm tra được ký bao gồm lá này)",
                "(no signed checkpoint covers this leaf yet)",
            )
            .into()
        });
        proof = proof.pre(note.lines().map(str::to_string).collect());
    }
    Document::new(
        lang,
        match lang {
            Lang::Vi => format!("Báo cáo ban đầu sự cố an toàn thông tin: {title}"),
            Lang::En => format!("Initial incident report: {title}"),
        },
        authors,
        now,
        {
            sections.push(proof);
            sections
        },
    )
}

fn count_table<K: Ord>(items: impl Iterator<Item = K>) -> BTreeMap<K, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_insert(0) += 1;
    }
    counts
}

/// The periodic monitoring report, worded in `lang`, made at `now`.
pub fn monitoring_document(
    data: &MonitoringData,
    authors: &Authors,
    lang: Lang,
    now: Timestamp,
) -> Document {
    let count = l(lang, "Số sự cố", "Incidents");
    let period = format!("{} – {}", human_time(data.since), human_time(data.until));
    let mut sections = vec![
        general(authors, lang)
            .field(l(lang, "Kỳ báo cáo", "Period"), period.clone())
            .field(
                l(lang, "Tổng số sự cố", "Incidents in total"),
                data.incidents.len().to_string(),
            )
            .field(l(lang, "Số vụ việc", "Cases"), data.cases.len().to_string()),
    ];
    let by_severity = count_table(data.incidents.iter().map(|i| i.severity));
    let rows = Severity::ALL
        .into_iter()
        .rev()
        .map(|s| {
            vec![
                severity_name(s, lang).to_string(),
                by_severity.get(&s).copied().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    sections.push(
        Section::new(
            "by_severity",
            l(lang, "Theo mức độ", "By severity").into(),
            lang,
        )
        .table(&[l(lang, "Mức độ", "Severity"), count], rows),
    );
    let by_system = count_table(data.incidents.iter().map(|i| (i.system.clone(), i.level)));
    let rows = by_system
        .into_iter()
        .map(|((system, level), n)| vec![system, level_text(level, lang), n.to_string()])
        .collect();
    sections.push(
        Section::new(
            "by_system",
            l(lang, "Theo hệ thống", "By system").into(),
            lang,
        )
        .table(
            &[
                l(lang, "Hệ thống", "System"),
                l(lang, "Cấp độ", "Level"),
                count,
            ],
            rows,
        ),
    );
    let by_rule = count_table(data.incidents.iter().map(|i| i.rule_id.clone()));
    let rows = by_rule
        .into_iter()
        .map(|(rule, n)| {
            let title = data
                .incidents
                .iter()
                .find(|i| i.rule_id == rule)
                .map(|i| match (&i.title_vi, lang) {
                    (Some(vi), Lang::Vi) => vi.clone(),
                    _ => i.title.clone(),
                })
                .unwrap_or_default();
            vec![rule, title, n.to_string()]
        })
        .collect();
    sections.push(
        Section::new("by_rule", l(lang, "Theo luật", "By rule").into(), lang).table(
            &[l(lang, "Luật", "Rule"), l(lang, "Tên", "Title"), count],
            rows,
        ),
    );
    let by_status = count_table(data.incidents.iter().map(|i| i.status as u8));
    let rows = [
        Status::Open,
        Status::Acknowledged,
        Status::Resolved,
        Status::FalsePositive,
    ]
    .into_iter()
    .map(|s| {
        vec![
            status_word(s, lang).to_string(),
            by_status.get(&(s as u8)).copied().unwrap_or(0).to_string(),
        ]
    })
    .collect();
    sections.push(
        Section::new(
            "by_status",
            l(lang, "Theo trạng thái", "By status").into(),
            lang,
        )
        .table(&[l(lang, "Trạng thái", "Status"), count], rows),
    );
    let rows = data
        .cases
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                match (&c.title_vi, lang) {
                    (Some(vi), Lang::Vi) => vi.clone(),
                    _ => c.title.clone(),
                },
                severity_name(c.severity, lang).to_string(),
                status_word(c.status, lang).to_string(),
                c.incidents.len().to_string(),
            ]
        })
        .collect();
    sections.push(
        Section::new("cases", l(lang, "Vụ việc", "Cases").into(), lang).table(
            &[
                l(lang, "Mã", "Id"),
                l(lang, "Tên", "Title"),
                l(lang, "Mức độ", "Severity"),
                l(lang, "Trạng thái", "Status"),
                count,
            ],
            rows,
        ),
    );
    let rows = data
        .incidents
        .iter()
        .map(|i| {
            vec![
                crate::report::short_id(&i.id).to_string(),
                human_time(i.first_seen),
                i.rule_id.clone(),
                i.system.clone(),
                level_text(i.level, lang),
                severity_name(i.severity, lang).to_string(),
                status_word(i.status, lang).to_string(),
            ]
        })
        .collect();
    sections.push(
        Section::new(
            "incidents",
            l(lang, "Sự cố trong kỳ", "Incidents in the period").into(),
            lang,
        )
        .table(
            &[
                l(lang, "Mã", "Id"),
                l(lang, "Phát hiện", "Detected"),
                l(lang, "Luật", "Rule"),
                l(lang, "Hệ thống", "System"),
                l(lang, "Cấp độ", "Level"),
                l(lang, "Mức độ", "Severity"),
                l(lang, "Trạng thái", "Status"),
            ],
            rows,
        ),
    );
    let mut per: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for d in &data.deliveries {
        per.entry(d.destination.clone()).or_default()[0] += 1;
    }
    for u in &data.undelivered {
        per.entry(u.destination.clone()).or_default()[if u.refused { 2 } else { 1 }] += 1;
    }
    let rows = per
        .into_iter()
        .map(|(destination, [delivered, pending, refused])| {
            vec![
                destination_name(&destination, lang),
                delivered.to_string(),
                pending.to_string(),
                refused.to_string(),
            ]
        })
        .collect();
    sections.push(
        Section::new(
            "deliveries",
            l(lang, "Gửi cảnh báo", "Alert deliveries").into(),
            lang,
        )
        .table(
            &[
                l(lang, "Nơi nhận", "Destination"),
                l(lang, "Đã nhận trong kỳ", "Delivered in the period"),
                l(lang, "Đang chờ", "Pending now"),
                l(lang, "Bị từ chối", "Refused"),
            ],
            rows,
        ),
    );
    let mut checkpoint = Section::new(
        "checkpoint",
        l(lang, "Điểm kiểm tra được ký", "Signed checkpoint").into(),
        lang,
    )
    .field(
        l(lang, "Số lá trong nhật ký", "Leaves in the log"),
        data.log_size.to_string(),
    );
    if let Some((_, note)) = &data.checkpoint {
        checkpoint = checkpoint.pre(note.lines().map(str::to_string).collect());
    }
    sections.push(checkpoint);
    Document::new(
        lang,
        match lang {
            Lang::Vi => format!("Báo cáo giám sát định kỳ: {period}"),
            Lang::En => format!("Periodic monitoring report: {period}"),
        },
        authors,
        now,
        sections,
    )
}
