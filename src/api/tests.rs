//! Router tests: `oneshot` requests against `app(state)` on a real store in a temp dir, no socket.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use tower::ServiceExt;

use super::*;
use crate::correlate::Change;
use crate::model::Status;

/// The shared (admin) token.
const TOKEN: &str = "s3cret-token";
/// Operators `op0` to `op3` and their tokens.
const OPERATORS: [(&str, &str); 4] = [
    ("op0", "op0-token-0000"),
    ("op1", "op1-token-1111"),
    ("op2", "op2-token-2222"),
    ("op3", "op3-token-3333"),
];
/// `op1`'s token: what the tests that post lifecycle changes use.
const OP1: &str = OPERATORS[1].1;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    state: ApiState,
    /// ssh-bruteforce high 2h ago; web-scan medium 1h ago; ssh-bruteforce critical 72h ago on `mail`.
    ids: Vec<String>,
}

fn sample(rule: &str, ip: &str, first_seen: Timestamp, severity: Severity) -> Incident {
    crate::store::tests::incident(rule, ip, first_seen, severity, 3)
}

fn fixture() -> Fixture {
    fixture_with(Default::default())
}

/// The fixture with its store opened under `policy` (where alerts go).
fn fixture_with(policy: crate::alerting::OutboxPolicy) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("data"), policy).unwrap();
    let now = Timestamp::now();
    let mut incidents = vec![
        sample(
            "ssh-bruteforce",
            "203.0.113.7",
            now - SignedDuration::from_hours(2),
            Severity::High,
        ),
        sample(
            "web-scan",
            "198.51.100.9",
            now - SignedDuration::from_hours(1),
            Severity::Medium,
        ),
        sample(
            "ssh-bruteforce",
            "192.0.2.1",
            now - SignedDuration::from_hours(72),
            Severity::Critical,
        ),
    ];
    incidents[1].host = "web-01".into();
    incidents[2].system = "mail".into();
    let changes: Vec<Change> = incidents
        .iter()
        .map(|i| Change::Opened(Box::new(i.clone())))
        .collect();
    store.apply(&changes, &[]).unwrap();
    store.flush().unwrap();
    let rules = vec![RuleInfo {
        id: "ssh-bruteforce".into(),
        title: "SSH password brute force".into(),
        title_vi: Some("Dò mật khẩu SSH".into()),
        severity: Severity::High,
        tags: vec!["attack.t1110.001".into()],
        file: "rules/ssh.yml".into(),
    }];
    let auth = OPERATORS.iter().fold(
        Auth::new(Token::new(TOKEN).unwrap()),
        |auth, (name, token)| {
            auth.with_operator(name, Token::new(token).unwrap())
                .unwrap()
        },
    );
    let state = ApiState::new(Arc::new(store), rules, auth, Arc::new(Metrics::default()));
    Fixture {
        _dir: dir,
        app: app(state.clone()),
        state,
        ids: incidents.into_iter().map(|i| i.id).collect(),
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// Asserts an error answer of this status with a JSON `error` message.
    fn error(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        self.json()["error"].as_str().unwrap().to_string()
    }

    fn ids(&self) -> Vec<String> {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

fn request(method: &str, uri: &str, token: Option<&str>, body: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// A GET with the shared token.
async fn get(f: &Fixture, uri: &str) -> Answer {
    send(&f.app, request("GET", uri, Some(TOKEN), None)).await
}

/// A POST with operator `op1`'s token.
async fn post(f: &Fixture, uri: &str, body: &str) -> Answer {
    send(&f.app, request("POST", uri, Some(OP1), Some(body))).await
}

#[tokio::test]
async fn every_route_but_healthz_needs_the_token() {
    let f = fixture();
    let id = &f.ids[0];
    let routes = [
        ("GET", "/api/v1/incidents".to_string(), None),
        ("GET", "/api/v1/incidents?severity=high".to_string(), None),
        ("GET", format!("/api/v1/incidents/{id}"), None),
        (
            "POST",
            format!("/api/v1/incidents/{id}/ack"),
            Some(r#"{"note": "n"}"#),
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/resolve"),
            Some(r#"{"note": "n"}"#),
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/false-positive"),
            Some(r#"{"note": "n"}"#),
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/reopen"),
            Some(r#"{"note": "n"}"#),
        ),
        ("GET", "/api/v1/rules".to_string(), None),
        ("GET", "/metrics".to_string(), None),
        ("GET", "/api/v1/outbox".to_string(), None),
        ("POST", "/api/v1/outbox/retry".to_string(), Some("{}")),
    ];
    for (method, uri, body) in &routes {
        for wrong in [
            None,
            Some(""),
            Some("wrong"),
            Some("s3cret-toke"),
            Some("s3cret-token2"),
            Some("op1-token-111"),
            Some("op1-token-1111 "),
        ] {
            let answer = send(&f.app, request(method, uri, wrong, *body)).await;
            answer.error(StatusCode::UNAUTHORIZED);
        }
        let mut plain = request(method, uri, None, *body);
        plain
            .headers_mut()
            .insert(header::AUTHORIZATION, TOKEN.parse().unwrap());
        send(&f.app, plain).await.error(StatusCode::UNAUTHORIZED);
    }
    // Unknown routes are not revealed without the token either.
    send(&f.app, request("GET", "/nope", None, None))
        .await
        .error(StatusCode::UNAUTHORIZED);
    // In order, each lifecycle step is valid: ack, resolve, false-positive, reopen; the shared
    // token's actions are recorded as "admin". Every operator's token opens every route too.
    for (method, uri, body) in &routes {
        let answer = send(&f.app, request(method, uri, Some(TOKEN), *body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{method} {uri}");
    }
    let history = get(&f, &format!("/api/v1/incidents/{id}")).await.json()["history"].clone();
    let by: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, [ADMIN; 4]);
    for (_, token) in OPERATORS {
        let answer = send(&f.app, request("GET", "/api/v1/rules", Some(token), None)).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let mut lower = request("GET", "/api/v1/rules", None, None);
    lower.headers_mut().insert(
        header::AUTHORIZATION,
        format!("bearer {TOKEN}").parse().unwrap(),
    );
    assert_eq!(send(&f.app, lower).await.status, StatusCode::OK);
    let health = get(&f, "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));
}

#[test]
fn tokens_are_trimmed_and_hidden() {
    let token = Token::new("  abc\n").unwrap();
    assert!(token.matches(b"abc"));
    assert!(!token.matches(b"abd"));
    assert!(!token.matches(b"ab"));
    assert!(!token.matches(b"abcd"));
    assert!(Token::new(" \n").is_none());
    assert_eq!(format!("{token:?}"), "Token(<redacted>)");
}

#[tokio::test]
async fn list_filters_newest_first() {
    let f = fixture();
    let [high, medium, critical] = [&f.ids[0], &f.ids[1], &f.ids[2]];
    let cases: &[(&str, Vec<&String>)] = &[
        ("", vec![medium, high, critical]),
        ("?severity=high", vec![high, critical]),
        ("?severity=critical", vec![critical]),
        ("?since=24h", vec![medium, high]),
        ("?until=24h", vec![critical]),
        ("?status=open", vec![medium, high, critical]),
        ("?status=resolved", vec![]),
        ("?rule=ssh-bruteforce", vec![high, critical]),
        ("?host=web-01", vec![medium]),
        ("?system=mail", vec![critical]),
        ("?field=src_ip%3D203.0.113.7", vec![high]),
        ("?field=src_ip=203.0.113.7", vec![high]),
        (
            "?field=src_ip%3D203.0.113.7&field=src_ip%3D192.0.2.1",
            vec![],
        ),
        ("?rule=ssh-bruteforce&since=24h", vec![high]),
        ("?limit=1", vec![medium]),
        ("?since=2000-01-01&limit=2", vec![medium, high]),
    ];
    for (query, want) in cases {
        let got = get(&f, &format!("/api/v1/incidents{query}")).await.ids();
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{query}");
    }
}

#[tokio::test]
async fn show_gives_the_incident_json() {
    let f = fixture();
    let answer = get(&f, &format!("/api/v1/incidents/{}", f.ids[0])).await;
    assert_eq!(answer.status, StatusCode::OK);
    let incident = answer.json();
    assert_eq!(incident["id"], f.ids[0].as_str());
    assert_eq!(incident["rule_id"], "ssh-bruteforce");
    assert_eq!(incident["severity"], "high");
    assert_eq!(incident["group"]["src_ip"], "203.0.113.7");
    assert_eq!(
        incident["evidence"][0]["line"],
        "Failed password for root from 203.0.113.7"
    );
    let missing = get(&f, "/api/v1/incidents/01JD3V6X8Q4W0Z5N2K7M9P1R3T").await;
    assert!(
        missing
            .error(StatusCode::NOT_FOUND)
            .contains("01JD3V6X8Q4W0Z5N2K7M9P1R3T")
    );
    get(&f, "/api/v1/incidents/not-an-id")
        .await
        .error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lifecycle_posts_record_history() {
    let f = fixture();
    let base = format!("/api/v1/incidents/{}", f.ids[0]);
    let steps = [
        ("ack", "acknowledged", "ack"),
        ("resolve", "resolved", "resolve"),
        ("false-positive", "false_positive", "false_positive"),
        ("reopen", "open", "reopen"),
    ];
    for (n, (path, status, action)) in steps.iter().enumerate() {
        // The token says who acts; what the body claims is ignored.
        let body = format!(r#"{{"by": "admin", "note": "step {n}"}}"#);
        let uri = format!("{base}/{path}");
        let answer = send(
            &f.app,
            request("POST", &uri, Some(OPERATORS[n].1), Some(&body)),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let incident = answer.json();
        assert_eq!(incident["status"], *status);
        assert_eq!(incident["revision"], 2 + n as u64);
        let history = incident["history"].as_array().unwrap();
        assert_eq!(history.len(), n + 1);
        assert_eq!(history[n]["action"], *action);
        assert_eq!(history[n]["by"], format!("op{n}"));
        assert_eq!(history[n]["note"], format!("step {n}"));
    }
    // The note is optional; the store has the history too.
    let acked = post(&f, &format!("{base}/ack"), r#"{"by": "op9"}"#).await;
    assert_eq!(acked.status, StatusCode::OK);
    let shown = get(&f, &base).await.json();
    assert_eq!(shown["history"].as_array().unwrap().len(), 5);
    assert_eq!(shown["status"], "acknowledged");
    // Invalid transitions are 409 and change nothing.
    let again = post(&f, &format!("{base}/ack"), r#"{"by": "op9"}"#).await;
    assert!(
        again
            .error(StatusCode::CONFLICT)
            .contains("it is acknowledged")
    );
    let open_id = &f.ids[1];
    post(
        &f,
        &format!("/api/v1/incidents/{open_id}/reopen"),
        r#"{"by": "x"}"#,
    )
    .await
    .error(StatusCode::CONFLICT);
    assert_eq!(get(&f, &base).await.json()["revision"], 6);
    post(
        &f,
        "/api/v1/incidents/01JD3V6X8Q4W0Z5N2K7M9P1R3T/ack",
        r#"{"by": "x"}"#,
    )
    .await
    .error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_token_not_the_body_says_who_acted() {
    let f = fixture();
    let base = format!("/api/v1/incidents/{}", f.ids[2]);
    // The shared token cannot name anyone, not even "admin": it would be a claim nobody checked.
    for claim in [r#"{"by": "admin"}"#, r#"{"by": "op9", "note": "x"}"#] {
        let refused = send(
            &f.app,
            request(
                "POST",
                &format!("{base}/false-positive"),
                Some(TOKEN),
                Some(claim),
            ),
        )
        .await
        .error(StatusCode::FORBIDDEN);
        assert!(
            refused.contains("cannot be set with the shared API token")
                && refused.contains("[[api.operator]]"),
            "{refused}"
        );
    }
    assert_eq!(
        get(&f, &base).await.json()["revision"],
        1,
        "nothing changed"
    );
    // An operator's token is recorded as that operator, whatever the body says.
    let by_op2 = send(
        &f.app,
        request(
            "POST",
            &format!("{base}/false-positive"),
            Some(OPERATORS[2].1),
            Some(r#"{"by": "admin", "note": "not an attack"}"#),
        ),
    )
    .await
    .json();
    assert_eq!(by_op2["status"], "false_positive");
    assert_eq!(by_op2["history"][0]["by"], "op2");
    // The shared token without a name acts as "admin".
    let reopened = send(
        &f.app,
        request("POST", &format!("{base}/reopen"), Some(TOKEN), Some("{}")),
    )
    .await
    .json();
    assert_eq!(reopened["history"][1]["by"], ADMIN);
}

#[test]
fn a_token_belongs_to_one_caller() {
    let auth = Auth::new(Token::new("shared-token").unwrap())
        .with_operator("an", Token::new("an-token").unwrap())
        .unwrap();
    assert_eq!(auth.caller(b"shared-token"), Some(Caller::Admin));
    assert_eq!(
        auth.caller(b"an-token"),
        Some(Caller::Operator("an".into()))
    );
    assert_eq!(auth.caller(b"an-toke"), None);
    assert_eq!(auth.caller(b""), None);
    let err = auth
        .clone()
        .with_operator("binh", Token::new("shared-token").unwrap())
        .unwrap_err();
    assert!(err.contains("already used"), "{err}");
    assert!(
        auth.with_operator("binh", Token::new("an-token").unwrap())
            .is_err()
    );
}

#[tokio::test]
async fn malformed_queries_and_bodies_are_400_with_a_json_error() {
    let f = fixture();
    for query in [
        "severity=huge",
        "status=closed",
        "since=yesterday",
        "until=2026-13-45",
        "colour=red",
        "limit=-3",
        "limit=ten",
        "limit=100001",
        "rule=a&rule=b",
        "field=novalue",
        "field==x",
        "=x",
    ] {
        let message = get(&f, &format!("/api/v1/incidents?{query}"))
            .await
            .error(StatusCode::BAD_REQUEST);
        assert!(!message.is_empty(), "{query}");
    }
    let ack = format!("/api/v1/incidents/{}/ack", f.ids[0]);
    let long_by = format!(r#"{{"by": "{}"}}"#, "a".repeat(MAX_BY_CHARS + 1));
    let long_note = format!(
        r#"{{"by": "a", "note": "{}"}}"#,
        "n".repeat(MAX_NOTE_CHARS + 1)
    );
    for body in [
        "{",
        "not json",
        "[]",
        "null",
        r#"{"by": ""}"#,
        r#"{"by": "   "}"#,
        r#"{"by": 7}"#,
        r#"{"by": "a", "extra": 1}"#,
        r#"{"by": "a\u0007b"}"#,
        &long_by,
        &long_note,
    ] {
        post(&f, &ack, body).await.error(StatusCode::BAD_REQUEST);
    }
    // No body at all.
    send(&f.app, request("POST", &ack, Some(OP1), None))
        .await
        .error(StatusCode::BAD_REQUEST);
    // A body that is not declared JSON.
    let text = Request::builder()
        .method("POST")
        .uri(&ack)
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::AUTHORIZATION, format!("Bearer {OP1}"))
        .body(Body::from(r#"{"by": "a"}"#))
        .unwrap();
    send(&f.app, text)
        .await
        .error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Too large.
    let big = format!(r#"{{"by": "a", "note": "{}"}}"#, "n".repeat(BODY_LIMIT));
    post(&f, &ack, &big)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE);
    // A path that does not decode.
    get(&f, "/api/v1/incidents/%FF%FE")
        .await
        .error(StatusCode::BAD_REQUEST);
    // Nothing above changed the incident.
    assert_eq!(
        get(&f, &format!("/api/v1/incidents/{}", f.ids[0]))
            .await
            .json()["revision"],
        1
    );
}

#[tokio::test]
async fn unknown_routes_actions_and_methods() {
    let f = fixture();
    // `/` is the console's queue: without a session, the sign-in form.
    let queue = send(&f.app, request("GET", "/", Some(TOKEN), None)).await;
    assert_eq!(queue.status, StatusCode::SEE_OTHER);
    get(&f, "/api/v2/incidents")
        .await
        .error(StatusCode::NOT_FOUND);
    post(
        &f,
        &format!("/api/v1/incidents/{}/delete", f.ids[0]),
        r#"{"by": "a"}"#,
    )
    .await
    .error(StatusCode::NOT_FOUND);
    send(
        &f.app,
        request("DELETE", "/api/v1/incidents", Some(TOKEN), None),
    )
    .await
    .error(StatusCode::METHOD_NOT_ALLOWED);
    send(&f.app, request("POST", "/healthz", None, None))
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn rules_lists_what_was_loaded() {
    let f = fixture();
    let rules = get(&f, "/api/v1/rules").await.json();
    assert_eq!(
        rules,
        serde_json::json!([{
            "id": "ssh-bruteforce", "title": "SSH password brute force", "title_vi": "Dò mật khẩu SSH",
            "severity": "high", "tags": ["attack.t1110.001"], "file": "rules/ssh.yml"
        }])
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let f = fixture();
    let m = f.state.metrics();
    m.lines_read.add("/var/log/auth.log", 42);
    m.lines_read.add("syslog \"udp\"\\514\n", 7);
    Metrics::inc(&m.events_matched, 3);
    Metrics::inc(&m.incidents_opened, 1);
    m.alerts_delivered.add("national", 5);
    m.alerts_pending.set("email", 2);
    let answer = get(&f, "/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(answer.body).unwrap();
    let sample = regex::Regex::new(
        r#"^(socwatch_[a-z_]+)(\{[a-z_]+="(?:[^"\\\n]|\\[\\"n])*"\})? ([0-9]+)$"#,
    )
    .unwrap();
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let mut values = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(kind == "counter" || kind == "gauge", "{line}");
            typed.push(name.to_string());
        } else {
            let caps = sample
                .captures(line)
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let name = &caps[1];
            assert!(helped.iter().any(|h| h == name), "no HELP before {line}");
            assert!(typed.iter().any(|t| t == name), "no TYPE before {line}");
            values.insert(
                format!("{name}{}", caps.get(2).map_or("", |m| m.as_str())),
                caps[3].parse::<u64>().unwrap(),
            );
        }
    }
    assert_eq!(
        values["socwatch_lines_read_total{source=\"/var/log/auth.log\"}"],
        42
    );
    assert_eq!(
        values["socwatch_lines_read_total{source=\"syslog \\\"udp\\\"\\\\514\\n\"}"],
        7
    );
    assert_eq!(values["socwatch_events_matched_total"], 3);
    assert_eq!(values["socwatch_incidents_opened_total"], 1);
    assert_eq!(values["socwatch_incidents_updated_total"], 0);
    assert_eq!(values["socwatch_parse_errors_total"], 0);
    assert_eq!(values["socwatch_syslog_dropped_total"], 0);
    assert_eq!(
        values["socwatch_alerts_delivered_total{destination=\"national\"}"],
        5
    );
    assert_eq!(values["socwatch_alerts_pending{destination=\"email\"}"], 2);
    assert!(values["socwatch_store_size_bytes"] > 0);
}

#[tokio::test]
async fn serve_answers_on_a_real_socket_and_shuts_down() {
    let f = fixture();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, f.state.clone(), async {
        let _ = stopped.await;
    }));
    let id = f.ids[0].clone();
    let incident = tokio::task::spawn_blocking(move || {
        let client = Client::new(&addr.to_string(), Token::new(TOKEN)).unwrap();
        let acked = client.transition(&id, Action::Ack, None, "on it").unwrap();
        assert_eq!(acked.history.last().unwrap().by, ADMIN);
        let listed = client
            .list(&Filters {
                severity: Some(Severity::Critical),
                ..Filters::default()
            })
            .unwrap();
        assert_eq!(listed.len(), 1);
        let wrong = Client::new(&addr.to_string(), Token::new("nope")).unwrap();
        assert!(matches!(
            wrong.get(&id),
            Err(ClientError::Status { status: 401, .. })
        ));
        assert!(matches!(
            client.get("01JD3V6X8Q4W0Z5N2K7M9P1R3T"),
            Err(ClientError::Status { status: 404, .. })
        ));
        acked
    })
    .await
    .unwrap();
    assert_eq!(incident.status, Status::Acknowledged);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

fn arbitrary_request() -> impl Strategy<
    Value = (
        String,
        String,
        Option<&'static str>,
        Option<&'static str>,
        Vec<u8>,
    ),
> {
    let method = prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
    ]);
    let segment = "[A-Za-z0-9._~%-]{0,30}";
    let known = prop::sample::select(vec![
        "/api/v1/incidents",
        "/api/v1/incidents/",
        "/api/v1/rules",
        "/api/v1/outbox",
        "/api/v1/outbox/retry",
        "/metrics",
        "/healthz",
        "/",
        "/api/v1",
    ]);
    let action = prop::sample::select(vec![
        "ack",
        "resolve",
        "false-positive",
        "reopen",
        "",
        "ACK",
        "x",
    ]);
    let path = prop_oneof![
        known.prop_map(str::to_string),
        segment.prop_map(|s| format!("/api/v1/incidents/{s}")),
        (segment, action).prop_map(|(s, a)| format!("/api/v1/incidents/{s}/{a}")),
        "(/[A-Za-z0-9._~%-]{0,12}){0,5}".prop_map(|p| if p.is_empty() { "/".into() } else { p }),
    ];
    let query = prop_oneof![
        Just(String::new()),
        "[a-z_]{0,8}=[A-Za-z0-9%:+._=-]{0,20}(&[a-z_]{0,8}=[A-Za-z0-9%:+._=-]{0,20}){0,4}"
            .prop_map(|q| format!("?{q}")),
        prop::sample::select(vec![
            "severity", "status", "since", "until", "limit", "field", "rule", "host",
        ])
        .prop_flat_map(|k| "[A-Za-z0-9%:+._=-]{0,20}".prop_map(move |v| format!("?{k}={v}"))),
    ];
    let token = prop::sample::select(vec![Some(TOKEN), Some(OP1), None, Some("wrong")]);
    let content_type = prop::sample::select(vec![
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        None,
    ]);
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        r#"\{("by"|"note"|"x"): ("[a-z ]{0,10}"|[0-9]+|null|\[\])(, "note": "[a-z]{0,5}")?\}"#
            .prop_map(String::into_bytes),
    ];
    (method, (path, query), token, content_type, body).prop_map(
        |(method, (path, query), token, content_type, body)| {
            (
                method.to_string(),
                format!("{path}{query}"),
                token,
                content_type,
                body,
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_request_panics_or_gets_an_unexpected_status(
        requests in prop::collection::vec(arbitrary_request(), 1..8)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let f = fixture();
        for (method, uri, token, content_type, body) in requests {
            // Ids that exist make the lifecycle paths reachable.
            let uri = uri.replace("/incidents/0", &format!("/incidents/{}", f.ids[0]));
            let mut builder = Request::builder().method(method.as_str()).uri(&uri);
            if let Some(token) = token {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            let Ok(request) = builder.body(Body::from(body)) else { continue };
            let answer = runtime.block_on(send(&f.app, request));
            // The console's pages answer HTML and send the signed-out to `/login`.
            let path = uri.split('?').next().unwrap_or("");
            let console = ["/", "/login", "/logout", "/rules", "/sources", "/outbox", "/outbox/retry"]
                .contains(&path)
                || path.starts_with("/incidents/")
                || path.starts_with("/cases/")
                || path.starts_with("/assets/");
            let allowed: &[u16] = if console {
                &[200, 303, 400, 401, 403, 404, 405, 413, 415, 429]
            } else {
                &[200, 400, 401, 403, 404, 405, 409, 413, 415]
            };
            prop_assert!(
                allowed.contains(&answer.status.as_u16()),
                "{method} {uri}: {}", answer.status
            );
            if answer.status != StatusCode::OK && method != "HEAD" && !console {
                let parsed: serde_json::Value = serde_json::from_slice(&answer.body)
                    .map_err(|e| TestCaseError::fail(format!("{method} {uri}: not JSON: {e}")))?;
                prop_assert!(parsed["error"].is_string(), "{method} {uri}");
            }
        }
    }
}

#[tokio::test]
async fn outbox_lists_destinations_and_dead_letters_and_retry_requeues_them() {
    use crate::alerting::{Destination, NATIONAL, OutboxPolicy};
    let f = fixture_with(OutboxPolicy {
        destinations: vec![Destination {
            name: NATIONAL.into(),
            min_severity: Severity::Medium,
            every_change: true,
            per_case: false,
        }],
        cap: 100,
    });
    let store = f.state.0.store.clone();
    // The fixture's incidents were opened under this policy: their alerts went out already.
    let opened = store.outbox_peek(NATIONAL, 10).unwrap();
    assert_eq!(opened.len(), 3, "each opened incident is queued");
    store
        .outbox_delivered(NATIONAL, &opened, Timestamp::now())
        .unwrap();
    let state = f
        .state
        .clone()
        .with_outputs(vec![NATIONAL.into(), "email".into()], Default::default());
    let app = app(state);
    let id = f.ids[0].clone();
    let acked = send(
        &app,
        request(
            "POST",
            &format!("/api/v1/incidents/{id}/ack"),
            Some(OP1),
            Some(r#"{"by": "op1"}"#),
        ),
    )
    .await;
    assert_eq!(acked.status, StatusCode::OK);
    let queued = store.outbox_peek(NATIONAL, 10).unwrap();
    assert_eq!(
        queued.len(),
        1,
        "the acknowledgement is queued for the national center"
    );
    store
        .outbox_dead_letter(NATIONAL, &queued[0], "HTTP 422: bad <alert>")
        .unwrap();

    let report = send(&app, request("GET", "/api/v1/outbox", Some(TOKEN), None))
        .await
        .json();
    let names: Vec<&str> = report["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["email", "national"]);
    assert_eq!(report["destinations"][1]["pending"], 0);
    assert_eq!(report["destinations"][1]["dead_letters"], 1);
    assert_eq!(report["dead_letters"][0]["incident_id"], id.as_str());
    assert_eq!(report["dead_letters"][0]["error"], "HTTP 422: bad <alert>");

    let retried = send(
        &app,
        request("POST", "/api/v1/outbox/retry", Some(TOKEN), Some("{}")),
    )
    .await
    .json();
    assert_eq!(retried["requeued"], 1);
    let report = send(&app, request("GET", "/api/v1/outbox", Some(TOKEN), None))
        .await
        .json();
    assert_eq!(report["destinations"][1]["pending"], 1);
    assert_eq!(report["destinations"][1]["dead_letters"], 0);
}
