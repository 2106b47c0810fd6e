//! The operator console: server-rendered HTML pages (askama templates, compiled in) on the API's
//! listener, with a vendored htmx for live refresh and in-place actions, and a small CSS file, all
//! embedded in the binary. Signing in takes an API token (the shared one or an operator's) and
//! gives an HttpOnly, SameSite=Strict session cookie; every POST carries the session's CSRF token;
//! every answer carries a strict Content-Security-Policy (no inline script or style), so log text,
//! which askama escapes, can never run.
//!
//! Routes: `GET /login`, `POST /login`, `POST /logout`, `GET /` (the queue of cases),
//! `GET /cases/{id}`, `POST /cases/{id}/{action}` (ack, resolve, false-positive, reopen, assign),
//! `GET /incidents/{id}`, `POST /incidents/{id}/{action}`, `GET /rules`, `GET /sources`, `GET /outbox`,
//! `POST /outbox/retry`, `GET /assets/{file}`.

mod pages;
mod session;
pub mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::ApiState;
use crate::model::Lang;
pub use pages::{QueueError, render_queue};
pub use session::Session;
use session::{Limiter, Sessions};
use view::T;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "socwatch_session";
/// The language cookie's name (`vi` or `en`), set by `?lang=`.
pub const LANG_COOKIE: &str = "lang";

/// What a content security policy allows: scripts, styles and images from the console itself, no
/// inline script or style attribute, no framing, forms only back to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How the daemon serves the console.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// The language of a browser that has not chosen one (`daemon.lang`).
    pub lang: Lang,
    /// Served over TLS: the session cookie is `Secure` and HSTS is sent.
    pub tls: bool,
}

/// The console's shared state: the API's (store, tokens, metrics), the sessions and the limiter.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

struct Inner {
    api: ApiState,
    sessions: Sessions,
    limiter: Limiter,
}

impl Console {
    fn settings(&self) -> Settings {
        self.0.api.console_settings()
    }
}

/// The console's routes, to be merged into the API's router (outside its bearer-token layer).
pub fn router<S: Clone + Send + Sync + 'static>(api: ApiState) -> Router<S> {
    let console = Console(Arc::new(Inner {
        api,
        sessions: Sessions::default(),
        limiter: Limiter::default(),
    }));
    let signed_in = Router::new()
        .route("/", get(pages::queue))
        .route("/cases/{id}", get(pages::case))
        .route("/cases/{id}/{action}", post(pages::act_on_case))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/{action}", post(pages::act))
        .route("/rules", get(pages::rules))
        .route("/sources", get(pages::sources))
        .route("/outbox", get(pages::outbox))
        .route("/outbox/retry", post(pages::outbox_retry))
        .route("/logout", post(pages::logout))
        .layer(middleware::from_fn_with_state(
            console.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/assets/{file}", get(asset))
        .merge(signed_in)
        .layer(middleware::from_fn_with_state(console.clone(), headers))
        .with_state(console)
}

/// Security headers on every console answer.
async fn headers(State(console): State<Console>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if console.settings().tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Bodies of console POSTs above this are refused (a note is at most 4096 characters).
const FORM_LIMIT: usize = 64 * 1024;

/// Pages need a live session: without one a GET is sent to `/login` and a POST refused. Every POST
/// must also carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`): 403
/// without. The session goes with the request to the handler.
async fn require_session(State(console): State<Console>, request: Request, next: Next) -> Response {
    let session = cookie(request.headers(), SESSION_COOKIE)
        .and_then(|id| console.0.sessions.touch(id, Instant::now()));
    let Some(session) = session else {
        return if request.method() == Method::GET || request.method() == Method::HEAD {
            Redirect::to("/login").into_response()
        } else {
            (StatusCode::FORBIDDEN, "not signed in").into_response()
        };
    };
    let (mut parts, body) = request.into_parts();
    let request = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
        };
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| form_value(&bytes, "csrf"));
        if !presented.is_some_and(|p| session::same_secret(&p, &session.csrf)) {
            return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
        }
        parts.extensions.insert(session);
        Request::from_parts(parts, Body::from(bytes))
    } else {
        parts.extensions.insert(session);
        Request::from_parts(parts, body)
    };
    next.run(request).await
}

/// The first value of `key` in a form body (`application/x-www-form-urlencoded`).
pub fn form_value(body: &[u8], key: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// What every page handler starts from: the language, the session (on signed-in pages), the path
/// for the language switch, and whether `?lang=` asked to remember a choice.
pub struct Ctx {
    pub t: T,
    pub session: Option<Session>,
    pub path: String,
    pub query: Vec<(String, String)>,
    chosen: Option<Lang>,
    pub client: IpAddr,
}

impl FromRequestParts<Console> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Ctx, Response> {
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
        let chosen = query
            .iter()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| v.parse::<Lang>().ok());
        let lang = chosen
            .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(|v| v.parse().ok()))
            .unwrap_or(console.settings().lang);
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(Ctx {
            t: T(lang),
            session: parts.extensions.get::<Session>().cloned(),
            path: parts.uri.path().to_string(),
            query: query.into_iter().filter(|(k, _)| k != "lang").collect(),
            chosen,
            client,
        })
    }
}

impl Ctx {
    /// A request's context without a browser behind it (no session, loopback client): for
    /// rendering a page outside a request, as the benchmark does.
    pub fn detached(lang: Lang, query: Vec<(String, String)>) -> Ctx {
        Ctx {
            t: T(lang),
            session: None,
            path: "/".into(),
            query,
            chosen: None,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    pub fn lang(&self) -> Lang {
        self.t.0
    }

    /// This page in the other language.
    pub fn switch_href(&self) -> String {
        let other = match self.lang() {
            Lang::Vi => "en",
            Lang::En => "vi",
        };
        let mut pairs = self.query.clone();
        pairs.push(("lang".into(), other.into()));
        format!(
            "{}?{}",
            self.path,
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }

    /// An HTML answer, remembering a language chosen with `?lang=`.
    pub fn html(&self, status: StatusCode, body: String) -> Response {
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response();
        if let Some(lang) = self.chosen {
            let code = T(lang).code();
            if let Ok(value) =
                HeaderValue::from_str(&format!("{LANG_COOKIE}={code}; Path=/; SameSite=Strict"))
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }
}

const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("assets/console.css");

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=3600"),
            ),
        ],
        Bytes::from_static(body),
    )
        .into_response()
}
