//! The console's handlers and their templates: sign-in, the queue, an incident, rules, sources and
//! the outbox. Handlers read the store off the async threads and hand plain values (`view`) to
//! askama, which escapes every value: nothing from a log line is ever marked safe.

use std::time::Instant;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;

use super::view::{self, Chart, Counter, QueueRow, T, Top};
use super::{Console, Ctx, SESSION_COOKIE, cookie, form_value};
use crate::api::action_from_path;
use crate::cases::Case;
use crate::i18n::{Msg, action_word};
use crate::model::{Incident, Lang, Severity, Status};
use crate::store::{Action, CaseQuery, Glance, Store, StoreError, Tally, status_name};

/// Rows the queue shows at most.
pub const PAGE: usize = 100;
/// Time-index entries one queue request reads at most (counters and chart say when they were cut).
pub const GLANCE_CAP: usize = 250_000;
/// Incidents loaded at most to apply the system and text filters.
pub const SCAN_CAP: usize = 5_000;
/// The time window a queue without `since` shows.
pub const DEFAULT_WINDOW: &str = "24h";
/// False-positive incidents loaded at most for `/rules`.
const FP_CAP: usize = 10_000;

/// The frame every signed-in page shares.
pub struct Layout {
    pub t: T,
    pub nav: &'static str,
    pub user: String,
    pub csrf: String,
    pub switch_href: String,
    pub switch_label: &'static str,
}

impl Layout {
    fn new(ctx: &Ctx, nav: &'static str) -> Layout {
        let (user, csrf) = ctx
            .session
            .as_ref()
            .map(|s| (s.name().to_string(), s.csrf.clone()))
            .unwrap_or_default();
        Layout {
            t: ctx.t,
            nav,
            user,
            csrf,
            switch_href: ctx.switch_href(),
            switch_label: match ctx.lang() {
                Lang::Vi => "English",
                Lang::En => "Tiếng Việt",
            },
        }
    }

    pub fn signed_in_as(&self) -> String {
        crate::tr!(self.t.0, SignedInAs, name = self.user)
    }

    pub fn current(&self, nav: &str) -> &'static str {
        if self.nav == nav { "current" } else { "" }
    }
}

fn render(ctx: &Ctx, status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => ctx.html(status, html),
        Err(err) => {
            tracing::error!(error = %err, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

fn error_page(ctx: &Ctx, status: StatusCode, message: String) -> Response {
    render(
        ctx,
        status,
        &ErrorPage {
            layout: Layout::new(ctx, ""),
            message,
        },
    )
}

/// Logs a sign-in or sign-out as an admin leaf of the evidence log; a failure is logged, and the
/// sign-in or sign-out still happens.
async fn audit(console: &Console, action: &'static str, by: String, detail: String) {
    let store = console.0.api.store().clone();
    let logged = tokio::task::spawn_blocking(move || {
        store.log_admin(action, &by, &detail, jiff::Timestamp::now())
    })
    .await;
    if let Ok(Err(err)) = logged {
        tracing::warn!(error = %err, action, "cannot log a console action as evidence");
    }
}

/// Runs store reads off the async threads; a store failure is logged and shown as an error page.
async fn blocking<R: Send + 'static>(
    console: &Console,
    ctx: &Ctx,
    call: impl FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, Response> {
    let store = console.0.api.store().clone();
    match tokio::task::spawn_blocking(move || call(&store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(
            StoreError::NotFound(_) | StoreError::CaseNotFound(_) | StoreError::IdTooShort(_),
        )) => Err(error_page(
            ctx,
            StatusCode::NOT_FOUND,
            ctx.t.s(Msg::PageNotFound).to_string(),
        )),
        Ok(Err(err @ StoreError::Ambiguous { .. })) => {
            Err(error_page(ctx, StatusCode::BAD_REQUEST, err.to_string()))
        }
        Ok(Err(err)) => {
            tracing::error!(error = %err, "console store read failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
        }
        Err(err) => {
            tracing::error!(error = %err, "console store task failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
        }
    }
}

// ---- sign-in -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: T,
    error: Option<&'static str>,
    switch_href: String,
    switch_label: &'static str,
}

fn login_page(ctx: &Ctx, status: StatusCode, error: Option<Msg>) -> Response {
    let layout = Layout::new(ctx, "");
    render(
        ctx,
        status,
        &LoginPage {
            t: ctx.t,
            error: error.map(|m| ctx.t.s(m)),
            switch_href: layout.switch_href,
            switch_label: layout.switch_label,
        },
    )
}

pub async fn login_form(ctx: Ctx) -> Response {
    login_page(&ctx, StatusCode::OK, None)
}

/// `POST /login` with form field `token`: a valid token gets a session cookie and 303 to `/`; a
/// wrong one gets the form again and no cookie. Failed attempts are limited per client address.
pub async fn login(State(console): State<Console>, ctx: Ctx, body: Bytes) -> Response {
    let now = Instant::now();
    if !console.0.limiter.allows(ctx.client, now) {
        return login_page(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            Some(Msg::SignInTooMany),
        );
    }
    let token = form_value(&body, "token").unwrap_or_default();
    let Some(caller) = console.0.api.auth().caller(token.trim().as_bytes()) else {
        console.0.limiter.failed(ctx.client, now);
        tracing::warn!(client = %ctx.client, "console sign-in with a wrong token");
        return login_page(&ctx, StatusCode::UNAUTHORIZED, Some(Msg::SignInWrong));
    };
    let by = match &caller {
        crate::api::Caller::Operator(name) => name.clone(),
        crate::api::Caller::Admin => crate::api::ADMIN.to_string(),
    };
    let id = console.0.sessions.create(caller, now);
    audit(
        &console,
        "console_sign_in",
        by,
        format!("from {}", ctx.client),
    )
    .await;
    let secure = if console.settings().tls {
        "; Secure"
    } else {
        ""
    };
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn logout(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Some(session) =
        cookie(&headers, SESSION_COOKIE).and_then(|id| console.0.sessions.remove(id))
    {
        audit(
            &console,
            "console_sign_out",
            session.name().to_string(),
            String::new(),
        )
        .await;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("socwatch_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

// ---- the queue -------------------------------------------------------------------------------

/// The queue's status filter: by default what still needs work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    Any,
    One(Status),
}

impl StatusFilter {
    fn matches(self, status: Status) -> bool {
        match self {
            StatusFilter::Active => matches!(status, Status::Open | Status::Acknowledged),
            StatusFilter::Any => true,
            StatusFilter::One(one) => one == status,
        }
    }

    fn value(self) -> &'static str {
        match self {
            StatusFilter::Active => "active",
            StatusFilter::Any => "any",
            StatusFilter::One(status) => status_name(status),
        }
    }
}

/// The queue's filters, all in the URL so a view can be shared.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueParams {
    pub severity: Option<Severity>,
    pub status: StatusFilter,
    pub system: Option<String>,
    pub since: String,
    pub q: String,
}

impl QueueParams {
    pub fn parse(pairs: &[(String, String)]) -> Result<QueueParams, String> {
        let mut params = QueueParams {
            severity: None,
            status: StatusFilter::Active,
            system: None,
            since: DEFAULT_WINDOW.to_string(),
            q: String::new(),
        };
        for (key, value) in pairs {
            let value = value.trim();
            match key.as_str() {
                "severity" if value.is_empty() => {}
                "severity" => {
                    params.severity = Some(
                        value
                            .parse()
                            .map_err(|_| format!("unknown severity '{value}'"))?,
                    )
                }
                "status" => {
                    params.status = match value {
                        "" | "active" => StatusFilter::Active,
                        "any" => StatusFilter::Any,
                        other => StatusFilter::One(crate::query::parse_status(other)?),
                    }
                }
                "system" => params.system = (!value.is_empty()).then(|| value.to_string()),
                "since" if value.is_empty() => {}
                "since" => params.since = value.to_string(),
                "q" => params.q = value.to_string(),
                _ => {}
            }
        }
        Ok(params)
    }

    /// The query string of these filters with some replaced.
    fn href(&self, change: impl FnOnce(&mut QueueParams)) -> String {
        let mut p = self.clone();
        change(&mut p);
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = p.severity {
            pairs.push(("severity", s.as_str().into()));
        }
        if p.status != StatusFilter::Active {
            pairs.push(("status", p.status.value().into()));
        }
        if let Some(system) = &p.system {
            pairs.push(("system", system.clone()));
        }
        if p.since != DEFAULT_WINDOW {
            pairs.push(("since", p.since.clone()));
        }
        if !p.q.is_empty() {
            pairs.push(("q", p.q.clone()));
        }
        if pairs.is_empty() {
            "/".into()
        } else {
            format!(
                "/?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        }
    }
}

/// Everything the queue shows, read from the store in one blocking call.
pub struct QueueData {
    pub rows: Vec<Case>,
    /// Matching cases (a lower bound when the system/text filters stopped at `SCAN_CAP`).
    pub total: usize,
    pub scan_capped: bool,
    pub window_capped: bool,
    pub counts: [usize; 5],
    pub glances: Vec<Glance>,
    pub rules: Vec<(String, usize)>,
    pub systems: Vec<(String, usize)>,
    pub hosts: Vec<(String, usize)>,
}

/// Reads the queue of cases: the window's time-index entries (no case loaded) give the counters,
/// the chart and the order; only the rows shown (or, with a system or text filter, at most
/// `SCAN_CAP`) are loaded. The top lists count incidents by index. Bounded by the window, never by
/// the store's size.
pub fn read_queue(
    store: &Store,
    params: &QueueParams,
    since: Timestamp,
) -> Result<QueueData, StoreError> {
    let (mut glances, window_capped) = store.case_glances(Some(since), GLANCE_CAP)?;
    glances.retain(|g| params.status.matches(g.status));
    let mut counts = [0usize; 5];
    for g in &glances {
        counts[g.severity as usize] += 1;
    }
    let mut candidates: Vec<&Glance> = glances
        .iter()
        .filter(|g| params.severity.is_none_or(|min| g.severity >= min))
        .collect();
    candidates.sort_by(|a, b| view::queue_order(a, b));
    let narrow = CaseQuery {
        system: params.system.clone(),
        text: (!params.q.is_empty()).then(|| params.q.clone()),
        ..CaseQuery::default()
    };
    let filtered = narrow.system.is_some() || narrow.text.is_some();
    let mut rows = Vec::new();
    let mut total = candidates.len();
    let mut scan_capped = false;
    if filtered {
        let mut matched = 0;
        for (n, g) in candidates.iter().enumerate() {
            if n >= SCAN_CAP {
                scan_capped = true;
                break;
            }
            let Some(case) = store.case_as_stored(&g.id)? else {
                continue;
            };
            if !narrow.matches(&case) {
                continue;
            }
            matched += 1;
            if rows.len() < PAGE {
                rows.push(case);
            }
        }
        total = matched;
    } else {
        for g in candidates.iter().take(PAGE) {
            if let Some(case) = store.case_as_stored(&g.id)? {
                rows.push(case);
            }
        }
    }
    Ok(QueueData {
        rows,
        total,
        scan_capped,
        window_capped,
        counts,
        rules: store.tally(Tally::Rule, since)?,
        systems: store.tally(Tally::System, since)?,
        hosts: store.tally(Tally::Host, since)?,
        glances,
    })
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePage {
    layout: Layout,
    params: QueueParams,
    severities: Vec<Opt>,
    statuses: Vec<Opt>,
    windows: Vec<Opt>,
    systems: Vec<Opt>,
    counters: Vec<Counter>,
    chart: Chart,
    rows: Vec<QueueRow>,
    shown_note: String,
    notes: Vec<String>,
    top_rules: Vec<Top>,
    top_systems: Vec<Top>,
    top_hosts: Vec<Top>,
    top_techniques: Vec<Top>,
    refresh_href: String,
}

impl QueuePage {
    fn tops(&self) -> Vec<(&'static str, &[Top])> {
        let t = self.layout.t;
        vec![
            (t.s(Msg::TopRules), &self.top_rules),
            (t.s(Msg::TopTechniques), &self.top_techniques),
            (t.s(Msg::TopSystems), &self.top_systems),
            (t.s(Msg::TopHosts), &self.top_hosts),
        ]
    }
}

/// Builds the queue page from what the store said; pure, so the benchmark can time it too.
pub fn queue_page(
    ctx: &Ctx,
    params: QueueParams,
    data: QueueData,
    since: Timestamp,
    now: Timestamp,
    tags_of: impl Fn(&str) -> Vec<String>,
) -> QueuePage {
    let t = ctx.t;
    let lang = ctx.lang();
    let opt = |value: &str, label: &str, selected: bool| Opt {
        value: value.to_string(),
        label: label.to_string(),
        selected,
    };
    let mut severities = vec![opt("", t.s(Msg::FilterAny), params.severity.is_none())];
    for s in Severity::ALL.iter().rev() {
        severities.push(opt(s.as_str(), t.severity(*s), params.severity == Some(*s)));
    }
    let mut statuses = vec![
        opt(
            "active",
            t.s(Msg::FilterActive),
            params.status == StatusFilter::Active,
        ),
        opt(
            "any",
            t.s(Msg::FilterAny),
            params.status == StatusFilter::Any,
        ),
    ];
    for s in [
        Status::Open,
        Status::Acknowledged,
        Status::Resolved,
        Status::FalsePositive,
    ] {
        statuses.push(opt(
            status_name(s),
            t.status(s),
            params.status == StatusFilter::One(s),
        ));
    }
    let mut windows: Vec<Opt> = [
        ("24h", Msg::WindowDay),
        ("7d", Msg::WindowWeek),
        ("30d", Msg::WindowMonth),
    ]
    .iter()
    .map(|(v, m)| opt(v, t.s(*m), params.since == *v))
    .collect();
    if !windows.iter().any(|w| w.selected) {
        windows.push(opt(&params.since, &params.since, true));
    }
    let mut systems = vec![opt("", t.s(Msg::FilterAny), params.system.is_none())];
    for (name, _) in &data.systems {
        systems.push(opt(name, name, params.system.as_deref() == Some(name)));
    }
    if let Some(system) = &params.system
        && !data.systems.iter().any(|(n, _)| n == system)
    {
        systems.push(opt(system, system, true));
    }
    let counters = Severity::ALL
        .iter()
        .rev()
        .map(|s| Counter {
            severity: *s,
            count: data.counts[*s as usize],
            href: params.href(|p| p.severity = Some(*s)),
        })
        .collect();
    let span = now.duration_since(since).unsigned_abs();
    let buckets = view::histogram(&data.glances, since, now, view::bucket_count(span));
    let chart = view::chart(&buckets, lang);
    let top = |list: &[(String, usize)], href: &dyn Fn(&str) -> Option<String>| -> Vec<Top> {
        list.iter()
            .take(5)
            .map(|(name, count)| Top {
                name: name.clone(),
                count: *count,
                href: href(name),
            })
            .collect()
    };
    let top_rules = top(&data.rules, &|name| {
        Some(params.href(|p| p.q = name.to_string()))
    });
    let top_systems = top(&data.systems, &|name| {
        Some(params.href(|p| p.system = Some(name.to_string())))
    });
    let top_hosts = top(&data.hosts, &|name| {
        Some(params.href(|p| p.q = name.to_string()))
    });
    let top_techniques = view::top_techniques(&data.rules, tags_of, 5);
    let mut notes = Vec::new();
    if data.window_capped {
        notes.push(crate::tr!(lang, WindowCapped, n = GLANCE_CAP));
    }
    if data.scan_capped {
        notes.push(crate::tr!(lang, QueueScanCapped, n = SCAN_CAP));
    }
    let rows: Vec<QueueRow> = data
        .rows
        .iter()
        .map(|c| QueueRow::from_case(c, lang))
        .collect();
    let shown_note = crate::tr!(lang, QueueShown, shown = rows.len(), total = data.total);
    QueuePage {
        layout: Layout::new(ctx, "queue"),
        refresh_href: params.href(|_| {}),
        params,
        severities,
        statuses,
        windows,
        systems,
        counters,
        chart,
        rows,
        shown_note,
        notes,
        top_rules,
        top_systems,
        top_hosts,
        top_techniques,
    }
}

/// Why the queue could not be shown.
#[derive(Debug)]
pub enum QueueError {
    BadFilter(String),
    Store(StoreError),
    Template(askama::Error),
}

/// The queue page as HTML for the request's filters, read from `store`: what `GET /` answers, and
/// what `benches/console.rs` times. `rules` give the techniques of the top rules.
pub fn render_queue(
    store: &Store,
    ctx: &Ctx,
    rules: &[crate::api::RuleInfo],
    now: Timestamp,
) -> Result<String, QueueError> {
    let params = QueueParams::parse(&ctx.query).map_err(QueueError::BadFilter)?;
    let since =
        crate::query::parse_when(&params.since, now, false).map_err(QueueError::BadFilter)?;
    let data = read_queue(store, &params, since).map_err(QueueError::Store)?;
    let tags_of = |id: &str| {
        rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.tags.clone())
            .unwrap_or_default()
    };
    queue_page(ctx, params, data, since, now, tags_of)
        .render()
        .map_err(QueueError::Template)
}

pub async fn queue(State(console): State<Console>, ctx: Ctx) -> Response {
    let store = console.0.api.store().clone();
    let rules = console.0.api.rule_infos();
    let (ctx, rendered) = match tokio::task::spawn_blocking(move || {
        let rendered = render_queue(&store, &ctx, &rules, Timestamp::now());
        (ctx, rendered)
    })
    .await
    {
        Ok(done) => done,
        Err(err) => {
            tracing::error!(error = %err, "console queue task failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    match rendered {
        Ok(html) => ctx.html(StatusCode::OK, html),
        Err(QueueError::BadFilter(error)) => error_page(
            &ctx,
            StatusCode::BAD_REQUEST,
            crate::tr!(ctx.lang(), BadFilter, error = error),
        ),
        Err(QueueError::Store(err)) => {
            tracing::error!(error = %err, "console queue read failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        Err(QueueError::Template(err)) => {
            tracing::error!(error = %err, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

// ---- an incident -----------------------------------------------------------------------------

pub struct EvidenceRow {
    pub ts: String,
    pub source: String,
    pub line: String,
}

pub struct HistoryRow {
    pub ts: String,
    pub action: String,
    pub by: String,
    pub note: String,
}

pub struct ActionButton {
    pub path: &'static str,
    pub label: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    layout: Layout,
    row: QueueRow,
    incident: Incident,
    entities: Vec<(String, String)>,
    techniques: Vec<String>,
    tactics: Vec<String>,
    evidence: Vec<EvidenceRow>,
    omitted: Option<String>,
    history: Vec<HistoryRow>,
    actions: Vec<ActionButton>,
    error: Option<String>,
}

fn incident_page(ctx: &Ctx, incident: Incident, error: Option<String>) -> IncidentPage {
    let lang = ctx.lang();
    let actions = [
        Action::Ack,
        Action::Resolve,
        Action::FalsePositive,
        Action::Reopen,
    ]
    .into_iter()
    .filter(|a| a.target(incident.status).is_some())
    .map(|a| ActionButton {
        path: crate::api::action_path(a),
        label: action_word(a.name(), lang),
    })
    .collect();
    IncidentPage {
        layout: Layout::new(ctx, "queue"),
        row: QueueRow::from_incident(&incident, lang),
        entities: incident
            .group
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        techniques: view::techniques(&incident.tags),
        tactics: view::tactics(&incident.tags),
        evidence: incident
            .evidence
            .iter()
            .map(|e| EvidenceRow {
                ts: view::when(e.ts),
                source: e.source.clone(),
                line: e.line.clone(),
            })
            .collect(),
        omitted: (incident.evidence_omitted > 0)
            .then(|| crate::tr!(lang, EvidenceOmitted, n = incident.evidence_omitted)),
        history: incident
            .history
            .iter()
            .map(|h| HistoryRow {
                ts: view::when(h.ts),
                action: action_word(&h.action, lang),
                by: h.by.clone(),
                note: h.note.clone(),
            })
            .collect(),
        actions,
        incident,
        error,
    }
}

pub async fn incident(
    State(console): State<Console>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    match blocking(&console, &ctx, move |store| store.find(&id)).await {
        Ok(incident) => render(&ctx, StatusCode::OK, &incident_page(&ctx, incident, None)),
        Err(response) => response,
    }
}

/// `POST /incidents/{id}/{ack|resolve|false-positive|reopen}` with form fields `csrf` (checked
/// before this runs) and `note`; recorded under the signed-in operator's name.
pub async fn act(
    State(console): State<Console>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(action) = action_from_path(&action) else {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            ctx.t.s(Msg::PageNotFound).to_string(),
        );
    };
    let Some(by) = ctx.session.as_ref().map(|s| s.name().to_string()) else {
        return (StatusCode::FORBIDDEN, "not signed in").into_response();
    };
    let note: String = form_value(&body, "note")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(crate::api::MAX_NOTE_CHARS)
        .collect();
    let target = id.clone();
    let store = console.0.api.store().clone();
    let done = tokio::task::spawn_blocking(move || {
        store.transition(&target, action, &by, &note, Timestamp::now())
    })
    .await;
    match done {
        Ok(Ok(incident)) => Redirect::to(&format!("/incidents/{}", incident.id)).into_response(),
        Ok(Err(err @ StoreError::InvalidTransition { .. })) => {
            let message = crate::tr!(ctx.lang(), ActionRefused, error = err);
            match blocking(&console, &ctx, move |store| store.find(&id)).await {
                Ok(incident) => render(
                    &ctx,
                    StatusCode::CONFLICT,
                    &incident_page(&ctx, incident, Some(message)),
                ),
                Err(response) => response,
            }
        }
        Ok(Err(StoreError::NotFound(_) | StoreError::IdTooShort(_))) => error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            ctx.t.s(Msg::PageNotFound).to_string(),
        ),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "console action failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "console action task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

// ---- a case ---------------------------------------------------------------------------------

pub struct CaseIncidentRow {
    pub href: String,
    pub id: String,
    pub title: String,
    pub rule_id: String,
    pub severity: Severity,
    pub status: Status,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

pub struct TimelineRow {
    pub ts: String,
    pub rule_id: String,
    pub incident_href: String,
    pub source: String,
    pub line: String,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    layout: Layout,
    row: QueueRow,
    case: Case,
    entities: Vec<(String, String)>,
    techniques: Vec<String>,
    incidents: Vec<CaseIncidentRow>,
    omitted: Option<String>,
    timeline: Vec<TimelineRow>,
    history: Vec<HistoryRow>,
    actions: Vec<ActionButton>,
    assignee: String,
    error: Option<String>,
}

fn case_page(ctx: &Ctx, case: Case, incidents: Vec<Incident>, error: Option<String>) -> CasePage {
    let lang = ctx.lang();
    let mut timeline: Vec<(Timestamp, TimelineRow)> = incidents
        .iter()
        .flat_map(|incident| {
            incident.evidence.iter().map(move |e| {
                (
                    e.ts,
                    TimelineRow {
                        ts: view::when(e.ts),
                        rule_id: incident.rule_id.clone(),
                        incident_href: format!("/incidents/{}", incident.id),
                        source: e.source.clone(),
                        line: e.line.clone(),
                    },
                )
            })
        })
        .collect();
    timeline.sort_by_key(|(ts, _)| *ts);
    let mut techniques: Vec<String> = Vec::new();
    for incident in &incidents {
        for technique in view::techniques(&incident.tags) {
            if !techniques.contains(&technique) {
                techniques.push(technique);
            }
        }
    }
    let actions = [
        Action::Ack,
        Action::Resolve,
        Action::FalsePositive,
        Action::Reopen,
    ]
    .into_iter()
    .filter(|a| a.target(case.status).is_some())
    .map(|a| ActionButton {
        path: crate::api::action_path(a),
        label: action_word(a.name(), lang),
    })
    .collect();
    CasePage {
        layout: Layout::new(ctx, "queue"),
        row: QueueRow::from_case(&case, lang),
        entities: case
            .entities
            .iter()
            .flat_map(|(k, values)| values.iter().map(move |v| (k.clone(), v.clone())))
            .collect(),
        techniques,
        incidents: case
            .incidents
            .iter()
            .map(|i| CaseIncidentRow {
                href: format!("/incidents/{}", i.id),
                id: i.id.clone(),
                title: view::title_of(&i.title, i.title_vi.as_deref(), lang).to_string(),
                rule_id: i.rule_id.clone(),
                severity: i.severity,
                status: i.status,
                count: i.count,
                first_seen: view::when(i.first_seen),
                last_seen: view::when(i.last_seen),
            })
            .collect(),
        omitted: (case.incidents_omitted > 0)
            .then(|| crate::tr!(lang, IncidentsOmitted, n = case.incidents_omitted)),
        timeline: timeline.into_iter().map(|(_, row)| row).collect(),
        history: case
            .history
            .iter()
            .map(|h| HistoryRow {
                ts: view::when(h.ts),
                action: action_word(&h.action, lang),
                by: h.by.clone(),
                note: h.note.clone(),
            })
            .collect(),
        actions,
        assignee: case
            .assignee
            .clone()
            .unwrap_or_else(|| ctx.t.s(Msg::Unassigned).to_string()),
        case,
        error,
    }
}

pub async fn case(State(console): State<Console>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let read = blocking(&console, &ctx, move |store| {
        let case = store.find_case(&id)?;
        let incidents = store.case_incidents(&case.id)?;
        Ok((case, incidents))
    })
    .await;
    match read {
        Ok((case, incidents)) => render(
            &ctx,
            StatusCode::OK,
            &case_page(&ctx, case, incidents, None),
        ),
        Err(response) => response,
    }
}

/// `POST /cases/{id}/{ack|resolve|false-positive|reopen}` (form `note`) and `POST
/// /cases/{id}/assign` (form `to`; empty clears it), recorded under the signed-in operator.
pub async fn act_on_case(
    State(console): State<Console>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let lifecycle = action_from_path(&action);
    if lifecycle.is_none() && action != "assign" {
        return error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            ctx.t.s(Msg::PageNotFound).to_string(),
        );
    }
    let Some(by) = ctx.session.as_ref().map(|s| s.name().to_string()) else {
        return (StatusCode::FORBIDDEN, "not signed in").into_response();
    };
    let note: String = form_value(&body, "note")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(crate::api::MAX_NOTE_CHARS)
        .collect();
    let to = form_value(&body, "to")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if let Some(to) = &to
        && let Err(why) = crate::api::check_actor_name(to)
    {
        return error_page(&ctx, StatusCode::BAD_REQUEST, format!("\"to\" {why}"));
    }
    let target = id.clone();
    let store = console.0.api.store().clone();
    let done = tokio::task::spawn_blocking(move || match lifecycle {
        Some(action) => store.case_transition(&target, action, &by, &note, Timestamp::now()),
        None => store.case_assign(&target, to.as_deref(), &by, Timestamp::now()),
    })
    .await;
    match done {
        Ok(Ok(case)) => Redirect::to(&format!("/cases/{}", case.id)).into_response(),
        Ok(Err(err @ StoreError::InvalidTransition { .. })) => {
            let message = crate::tr!(ctx.lang(), ActionRefused, error = err);
            let read = blocking(&console, &ctx, move |store| {
                let case = store.find_case(&id)?;
                let incidents = store.case_incidents(&case.id)?;
                Ok((case, incidents))
            })
            .await;
            match read {
                Ok((case, incidents)) => render(
                    &ctx,
                    StatusCode::CONFLICT,
                    &case_page(&ctx, case, incidents, Some(message)),
                ),
                Err(response) => response,
            }
        }
        Ok(Err(
            StoreError::NotFound(_) | StoreError::CaseNotFound(_) | StoreError::IdTooShort(_),
        )) => error_page(
            &ctx,
            StatusCode::NOT_FOUND,
            ctx.t.s(Msg::PageNotFound).to_string(),
        ),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "console case action failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "console case action task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

// ---- rules, sources, outbox --------------------------------------------------------------------

pub struct RuleRow {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub hits: usize,
    pub false_positives: usize,
    pub noisy: bool,
    pub href: String,
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    layout: Layout,
    rows: Vec<RuleRow>,
    windows: Vec<Opt>,
    window_note: String,
}

pub async fn rules(State(console): State<Console>, ctx: Ctx) -> Response {
    let now = Timestamp::now();
    let window = ctx
        .query
        .iter()
        .find(|(k, _)| k == "since")
        .map_or("30d".to_string(), |(_, v)| v.clone());
    let since = match crate::query::parse_when(&window, now, false) {
        Ok(since) => since,
        Err(error) => {
            return error_page(
                &ctx,
                StatusCode::BAD_REQUEST,
                crate::tr!(ctx.lang(), BadFilter, error = error),
            );
        }
    };
    let counted = blocking(&console, &ctx, move |store| {
        let hits = store.tally(Tally::Rule, since)?;
        let mut fps: std::collections::BTreeMap<String, usize> = Default::default();
        for id in store.ids_with_status(Status::FalsePositive, since, FP_CAP)? {
            if let Some(incident) = store.get(&id)? {
                *fps.entry(incident.rule_id).or_default() += 1;
            }
        }
        Ok((hits, fps))
    })
    .await;
    let (hits, fps) = match counted {
        Ok(counted) => counted,
        Err(response) => return response,
    };
    let lang = ctx.lang();
    let mut rows: Vec<RuleRow> = console
        .0
        .api
        .rule_infos()
        .into_iter()
        .map(|rule| {
            let hits = hits
                .iter()
                .find(|(id, _)| *id == rule.id)
                .map_or(0, |(_, n)| *n);
            let false_positives = fps.get(&rule.id).copied().unwrap_or(0);
            RuleRow {
                title: view::title_of(&rule.title, rule.title_vi.as_deref(), lang).to_string(),
                href: format!(
                    "/?{}",
                    serde_urlencoded::to_string([
                        ("q", rule.id.as_str()),
                        ("since", window.as_str()),
                        ("status", "any")
                    ])
                    .unwrap_or_default()
                ),
                id: rule.id,
                severity: rule.severity,
                hits,
                false_positives,
                noisy: view::noisy(hits, false_positives),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.id.cmp(&b.id)));
    let t = ctx.t;
    let windows = [
        ("24h", Msg::WindowDay),
        ("7d", Msg::WindowWeek),
        ("30d", Msg::WindowMonth),
    ]
    .iter()
    .map(|(v, m)| Opt {
        value: v.to_string(),
        label: t.s(*m).to_string(),
        selected: window == *v,
    })
    .collect::<Vec<_>>();
    let window_label = windows
        .iter()
        .find(|w| w.selected)
        .map_or(window.clone(), |w| w.label.to_lowercase());
    let page = RulesPage {
        layout: Layout::new(&ctx, "rules"),
        rows,
        windows,
        window_note: crate::tr!(lang, RulesWindow, window = window_label),
    };
    render(&ctx, StatusCode::OK, &page)
}

pub struct SourceRow {
    pub kind: String,
    pub name: String,
    pub lines: u64,
    pub last_line: String,
    pub per_minute: u64,
    pub note: &'static str,
    pub silent: bool,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    layout: Layout,
    rows: Vec<SourceRow>,
}

pub async fn sources(State(console): State<Console>, ctx: Ctx) -> Response {
    let now = Timestamp::now();
    let rows = console
        .0
        .api
        .source_statuses(now)
        .into_iter()
        .map(|s| {
            let silent = view::silent(s.last_line, now);
            SourceRow {
                note: match (silent, s.last_line.is_some()) {
                    (false, _) => "",
                    (true, false) => ctx.t.s(Msg::StatusNoLineYet),
                    (true, true) => ctx.t.s(Msg::StatusSilent),
                },
                silent,
                kind: s.kind,
                name: s.name,
                lines: s.lines,
                last_line: s.last_line.map_or_else(|| "-".into(), view::when),
                per_minute: s.lines_per_minute,
            }
        })
        .collect();
    let page = SourcesPage {
        layout: Layout::new(&ctx, "sources"),
        rows,
    };
    render(&ctx, StatusCode::OK, &page)
}

pub struct DestinationRow {
    pub name: String,
    pub pending: u64,
    pub oldest: String,
    pub delivered: u64,
    pub dead: u64,
    pub last_error: String,
}

pub struct DeadRow {
    pub destination: String,
    pub incident_href: String,
    pub incident_id: String,
    pub reason: String,
    pub error: String,
    pub enqueued: String,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    layout: Layout,
    destinations: Vec<DestinationRow>,
    dead: Vec<DeadRow>,
    notice: Option<String>,
}

pub async fn outbox(State(console): State<Console>, ctx: Ctx) -> Response {
    let known: Vec<String> = console.0.api.destinations().to_vec();
    let report = match blocking(&console, &ctx, move |store| {
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        store.outbox_report(&known, Timestamp::now())
    })
    .await
    {
        Ok(report) => report,
        Err(response) => return response,
    };
    let lang = ctx.lang();
    let destinations = report
        .destinations
        .iter()
        .map(|d| DestinationRow {
            name: d.destination.clone(),
            pending: d.pending,
            oldest: d
                .oldest_age_seconds
                .map_or_else(|| "-".into(), |s| crate::report::human_age(s, lang)),
            delivered: d.state.delivered,
            dead: d.dead_letters,
            last_error: match (&d.state.last_error, d.state.last_error_at) {
                (Some(error), Some(at)) => format!("{} {error}", view::when(at)),
                (Some(error), None) => error.clone(),
                _ => String::new(),
            },
        })
        .collect();
    let dead = report
        .dead_letters
        .iter()
        .map(|d| DeadRow {
            destination: d.destination.clone(),
            incident_href: format!("/incidents/{}", d.incident_id),
            incident_id: d.incident_id.clone(),
            reason: format!("{:?}", d.reason),
            error: d.error.clone(),
            enqueued: view::when(d.enqueued),
        })
        .collect();
    let notice = ctx
        .query
        .iter()
        .find(|(k, _)| k == "requeued")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .map(|n| crate::tr!(lang, Requeued, n = n));
    let page = OutboxPage {
        layout: Layout::new(&ctx, "outbox"),
        destinations,
        dead,
        notice,
    };
    render(&ctx, StatusCode::OK, &page)
}

/// Puts the dead letters back in their queues and wakes every sender, like `outbox retry`.
pub async fn outbox_retry(State(console): State<Console>, ctx: Ctx) -> Response {
    match blocking(&console, &ctx, |store| store.outbox_requeue_dead()).await {
        Ok(requeued) => {
            console.0.api.signals().retry_now();
            Redirect::to(&format!("/outbox?requeued={requeued}")).into_response()
        }
        Err(response) => response,
    }
}
