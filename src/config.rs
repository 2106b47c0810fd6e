//! The TOML configuration (INTERFACE.md): types, built-in defaults, and validation that reports every
//! problem with its line. Unknown keys are errors. Secrets are only ever file paths here.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::model::{Format, Lang, Severity};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: Daemon,
    #[serde(default)]
    pub source: Sources,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub forward: Forward,
    pub email: Option<Email>,
    #[serde(default)]
    pub cases: Cases,
    #[serde(default)]
    pub reports: Reports,
    /// `[cluster]`: absent, the node works alone (no broker).
    pub cluster: Option<Cluster>,
}

/// `[cluster]`: this node's part in a socwatch cluster over NATS JetStream (INTERFACE.md,
/// "Running on several machines").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The NATS server (or servers, comma-separated): `nats://host:4222`, `tls://host:4222`.
    pub nats: Spanned<String>,
    pub role: Role,
    /// How many partitions matches are spread over; every node of a cluster must agree.
    #[serde(default = "default_partitions")]
    pub partitions: Spanned<u32>,
    /// This node's name in the cluster (unique); default: the host name and the role.
    pub node: Option<String>,
    /// NATS credentials (a `.creds` file: JWT and NKey seed), a secret file.
    pub creds_file: Option<PathBuf>,
    /// The CA that signed the NATS server's certificate (TLS is then required).
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (a secret file), for servers that verify clients.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// What a cluster node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads its sources, matches, publishes the matches.
    Edge,
    /// Correlates its share of the partitions, publishes incident changes.
    Worker,
    /// Keeps the incidents and cases, serves the API and the console, delivers the alerts.
    Console,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Edge => "edge",
            Role::Worker => "worker",
            Role::Console => "console",
        }
    }
}

fn default_partitions() -> Spanned<u32> {
    Spanned::new(0..0, 16)
}

/// Partitions beyond this cost a consumer each on the server and buy nothing on a province's scale.
pub const MAX_PARTITIONS: u32 = 1024;

impl Cluster {
    fn problems(&self, problem: &mut dyn FnMut(std::ops::Range<usize>, String)) {
        let partitions = *self.partitions.get_ref();
        if partitions == 0 || partitions > MAX_PARTITIONS {
            problem(
                self.partitions.span(),
                format!(
                    "cluster.partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
                ),
            );
        }
        let servers = self.nats.get_ref();
        if servers.split(',').any(|url| {
            let url = url.trim();
            !(url.starts_with("nats://") || url.starts_with("tls://"))
                || url
                    .split_once("://")
                    .is_none_or(|(_, rest)| rest.is_empty())
        }) {
            problem(
                self.nats.span(),
                format!(
                    "cluster.nats must be nats://host:port or tls://host:port, got '{servers}'"
                ),
            );
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            problem(
                self.nats.span(),
                "cluster.client_cert and cluster.client_key go together".into(),
            );
        }
    }
}

/// `[reports]`: who the reports name as their authors, and templates that replace the built-in ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    /// The operating unit (đơn vị vận hành) named on every report.
    #[serde(default)]
    pub unit: String,
    /// The owning agency (cơ quan chủ quản) named on every report.
    #[serde(default)]
    pub agency: String,
    /// A folder whose `incident.html` and `monitoring.html` (MiniJinja, HTML-escaped) replace the
    /// built-in templates; a file missing there keeps the built-in one.
    pub template_dir: Option<PathBuf>,
}

/// `[cases]`: how incidents are gathered into cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    /// An incident joins its entity's case when it begins at most this long (event time) after the
    /// case's last event.
    #[serde(default = "default_case_window")]
    pub window: Spanned<String>,
}

impl Default for Cases {
    fn default() -> Self {
        Cases {
            window: default_case_window(),
        }
    }
}

fn default_case_window() -> Spanned<String> {
    Spanned::new(0..0, "24h".to_string())
}

impl Cases {
    /// The window; validation guarantees it parses and is not zero.
    pub fn window(&self) -> std::time::Duration {
        nonzero_duration(&self.window, crate::cases::DEFAULT_WINDOW)
    }
}

/// A duration setting that validation (`check_nonzero_duration`) accepted; `fallback` only for a
/// config that skipped validation.
fn nonzero_duration(
    setting: &Spanned<String>,
    fallback: std::time::Duration,
) -> std::time::Duration {
    parse_duration(setting.get_ref())
        .ok()
        .filter(|duration| !duration.is_zero())
        .unwrap_or(fallback)
}

/// The problem with a duration setting that must parse and be longer than zero, if any.
fn check_nonzero_duration(
    setting: &Spanned<String>,
    name: &str,
    problem: &mut dyn FnMut(std::ops::Range<usize>, String),
) {
    match parse_duration(setting.get_ref()) {
        Err(err) => problem(setting.span(), format!("{name}: {err}")),
        Ok(duration) if duration.is_zero() => {
            problem(setting.span(), format!("{name} must be longer than zero"))
        }
        Ok(_) => {}
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daemon {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Files or folders of rules; empty means the shipped rules.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    pub host: Option<String>,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub lang: Lang,
    /// Zone of log timestamps that carry none; default: the machine's zone.
    pub timezone: Option<Spanned<String>>,
    #[serde(default = "default_retention")]
    pub retention: Spanned<String>,
    /// Minimum keeping time per security level (cấp độ), e.g. `{ 3 = "90d", 4 = "180d" }`; a floor
    /// applies to its level and above. Default: 90 days from level 3.
    #[serde(default)]
    pub retention_floors: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// Cap on one line's length in bytes.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Alerts kept waiting per destination while it cannot be reached; beyond it the oldest of
    /// the lowest severity are dropped, counted and logged.
    #[serde(default = "default_outbox_cap")]
    pub outbox_cap: usize,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            data_dir: default_data_dir(),
            rules: Vec::new(),
            host: None,
            unit: String::new(),
            lang: Lang::default(),
            timezone: None,
            retention: default_retention(),
            retention_floors: None,
            max_line_bytes: default_max_line_bytes(),
            outbox_cap: default_outbox_cap(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./socwatch-data")
}

fn default_retention() -> Spanned<String> {
    Spanned::new(0..0, "365d".to_string())
}

/// Alerts kept per destination while it cannot be reached; beyond it the oldest lowest-severity go.
pub const DEFAULT_OUTBOX_CAP: usize = 200_000;

fn default_outbox_cap() -> usize {
    DEFAULT_OUTBOX_CAP
}

/// The default retention floors: cấp độ 3 systems keep incidents at least 90 days. A floor applies to
/// its level and every higher one (`store::floor_for`).
pub fn default_floors() -> std::collections::BTreeMap<u8, std::time::Duration> {
    std::collections::BTreeMap::from([(3, std::time::Duration::from_secs(90 * 86_400))])
}

fn default_max_line_bytes() -> usize {
    crate::decode::DEFAULT_MAX_LINE_BYTES
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default)]
    pub file: Vec<FileSource>,
    #[serde(default)]
    pub syslog: Vec<SyslogSource>,
    #[serde(default)]
    pub journald: Vec<JournaldSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub paths: Vec<String>,
    #[serde(default = "default_format")]
    pub format: Format,
    #[serde(default)]
    pub system: String,
    #[serde(default = "default_level")]
    pub level: Spanned<u8>,
    #[serde(default)]
    pub start_at: StartAt,
    /// Sigma logsource for formats that do not say it themselves (`product = "windows"`...).
    #[serde(default)]
    pub logsource: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// Zone of this source's timestamps that carry none; default `daemon.timezone`.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
}

/// A source's security level (cấp độ): 1-5, or 0 when not configured.
fn check_level(level: &Spanned<u8>, problem: &mut dyn FnMut(std::ops::Range<usize>, String)) {
    if !(0..=5).contains(level.get_ref()) {
        problem(level.span(), "level must be 1-5".into());
    }
}

fn default_level() -> Spanned<u8> {
    Spanned::new(0..0, 0)
}

fn default_format() -> Format {
    Format::Auto
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    End,
    Beginning,
}

/// `[[source.journald]]`: the systemd journal, read through `journalctl` (`sources::journald`).
/// Journal times are absolute, so there is no `timezone`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournaldSource {
    /// Only entries of these units (`journalctl --unit`, several: any of them).
    #[serde(default = "no_names")]
    pub units: Spanned<Vec<String>>,
    /// Only entries with these syslog identifiers (`journalctl --identifier`, several: any of them).
    /// With `units` too, an entry must match both lists (journalctl's rule).
    #[serde(default = "no_names")]
    pub identifiers: Spanned<Vec<String>>,
    /// A journal folder instead of this machine's journal (`journalctl --directory`).
    pub directory: Option<Spanned<PathBuf>>,
    /// Journal files or globs instead of this machine's journal (`journalctl --file`).
    #[serde(default = "no_names")]
    pub files: Spanned<Vec<String>>,
    #[serde(default)]
    pub system: String,
    #[serde(default = "default_level")]
    pub level: Spanned<u8>,
    /// Where a source without a saved cursor starts: after the last entry, or at the oldest one.
    #[serde(default)]
    pub start_at: StartAt,
}

impl Default for JournaldSource {
    /// This machine's whole journal from its end: what the built-in defaults watch.
    fn default() -> Self {
        JournaldSource {
            units: no_names(),
            identifiers: no_names(),
            directory: None,
            files: no_names(),
            system: String::new(),
            level: default_level(),
            start_at: StartAt::End,
        }
    }
}

impl JournaldSource {
    /// How logs, metrics and `source` name it: `journald`, or `journald:` and the folder or files read.
    pub fn name(&self) -> String {
        match &self.directory {
            Some(dir) => format!("journald:{}", dir.get_ref().display()),
            None if !self.files.get_ref().is_empty() => {
                format!("journald:{}", self.files.get_ref().join(","))
            }
            None => "journald".to_string(),
        }
    }

    /// The store key of this source's cursor: the journal read and the filters, so two sources on one
    /// journal keep their own cursors. Changing a source's filters starts it anew (per `start_at`).
    pub fn checkpoint_key(&self) -> String {
        let mut key = self.name();
        for unit in self.units.get_ref() {
            key.push_str(";unit=");
            key.push_str(unit);
        }
        for identifier in self.identifiers.get_ref() {
            key.push_str(";identifier=");
            key.push_str(identifier);
        }
        key
    }

    fn problems(&self, problem: &mut dyn FnMut(std::ops::Range<usize>, String)) {
        check_level(&self.level, problem);
        if let Some(dir) = &self.directory {
            if !self.files.get_ref().is_empty() {
                problem(
                    dir.span(),
                    "source.journald: directory and files cannot go together".into(),
                );
            }
            if dir.get_ref().as_os_str().is_empty() {
                problem(dir.span(), "source.journald.directory is empty".into());
            }
        }
        for (key, names) in [
            ("units", &self.units),
            ("identifiers", &self.identifiers),
            ("files", &self.files),
        ] {
            // journalctl gets each name as one argument, so only an empty one (which it refuses) or a
            // line break (never part of a unit, identifier or path worth reading) is wrong here.
            if names
                .get_ref()
                .iter()
                .any(|name| name.is_empty() || name.contains(['\n', '\0']))
            {
                problem(
                    names.span(),
                    format!("source.journald.{key}: names must be non-empty, on one line"),
                );
            }
        }
    }
}

fn no_names() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSource {
    pub listen: Spanned<String>,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub system: String,
    #[serde(default = "default_level")]
    pub level: Spanned<u8>,
    /// Zone of RFC 3164 stamps from this listener's senders; default `daemon.timezone`. A sender
    /// that logs in UTC gets `timezone = "UTC"` on its own listener.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// `protocol = "tls"`: the server's certificate chain (PEM).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// `protocol = "tls"`: its private key (PEM), a secret file.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `protocol = "tls"`, optional: senders must present a certificate from this CA (PEM).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Udp,
    Tcp,
    /// RFC 5425: syslog over TLS.
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    #[serde(default = "default_api_listen")]
    pub listen: Spanned<String>,
    /// The shared (admin) token; without it, socwatch generates one in `daemon.data_dir`.
    pub token_file: Option<PathBuf>,
    /// Operators with a token of their own: what they do is recorded under their name.
    #[serde(default)]
    pub operator: Vec<Operator>,
    /// TLS for the API and the console: the certificate chain (PEM) and its private key (PEM, a
    /// secret file). Both or neither.
    pub cert_file: Option<Spanned<PathBuf>>,
    pub key_file: Option<Spanned<PathBuf>>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            listen: default_api_listen(),
            token_file: None,
            operator: Vec::new(),
            cert_file: None,
            key_file: None,
        }
    }
}

/// `[[api.operator]]`: a name and the file holding that operator's token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    pub name: Spanned<String>,
    pub token_file: PathBuf,
}

fn default_api_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8610".to_string())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub national: Option<National>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct National {
    pub url: Spanned<String>,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(default = "default_national_severity")]
    pub min_severity: Severity,
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// How long one POST may take before it counts as failed and is retried.
    #[serde(default = "default_national_timeout")]
    pub timeout: Spanned<String>,
    /// The longest wait between retries (backoff doubles from 1s up to this).
    #[serde(default = "default_retry_max")]
    pub retry_max: Spanned<String>,
}

fn default_national_timeout() -> Spanned<String> {
    Spanned::new(0..0, "30s".to_string())
}

fn default_retry_max() -> Spanned<String> {
    Spanned::new(0..0, "5m".to_string())
}

fn default_national_severity() -> Severity {
    Severity::Medium
}

fn default_batch_max() -> usize {
    100
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// `host:port` of the SMTP server.
    pub smtp: Spanned<String>,
    #[serde(default)]
    pub security: EmailSecurity,
    /// AUTH (PLAIN or LOGIN) as this user, with the password read from `password_file`.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A private CA (PEM) trusted for the SMTP server's certificate, besides the built-in roots.
    pub ca_file: Option<PathBuf>,
    pub from: Spanned<String>,
    pub to: Spanned<Vec<String>>,
    #[serde(default = "default_email_severity")]
    pub min_severity: Severity,
    /// At most this many emails (alerts and digests together) per `flood_window`.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: Spanned<usize>,
    /// The sliding window of flood control; "1h" unless tests shrink it.
    #[serde(default = "default_flood_window")]
    pub flood_window: Spanned<String>,
    /// A case's email waits this long after the alert that raised it, so that the incidents one
    /// attack opens within moments of each other go out as one message.
    #[serde(default = "default_case_hold")]
    pub case_hold: Spanned<String>,
}

fn default_case_hold() -> Spanned<String> {
    Spanned::new(0..0, "30s".to_string())
}

impl Email {
    /// The flood-control window; validation guarantees it parses and is not zero.
    pub fn flood_window(&self) -> std::time::Duration {
        nonzero_duration(&self.flood_window, std::time::Duration::from_secs(3600))
    }

    /// How long a case's email waits for the rest of the attack; validation guarantees it parses.
    pub fn case_hold(&self) -> std::time::Duration {
        parse_duration(self.case_hold.get_ref()).unwrap_or(std::time::Duration::from_secs(30))
    }

    fn problems(&self, problem: &mut dyn FnMut(std::ops::Range<usize>, String)) {
        if let Err(err) = parse_duration(self.case_hold.get_ref()) {
            problem(self.case_hold.span(), format!("email.case_hold: {err}"));
        }
        if self.security == EmailSecurity::None {
            let host = self
                .smtp
                .get_ref()
                .rsplit_once(':')
                .map_or(self.smtp.get_ref().as_str(), |(h, _)| h);
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") {
                problem(
                    self.smtp.span(),
                    "email.security = \"none\" is only allowed to a loopback SMTP server".into(),
                );
            }
        }
        let port_ok = self
            .smtp
            .get_ref()
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            problem(
                self.smtp.span(),
                format!(
                    "email.smtp must be host:port, got '{}'",
                    self.smtp.get_ref()
                ),
            );
        }
        if self.username.is_some() != self.password_file.is_some() {
            problem(
                self.smtp.span(),
                "email.username and email.password_file go together".into(),
            );
        }
        if let Err(err) = self.from.get_ref().parse::<lettre::message::Mailbox>() {
            problem(
                self.from.span(),
                format!("email.from: bad address '{}': {err}", self.from.get_ref()),
            );
        }
        if self.to.get_ref().is_empty() {
            problem(
                self.to.span(),
                "email.to must name at least one recipient".into(),
            );
        }
        for to in self.to.get_ref() {
            if let Err(err) = to.parse::<lettre::message::Mailbox>() {
                problem(
                    self.to.span(),
                    format!("email.to: bad address '{to}': {err}"),
                );
            }
        }
        if *self.max_per_hour.get_ref() == 0 {
            problem(
                self.max_per_hour.span(),
                "email.max_per_hour must be at least 1".into(),
            );
        }
        check_nonzero_duration(&self.flood_window, "email.flood_window", problem);
    }
}

fn default_email_severity() -> Severity {
    Severity::High
}

fn default_max_per_hour() -> Spanned<usize> {
    Spanned::new(0..0, 10)
}

fn default_flood_window() -> Spanned<String> {
    Spanned::new(0..0, "1h".to_string())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

/// A configuration problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl Config {
    /// Parses and validates a config text. `name` is used in problem locations.
    pub fn parse(name: &str, text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let config: Config = toml::from_str(text).map_err(|err| {
            vec![ConfigProblem {
                file: name.to_string(),
                line: err.span().map_or(1, |span| line_of(span.start)),
                message: err.message().to_string(),
            }]
        })?;
        let mut problems = Vec::new();
        let mut problem = |span: std::ops::Range<usize>, message: String| {
            problems.push(ConfigProblem {
                file: name.to_string(),
                line: line_of(span.start),
                message,
            })
        };
        if let Some(tz) = &config.daemon.timezone
            && jiff::tz::TimeZone::get(tz.get_ref()).is_err()
        {
            problem(tz.span(), format!("unknown time zone '{}'", tz.get_ref()));
        }
        if let Err(err) = parse_duration(config.daemon.retention.get_ref()) {
            problem(config.daemon.retention.span(), format!("retention: {err}"));
        }
        if let Some(floors) = &config.daemon.retention_floors
            && let Err(err) = parse_floors(floors.get_ref())
        {
            problem(floors.span(), format!("retention_floors: {err}"));
        }
        if config.daemon.max_line_bytes < 1024 {
            problem(0..0, "daemon.max_line_bytes must be at least 1024".into());
        }
        let zones = config
            .source
            .file
            .iter()
            .map(|s| &s.timezone)
            .chain(config.source.syslog.iter().map(|s| &s.timezone));
        for tz in zones.flatten() {
            if jiff::tz::TimeZone::get(tz.get_ref()).is_err() {
                problem(tz.span(), format!("unknown time zone '{}'", tz.get_ref()));
            }
        }
        for source in &config.source.file {
            check_level(&source.level, &mut problem);
            if let Some(given) = &source.logsource {
                let pairs = given
                    .get_ref()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()));
                if let Err(err) = crate::model::Logsource::from_pairs(pairs) {
                    problem(given.span(), format!("source.file.logsource: {err}"));
                }
            }
        }
        for source in &config.source.syslog {
            check_level(&source.level, &mut problem);
            if source
                .listen
                .get_ref()
                .parse::<std::net::SocketAddr>()
                .is_err()
            {
                problem(
                    source.listen.span(),
                    format!("bad listen address '{}'", source.listen.get_ref()),
                );
            }
            let tls_files = [&source.cert_file, &source.key_file, &source.client_ca_file];
            match source.protocol {
                Protocol::Tls if source.cert_file.is_none() || source.key_file.is_none() => {
                    problem(
                        source.listen.span(),
                        "protocol = \"tls\" needs cert_file and key_file".into(),
                    )
                }
                Protocol::Udp | Protocol::Tcp if tls_files.iter().any(|f| f.is_some()) => problem(
                    source.listen.span(),
                    "cert_file, key_file and client_ca_file are for protocol = \"tls\"".into(),
                ),
                _ => {}
            }
        }
        for source in &config.source.journald {
            source.problems(&mut problem);
        }
        if let Some(cluster) = &config.cluster {
            cluster.problems(&mut problem);
        }
        match config.api.listen.get_ref().parse::<std::net::SocketAddr>() {
            Err(_) => problem(
                config.api.listen.span(),
                format!("bad listen address '{}'", config.api.listen.get_ref()),
            ),
            Ok(addr) if !addr.ip().is_loopback() && config.api.token_file.is_none() => problem(
                config.api.listen.span(),
                "api.token_file is required when the API listens on a non-loopback address".into(),
            ),
            Ok(_) => {}
        }
        match (&config.api.cert_file, &config.api.key_file) {
            (Some(cert), None) => problem(
                cert.span(),
                "api.cert_file needs api.key_file (TLS takes both)".into(),
            ),
            (None, Some(key)) => problem(
                key.span(),
                "api.key_file needs api.cert_file (TLS takes both)".into(),
            ),
            _ => {}
        }
        let mut names = std::collections::BTreeSet::new();
        for operator in &config.api.operator {
            let name = operator.name.get_ref();
            if let Err(why) = crate::api::check_actor_name(name) {
                problem(operator.name.span(), format!("api.operator.name {why}"));
            } else if name.eq_ignore_ascii_case(crate::api::ADMIN) {
                problem(
                    operator.name.span(),
                    format!(
                        "api.operator.name '{name}' is reserved for the shared API token's actions"
                    ),
                );
            } else if !names.insert(name.to_lowercase()) {
                problem(
                    operator.name.span(),
                    format!("api.operator.name '{name}' is given twice"),
                );
            }
        }
        if let Some(national) = &config.forward.national {
            let url = national.url.get_ref();
            let loopback_http = url.starts_with("http://127.")
                || url.starts_with("http://localhost")
                || url.starts_with("http://[::1]");
            if !url.starts_with("https://") && !loopback_http {
                problem(
                    national.url.span(),
                    "forward.national.url must be https (plain http only to a loopback address)"
                        .into(),
                );
            }
            for (name, value) in [
                ("timeout", &national.timeout),
                ("retry_max", &national.retry_max),
            ] {
                match parse_duration(value.get_ref()) {
                    Ok(d) if !d.is_zero() => {}
                    Ok(_) => problem(
                        value.span(),
                        format!("forward.national.{name} must be more than zero"),
                    ),
                    Err(err) => problem(value.span(), format!("forward.national.{name}: {err}")),
                }
            }
            if national.batch_max == 0 {
                problem(
                    national.url.span(),
                    "forward.national.batch_max must be at least 1".into(),
                );
            }
            if national.client_cert.is_some() != national.client_key.is_some() {
                problem(
                    national.url.span(),
                    "forward.national.client_cert and client_key go together".into(),
                );
            }
        }
        check_nonzero_duration(&config.cases.window, "cases.window", &mut problem);
        if config.daemon.outbox_cap == 0 {
            problem(0..0, "daemon.outbox_cap must be at least 1".into());
        }
        if let Some(email) = &config.email {
            email.problems(&mut problem);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Retention floors per security level: the configured ones, else 90 days from level 3.
    pub fn retention_floors(&self) -> std::collections::BTreeMap<u8, std::time::Duration> {
        self.daemon
            .retention_floors
            .as_ref()
            .and_then(|f| parse_floors(f.get_ref()).ok())
            .unwrap_or_else(default_floors)
    }

    /// The zone of log timestamps that carry none.
    /// The zone of a source with its own `timezone`, else `log_zone`.
    pub fn zone_or_default(&self, own: Option<&Spanned<String>>) -> jiff::tz::TimeZone {
        own.and_then(|tz| jiff::tz::TimeZone::get(tz.get_ref()).ok())
            .unwrap_or_else(|| self.log_zone())
    }

    pub fn log_zone(&self) -> jiff::tz::TimeZone {
        self.daemon
            .timezone
            .as_ref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz.get_ref()).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }
}

fn parse_floors(
    floors: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<u8, std::time::Duration>, String> {
    floors
        .iter()
        .map(|(level, keep)| {
            let level: u8 = level
                .parse()
                .ok()
                .filter(|l| (1..=5).contains(l))
                .ok_or_else(|| format!("level '{level}' is not 1-5"))?;
            Ok((level, parse_duration(keep)?))
        })
        .collect()
}

/// Where the config comes from: `--config`, else `$SOCWATCH_CONFIG`, else /etc/socwatch/socwatch.toml if it exists.
pub fn config_path(explicit: Option<&Path>, env_value: Option<&str>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(value));
    }
    let system = Path::new("/etc/socwatch/socwatch.toml");
    system.exists().then(|| system.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_example_is_valid() {
        let text = r#"
[daemon]
data_dir = "/var/lib/socwatch"
rules = ["/etc/socwatch/rules"]
host = "portal-01"
unit = "So KH&CN tinh X"
lang = "vi"
timezone = "Asia/Ho_Chi_Minh"
retention = "365d"

[[source.file]]
paths = ["/var/log/auth.log", "/var/log/nginx/*access.log"]
format = "auto"
system = "dvc-portal"
level = 3
start_at = "end"

[[source.syslog]]
listen = "0.0.0.0:5514"
protocol = "udp"
system = "perimeter-firewall"
level = 3

[api]
listen = "127.0.0.1:8610"
token_file = "/etc/socwatch/api.token"

[[api.operator]]
name = "nguyen.van.an"
token_file = "/etc/socwatch/operators/an.token"

[forward.national]
url = "https://receiver.example/api/v1/alerts"
token_file = "/etc/socwatch/national.token"
ca_file = "/etc/socwatch/national-ca.pem"
client_cert = "/etc/socwatch/client.pem"
client_key = "/etc/socwatch/client.key"
min_severity = "medium"
batch_max = 100

[email]
smtp = "smtp.example.gov.vn:587"
security = "starttls"
username = "soc-alerts"
password_file = "/etc/socwatch/smtp.password"
from = "socwatch <soc-alerts@example.gov.vn>"
to = ["soc-oncall@example.gov.vn"]
min_severity = "high"
"#;
        let config = Config::parse("socwatch.toml", text).unwrap();
        assert_eq!(config.daemon.host.as_deref(), Some("portal-01"));
        assert_eq!(config.source.file[0].level.get_ref(), &3);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "[daemon]\ntimezone = \"Mars/Olympus\"\nretention = \"forever\"\n\n[api]\nlisten = \"0.0.0.0:8610\"\n";
        let problems = Config::parse("c.toml", text).unwrap_err();
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 6], "{problems:?}");
        let floors = "[daemon]\nretention_floors = { 3 = \"90d\", 9 = \"1d\" }\n";
        let bad_logsource = "[[source.file]]\npaths = [\"/x\"]\nlogsource = { os = \"windows\" }\n";
        let problems = Config::parse("c.toml", bad_logsource).unwrap_err();
        assert_eq!(
            (problems[0].line, problems[0].message.contains("'os'")),
            (3, true),
            "{problems:?}"
        );
        let problems = Config::parse("c.toml", floors).unwrap_err();
        assert!(problems[0].message.contains("level '9'"), "{problems:?}");
        let good = Config::parse(
            "c.toml",
            "[daemon]\nretention_floors = { 3 = \"90d\", 4 = \"180d\" }\n",
        )
        .unwrap();
        assert_eq!(
            good.retention_floors()[&4],
            std::time::Duration::from_secs(180 * 86_400)
        );
    }

    #[test]
    fn a_cluster_section_names_its_server_role_and_partitions() {
        let edge = Config::parse(
            "c.toml",
            "[cluster]\nnats = \"tls://soc-01:4222\"\nrole = \"edge\"\nca_file = \"/etc/socwatch/ca.pem\"\n",
        )
        .unwrap();
        let cluster = edge.cluster.unwrap();
        assert_eq!(
            (cluster.role, *cluster.partitions.get_ref()),
            (Role::Edge, 16)
        );
        for (text, line, says) in [
            (
                "[cluster]\nnats = \"http://x:4222\"\nrole = \"edge\"\n",
                2,
                "nats://host:port",
            ),
            (
                "[cluster]\nnats = \"nats://x:4222\"\nrole = \"worker\"\npartitions = 0\n",
                4,
                "between 1 and",
            ),
            (
                "[cluster]\nnats = \"nats://x:4222\"\nrole = \"console\"\nclient_cert = \"/c.pem\"\n",
                2,
                "go together",
            ),
            (
                "[cluster]\nnats = \"nats://x:4222\"\nrole = \"boss\"\n",
                3,
                "unknown variant",
            ),
        ] {
            let problems = Config::parse("c.toml", text).unwrap_err();
            assert_eq!(problems[0].line, line, "{text}: {problems:?}");
            assert!(problems[0].message.contains(says), "{text}: {problems:?}");
        }
    }

    #[test]
    fn operator_names_are_unique_and_admin_is_reserved() {
        let operator =
            |name: &str| format!("[[api.operator]]\nname = {name:?}\ntoken_file = \"/t\"\n");
        let text = [
            operator("an"),
            operator("An"),
            operator("Admin"),
            operator(" "),
            operator(" binh"),
            operator("chi"),
        ]
        .concat();
        let problems = Config::parse("c.toml", &text).unwrap_err();
        let found: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (5, "api.operator.name 'An' is given twice"),
                (
                    8,
                    "api.operator.name 'Admin' is reserved for the shared API token's actions"
                ),
                (11, "api.operator.name must not be empty"),
                (14, "api.operator.name must not begin or end with spaces"),
            ]
        );
    }

    #[test]
    fn tls_on_the_api_takes_a_certificate_and_a_key() {
        let only_cert = "[api]\ncert_file = \"/c.pem\"\n";
        let problems = Config::parse("c.toml", only_cert).unwrap_err();
        assert_eq!(
            (problems[0].line, problems[0].message.as_str()),
            (2, "api.cert_file needs api.key_file (TLS takes both)")
        );
        let only_key = "[api]\nkey_file = \"/k.pem\"\n";
        let problems = Config::parse("c.toml", only_key).unwrap_err();
        assert_eq!(problems[0].line, 2, "{problems:?}");
        let both = Config::parse(
            "c.toml",
            "[api]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n",
        )
        .unwrap();
        assert!(both.api.cert_file.is_some() && both.api.key_file.is_some());
    }

    #[test]
    fn every_kind_of_source_checks_its_level() {
        let text = "[[source.file]]\npaths = [\"/x\"]\nlevel = 6\n\n\
                    [[source.syslog]]\nlisten = \"127.0.0.1:5514\"\nlevel = 9\n\n\
                    [[source.journald]]\nlevel = 7\n";
        let problems = Config::parse("c.toml", text).unwrap_err();
        let found: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (3, "level must be 1-5"),
                (7, "level must be 1-5"),
                (10, "level must be 1-5")
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn tls_listeners_need_a_certificate_and_key_and_only_they_take_them() {
        let good = "[[source.syslog]]\nlisten = \"127.0.0.1:6514\"\nprotocol = \"tls\"\n\
                    cert_file = \"/etc/socwatch/syslog.pem\"\nkey_file = \"/etc/socwatch/syslog.key\"\n\
                    client_ca_file = \"/etc/socwatch/senders-ca.pem\"\n";
        let config = Config::parse("c.toml", good).unwrap();
        assert_eq!(config.source.syslog[0].protocol, Protocol::Tls);
        let bad = "[[source.syslog]]\nlisten = \"127.0.0.1:6514\"\nprotocol = \"tls\"\n\
                   cert_file = \"/x.pem\"\n\n\
                   [[source.syslog]]\nlisten = \"127.0.0.1:5514\"\nprotocol = \"tcp\"\nkey_file = \"/x.key\"\n";
        let problems = Config::parse("c.toml", bad).unwrap_err();
        let found: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (2, "protocol = \"tls\" needs cert_file and key_file"),
                (
                    7,
                    "cert_file, key_file and client_ca_file are for protocol = \"tls\""
                )
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn journald_sources_are_read_and_checked() {
        let text = "[[source.journald]]\nunits = [\"ssh.service\"]\nidentifiers = [\"sudo\", \"su\"]\nsystem = \"dvc-portal\"\nlevel = 3\nstart_at = \"beginning\"\n\n[[source.journald]]\nfiles = [\"/srv/copy/*.journal\"]\n";
        let config = Config::parse("c.toml", text).unwrap();
        let [ssh, copy] = &config.source.journald[..] else {
            panic!("two sources: {:?}", config.source.journald);
        };
        assert_eq!(ssh.units.get_ref(), &["ssh.service"]);
        assert_eq!(
            (ssh.level.get_ref(), ssh.start_at),
            (&3, StartAt::Beginning)
        );
        assert_eq!(ssh.name(), "journald");
        assert_eq!(
            ssh.checkpoint_key(),
            "journald;unit=ssh.service;identifier=sudo;identifier=su"
        );
        assert_eq!(
            (copy.start_at, copy.directory.is_none()),
            (StartAt::End, true)
        );
        assert_eq!(copy.name(), "journald:/srv/copy/*.journal");
        assert_eq!(JournaldSource::default().checkpoint_key(), "journald");

        let bad = "[[source.journald]]\nunits = [\"\"]\nlevel = 7\ndirectory = \"/srv/j\"\nfiles = [\"/x\"]\n";
        let problems = Config::parse("c.toml", bad).unwrap_err();
        let found: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (3, "level must be 1-5"),
                (4, "source.journald: directory and files cannot go together"),
                (
                    2,
                    "source.journald.units: names must be non-empty, on one line"
                ),
            ],
            "{problems:?}"
        );
        let unknown = Config::parse("c.toml", "[[source.journald]]\ntimezone = \"UTC\"\n");
        assert_eq!(unknown.unwrap_err()[0].line, 2);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let problems =
            Config::parse("c.toml", "[daemon]\nlang = \"vi\"\ncolour = \"blue\"\n").unwrap_err();
        assert_eq!(problems[0].line, 3);
        assert!(
            problems[0].message.contains("colour"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn email_flood_control_has_defaults_and_is_validated() {
        let base = "[email]\nsmtp = \"smtp.example.gov.vn:587\"\nfrom = \"socwatch <soc@example.gov.vn>\"\nto = [\"oncall@example.gov.vn\"]\n";
        let config = Config::parse("c.toml", base).unwrap();
        let email = config.email.unwrap();
        assert_eq!(*email.max_per_hour.get_ref(), 10);
        assert_eq!(email.flood_window(), std::time::Duration::from_secs(3600));
        assert_eq!(email.ca_file, None);

        let text = format!(
            "{base}max_per_hour = 0\nflood_window = \"soon\"\nca_file = \"/etc/socwatch/smtp-ca.pem\"\n"
        );
        let problems = Config::parse("c.toml", &text).unwrap_err();
        let found: Vec<(usize, bool)> = problems
            .iter()
            .map(|p| (p.line, p.message.starts_with("email.")))
            .collect();
        assert_eq!(found, vec![(5, true), (6, true)], "{problems:?}");
        let short = format!("{base}flood_window = \"2s\"\n");
        let email = Config::parse("c.toml", &short).unwrap().email.unwrap();
        assert_eq!(email.flood_window(), std::time::Duration::from_secs(2));
    }

    #[test]
    fn email_addresses_and_plain_smtp_are_checked() {
        let text = "[email]\nsmtp = \"mail.example.gov.vn:25\"\nsecurity = \"none\"\nusername = \"soc\"\nfrom = \"not an address\"\nto = []\n";
        let problems = Config::parse("c.toml", text).unwrap_err();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(messages[0].contains("loopback"), "{messages:?}");
        assert!(messages[1].contains("password_file"), "{messages:?}");
        assert!(
            messages[2].starts_with("email.from: bad address"),
            "{messages:?}"
        );
        assert!(
            messages[3].contains("at least one recipient"),
            "{messages:?}"
        );
        assert_eq!(problems[2].line, 5);
        let loopback = "[email]\nsmtp = \"127.0.0.1:2525\"\nsecurity = \"none\"\nfrom = \"soc@example.gov.vn\"\nto = [\"Trực ban <oncall@example.gov.vn>\"]\n";
        assert!(Config::parse("c.toml", loopback).is_ok());
    }
}
