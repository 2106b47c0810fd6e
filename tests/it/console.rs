//! The operator console in a real browser: the real daemon on a temporary site, real Chromium driven
//! over WebDriver (fantoccini → chromedriver, headless), and plain HTTP for what a browser would
//! never send (a POST without the CSRF token). With `SOCWATCH_SCREENSHOTS=docs` the browser test
//! also saves the README's screenshots as `docs/console-*.png`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::daemon::{Daemon, Site};
use crate::support::rfc3164;

const OPERATOR: &str = "lan";
const OPERATOR_TOKEN: &str = "operator-lan-token-5d2f8a61c0b94e7f9a3c";

const RULE: &str = r#"
id: test-attempt
title: every attempt
severity: high
tags: [attack.credential_access, attack.t1110.001]
match:
  message: 'attempt (?P<n>\d+) from (?P<src_ip>\S+)'
threshold: {count: 1, within: 1s, group_by: [src_ip]}
suppress: 3650d
"#;

/// The hostile evidence: markup that would run script if it were ever put in a page unescaped.
const HOSTILE: &str = r#""><img src=x onerror="alert(1);window.__pwned=1"><script>alert(2);window.__pwned=2</script>"#;

/// A site whose rule opens one incident per address, with an operator `lan`.
fn site() -> Site {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new(false);
    site.daemon_settings(&format!("timezone = \"{}\"", crate::support::ZONE));
    // The site's rule, tagged like a shipped one so the pages show ATT&CK techniques and tactics.
    std::fs::write(site.path("rules/test.yml"), RULE).unwrap();
    let token = site.path("lan.token");
    std::fs::write(&token, format!("{OPERATOR_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    site.add_config(&format!(
        "[[api.operator]]\nname = \"{OPERATOR}\"\ntoken_file = \"{}\"\n",
        token.display()
    ));
    site
}

/// Lines stamped now, so their incidents are in the queue's default window.
fn attempt(n: usize, address: &str, tail: &str) -> String {
    format!(
        "{} portal-01 app[1]: attempt {n} from {address} {tail}",
        rfc3164(jiff::Timestamp::now())
    )
}

/// Polls `check` until it gives a value, for at most 30 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// chromedriver on a port of its own (it cannot take port 0: a free port is picked by binding
/// 127.0.0.1:0 and released; another process may take it first, so a failed start is retried),
/// and a headless Chromium session through it. Killed on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
}

impl Browser {
    async fn start() -> Browser {
        let mut last = String::new();
        for _ in 0..5 {
            let port = {
                let probe = TcpListener::bind("127.0.0.1:0").unwrap();
                probe.local_addr().unwrap().port()
            };
            let mut driver = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver is installed (apt-get install chromium-driver)");
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut connected = None;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = driver.try_wait() {
                    last = format!("chromedriver exited: {status}");
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    match connect(&url).await {
                        Ok(client) => {
                            connected = Some(client);
                            break;
                        }
                        Err(err) => last = err,
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Some(client) = connected {
                return Browser {
                    driver,
                    client: Some(client),
                };
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
        panic!("could not start chromedriver and Chromium: {last}");
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(url: &str) -> Result<Client, String> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            // CI runs as root, which Chromium's sandbox refuses.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,1000", "--lang=en-US"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(url)
        .await
        .map_err(|err| err.to_string())
}

fn screenshots_dir() -> Option<std::path::PathBuf> {
    (std::env::var("SOCWATCH_SCREENSHOTS").ok()? == "docs")
        .then(|| crate::support::crate_dir().join("docs"))
}

async fn screenshot(client: &Client, name: &str) {
    if let Some(dir) = screenshots_dir() {
        let png = client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("console-{name}.png")), png).unwrap();
    }
}

async fn path_of(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_string()
}

/// The number of queue rows on the page.
async fn rows(client: &Client) -> usize {
    client
        .find_all(Locator::Css("#queue tbody tr"))
        .await
        .map_or(0, |r| r.len())
}

/// No script ran: no dialog is open, the hostile markup set no flag, no `<img src=x>` exists.
async fn assert_inert(client: &Client) {
    assert!(
        client.get_alert_text().await.is_err(),
        "an alert is open: the hostile line ran"
    );
    let flag = client
        .execute(
            "return [typeof window.__pwned, document.querySelectorAll('img[src=x]').length, document.querySelectorAll('main script').length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        flag,
        json!(["undefined", 0, 0]),
        "script ran or markup became elements"
    );
}

#[test]
fn an_operator_works_an_incident_in_a_real_browser() {
    let site = site();
    site.append([
        attempt(1, "203.0.113.7", "user=root"),
        attempt(2, "203.0.113.7", "user=root"),
        attempt(3, "198.51.100.66", HOSTILE),
    ]);
    let daemon = site.start();
    assert_eq!(daemon.wait_for(3), 2, "one incident per address");
    let base = format!("http://{}", daemon.api);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        let c = browser.c();

        // Signed out, a page sends the browser to the sign-in form.
        c.goto(&format!("{base}/rules")).await.unwrap();
        assert_eq!(path_of(c).await, "/login");
        screenshot(c, "login").await;

        // A wrong token: the form again, with a message, and no cookie.
        c.find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys("not-a-token")
            .await
            .unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let error = c.wait().for_element(Locator::Id("error")).await.unwrap();
        assert_eq!(error.text().await.unwrap(), "Wrong token.");
        assert!(
            c.get_all_cookies()
                .await
                .unwrap()
                .iter()
                .all(|k| k.name() != "socwatch_session"),
            "a wrong token set a session cookie"
        );

        // The operator's token: the queue, and an HttpOnly session cookie.
        c.find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(OPERATOR_TOKEN)
            .await
            .unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Locator::Id("queue")).await.unwrap();
        assert_eq!(path_of(c).await, "/");
        let cookie = c.get_named_cookie("socwatch_session").await.unwrap();
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(
            c.execute(
                "return document.cookie.includes('socwatch_session');",
                vec![]
            )
            .await
            .unwrap(),
            json!(false),
            "script can read the session cookie"
        );
        let operator = c
            .find(Locator::Id("operator"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(operator, format!("Operator: {OPERATOR}"));

        // Both incidents the lines caused, and the counters say so.
        assert_eq!(rows(c).await, 2);
        let queue = c
            .find(Locator::Id("queue"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(queue.contains("src_ip=203.0.113.7"), "{queue}");
        assert!(queue.contains("src_ip=198.51.100.66"), "{queue}");
        let high = c
            .find(Locator::Css("#count-high .n"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(high, "2");
        let tops = c
            .find(Locator::Css(".panels"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(tops.contains("T1110.001"), "the top techniques: {tops}");
        assert_inert(c).await;
        screenshot(c, "queue").await;

        // Filter by text: htmx swaps the list in place and puts the filter in the URL.
        let q = c.find(Locator::Id("q")).await.unwrap();
        q.send_keys("203.0.113.7").await.unwrap();
        c.find(Locator::Id("apply"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually("the filtered queue", || async {
            let url = c.current_url().await.ok()?;
            (rows(c).await == 1 && url.query().is_some_and(|q| q.contains("q=203.0.113.7")))
                .then_some(())
        })
        .await;
        // The URL alone gives the same view (a shared link).
        let shared = c.current_url().await.unwrap();
        c.goto(shared.as_str()).await.unwrap();
        c.wait().for_element(Locator::Id("queue")).await.unwrap();
        assert_eq!(rows(c).await, 1);
        // A severity above high leaves nothing.
        c.goto(&format!("{base}/?severity=critical")).await.unwrap();
        c.wait().for_element(Locator::Id("empty")).await.unwrap();

        // The case: acknowledge it with a note; the history shows who and why.
        c.goto(&format!("{base}/?q=203.0.113.7")).await.unwrap();
        c.wait()
            .for_element(Locator::Css("#queue tbody tr td a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Locator::Id("evidence")).await.unwrap();
        assert!(path_of(c).await.starts_with("/cases/"));
        let case_id = path_of(c).await.trim_start_matches("/cases/").to_string();
        let entities = c
            .find(Locator::Id("entities"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(entities.contains("203.0.113.7"), "{entities}");
        let tags = c
            .find(Locator::Id("tags"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            tags.contains("credential_access") && tags.contains("T1110.001"),
            "{tags}"
        );
        let timeline = c
            .find(Locator::Id("evidence"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            timeline.contains("attempt 1 from 203.0.113.7") && timeline.contains("attempt 2"),
            "{timeline}"
        );
        assert!(c.find(Locator::Id("no-history")).await.is_ok());
        c.find(Locator::Id("note-ack"))
            .await
            .unwrap()
            .send_keys("blocked at the firewall <b>now</b>")
            .await
            .unwrap();
        c.find(Locator::Id("do-ack"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let history = c.wait().for_element(Locator::Id("history")).await.unwrap();
        let text = history.text().await.unwrap();
        assert!(text.contains(OPERATOR), "{text}");
        assert!(
            text.contains("blocked at the firewall <b>now</b>"),
            "{text}"
        );
        assert_eq!(
            c.find(Locator::Id("status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "acknowledged"
        );
        // Assign it (to the signed-in operator, the field's default).
        c.find(Locator::Id("do-assign"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually("the assignee", || async {
            let shown = c
                .find(Locator::Id("assignee"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (shown == OPERATOR).then_some(())
        })
        .await;
        screenshot(c, "case").await;

        // Its incident was acknowledged with it, under the operator's name.
        c.find(Locator::Css("#incidents tbody tr td a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let history = c.wait().for_element(Locator::Id("history")).await.unwrap();
        assert!(history.text().await.unwrap().contains(OPERATOR));
        assert!(path_of(c).await.starts_with("/incidents/"));
        let link = c.find(Locator::Id("case-link")).await.unwrap();
        assert_eq!(link.text().await.unwrap(), case_id);
        screenshot(c, "incident").await;
        let id = path_of(c)
            .await
            .trim_start_matches("/incidents/")
            .to_string();
        let stored = daemon.client().get(&id).unwrap();
        assert_eq!(stored.history.len(), 1);
        assert_eq!(stored.history[0].by, OPERATOR);
        assert_eq!(stored.history[0].action, "ack");

        // The hostile line is shown as text, on the case and on the incident, and nothing ran.
        c.goto(&format!("{base}/?q=198.51.100.66")).await.unwrap();
        c.wait()
            .for_element(Locator::Css("#queue tbody tr td a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let evidence = c.wait().for_element(Locator::Id("evidence")).await.unwrap();
        assert_inert(c).await;
        let shown = evidence.text().await.unwrap();
        assert!(
            shown.contains(HOSTILE),
            "the line is not shown literally: {shown}"
        );
        c.find(Locator::Css("#incidents tbody tr td a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually("the incident page", || async {
            path_of(c).await.starts_with("/incidents/").then_some(())
        })
        .await;
        let evidence = c.wait().for_element(Locator::Id("evidence")).await.unwrap();
        assert!(evidence.text().await.unwrap().contains(HOSTILE));
        assert_inert(c).await;

        // Vietnamese by the switch, remembered by a cookie.
        c.find(Locator::Id("lang-switch"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually("the Vietnamese page", || async {
            let lang = c
                .find(Locator::Css("html"))
                .await
                .ok()?
                .attr("lang")
                .await
                .ok()??;
            (lang == "vi").then_some(())
        })
        .await;
        c.goto(&format!("{base}/")).await.unwrap();
        let nav = c
            .find(Locator::Css("header nav"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(nav.contains("Hàng đợi"), "{nav}");
        let status = c
            .find(Locator::Css("#queue tbody tr td.status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            ["Mở", "Đã tiếp nhận"].contains(&status.as_str()),
            "{status}"
        );
        screenshot(c, "queue-vi").await;
        c.goto(&format!("{base}/?lang=en")).await.unwrap();

        // The other pages.
        c.goto(&format!("{base}/rules")).await.unwrap();
        let rule = c
            .wait()
            .for_element(Locator::Css("#rules tr[data-rule=test-attempt] td.hits"))
            .await
            .unwrap();
        assert_eq!(rule.text().await.unwrap(), "2");
        screenshot(c, "rules").await;
        c.goto(&format!("{base}/sources")).await.unwrap();
        let source = c
            .wait()
            .for_element(Locator::Css("#sources tbody tr"))
            .await
            .unwrap();
        let text = source.text().await.unwrap();
        assert!(text.contains("app.log"), "{text}");
        assert_eq!(
            source.attr("class").await.unwrap(),
            None,
            "a live source is not silent"
        );
        screenshot(c, "sources").await;
        c.goto(&format!("{base}/outbox")).await.unwrap();
        c.wait()
            .for_element(Locator::Id("retry-now"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let notice = c.wait().for_element(Locator::Id("notice")).await.unwrap();
        assert!(notice.text().await.unwrap().starts_with("0 dead letters"));
        screenshot(c, "outbox").await;

        // Signing out ends the session: pages send the browser back to the form.
        c.goto(&format!("{base}/")).await.unwrap();
        c.find(Locator::Css("header form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually("the sign-in form", || async {
            (path_of(c).await == "/login").then_some(())
        })
        .await;
        for page in [format!("/incidents/{id}"), format!("/cases/{case_id}")] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            assert_eq!(path_of(c).await, "/login", "{page}");
        }
        browser.close().await;
    });
    daemon.stop();
}

/// A plain HTTP client that never follows redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("socwatch_session="))
        .map(str::to_string)
}

async fn sign_in(base: &str, token: &str) -> reqwest::Response {
    http()
        .post(format!("{base}/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

#[test]
fn the_console_refuses_what_a_forged_or_signed_out_request_asks() {
    let site = site();
    site.edit_config(|config| config.replace("lang = \"en\"", "lang = \"vi\""));
    // A second source that never gets a line: /sources must flag it.
    site.add_config(&format!(
        "[[source.file]]\npaths = [\"{}\"]\nsystem = \"quiet\"\n",
        site.path("logs/quiet.log").display()
    ));
    site.append([attempt(1, "203.0.113.7", "")]);
    let daemon = site.start();
    daemon.wait_for(1);
    let id = daemon.client().list(&Default::default()).unwrap()[0]
        .id
        .clone();
    let base = format!("http://{}", daemon.api);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Signed out: every page answers 303 to the form, which is Vietnamese by the config.
        for page in [
            "/",
            "/rules",
            "/sources",
            "/outbox",
            &format!("/incidents/{id}"),
        ] {
            let answer = http().get(format!("{base}{page}")).send().await.unwrap();
            assert_eq!(answer.status(), 303, "{page}");
            assert_eq!(answer.headers()["location"], "/login", "{page}");
        }
        let form = http().get(format!("{base}/login")).send().await.unwrap();
        let csp = form.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(form.headers()["x-frame-options"], "DENY");
        assert!(form.text().await.unwrap().contains("Đăng nhập"));

        // A wrong token sets no cookie.
        let wrong = sign_in(&base, "wrong").await;
        assert_eq!(wrong.status(), 401);
        assert_eq!(session_cookie(&wrong), None);

        // The right one: 303 to / with an HttpOnly, SameSite=Strict cookie (not Secure: plain HTTP).
        let answer = sign_in(&base, OPERATOR_TOKEN).await;
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/");
        let set = session_cookie(&answer).expect("a session cookie");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(!set.contains("Secure"), "{set}");
        let cookie = set.split(';').next().unwrap().to_string();

        let page = http()
            .get(format!("{base}/incidents/{id}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page carries its CSRF token")
            .to_string();

        // A POST without the CSRF token, or with another one, is refused and changes nothing.
        let ack = format!("{base}/incidents/{id}/ack");
        for form in [
            vec![("note", "forged")],
            vec![("note", "forged"), ("csrf", "0123")],
        ] {
            let answer = http()
                .post(&ack)
                .header("cookie", &cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 403);
        }
        let case_id = daemon.client().get(&id).unwrap().case_id;
        assert!(!case_id.is_empty());
        for path in [
            format!("/cases/{case_id}/ack"),
            format!("/cases/{case_id}/assign"),
            "/outbox/retry".into(),
            "/logout".into(),
        ] {
            let answer = http()
                .post(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 403, "{path}");
        }
        // Without a session, with a token: still refused.
        let answer = http()
            .post(&ack)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert_eq!(daemon.client().get(&id).unwrap().revision, 1);

        // With it: done, as the operator.
        let answer = http()
            .post(&ack)
            .header("cookie", &cookie)
            .form(&[("note", "ok"), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303);
        let stored = daemon.client().get(&id).unwrap();
        assert_eq!(stored.history.last().unwrap().by, OPERATOR);

        // A rule most of whose incidents were false positives is flagged noisy on /rules.
        let page = |path: &'static str| {
            let cookie = cookie.clone();
            let base = base.clone();
            async move {
                let answer = http()
                    .get(format!("{base}{path}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200, "{path}");
                answer.text().await.unwrap()
            }
        };
        assert!(
            page("/rules")
                .await
                .contains("<tr data-rule=\"test-attempt\">")
        );
        site.append((2..=4).map(|n| attempt(n, &format!("198.51.100.{n}"), "")));
        daemon.wait_for(4);
        let client = daemon.client();
        for incident in client.list(&Default::default()).unwrap() {
            if incident.id != id {
                client
                    .transition(
                        &incident.id,
                        socwatch::store::Action::FalsePositive,
                        None,
                        "",
                    )
                    .unwrap();
            }
        }
        let rules = page("/rules").await;
        assert!(
            rules.contains("<tr data-rule=\"test-attempt\" class=\"noisy\">"),
            "3 false positives of 4 incidents: {rules}"
        );
        // The source that never delivered a line is flagged; the one that did is not.
        let sources = page("/sources").await;
        let row = |name: &str| {
            sources
                .split("<tr data-source=\"")
                .find(|r| r.contains(name))
                .map(|r| r.split('>').next().unwrap().to_string())
                .unwrap_or_default()
        };
        assert!(row("quiet.log").contains("class=\"silent\""), "{sources}");
        assert!(!row("app.log").contains("silent"), "{sources}");

        // /api keeps taking only the bearer token: a session cookie opens nothing there.
        let api = http()
            .get(format!("{base}/api/v1/incidents"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 401);

        // Sign-in attempts are limited per address: after 5 wrong ones (one above), even the right
        // token waits.
        for _ in 0..4 {
            assert_eq!(sign_in(&base, "wrong").await.status(), 401);
        }
        let held = sign_in(&base, OPERATOR_TOKEN).await;
        assert_eq!(held.status(), 429);
        assert_eq!(session_cookie(&held), None);
    });
    daemon.stop();
}

#[test]
fn over_tls_the_session_cookie_is_secure() {
    let site = site();
    let pki = crate::tls::Pki::new(&site.path(""));
    let (cert, key) = (pki.server_pem.clone(), pki.server_key_pem.clone());
    site.edit_config(|config| {
        config.replace(
            "[api]\nlisten = \"127.0.0.1:0\"\n",
            &format!(
                "[api]\nlisten = \"127.0.0.1:0\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
    });
    site.append([attempt(1, "203.0.113.7", "")]);
    let daemon: Daemon = site.start();
    // The CLI reaches the daemon over the same TLS listener, trusting the configured certificate.
    site.point_cli_at(&daemon);
    let config = site.path("socwatch.toml");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = crate::support::socwatch(&[
            "--config",
            config.to_str().unwrap(),
            "incidents",
            "list",
            "--json",
        ]);
        assert!(
            listed.status.success(),
            "{}",
            crate::support::stderr(&listed)
        );
        if crate::support::incidents(&listed).len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the incident never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = format!("https://{}", daemon.api);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_pem).unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let https = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(ca)
            .build()
            .unwrap();
        let answer = https
            .post(format!("{base}/login"))
            .form(&[("token", OPERATOR_TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303);
        let set = session_cookie(&answer).expect("a session cookie");
        assert!(set.contains("; Secure"), "{set}");
        assert!(answer.headers().contains_key("strict-transport-security"));
        // The API answers over the same TLS listener.
        let health = https.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        // Plain HTTP to the TLS port gets no page.
        let plain = http()
            .get(format!("http://{}/login", daemon.api))
            .send()
            .await;
        assert!(plain.is_err() || !plain.unwrap().status().is_success());
        // That failed handshake cost only its own connection.
        let again = https.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(again.status(), 200);
    });
    daemon.stop();
}
