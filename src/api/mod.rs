//! The HTTP API (axum), the only module that knows the HTTP wire format: the router served on
//! `api.listen` by the daemon ([`app`], [`serve`]) and the small blocking client the `incidents`
//! commands use while the daemon holds the store ([`Client`]).
//!
//! Routes: `GET /api/v1/incidents`, `GET /api/v1/incidents/{id}`,
//! `POST /api/v1/incidents/{id}/{ack|resolve|false-positive|reopen}`, `GET /api/v1/rules`,
//! `GET /metrics`, and `GET /healthz`, which alone needs no token so that systemd and monitoring can
//! probe it (it answers `{"status":"ok"}` and nothing else). Every other path needs a bearer token,
//! on loopback too: the shared one or an operator's ([`Auth`]); the token, never the body, says
//! who did a lifecycle action. Every error is `{"error": "..."}`; internal errors are logged and
//! answered as "internal error" without detail.

mod auth;
mod client;
#[cfg(test)]
mod tests;
mod tls;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::metrics::Metrics;
use crate::model::{Incident, Severity};
use crate::query::Filters;
use crate::rules::Rule;
use crate::store::{Action, OutboxReport, Store, StoreError};

pub use auth::{
    ADMIN, Auth, Caller, check_actor_name, generated_token_path, read_token, shared_token_path,
};
pub use client::{Client, ClientError};
pub use tls::server_config as tls_server_config;

/// A request that takes longer is answered 503 (the blocking store call may still finish).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Request bodies above this are answered 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Requests served at once; more wait for a slot.
pub const CONCURRENCY_LIMIT: usize = 64;
/// Incidents listed when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 100_000;
/// Characters allowed in a lifecycle body's `by` and `note`.
pub const MAX_BY_CHARS: usize = 128;
pub const MAX_NOTE_CHARS: usize = 4096;

/// What `/api/v1/rules` says about a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_vi: Option<String>,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub file: String,
}

impl From<&Rule> for RuleInfo {
    fn from(rule: &Rule) -> RuleInfo {
        RuleInfo {
            id: rule.id.clone(),
            title: rule.title.clone(),
            title_vi: rule.title_vi.clone(),
            severity: rule.severity,
            tags: rule.tags.clone(),
            file: rule.file.clone(),
        }
    }
}

/// The API's bearer token. A secret: `Debug` does not show it and nothing logs it.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from text, surrounding whitespace trimmed; None when nothing is left.
    pub fn new(text: &str) -> Option<Token> {
        let text = text.trim();
        (!text.is_empty()).then(|| Token(text.to_string()))
    }

    fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in time that depends only on the token's own length, not on where `presented`
    /// first differs.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = u8::from(expected.len() != presented.len());
        for (i, byte) in expected.iter().enumerate() {
            diff |= byte ^ presented.get(i).copied().unwrap_or(0);
        }
        std::hint::black_box(diff) == 0
    }
}

/// What `GET /api/v1/status` and `socwatch status` say the daemon is doing.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DaemonStatus {
    pub version: String,
    #[serde(with = "crate::model::rfc3339")]
    pub started_at: Timestamp,
    pub rules_loaded: usize,
    pub rules_idle: usize,
    pub sources: Vec<SourceStatus>,
    pub store_path: String,
    pub store_bytes: u64,
    pub incidents_open: usize,
    /// Cases open (not acknowledged, resolved or false positive).
    #[serde(default)]
    pub cases_open: usize,
    pub outbox: Vec<crate::store::DestinationStatus>,
    pub syslog_dropped: u64,
    pub parse_errors: u64,
    /// The node's link to its cluster, when it is one (`[cluster]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// A cluster node's link to the NATS server, in `status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ClusterStatus {
    pub role: String,
    pub connected: bool,
    /// Since when the node waits for the server (its files are the buffer meanwhile).
    #[serde(default, with = "opt_rfc3339", skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Timestamp>,
    pub published: u64,
    pub failures: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<u32>,
}

impl ClusterStatus {
    fn of(link: &crate::metrics::ClusterLink) -> Option<ClusterStatus> {
        let role = link.role();
        if role.is_empty() {
            return None;
        }
        let since = link
            .waiting_since_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        Some(ClusterStatus {
            role,
            connected: link.connected.load(std::sync::atomic::Ordering::Relaxed) == 1,
            waiting_since: (since > 0)
                .then(|| Timestamp::from_millisecond(since as i64).ok())
                .flatten(),
            published: link.published.load(std::sync::atomic::Ordering::Relaxed),
            failures: link.failures.load(std::sync::atomic::Ordering::Relaxed),
            last_error: link
                .last_error
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            partitions: link
                .partitions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        })
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SourceStatus {
    /// `file`, `syslog` or `journald`.
    pub kind: String,
    /// The file, the listener (`udp 0.0.0.0:514`), or the configured glob that matched nothing yet.
    pub name: String,
    pub lines: u64,
    #[serde(default, with = "opt_rfc3339", skip_serializing_if = "Option::is_none")]
    pub last_line: Option<Timestamp>,
    /// Lines in the last full minute.
    pub lines_per_minute: u64,
}

mod opt_rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&crate::model::rfc3339::format(ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A configured source, listed by `status` even before it delivers a line.
#[derive(Debug, Clone)]
pub struct ConfiguredSource {
    pub kind: String,
    pub name: String,
}

/// What every request handler shares: a cheap `Clone` handle.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    store: Arc<Store>,
    rules: Vec<RuleInfo>,
    /// The running rules, when the daemon publishes them: `/api/v1/rules` follows every reload.
    live_rules: Option<tokio::sync::watch::Receiver<Arc<crate::rules::RuleSet>>>,
    auth: Auth,
    metrics: Arc<Metrics>,
    /// The configured destinations (listed even while their outbox is empty) and their senders'
    /// wake-ups, for `outbox retry`.
    destinations: Vec<String>,
    /// The configured sources and when the daemon started, for `/api/v1/status`.
    sources: Vec<ConfiguredSource>,
    started_at: Timestamp,
    signals: crate::outputs::Signals,
    console: crate::console::Settings,
    /// The evidence log's notary, for proofs and `/api/v1/evidence/verify`.
    notary: Option<Arc<crate::evidence::notary::Notary>>,
}

impl ApiState {
    pub fn new(
        store: Arc<Store>,
        rules: Vec<RuleInfo>,
        auth: Auth,
        metrics: Arc<Metrics>,
    ) -> ApiState {
        ApiState(Arc::new(Inner {
            store,
            rules,
            live_rules: None,
            auth,
            metrics,
            destinations: Vec::new(),
            sources: Vec::new(),
            started_at: Timestamp::now(),
            signals: Default::default(),
            console: Default::default(),
            notary: None,
        }))
    }

    /// The same state, knowing the configured destinations and how to wake their senders.
    pub fn with_outputs(self, destinations: Vec<String>, signals: crate::outputs::Signals) -> Self {
        ApiState(Arc::new(Inner {
            destinations,
            signals,
            ..Arc::unwrap_or_clone(self.0)
        }))
    }

    /// The same state, answering `/api/v1/rules` from the daemon's rules channel.
    pub fn with_rules(
        self,
        rules: tokio::sync::watch::Receiver<Arc<crate::rules::RuleSet>>,
    ) -> Self {
        ApiState(Arc::new(Inner {
            live_rules: Some(rules),
            ..Arc::unwrap_or_clone(self.0)
        }))
    }

    /// The same state, knowing the configured sources for `/api/v1/status`.
    pub fn with_sources(self, sources: Vec<ConfiguredSource>) -> Self {
        ApiState(Arc::new(Inner {
            sources,
            ..Arc::unwrap_or_clone(self.0)
        }))
    }

    /// The same state, with the console's language and transport.
    pub fn with_console(self, console: crate::console::Settings) -> Self {
        ApiState(Arc::new(Inner {
            console,
            ..Arc::unwrap_or_clone(self.0)
        }))
    }

    /// The same state, checking proofs and the evidence log with the node's key.
    pub fn with_notary(self, notary: Arc<crate::evidence::notary::Notary>) -> Self {
        ApiState(Arc::new(Inner {
            notary: Some(notary),
            ..Arc::unwrap_or_clone(self.0)
        }))
    }

    fn verifier(&self) -> Option<crate::evidence::note::NoteVerifier> {
        self.0.notary.as_ref().map(|notary| notary.verifier())
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.0.store
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.0.auth
    }

    pub(crate) fn console_settings(&self) -> crate::console::Settings {
        self.0.console
    }

    pub(crate) fn destinations(&self) -> &[String] {
        &self.0.destinations
    }

    pub(crate) fn signals(&self) -> &crate::outputs::Signals {
        &self.0.signals
    }

    /// The running rules (following reloads when the daemon publishes them).
    pub(crate) fn rule_infos(&self) -> Vec<RuleInfo> {
        match &self.0.live_rules {
            Some(live) => {
                let set = live.borrow().clone();
                set.rules().iter().map(RuleInfo::from).collect()
            }
            None => self.0.rules.clone(),
        }
    }

    /// Every source the daemon reads or was told to read: lines, last line and rate per source,
    /// and the configured ones that delivered nothing yet.
    pub(crate) fn source_statuses(&self, now: Timestamp) -> Vec<SourceStatus> {
        let now_ms = now.as_millisecond();
        let metrics = &self.0.metrics;
        let counts: std::collections::BTreeMap<String, u64> =
            metrics.lines_read.snapshot().into_iter().collect();
        let mut sources: Vec<SourceStatus> = metrics
            .activity
            .snapshot(now_ms)
            .into_iter()
            .map(|(name, last_ms, per_minute)| {
                let kind = self
                    .0
                    .sources
                    .iter()
                    .find(|c| c.name == name)
                    .map_or("file", |c| c.kind.as_str());
                SourceStatus {
                    kind: kind.to_string(),
                    lines: counts.get(&name).copied().unwrap_or(0),
                    last_line: Timestamp::from_millisecond(last_ms).ok(),
                    lines_per_minute: per_minute,
                    name,
                }
            })
            .collect();
        for configured in &self.0.sources {
            let seen = sources.iter().any(|s| s.name == configured.name)
                || (configured.kind == "file"
                    && sources.iter().any(|s| {
                        s.kind == "file"
                            && glob::Pattern::new(&configured.name)
                                .is_ok_and(|p| p.matches(&s.name))
                    }));
            if !seen {
                sources.push(SourceStatus {
                    kind: configured.kind.clone(),
                    name: configured.name.clone(),
                    lines: 0,
                    last_line: None,
                    lines_per_minute: 0,
                });
            }
        }
        sources
    }

    /// Runs a store call (sled blocks) off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.0.store.clone();
        match tokio::task::spawn_blocking(move || call(&store)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(err) => Err(ApiError::internal("store task failed", &err)),
        }
    }
}

/// An error answer: the status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// Logs the cause; the client learns only that something went wrong inside.
    fn internal(context: &str, err: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %err, "{context}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound(_) | StoreError::CaseNotFound(_) => {
                ApiError::not_found(err.to_string())
            }
            StoreError::Ambiguous { .. } | StoreError::IdTooShort(_) => {
                ApiError::bad_request(err.to_string())
            }
            StoreError::InvalidTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, err.to_string())
            }
            other => ApiError::internal("store error", &other),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The router, with its layers: bearer token (all but `/healthz`), request timeout, body limit,
/// concurrency limit. Tested with `oneshot` requests; served by [`serve`].
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/status", get(status))
        .route("/api/v1/incidents", get(list))
        .route("/api/v1/incidents/{id}", get(show))
        .route("/api/v1/incidents/{id}/{action}", post(act))
        .route("/api/v1/incidents/{id}/proof", get(proof))
        .route("/api/v1/evidence/verify", get(verify_evidence))
        .route("/api/v1/reports/incident/{id}", get(incident_report))
        .route("/api/v1/reports/monitoring", get(monitoring_report))
        .route("/api/v1/evidence/consistency", get(consistency))
        .route("/api/v1/cases", get(list_cases))
        .route("/api/v1/cases/{id}", get(show_case))
        .route("/api/v1/cases/{id}/{action}", post(act_on_case))
        .route("/api/v1/rules/stats", get(rule_stats))
        .route("/api/v1/outbox", get(outbox))
        .route("/api/v1/outbox/retry", post(outbox_retry))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        // The console's pages take a session cookie, not the bearer token: outside that layer.
        .merge(crate::console::router(state.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(time_limit))
        .layer(GlobalConcurrencyLimitLayer::new(CONCURRENCY_LIMIT))
        .with_state(state)
}

/// Serves [`app`] on a listener the caller bound (the daemon on `api.listen`, tests on port 0) until
/// `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// [`serve`] over TLS (`api.cert_file`, `api.key_file`): each accepted connection is handshaken
/// with `tls` and served HTTP/1.1 by hyper; a failed handshake drops that connection only. On
/// `shutdown` the listener closes and open connections finish their requests.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: ApiState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let router = app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper::server::conn::http1::Builder::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "api accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let service = router
            .clone()
            .layer(Extension(axum::extract::ConnectInfo(peer)));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(REQUEST_TIMEOUT, acceptor.accept(stream)).await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(peer = %peer, error = %err, "tls handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper_util::service::TowerToHyperService::new(service);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(peer = %peer, error = %err, "api connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Every path but `/healthz` needs a valid bearer token, whoever connects (loopback included):
/// any local user can reach 127.0.0.1. The caller it proves goes with the request to the handler.
async fn authorize(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    if request.uri().path() != "/healthz" {
        let caller = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .and_then(|value| {
                let (scheme, rest) = value.split_at_checked(7)?;
                scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
            })
            .and_then(|presented| state.0.auth.caller(presented));
        let Some(caller) = caller else {
            return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
        };
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

async fn time_limit(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("api request timed out");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "request timed out").into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn rules(State(state): State<ApiState>) -> Json<Vec<RuleInfo>> {
    Json(state.rule_infos())
}

/// The filters of a list request's query string (incidents and cases read the same ones).
fn parse_filters(raw: Option<&str>) -> Result<Filters, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|err| ApiError::bad_request(format!("bad query string: {err}")))?;
    let filters = Filters::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::bad_request)?;
    if filters.limit.is_some_and(|l| l > MAX_LIMIT) {
        return Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_LIMIT}"
        )));
    }
    Ok(filters)
}

async fn list(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<Incident>>, ApiError> {
    let filters = parse_filters(raw.as_deref())?;
    let query = filters
        .to_query(Timestamp::now(), Some(DEFAULT_LIMIT))
        .map_err(ApiError::bad_request)?;
    let found = state.blocking(move |store| store.list(&query)).await?;
    Ok(Json(found))
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(format!("bad path: {}", rejection.body_text()))
}

async fn show(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Incident>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    let found = state.blocking(move |store| store.find(&id)).await?;
    Ok(Json(found))
}

/// The inclusion proof of an incident's last change in the evidence log.
async fn proof(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::evidence::Proof>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    let verifier = state.verifier();
    let found = state
        .blocking(move |store| {
            crate::evidence::notary::incident_proof(store, &id, verifier.as_ref())?
                .ok_or(StoreError::NotFound(id))
        })
        .await?;
    Ok(Json(found))
}

/// The facts of `socwatch report incident ID` while the daemon holds the store.
async fn incident_report(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::reports::IncidentData>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    let verifier = state.verifier();
    let found = state
        .blocking(move |store| crate::reports::incident_data(store, &id, verifier.as_ref()))
        .await?;
    Ok(Json(found))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    since: Timestamp,
    until: Timestamp,
}

/// The facts of `socwatch report monitoring --since --until` while the daemon holds the store.
async fn monitoring_report(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Json<crate::reports::MonitoringData>, ApiError> {
    let PeriodQuery { since, until } =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|err| ApiError::bad_request(format!("bad query: {err}")))?;
    let found = state
        .blocking(move |store| crate::reports::monitoring_data(store, since, until))
        .await?;
    Ok(Json(found))
}

/// `socwatch verify` while the daemon holds the store.
async fn verify_evidence(
    State(state): State<ApiState>,
) -> Result<Json<crate::evidence::Report>, ApiError> {
    let verifier = state.verifier();
    let report = state
        .blocking(move |store| crate::evidence::notary::verify_store(store, verifier.as_ref()))
        .await?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
}

/// The proof that the log extends the tree of its first `from` leaves (an old checkpoint's size).
async fn consistency(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Json<crate::evidence::Consistency>, ApiError> {
    let ConsistencyQuery { from } = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|err| ApiError::bad_request(format!("bad query: {err}")))?;
    let found = state
        .blocking(move |store| {
            crate::evidence::notary::consistency_proof(store, from)?
                .ok_or(StoreError::NotFound(format!("checkpoint of {from} leaves")))
        })
        .await?;
    Ok(Json(found))
}

/// The body of a lifecycle POST.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// Refused with the shared token, ignored with an operator's: the token says who acts.
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    note: String,
    /// The assignee, for a case's `assign` (empty or absent: unassign).
    #[serde(default)]
    to: Option<String>,
}

pub(crate) fn action_from_path(name: &str) -> Option<Action> {
    match name {
        "ack" => Some(Action::Ack),
        "resolve" => Some(Action::Resolve),
        "false-positive" => Some(Action::FalsePositive),
        "reopen" => Some(Action::Reopen),
        _ => None,
    }
}

pub(crate) fn action_path(action: Action) -> &'static str {
    match action {
        Action::Ack => "ack",
        Action::Resolve => "resolve",
        Action::FalsePositive => "false-positive",
        Action::Reopen => "reopen",
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn parse_action_body(headers: &HeaderMap, body: &[u8]) -> Result<ActionBody, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "expected a JSON body {\"note\": \"...\"}",
        ));
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        ));
    }
    let bad = |err: serde_json::Error| ApiError::bad_request(format!("bad JSON body: {err}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(bad)?;
    // serde would also read a struct from an array (`[]`, every field defaulted).
    if !value.is_object() {
        return Err(ApiError::bad_request("bad JSON body: expected an object"));
    }
    let parsed: ActionBody = serde_json::from_value(value).map_err(bad)?;
    let by = match parsed.by.as_deref().map(str::trim) {
        Some(by) => {
            check_actor_name(by).map_err(|why| ApiError::bad_request(format!("\"by\" {why}")))?;
            Some(by.to_string())
        }
        None => None,
    };
    if parsed.note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(format!(
            "\"note\" is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let to = match parsed.to.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(to) => {
            check_actor_name(to).map_err(|why| ApiError::bad_request(format!("\"to\" {why}")))?;
            Some(to.to_string())
        }
    };
    Ok(ActionBody {
        by,
        note: parsed.note,
        to,
    })
}

/// Who a lifecycle action is recorded as: the operator whose token was used, whatever the body
/// says; with the shared token, "admin", and a body naming someone is refused, because the shared
/// token cannot prove who holds it.
fn actor(caller: &Caller, claimed: Option<String>) -> Result<String, ApiError> {
    match (caller, claimed) {
        (Caller::Operator(name), _) => Ok(name.clone()),
        (Caller::Admin, None) => Ok(ADMIN.to_string()),
        (Caller::Admin, Some(claimed)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "\"by\" ('{claimed}') cannot be set with the shared API token, whose actions are recorded as \"{ADMIN}\"; use an operator token ([[api.operator]]) to act under a name"
            ),
        )),
    }
}

async fn act(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    params: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Incident>, ApiError> {
    let Path((id, action)) = params.map_err(path_error)?;
    let action = action_from_path(&action).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown action '{action}' (expected ack, resolve, false-positive or reopen)"
        ))
    })?;
    let body = read_body(body)?;
    let ActionBody { by, note, to } = parse_action_body(&headers, &body)?;
    if to.is_some() {
        return Err(ApiError::bad_request(
            "\"to\" is for assigning a case (POST /api/v1/cases/{id}/assign)",
        ));
    }
    let by = actor(&caller, by)?;
    let incident = state
        .blocking(move |store| store.transition(&id, action, &by, &note, Timestamp::now()))
        .await?;
    Ok(Json(incident))
}

fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {BODY_LIMIT} bytes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read the body: {}", rejection.body_text()))
        }
    })
}

async fn list_cases(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<crate::cases::Case>>, ApiError> {
    let filters = parse_filters(raw.as_deref())?;
    let query = filters
        .to_case_query(Timestamp::now(), Some(DEFAULT_LIMIT))
        .map_err(ApiError::bad_request)?;
    let found = state.blocking(move |store| store.cases(&query)).await?;
    Ok(Json(found))
}

async fn show_case(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::cases::Case>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    let found = state.blocking(move |store| store.find_case(&id)).await?;
    Ok(Json(found))
}

/// `POST /api/v1/cases/{id}/{ack|resolve|false-positive|reopen|assign}`: the action on the case
/// and on those of its incidents it applies to; `assign` takes `{"to": "name"}`.
async fn act_on_case(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    params: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::cases::Case>, ApiError> {
    let Path((id, action)) = params.map_err(path_error)?;
    let lifecycle = action_from_path(&action);
    if lifecycle.is_none() && action != "assign" {
        return Err(ApiError::not_found(format!(
            "unknown action '{action}' (expected ack, resolve, false-positive, reopen or assign)"
        )));
    }
    let body = read_body(body)?;
    let ActionBody { by, note, to } = parse_action_body(&headers, &body)?;
    let by = actor(&caller, by)?;
    let now = Timestamp::now();
    let case = match lifecycle {
        Some(action) => {
            if to.is_some() {
                return Err(ApiError::bad_request("\"to\" is only for assign"));
            }
            state
                .blocking(move |store| store.case_transition(&id, action, &by, &note, now))
                .await?
        }
        None => {
            state
                .blocking(move |store| store.case_assign(&id, to.as_deref(), &by, now))
                .await?
        }
    };
    Ok(Json(case))
}

/// Incidents and false positives per rule (`rules list --stats`).
async fn rule_stats(
    State(state): State<ApiState>,
) -> Result<Json<Vec<crate::store::RuleStats>>, ApiError> {
    let found = state.blocking(|store| store.rule_stats()).await?;
    Ok(Json(found))
}

async fn status(State(state): State<ApiState>) -> Result<Json<DaemonStatus>, ApiError> {
    let known = state.0.destinations.clone();
    let (outbox, store_bytes, incidents_open, cases_open) = state
        .blocking(move |store| {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            let report = store.outbox_report(&known, Timestamp::now())?;
            let open = store.count_status(crate::model::Status::Open)?;
            let cases = store.count_cases(crate::model::Status::Open)?;
            Ok((report.destinations, store.size_on_disk()?, open, cases))
        })
        .await?;
    let (rules_loaded, rules_idle) = match &state.0.live_rules {
        Some(live) => {
            let set = live.borrow();
            let idle = set.rules().iter().filter(|r| r.idle.is_some()).count();
            (set.len() - idle, idle)
        }
        None => (state.0.rules.len(), 0),
    };
    let metrics = &state.0.metrics;
    let sources = state.source_statuses(Timestamp::now());
    Ok(Json(DaemonStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: state.0.started_at,
        rules_loaded,
        rules_idle,
        sources,
        store_path: state.0.store.path().display().to_string(),
        store_bytes,
        incidents_open,
        cases_open,
        outbox,
        syslog_dropped: metrics
            .syslog_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        parse_errors: metrics
            .parse_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        cluster: ClusterStatus::of(&metrics.cluster),
    }))
}

async fn outbox(State(state): State<ApiState>) -> Result<Json<OutboxReport>, ApiError> {
    let known = state.0.destinations.clone();
    let report = state
        .blocking(move |store| {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            store.outbox_report(&known, Timestamp::now())
        })
        .await?;
    Ok(Json(report))
}

#[derive(Serialize, serde::Deserialize)]
pub struct RetryAnswer {
    /// Dead letters put back in their queues.
    pub requeued: usize,
}

/// Puts dead letters back and wakes every sender now, cutting any backoff short.
async fn outbox_retry(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<RetryAnswer>, ApiError> {
    let by = actor(&caller, None)?;
    let requeued = state
        .blocking(move |store| {
            let requeued = store.outbox_requeue_dead()?;
            let detail = format!("{requeued} dead letters requeued");
            store.log_admin("outbox_retry", &by, &detail, Timestamp::now())?;
            Ok(requeued)
        })
        .await?;
    state.0.signals.retry_now();
    Ok(Json(RetryAnswer { requeued }))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    // A failure is logged by `blocking`; the other metrics are still worth answering.
    let size = state.blocking(|store| store.size_on_disk()).await.ok();
    for destination in &state.0.destinations {
        state
            .0
            .metrics
            .alerts_pending
            .set(destination, state.0.store.outbox_depth(destination));
        if let Ok(delivery) = state.0.store.delivery_state(destination) {
            state
                .0
                .metrics
                .alerts_dropped
                .set(destination, delivery.evicted);
        }
    }
    let text = render_metrics(&state.0.metrics, size);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Prometheus text format 0.0.4.
pub fn render_metrics(m: &Metrics, store_size: Option<u64>) -> String {
    let mut out = String::new();
    let head = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let family = |out: &mut String, name: &str, label: &str, values: Vec<(String, u64)>| {
        for (value, n) in values {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape_label(&value));
        }
    };
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);

    head(
        &mut out,
        "socwatch_lines_read_total",
        "counter",
        "Lines read, per source.",
    );
    family(
        &mut out,
        "socwatch_lines_read_total",
        "source",
        m.lines_read.snapshot(),
    );
    for (name, help, value) in [
        (
            "socwatch_parse_errors_total",
            "Lines no decoder understood (kept as plain events).",
            load(&m.parse_errors),
        ),
        (
            "socwatch_events_matched_total",
            "Events that matched a rule.",
            load(&m.events_matched),
        ),
        (
            "socwatch_incidents_opened_total",
            "Incidents opened.",
            load(&m.incidents_opened),
        ),
        (
            "socwatch_incidents_updated_total",
            "Updates folded into open incidents.",
            load(&m.incidents_updated),
        ),
        (
            "socwatch_syslog_dropped_total",
            "Syslog datagrams dropped because the pipeline was full.",
            load(&m.syslog_dropped),
        ),
    ] {
        head(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let cluster = &m.cluster;
    let cluster_metrics = if cluster.role().is_empty() {
        Vec::new()
    } else {
        vec![
            (
                "socwatch_cluster_connected",
                "gauge",
                "1 while the NATS server answers, 0 while this node waits for it.",
                load(&cluster.connected),
            ),
            (
                "socwatch_cluster_published_total",
                "counter",
                "Messages the NATS server acknowledged (edge: matches; worker: incident changes; console: changes stored).",
                load(&cluster.published),
            ),
            (
                "socwatch_cluster_failures_total",
                "counter",
                "Attempts to reach the NATS server that failed and are retried.",
                load(&cluster.failures),
            ),
        ]
    };
    for (name, kind, help, value) in cluster_metrics {
        head(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    head(
        &mut out,
        "socwatch_alerts_delivered_total",
        "counter",
        "Alerts delivered, per destination.",
    );
    family(
        &mut out,
        "socwatch_alerts_delivered_total",
        "destination",
        m.alerts_delivered.snapshot(),
    );
    head(
        &mut out,
        "socwatch_alerts_pending",
        "gauge",
        "Alerts waiting in the outbox, per destination.",
    );
    family(
        &mut out,
        "socwatch_alerts_pending",
        "destination",
        m.alerts_pending.snapshot(),
    );
    for (name, help, values) in [
        (
            "socwatch_alerts_retried_total",
            "Alerts whose delivery failed and will be retried, per destination.",
            m.alerts_retried.snapshot(),
        ),
        (
            "socwatch_alerts_failed_total",
            "Alerts refused for good by the destination (dead letters), per destination.",
            m.alerts_failed.snapshot(),
        ),
        (
            "socwatch_alerts_dropped_total",
            "Alerts dropped because the outbox was full (oldest, lowest severity first), per destination.",
            m.alerts_dropped.snapshot(),
        ),
    ] {
        head(&mut out, name, "counter", help);
        family(&mut out, name, "destination", values);
    }
    if let Some(size) = store_size {
        head(
            &mut out,
            "socwatch_store_size_bytes",
            "gauge",
            "Bytes the incident store takes on disk.",
        );
        let _ = writeln!(out, "socwatch_store_size_bytes {size}");
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
