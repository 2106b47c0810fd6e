//! `socwatch run` as a user runs it: the real binary on a temporary folder with port-0 listeners,
//! fed by real files rotated by the real `logrotate`, by the real `logger`, and killed with SIGKILL.
//! Every line must be counted exactly once: the test rule opens one incident per address and counts
//! every line in it, so the sum of counts is the number of lines the daemon took in.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socwatch::api::{Client, Token};
use socwatch::query::Filters;

const RULE: &str = r#"
id: test-attempt
title: every attempt
severity: high
match:
  message: 'attempt (?P<n>\d+) from (?P<src_ip>\S+)'
threshold: {count: 1, within: 1s, group_by: [src_ip]}
suppress: 3650d
"#;

pub(crate) struct Daemon {
    child: Child,
    pub(crate) api: String,
    syslog: Vec<String>,
    /// The shared API token the daemon generated in its data folder.
    pub(crate) token: String,
    /// Everything it has logged so far.
    pub(crate) log: Arc<Mutex<Vec<String>>>,
    /// Its `NOTIFY_SOCKET` (kept open: it sends `STOPPING=1` there at the end).
    _notify: (tempfile::TempDir, UnixDatagram),
}

/// A temporary installation: config, rules, log folder, store.
pub(crate) struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    pub(crate) fn new(syslog: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("rules")).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::write(root.join("rules/test.yml"), RULE).unwrap();
        let mut config = format!(
            "[daemon]\ndata_dir = \"{0}/data\"\nrules = [\"{0}/rules\"]\nlang = \"en\"\n\n\
             [[source.file]]\npaths = [\"{0}/logs/app.log\"]\nstart_at = \"beginning\"\nsystem = \"dvc-portal\"\nlevel = 3\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n",
            root.display()
        );
        if syslog {
            config.push_str("\n[[source.syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"udp\"\n");
            config.push_str("\n[[source.syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n");
        }
        std::fs::write(root.join("socwatch.toml"), config).unwrap();
        Site { dir }
    }

    /// Protects the API with a token file (mode 0600, as the daemon requires of secrets); the
    /// site's daemons then send the token with every request.
    pub(crate) fn with_token(self) -> Site {
        use std::os::unix::fs::PermissionsExt;
        let token = "oracle-test-token-4f1c9e-0123456789abcdef";
        let file = self.path("api.token");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        self.edit_config(|config| {
            config.replace(
                "[api]\n",
                &format!("[api]\ntoken_file = \"{}\"\n", file.display()),
            )
        });
        self
    }

    /// Adds `key = value` lines to the config's `[daemon]` table (before `start`).
    pub(crate) fn daemon_settings(&self, lines: &str) {
        self.edit_config(|config| {
            config.replacen("[daemon]\n", &format!("[daemon]\n{lines}\n"), 1)
        });
    }

    /// Runs on the rules built into the binary: drops `daemon.rules` from the config.
    pub(crate) fn use_shipped_rules(&self) {
        self.edit_config(|config| {
            config
                .lines()
                .filter(|line| !line.starts_with("rules = "))
                .map(|line| format!("{line}\n"))
                .collect()
        });
    }

    /// Replaces the whole config file (before `start`); `{root}` in `text` is the site's folder.
    pub(crate) fn write_config(&self, text: &str) {
        let text = text.replace("{root}", &self.dir.path().display().to_string());
        std::fs::write(self.path("socwatch.toml"), text).unwrap();
    }

    pub(crate) fn edit_config(&self, edit: impl FnOnce(&str) -> String) {
        let path = self.path("socwatch.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, edit(&config)).unwrap();
    }

    /// Adds sections to the site's config file (before `start`).
    pub(crate) fn add_config(&self, text: &str) {
        let path = self.path("socwatch.toml");
        let mut config = std::fs::read_to_string(&path).unwrap();
        config.push('\n');
        config.push_str(text);
        std::fs::write(path, config).unwrap();
    }

    /// Adds a line to the config's `[daemon]` table (before `start`).
    pub(crate) fn set_daemon_option(&self, line: &str) {
        let path = self.path("socwatch.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            path,
            config.replacen("[daemon]\n", &format!("[daemon]\n{line}\n"), 1),
        )
        .unwrap();
    }

    /// Points the config's `[api] listen` at the running daemon's real address, so CLI commands
    /// run against this site reach it (the daemon binds port 0).
    pub(crate) fn point_cli_at(&self, daemon: &Daemon) {
        let path = self.path("socwatch.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        let pointed = config.replacen(
            "[api]\nlisten = \"127.0.0.1:0\"",
            &format!("[api]\nlisten = \"{}\"", daemon.api),
            1,
        );
        assert_ne!(
            config, pointed,
            "the site's config has its [api] listen line"
        );
        std::fs::write(path, pointed).unwrap();
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts the daemon and waits for its "running" line, which names the bound addresses.
    pub(crate) fn start(&self) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_socwatch"));
        command.args([
            "--config",
            self.path("socwatch.toml").to_str().unwrap(),
            "run",
        ]);
        // A site's own `api.token` (named in its config as api.token_file), else the token the
        // daemon makes in its data folder.
        let own = self.path("api.token");
        let token_file = if own.exists() {
            own
        } else {
            self.path("data/api.token")
        };
        Daemon::spawn(command, &token_file)
    }

    pub(crate) fn append(&self, lines: impl IntoIterator<Item = String>) {
        self.append_to("logs/app.log", lines);
    }

    /// Appends lines to a file of the site (created if missing), as a logging program would.
    pub(crate) fn append_to(&self, rel: &str, lines: impl IntoIterator<Item = String>) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(rel))
            .unwrap();
        for line in lines {
            writeln!(file, "{line}").unwrap();
        }
    }

    pub(crate) fn logrotate(&self, mode: &str) {
        self.logrotate_file("logs/app.log", mode);
    }

    /// Rotates one file of the site with the real `logrotate` (`create` or `copytruncate`).
    pub(crate) fn logrotate_file(&self, rel: &str, mode: &str) {
        let conf = self.path(&format!("logrotate-{}-{mode}.conf", rel.replace('/', "_")));
        std::fs::write(
            &conf,
            format!(
                "{} {{\n  rotate 10\n  {mode}\n  missingok\n  nocompress\n}}\n",
                self.path(rel).display()
            ),
        )
        .unwrap();
        let status = Command::new("logrotate")
            .args([
                "-f",
                "-s",
                self.path("logrotate.state").to_str().unwrap(),
                conf.to_str().unwrap(),
            ])
            .status()
            .expect("logrotate is installed");
        assert!(status.success(), "logrotate {mode}");
    }
}

impl Daemon {
    /// Runs `command` (a `socwatch ... run`), reads the bound addresses from its "running" line,
    /// and waits for its systemd `READY=1` (every source and the API run, SIGTERM is handled);
    /// then reads the shared token from `token_file`.
    pub(crate) fn spawn(mut command: Command, token_file: &Path) -> Daemon {
        let notify_dir = tempfile::tempdir().unwrap();
        let notify = UnixDatagram::bind(notify_dir.path().join("notify")).unwrap();
        // A daemon started as another user (the service user) must be able to send there too.
        for (path, mode) in [
            (notify_dir.path().to_path_buf(), 0o755),
            (notify_dir.path().join("notify"), 0o777),
        ] {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        notify
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut child = command
            .env("NOTIFY_SOCKET", notify_dir.path().join("notify"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start socwatch run");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut startup = Vec::new();
        let running = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    startup.push(line.clone());
                    if line.contains("socwatch running") {
                        break line;
                    }
                }
                other => panic!("socwatch run ended before it ran: {other:?} after {startup:#?}"),
            }
        };
        // Keep reading its log so it never blocks on a full pipe, and keep it for the tests.
        let log = Arc::new(Mutex::new(startup));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let value = |key: &str| {
            running
                .split_whitespace()
                .find_map(|word| word.strip_prefix(&format!("{key}=")))
                .unwrap_or("")
                .to_string()
        };
        let syslog = value("syslog")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut message = [0u8; 256];
        loop {
            match notify.recv(&mut message) {
                Ok(n) if message[..n].starts_with(b"READY=1") => break,
                Ok(_) => continue,
                Err(err) => panic!(
                    "no READY=1 from socwatch run ({err}; {:?}): {:#?}",
                    child.try_wait(),
                    log.lock().unwrap()
                ),
            }
        }
        let token = std::fs::read_to_string(token_file)
            .unwrap_or_else(|err| panic!("{}: {err}", token_file.display()))
            .trim()
            .to_string();
        Daemon {
            child,
            api: value("api"),
            syslog,
            token,
            log,
            _notify: (notify_dir, notify),
        }
    }
}

pub(crate) fn line(n: usize, address: &str) -> String {
    format!("Nov 22 10:00:00 portal-01 app[1]: attempt {n} from {address}")
}

impl Daemon {
    /// The address of the daemon's first syslog listener of `proto` (`udp`, `tcp`).
    pub(crate) fn syslog_addr(&self, proto: &str) -> Option<&str> {
        self.syslog
            .iter()
            .find_map(|s| s.strip_prefix(&format!("{proto}:")))
    }

    /// A client of the daemon's API with the shared token.
    pub(crate) fn client(&self) -> Client {
        Client::new(&self.api, Token::new(&self.token)).unwrap()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines the daemon has logged so far that contain `text`.
    pub(crate) fn logged(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(text))
            .count()
    }

    pub(crate) fn counts(&self) -> Option<(u64, usize)> {
        let incidents = self.client().list(&Filters::default()).ok()?;
        Some((incidents.iter().map(|i| i.count).sum(), incidents.len()))
    }

    /// Waits until the daemon has taken in `lines` lines (the sum of incident counts).
    pub(crate) fn wait_for(&self, lines: u64) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((seen, incidents)) = self.counts() {
                assert!(
                    seen <= lines,
                    "counted {seen} lines, only {lines} were written"
                );
                if seen == lines {
                    return incidents;
                }
            }
            assert!(
                Instant::now() < deadline,
                "only {:?} of {lines} lines after 60 s",
                self.counts()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines the daemon has read and stored durably (`socwatch_lines_read_total`, all sources)
    /// since it started.
    pub(crate) fn lines_stored(&self) -> u64 {
        self.lines_stored_from("")
    }

    /// Lines of the sources whose metric label starts with `label` (a syslog source's label is its
    /// configured `listen`, a file's its path) stored durably since the daemon started.
    pub(crate) fn lines_stored_from(&self, label: &str) -> u64 {
        let text = self.metrics_text();
        let prefix = format!("socwatch_lines_read_total{{source=\"{label}");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The daemon's `/metrics` answer (empty when it does not answer).
    pub(crate) fn metrics_text(&self) -> String {
        use std::io::Read;
        let Ok(mut stream) = std::net::TcpStream::connect(&self.api) else {
            return String::new();
        };
        let _ = write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
            self.token
        );
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }

    /// Waits until `lines_stored_from(label)` reaches `lines` (never beyond: that would be a line
    /// counted twice).
    #[track_caller]
    pub(crate) fn wait_stored(&self, label: &str, lines: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stored = self.lines_stored_from(label);
            assert!(
                stored <= lines,
                "{stored} lines stored from '{label}', only {lines} were sent to it"
            );
            if stored == lines {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {stored} of {lines} lines from '{label}' stored after 60 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn stop(self) {
        let exit = self.terminate();
        assert!(
            exit.success(),
            "socwatch run exited with {exit:?} on SIGTERM"
        );
    }

    /// Sends SIGTERM and waits for the daemon to exit, whatever its exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    /// A failing test must not leave its daemon running (after `stop` or `kill9` it has exited).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn logger(daemon: &Daemon, proto: &str, args: &[&str], message: &str) {
    let addr = daemon
        .syslog
        .iter()
        .find_map(|s| s.strip_prefix(&format!("{proto}:")))
        .expect("syslog listener");
    let (_, port) = addr.rsplit_once(':').unwrap();
    let status = Command::new("logger")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            port,
            &format!("--{proto}"),
        ])
        .args(args)
        .args(["-t", "app", message])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn run_reads_rotated_files_and_syslog_exactly_once_and_resumes_after_restart() {
    let site = Site::new(true);
    let daemon = site.start();
    let mut written = 0;
    let mut write = |site: &Site, n: usize| {
        site.append((written..written + n).map(|i| line(i, &format!("203.0.113.{}", i % 5 + 1))));
        written += n;
        written as u64
    };
    let total = write(&site, 50);
    daemon.wait_for(total);
    site.logrotate("create");
    let total = write(&site, 50);
    daemon.wait_for(total);
    site.logrotate("copytruncate");
    let total = write(&site, 50);
    daemon.wait_for(total);
    for n in 0..10 {
        logger(
            &daemon,
            "udp",
            &["--rfc3164"],
            &format!("attempt {n} from 198.51.100.1"),
        );
        logger(
            &daemon,
            "tcp",
            &["--octet-count"],
            &format!("attempt {n} from 198.51.100.2"),
        );
    }
    let incidents = daemon.wait_for(total + 20);
    assert_eq!(
        incidents, 7,
        "5 file addresses and 2 syslog ones, one incident each"
    );
    daemon.stop();
    assert!(
        Path::new(&site.path("logs/app.log.1")).exists(),
        "logrotate rotated"
    );

    // A restart resumes at the checkpoints: nothing is read twice.
    let daemon = site.start();
    let total = write(&site, 1) + 20;
    assert_eq!(daemon.wait_for(total), 7);
    daemon.stop();
}

#[test]
fn kill_9_at_random_moments_loses_no_line_and_duplicates_no_incident() {
    let site = Site::new(false);
    let path = site.path("logs/app.log");
    std::fs::write(&path, "").unwrap();
    let lines = 3000;
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for n in 0..lines {
            writeln!(file, "{}", line(n, &format!("203.0.113.{}", n % 7 + 1))).unwrap();
            if n % 10 == 0 {
                // A steady stream, about 3 s long, so the kills land in the middle of it.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    // A fixed seed: the kill moments vary within the run but the test is repeatable.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20 {
        let daemon = site.start();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 120));
        daemon.kill9();
    }
    writer.join().unwrap();
    let daemon = site.start();
    let incidents = daemon.wait_for(lines as u64);
    assert_eq!(incidents, 7, "one incident per address, never a duplicate");
    daemon.stop();
}

#[test]
fn a_changed_rule_folder_reloads_and_a_broken_rule_keeps_the_running_rules() {
    let site = Site::new(false);
    let daemon = site.start();
    site.append((0..3).map(|n| line(n, "203.0.113.9")));
    daemon.wait_for(3);

    // A broken rule file is refused; the running rules keep counting.
    std::fs::write(
        site.path("rules/broken.yml"),
        "id: broken\ntitle: x\nseverity: urgent\nmatch: {message: '('}\n",
    )
    .unwrap();
    site.append((3..6).map(|n| line(n, "203.0.113.9")));
    daemon.wait_for(6);
    std::fs::remove_file(site.path("rules/broken.yml")).unwrap();

    // A new rule file is picked up without a restart; lines keep coming until it fires.
    std::fs::write(
        site.path("rules/other.yml"),
        "id: test-other\ntitle: other\nseverity: low\nmatch: {message: 'other (?P<n>\\d+) from (?P<src_ip>\\S+)'}\nthreshold: {group_by: [src_ip]}\n",
    )
    .unwrap();
    let client = daemon.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        site.append([format!(
            "Nov 22 10:00:00 portal-01 app[1]: other {n} from 192.0.2.1"
        )]);
        n += 1;
        let incidents = client.list(&Filters::default()).unwrap();
        if incidents.iter().any(|i| i.rule_id == "test-other") {
            let attempts = incidents
                .iter()
                .find(|i| i.rule_id == "test-attempt")
                .unwrap();
            assert_eq!(
                attempts.count, 6,
                "the old rule's incident is kept, not duplicated"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the new rule never fired");
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop();
}

#[test]
fn after_an_operator_resolves_an_incident_repeats_open_a_new_one() {
    let site = Site::new(false);
    let daemon = site.start();
    site.append((0..4).map(|n| line(n, "203.0.113.20")));
    daemon.wait_for(4);
    let client = daemon.client();
    let first = client.list(&Filters::default()).unwrap().remove(0);
    client
        .transition(
            &first.id,
            socwatch::store::Action::Resolve,
            None,
            "blocked at the firewall",
        )
        .unwrap();
    site.append((4..7).map(|n| line(n, "203.0.113.20")));
    daemon.wait_for(7);
    let incidents = client.list(&Filters::default()).unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    let resolved = incidents.iter().find(|i| i.id == first.id).unwrap();
    assert_eq!(
        (resolved.count, resolved.status),
        (4, socwatch::model::Status::Resolved)
    );
    let new = incidents.iter().find(|i| i.id != first.id).unwrap();
    assert_eq!((new.count, new.status), (3, socwatch::model::Status::Open));
    daemon.stop();
}

#[test]
fn a_threshold_half_counted_before_a_kill_9_fires_after_the_restart() {
    let site = Site::new(false);
    std::fs::write(
        site.path("rules/test.yml"),
        "id: five\ntitle: five attempts\nseverity: high\nmatch: {message: 'attempt (?P<n>\\d+) from (?P<src_ip>\\S+)'}\nthreshold: {count: 5, within: 10m, group_by: [src_ip]}\n",
    )
    .unwrap();
    let daemon = site.start();
    site.append((0..3).map(|n| line(n, "203.0.113.30")));
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.lines_stored() < 3 {
        assert!(
            Instant::now() < deadline,
            "the first 3 lines were never stored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.kill9();

    let daemon = site.start();
    site.append((3..5).map(|n| line(n, "203.0.113.30")));
    assert_eq!(
        daemon.wait_for(5),
        1,
        "3 before the crash + 2 after = one incident of 5"
    );
    daemon.stop();
}
