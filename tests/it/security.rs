//! Security by default, with the real `socwatch run`: the API refuses every request without a
//! token (loopback included) with the built-in defaults, the token it generates is private, another
//! local user (uid `nobody`, through `setpriv`) can neither read it nor act, an operator's token
//! says who acted whatever the body claims, secret files open to others are refused, and the
//! settings that weaken the defaults are logged at start.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::daemon::{Daemon, Site, line};
use crate::support::{stderr, stdout};

/// One HTTP/1.1 request on a fresh loopback connection: (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad answer {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Every route of the API (and one that does not exist), with a body for the POSTs.
fn routes(id: &str) -> Vec<(&'static str, String, Option<&'static str>)> {
    let mut routes = vec![
        ("GET", "/api/v1/incidents".to_string(), None),
        ("GET", "/api/v1/incidents?severity=high".to_string(), None),
        ("GET", format!("/api/v1/incidents/{id}"), None),
        ("GET", "/api/v1/rules".to_string(), None),
        ("GET", "/api/v1/outbox".to_string(), None),
        ("POST", "/api/v1/outbox/retry".to_string(), Some("{}")),
        ("GET", "/metrics".to_string(), None),
        ("GET", "/no/such/route".to_string(), None),
    ];
    for action in ["ack", "resolve", "false-positive", "reopen"] {
        routes.push((
            "POST",
            format!("/api/v1/incidents/{id}/{action}"),
            Some(r#"{"by": "admin", "note": "x"}"#),
        ));
    }
    routes
}

/// Runs `command` to its end, at most `limit` (it is expected to fail fast).
fn run_to_end(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "still running after {limit:?}: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A secret file with the given mode.
fn secret(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Adds `lines` to the site's `[api]` table.
fn api_settings(site: &Site, lines: &str) {
    let path = site.path("socwatch.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let listen = "[api]\nlisten = \"127.0.0.1:0\"\n";
    assert!(config.contains(listen));
    std::fs::write(&path, config.replace(listen, &format!("{listen}{lines}\n"))).unwrap();
}

/// The site's config with the API address the daemon bound (it was given port 0), for the CLI.
fn cli_config(site: &Site, daemon: &Daemon) -> std::path::PathBuf {
    let path = site.path("cli.toml");
    let config = std::fs::read_to_string(site.path("socwatch.toml")).unwrap();
    let listen = format!("listen = \"{}\"", daemon.api);
    std::fs::write(&path, config.replace("listen = \"127.0.0.1:0\"", &listen)).unwrap();
    path
}

/// A site whose daemon has opened one incident (critical enough for any test), and its id.
fn site_with_incident(site: &Site) -> (Daemon, String) {
    let daemon = site.start();
    site.append([line(1, "203.0.113.66")]);
    daemon.wait_for(1);
    let id = daemon
        .client()
        .list(&Default::default())
        .unwrap()
        .remove(0)
        .id;
    (daemon, id)
}

fn history_by(daemon: &Daemon, id: &str) -> Vec<String> {
    let incident = daemon.client().get(id).unwrap();
    incident.history.into_iter().map(|h| h.by).collect()
}

#[test]
fn with_the_built_in_defaults_the_api_refuses_every_request_without_the_generated_token() {
    // Built-in defaults (data in ./socwatch-data, no token configured), but port 0.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("port0.toml");
    std::fs::write(&config, "[api]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let token_file = dir.path().join("socwatch-data/api.token");
    let start = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_socwatch"));
        command
            .arg("run")
            .current_dir(dir.path())
            .env("SOCWATCH_CONFIG", &config);
        Daemon::spawn(command, &token_file)
    };
    let daemon = start();
    let id = "01JD3V6X8Q4W0Z5N2K7M9P1R3T";
    for (method, path, body) in routes(id) {
        for wrong in [None, Some("wrong"), Some(&daemon.token[..63])] {
            let (status, answer) = http(&daemon.api, method, &path, wrong, body);
            assert_eq!(status, 401, "{method} {path} with {wrong:?}: {answer}");
            let error: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(error["error"], "missing or wrong bearer token");
        }
        let (status, answer) = http(&daemon.api, method, &path, Some(&daemon.token), body);
        assert_ne!(status, 401, "{method} {path} with the token: {answer}");
    }
    // The health probe alone stays open, and says nothing more.
    assert_eq!(
        http(&daemon.api, "GET", "/healthz", None, None),
        (200, r#"{"status":"ok"}"#.to_string())
    );

    // The generated token: 32 random bytes in hex, mode 0600, its path logged but never itself.
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(daemon.token.len(), 64);
    assert!(daemon.token.bytes().all(|b| b.is_ascii_hexdigit()));
    let logged = daemon.log.lock().unwrap().join("\n");
    assert!(logged.contains("API token generated"), "{logged}");
    assert!(logged.contains("socwatch-data/api.token"), "{logged}");
    assert!(!logged.contains(&daemon.token), "the token was logged");
    // The data folder it made is not open to every user either.
    assert_eq!(mode(&dir.path().join("socwatch-data")), 0o750);
    let first = daemon.token.clone();
    daemon.stop();

    // A restart reuses it.
    let daemon = start();
    assert_eq!(daemon.token, first);
    let (status, _) = http(
        &daemon.api,
        "GET",
        "/api/v1/incidents",
        Some(&daemon.token),
        None,
    );
    assert_eq!(status, 200);
    daemon.stop();
}

#[test]
fn another_local_user_can_neither_read_the_token_nor_change_an_incident() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test switches to uid nobody with setpriv, which needs root (CI runs as root)"
    );
    let site = Site::new(false);
    // Like /var/lib: the folders above the data folder are open to every user, the data folder is not.
    std::fs::set_permissions(site.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (daemon, id) = site_with_incident(&site);
    let nobody = |program: &str| {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                program,
            ])
            .current_dir("/");
        command
    };

    let cat = nobody("cat")
        .arg(site.path("data/api.token"))
        .output()
        .unwrap();
    assert!(!cat.status.success(), "nobody read the token");
    assert!(
        stderr(&cat).contains("Permission denied"),
        "{}",
        stderr(&cat)
    );

    // The CLI says why it cannot act for them.
    let cli = nobody(env!("CARGO_BIN_EXE_socwatch"))
        .args(["--config", site.path("socwatch.toml").to_str().unwrap()])
        .args(["--lang", "en", "incidents", "false-positive", &id])
        .args(["--by", "admin"])
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(1), "{}", stdout(&cli));
    assert!(
        stderr(&cli).contains(&format!(
            "permission denied reading the API token {}",
            site.path("data/api.token").display()
        )),
        "{}",
        stderr(&cli)
    );

    // A raw request from their uid, on loopback, without the token they cannot read: 401.
    let post = nobody("/usr/bin/python3")
        .args([
            "-c",
            "import sys, urllib.request as u\n\
             r = u.Request(sys.argv[1], data=b'{\"by\": \"admin\"}', method='POST',\n\
                           headers={'Content-Type': 'application/json'})\n\
             try:\n    u.urlopen(r); print(200)\n\
             except u.HTTPError as e:\n    print(e.code)\n",
            &format!("http://{}/api/v1/incidents/{id}/false-positive", daemon.api),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&post).trim(), "401", "{}", stderr(&post));

    let incident = daemon.client().get(&id).unwrap();
    assert_eq!(incident.status, socwatch::model::Status::Open);
    assert!(incident.history.is_empty(), "{:?}", incident.history);
    daemon.stop();
}

#[test]
fn the_cli_run_by_root_acts_through_a_daemon_running_as_the_service_user() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs the daemon as uid nobody with setpriv, which needs root (CI runs as root)"
    );
    // `nobody` stands for the `socwatch` service user: it owns the data folder (the unit's
    // StateDirectory), so the token it generates there is its own, mode 0600.
    let site = Site::new(false);
    std::fs::set_permissions(site.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(site.path("data")).unwrap();
    std::fs::set_permissions(site.path("data"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(site.path("data"), Some(65534), Some(65534)).unwrap();
    site.append([line(1, "203.0.113.67")]);
    let as_service_user = |config: &Path| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_socwatch"))
            .args(["--config", config.to_str().unwrap(), "run"]);
        command
    };

    // The old advice, a token file of mode 600 owned by root, is one the service user cannot
    // read: the start stops and says so.
    let root_only = site.path("root-only.token");
    secret(&root_only, "0123456789abcdef0123456789abcdef", 0o600);
    let config = site.path("root-only.toml");
    let text = std::fs::read_to_string(site.path("socwatch.toml")).unwrap();
    let api = "[api]\nlisten = \"127.0.0.1:0\"\n";
    let with_token = format!("{api}token_file = {:?}\n", root_only.display().to_string());
    std::fs::write(&config, text.replace(api, &with_token)).unwrap();
    let out = run_to_end(&mut as_service_user(&config), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "permission denied reading api.token_file {} as uid 65534; a secret file is 0640 root:socwatch",
            root_only.display()
        )),
        "{}",
        stderr(&out)
    );

    let daemon = Daemon::spawn(
        as_service_user(&site.path("socwatch.toml")),
        &site.path("data/api.token"),
    );
    daemon.wait_for(1);
    let token = site.path("data/api.token");
    let meta = std::fs::metadata(&token).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o600));

    // Root's CLI finds the store held, reads the service user's token (its owner is the data
    // folder's) and acts through the API; the shared token's actions are recorded as "admin".
    let id = daemon
        .client()
        .list(&Default::default())
        .unwrap()
        .remove(0)
        .id;
    let out = Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(["--config", cli_config(&site, &daemon).to_str().unwrap()])
        .args(["--lang", "en", "incidents", "ack", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acknowledged by admin"),
        "{}",
        stdout(&out)
    );
    assert_eq!(history_by(&daemon, &id), ["admin"]);
    daemon.stop();
}

#[test]
fn an_operator_token_says_who_acted_and_the_shared_token_cannot_name_anyone() {
    let site = Site::new(false);
    let an = site.path("an.token");
    secret(&an, "an-7f3c9d2e4b1a6f8e0d5c7b9a2e4f6d8c", 0o640);
    api_settings(
        &site,
        &format!(
            "\n[[api.operator]]\nname = \"nguyen.van.an\"\ntoken_file = {:?}\n",
            an.display().to_string()
        ),
    );
    let (daemon, id) = site_with_incident(&site);
    let operator = std::fs::read_to_string(&an).unwrap().trim().to_string();
    let path = |action: &str| format!("/api/v1/incidents/{id}/{action}");

    // The body says "admin"; the operator's token says who it was.
    let (status, answer) = http(
        &daemon.api,
        "POST",
        &path("false-positive"),
        Some(&operator),
        Some(r#"{"by": "admin", "note": "quét nội bộ"}"#),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(history_by(&daemon, &id), ["nguyen.van.an"]);

    // The shared token may not claim a name: refused, nothing recorded.
    let (status, answer) = http(
        &daemon.api,
        "POST",
        &path("reopen"),
        Some(&daemon.token),
        Some(r#"{"by": "admin"}"#),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer.contains("cannot be set with the shared API token"),
        "{answer}"
    );
    assert_eq!(history_by(&daemon, &id), ["nguyen.van.an"]);
    // Without a name it acts as "admin".
    let (status, answer) = http(
        &daemon.api,
        "POST",
        &path("reopen"),
        Some(&daemon.token),
        Some("{}"),
    );
    assert_eq!(status, 200, "{answer}");

    // The CLI: the operator's own token file (a copy they own, mode 0600) through SOCWATCH_TOKEN_FILE.
    let mine = site.path("my.token");
    secret(&mine, &operator, 0o600);
    let cli_config = cli_config(&site, &daemon);
    let out = Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .args(["--config", cli_config.to_str().unwrap(), "--lang", "en"])
        .args(["incidents", "ack", &id, "--by", "admin"])
        .env("SOCWATCH_TOKEN_FILE", &mine)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acknowledged by nguyen.van.an"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        history_by(&daemon, &id),
        ["nguyen.van.an", "admin", "nguyen.van.an"]
    );
    daemon.stop();
}

#[test]
fn a_secret_file_open_to_other_users_is_refused_with_its_name_and_mode() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = super::tls::Pki::new(pki_dir.path());
    // Each secret socwatch reads, set up wrong one at a time: (setting, file, mode, config).
    let cases: Vec<(&str, &str, u32, String)> = vec![
        (
            "api.token_file",
            "api.token",
            0o644,
            "token_file = \"{file}\"".into(),
        ),
        (
            "api.operator 'an' token_file",
            "an.token",
            0o660,
            "\n[[api.operator]]\nname = \"an\"\ntoken_file = \"{file}\"".into(),
        ),
        (
            "forward.national.token_file",
            "national.token",
            0o604,
            "\n[forward.national]\nurl = \"https://127.0.0.1:9/alerts\"\ntoken_file = \"{file}\"".into(),
        ),
        (
            "forward.national.client_key",
            "client.key",
            0o644,
            format!(
                "\n[forward.national]\nurl = \"https://127.0.0.1:9/alerts\"\nclient_cert = \"{}\"\nclient_key = \"{{file}}\"",
                pki.client_cert.display()
            ),
        ),
        (
            "email.password_file",
            "smtp.password",
            0o644,
            "\n[email]\nsmtp = \"smtp.example.gov.vn:587\"\nusername = \"soc\"\npassword_file = \"{file}\"\nfrom = \"soc@example.gov.vn\"\nto = [\"oncall@example.gov.vn\"]".into(),
        ),
    ];
    for (what, name, bad_mode, settings) in cases {
        let site = Site::new(false);
        let file = site.path(name);
        if name == "client.key" {
            std::fs::copy(&pki.client_key, &file).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(bad_mode)).unwrap();
        } else {
            secret(&file, "0123456789abcdef0123456789abcdef-secret", bad_mode);
        }
        api_settings(&site, &settings.replace("{file}", file.to_str().unwrap()));
        let out = run_to_end(
            Command::new(env!("CARGO_BIN_EXE_socwatch")).args([
                "--config",
                site.path("socwatch.toml").to_str().unwrap(),
                "run",
            ]),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let expected = format!(
            "{what} {} is open to other users (mode {bad_mode:04o}); a secret file must be 0600 or 0640",
            file.display()
        );
        assert!(stderr(&out).contains(&expected), "{what}: {}", stderr(&out));
    }

    // 0640 is fine when the group is the service's, not when it is some other group (users).
    let site = Site::new(false);
    let file = site.path("api.token");
    secret(&file, "0123456789abcdef0123456789abcdef-shared", 0o640);
    std::os::unix::fs::chown(&file, None, Some(100)).unwrap();
    api_settings(
        &site,
        &format!("token_file = {:?}", file.display().to_string()),
    );
    let out = run_to_end(
        Command::new(env!("CARGO_BIN_EXE_socwatch")).args([
            "--config",
            site.path("socwatch.toml").to_str().unwrap(),
            "run",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "api.token_file {} is readable by group 100 (mode 0640)",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
    std::os::unix::fs::chown(&file, None, Some(rustix::process::getegid().as_raw())).unwrap();
    let daemon = site.start();
    assert!(daemon.token.ends_with("-shared"));
    daemon.stop();
}

#[test]
fn startup_warns_about_every_weakening_setting() {
    let site = Site::new(false);
    secret(&site.path("api.token"), "0123456789abcdef", 0o600);
    let config = site.path("socwatch.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[api]\nlisten = \"127.0.0.1:0\"\n",
        &format!(
            "[api]\nlisten = \"0.0.0.0:0\"\ntoken_file = {:?}\n",
            site.path("api.token").display().to_string()
        ),
    );
    std::fs::write(&config, text).unwrap();
    site.add_config(
        "[forward.national]\nurl = \"http://127.0.0.1:9/alerts\"\n\n\
         [email]\nsmtp = \"127.0.0.1:9\"\nsecurity = \"none\"\nfrom = \"soc@example.gov.vn\"\nto = [\"oncall@example.gov.vn\"]\n",
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::create_dir(site.path("data")).unwrap();
    std::fs::set_permissions(site.path("data"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = site.start();
    let log = daemon.log.lock().unwrap().clone();
    let warned = |needle: &str| {
        assert!(
            log.iter().any(|l| l.contains("WARN") && l.contains(needle)),
            "no warning with {needle:?} in {log:#?}"
        );
    };
    warned("api.listen 0.0.0.0:0 is not a loopback address");
    warned("the shared API token has 16 characters");
    warned("email.security = \"none\": alerts go to 127.0.0.1:9 unencrypted");
    warned("forward.national.url http://127.0.0.1:9/alerts is plain http");
    warned(&format!(
        "daemon.data_dir {} is open to every local user (mode 0755)",
        site.path("data").display()
    ));
    warned(&format!(
        "config file {} can be changed by every local user (mode 0666)",
        config.display()
    ));
    daemon.stop();
}
