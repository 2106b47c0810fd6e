//! The `socwatch` command line: parse arguments, call into the library, map outcomes to exit codes
//! (0 success, 1 runtime failure, 2 bad usage, 3 invalid configuration or rules).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[macro_use]
mod out;
mod cases_cmd;
mod evidence_cmd;
mod incidents_cmd;
mod report_cmd;

use clap::{Parser, Subcommand};
use socwatch::config::{Config, config_path};
use socwatch::model::{Format, Lang, Logsource};
use socwatch::report;
use socwatch::rules::{LoadStatus, RuleSet, testing};
use socwatch::scan::{Input, ScanOptions, scan};
use socwatch::{correlate, load, tr};

// Matching allocates small buffers per matched line (captures, evidence); glibc's malloc and free
// were a quarter of `scan`'s instructions on the generated auth.log, mimalloc's a small part of that
// (benches/RESULTS.md, "Allocator"). Only the binary picks it: the library stays allocator-agnostic.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_RUNTIME: u8 = 1;
const EXIT_INVALID: u8 = 3;

#[derive(Parser)]
#[command(
    name = "socwatch",
    version,
    about = "Log monitoring for Security Operations Centers"
)]
struct Cli {
    /// Config file (default: $SOCWATCH_CONFIG, else /etc/socwatch/socwatch.toml if it exists, else built-in defaults)
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Language of human-facing output: vi or en (default: the config's `lang`, else vi)
    #[arg(long, global = true, value_name = "LANG")]
    lang: Option<Lang>,
    /// For `incidents` and `outbox`: act through the daemon's API with this token, e.g. an
    /// operator's own (default: the shared token, `api.token_file` else DATA_DIR/api.token)
    #[arg(long, global = true, value_name = "FILE", env = "SOCWATCH_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon, in the foreground: tails files, receives syslog, stores incidents, serves the API
    Run,
    /// One pass over log files (or - for stdin) with the rules; prints the incidents found
    Scan {
        /// Rule file or folder; replaces the configured rules (repeatable)
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// Log format: auto, syslog, nginx, apache, iis, json, windows, plain
        #[arg(long, default_value = "auto")]
        format: Format,
        /// Sigma logsource of the input, e.g. product=windows (repeatable)
        #[arg(long = "logsource", value_name = "KEY=VALUE")]
        logsource: Vec<String>,
        /// Print a JSON list of incidents instead of a table
        #[arg(long)]
        json: bool,
        /// Show the cases the incidents form (one attack, one case) instead of the incidents
        #[arg(long)]
        cases: bool,
        /// List every rule hit (file, line, rule, extracted fields) instead of incidents, before thresholds
        #[arg(long)]
        matches: bool,
        /// Cores to decode and match on: several files, and big files by pieces (default: every core)
        #[arg(long, visible_alias = "threads", value_name = "N")]
        jobs: Option<usize>,
        /// Bytes of a file one thread reads at a time with --jobs (for tests; default 8 MiB)
        #[arg(long, value_name = "BYTES", hide = true)]
        piece_size: Option<u64>,
        /// Zone of timestamps that carry none (default: the config's timezone, else the machine's)
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Load, test and list rules
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Query incidents, change their status, export them (the store directly, or the daemon's API while it runs)
    Incidents {
        #[command(subcommand)]
        action: incidents_cmd::IncidentsAction,
    },
    /// Query cases (the incidents of one attack), change their status, assign them
    Cases {
        #[command(subcommand)]
        action: cases_cmd::CasesAction,
    },
    /// What the running daemon is doing: sources with their last line and rate, rules, store, outbox
    Status {
        /// Print JSON instead of tables
        #[arg(long)]
        json: bool,
    },
    /// Alerts waiting for the national endpoint and email: status, or retry now
    Outbox {
        #[command(subcommand)]
        action: incidents_cmd::OutboxAction,
    },
    /// Check the tamper-evident log of incident and case changes against the store and its signed checkpoints
    Verify(evidence_cmd::Verify),
    /// The national forms: initial incident report, periodic monitoring report (HTML or PDF)
    Report {
        #[command(subcommand)]
        kind: report_cmd::ReportKind,
    },
    /// A cluster over NATS JetStream (`[cluster]`): its nodes, partitions and lag
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Validate the config file and the rules it points to
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Load and validate every rule; list all problems with file:line
    Check {
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Run the test cases embedded in rule files
    Test {
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Id, title, severity, tags and file of every loaded rule
    List {
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Incidents, false positives and open incidents per rule, from the store (or the daemon)
        #[arg(long)]
        stats: bool,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// The nodes that beat, who owns each partition, how many matches wait, how far the console is behind
    Status {
        /// Print JSON instead of tables
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the config and the rules it points to; warn about file sources that match nothing
    Check {
        /// Fail (exit 3) on warnings too
        #[arg(long)]
        strict: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env_config = std::env::var("SOCWATCH_CONFIG").ok();
    let path = config_path(cli.config.as_deref(), env_config.as_deref());
    // Before the config is read, only `--lang` (else vi) can say the language of its problems.
    let config = match load::config_in(path.as_deref(), cli.lang.unwrap_or_default()) {
        Ok(config) => config,
        Err(invalid) => {
            errln!("{invalid}");
            errln!(
                "{}",
                tr!(
                    cli.lang.unwrap_or_default(),
                    ConfigProblems,
                    n = invalid.0.len()
                )
            );
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let lang = cli.lang.unwrap_or(config.daemon.lang);
    out::set_lang(lang);
    match cli.command {
        Command::Run => cmd_run(config, path, lang),
        Command::Scan {
            rules,
            format,
            logsource,
            json,
            cases,
            matches,
            jobs,
            piece_size,
            timezone,
            files,
        } => cmd_scan(
            &config,
            lang,
            rules,
            format,
            &logsource,
            ScanOutput {
                json,
                cases,
                matches,
                jobs,
                piece_size,
                timezone,
            },
            files,
        ),
        Command::Rules { action } => match action {
            RulesAction::Check { rules } => cmd_rules_check(&config, lang, rules),
            RulesAction::Test { rules } => cmd_rules_test(&config, lang, rules),
            RulesAction::List {
                rules,
                json,
                stats: false,
            } => cmd_rules_list(&config, lang, rules, json),
            RulesAction::List {
                rules,
                json,
                stats: true,
            } => cases_cmd::rule_stats(&config, lang, rules, json, cli.token_file.as_deref()),
        },
        Command::Incidents { action } => {
            incidents_cmd::run(&config, lang, action, cli.token_file.as_deref())
        }
        Command::Cases { action } => {
            cases_cmd::run(&config, lang, action, cli.token_file.as_deref())
        }
        Command::Outbox { action } => {
            incidents_cmd::outbox(&config, lang, action, cli.token_file.as_deref())
        }
        Command::Status { json } => {
            incidents_cmd::status(&config, lang, json, cli.token_file.as_deref())
        }
        Command::Cluster {
            action: ClusterAction::Status { json },
        } => cluster_status(&config, lang, json),
        Command::Verify(args) => evidence_cmd::run(&config, lang, args, cli.token_file.as_deref()),
        Command::Report { kind } => report_cmd::run(&config, lang, kind, cli.token_file.as_deref()),
        Command::Config {
            action: ConfigAction::Check { strict },
        } => cmd_config_check(&config, path, lang, strict),
    }
}

/// `socwatch config check`: the config (already parsed), the rules it points to, and a warning for
/// every file source path that names nothing now (a typo, or a log not written yet); `--strict`
/// fails on warnings too.
fn cmd_config_check(config: &Config, path: Option<PathBuf>, lang: Lang, strict: bool) -> ExitCode {
    let shown = path.map_or_else(|| tr!(lang, BuiltinDefaults), |p| p.display().to_string());
    let set = match load_rules(config, Vec::new(), lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let warnings = source_warnings(config, lang);
    for warning in &warnings {
        errln!("{warning}");
    }
    if strict && !warnings.is_empty() {
        let n = warnings.len();
        errln!(
            "{}",
            if n == 1 {
                tr!(lang, StrictRefusesOne)
            } else {
                tr!(lang, StrictRefusesMany, n = n)
            }
        );
        return ExitCode::from(EXIT_INVALID);
    }
    outln!(
        "{}",
        tr!(lang, ConfigValid, path = shown, rules = set.len())
    );
    ExitCode::SUCCESS
}

/// One warning per `[[source.file]]` path that names no file now: a literal path that does not
/// exist, or a glob that matches nothing. Both are legal (the file may come later) but are the
/// usual reason a source reads nothing.
fn source_warnings(config: &Config, lang: Lang) -> Vec<String> {
    let mut warnings = Vec::new();
    for (index, source) in config.source.file.iter().enumerate() {
        for pattern in &source.paths {
            let literal = !pattern.contains(['*', '?', '[']);
            let n = index + 1;
            if literal {
                if std::path::Path::new(pattern).exists() {
                    continue;
                }
                warnings.push(tr!(lang, SourceMissing, n = n, pattern = pattern));
            } else {
                if !socwatch::sources::tail::glob_files(pattern).is_empty() {
                    continue;
                }
                warnings.push(tr!(lang, SourceNoMatch, n = n, pattern = pattern));
            }
        }
    }
    warnings
}

/// `--rules` replaces the configured rules; without either, the shipped rules.
pub(crate) fn load_rules(
    config: &Config,
    given: Vec<PathBuf>,
    lang: Lang,
) -> Result<RuleSet, ExitCode> {
    let paths = if given.is_empty() {
        config.daemon.rules.clone()
    } else {
        given
    };
    load::rules_in(&paths, lang).map_err(|invalid| {
        errln!("{invalid}");
        errln!("{}", tr!(lang, RulesProblems, n = invalid.0.len()));
        ExitCode::from(EXIT_INVALID)
    })
}

fn parse_logsource(pairs: &[String], lang: Lang) -> Result<Logsource, String> {
    // `--logsource product=windows,service=sysmon` is the same as two `--logsource` flags.
    let split: Vec<(&str, &str)> = pairs
        .iter()
        .flat_map(|pair| pair.split(','))
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .ok_or_else(|| tr!(lang, BadLogsourcePair, pair = pair))
        })
        .collect::<Result<_, _>>()?;
    Logsource::from_pairs(split).map_err(|err| tr!(lang, BadLogsource, error = err))
}

/// What `scan` prints (incidents, cases or every rule hit; a table or JSON), how many files it
/// reads at once, and the zone of stamps without one.
struct ScanOutput {
    json: bool,
    cases: bool,
    matches: bool,
    jobs: Option<usize>,
    piece_size: Option<u64>,
    timezone: Option<String>,
}

/// Inputs at least this large (in total) get a progress bar, when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;

fn cmd_scan(
    config: &Config,
    lang: Lang,
    rules: Vec<PathBuf>,
    format: Format,
    logsource: &[String],
    output: ScanOutput,
    files: Vec<PathBuf>,
) -> ExitCode {
    let json = output.json;
    let logsource = match parse_logsource(logsource, lang) {
        Ok(l) => l,
        Err(err) => {
            errln!("{err}");
            return ExitCode::from(2);
        }
    };
    let zone = match output.timezone.as_deref() {
        Some(name) => match jiff::tz::TimeZone::get(name) {
            Ok(zone) => zone,
            Err(_) => {
                errln!("{}", tr!(lang, UnknownZone, zone = name));
                return ExitCode::from(2);
            }
        },
        None => config.log_zone(),
    };
    let set = match load_rules(config, rules, lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let inputs: Vec<Input> = files
        .into_iter()
        .map(|f| {
            if f.as_os_str() == "-" {
                Input::Stdin
            } else {
                Input::Path(f)
            }
        })
        .collect();
    let opts = ScanOptions {
        format,
        logsource,
        zone,
        max_line_bytes: config.daemon.max_line_bytes,
        host: config.daemon.host.clone().unwrap_or_else(|| "-".into()),
        unit: config.daemon.unit.clone(),
        now: jiff::Timestamp::now(),
        limits: correlate::Limits::default(),
        case_window: config.cases.window(),
        jobs: output.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
        piece_bytes: output.piece_size.unwrap_or(socwatch::scan::PIECE_BYTES),
        progress: None,
        keep_matches: output.matches,
    };
    let started = Instant::now();
    let set = std::sync::Arc::new(set);
    let (result, bar) = with_progress(&inputs, opts.clone(), |opts| scan(&inputs, &set, opts));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();

    let text = match (output.matches, output.cases, json) {
        (true, _, true) => serde_json::to_string_pretty(&result.hits),
        (true, _, false) => Ok(report::matches_table(&result.hits, lang)),
        (false, true, true) => serde_json::to_string_pretty(&result.cases),
        (false, true, false) => Ok(report::cases_table(&result.cases, lang)),
        (false, false, true) => serde_json::to_string_pretty(&result.incidents),
        (false, false, false) => Ok(report::incidents_table(&result.incidents, lang)),
    };
    match text {
        Ok(text) if json => outln!("{text}"),
        Ok(text) => out!("{text}"),
        Err(err) => {
            errln!("{}", tr!(lang, CannotWriteOutput, error = err));
            return ExitCode::from(EXIT_RUNTIME);
        }
    }

    err!(
        "{}",
        report::scan_summary(&result, elapsed, opts.max_line_bytes, lang)
    );
    if result.failed_inputs() > 0 {
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `scan` with a progress bar on stderr when stderr is a terminal and the files are large
/// (a long scan); otherwise it draws nothing, so pipes and logs get no control characters.
fn with_progress<T>(
    inputs: &[Input],
    mut opts: ScanOptions,
    run: impl FnOnce(&ScanOptions) -> T,
) -> (T, Option<indicatif::ProgressBar>) {
    use std::io::IsTerminal;
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Path(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum();
    if !std::io::stderr().is_terminal() || total < PROGRESS_MIN_BYTES {
        return (run(&opts), None);
    }
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    opts.progress = Some(read.clone());
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Compressed inputs read more bytes than their size: the bar then stops at its end.
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed).min(total));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let result = run(&opts);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    });
    (result, Some(bar))
}

fn cmd_rules_check(config: &Config, lang: Lang, rules: Vec<PathBuf>) -> ExitCode {
    let set = match load_rules(config, rules, lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    // One line per rule document: loaded, idle (nothing feeds its logsource) or unsupported
    // (a Sigma feature socwatch lacks). Only problems in socwatch's own grammar exit 3 (above).
    let report = set.load_report();
    let (mut loaded, mut idle, mut unsupported) = (0, 0, 0);
    for entry in &report {
        // The reason (which logsource, which Sigma feature) stays English: it names Sigma terms.
        let (status, reason) = match &entry.status {
            LoadStatus::Loaded => {
                loaded += 1;
                (tr!(lang, RuleLoaded), String::new())
            }
            LoadStatus::Idle(reason) => {
                idle += 1;
                (tr!(lang, RuleIdle), format!(": {reason}"))
            }
            LoadStatus::Unsupported(reason) => {
                unsupported += 1;
                (tr!(lang, RuleUnsupported), format!(": {reason}"))
            }
        };
        outln!(
            "{status:<12} {}:{} {} '{}'{reason}",
            entry.file,
            entry.line,
            entry.kind.as_str(),
            entry.id
        );
    }
    let unfiltered: Vec<_> = set.unfiltered().collect();
    for rule in &unfiltered {
        errln!(
            "{}",
            tr!(
                lang,
                RuleNoPrefilter,
                file = rule.file,
                line = rule.line,
                id = rule.id
            )
        );
    }
    outln!(
        "{}",
        tr!(
            lang,
            RulesCheckSummary,
            total = report.len(),
            loaded = loaded,
            idle = idle,
            unsupported = unsupported,
            unfiltered = unfiltered.len()
        )
    );
    ExitCode::SUCCESS
}

fn cmd_rules_test(config: &Config, lang: Lang, rules: Vec<PathBuf>) -> ExitCode {
    let set = match load_rules(config, rules, lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    let outcomes = testing::run_all(&set);
    let mut failed = 0;
    for outcome in &outcomes {
        if let Some(why) = &outcome.failure {
            failed += 1;
            outln!(
                "{}",
                tr!(
                    lang,
                    RuleTestFailed,
                    id = outcome.rule_id,
                    file = outcome.file,
                    line = outcome.line,
                    why = why
                )
            );
        }
    }
    let untested: Vec<&str> = set
        .rules()
        .iter()
        // Sigma rules carry no test cases of their own.
        .filter(|r| r.tests.is_empty() && r.kind == socwatch::rules::RuleKind::Socwatch)
        .map(|r| r.id.as_str())
        .collect();
    if !untested.is_empty() {
        errln!("{}", tr!(lang, RulesUntested, ids = untested.join(", ")));
    }
    outln!(
        "{}",
        tr!(
            lang,
            RulesTestSummary,
            passed = outcomes.len() - failed,
            failed = failed
        )
    );
    if failed > 0 {
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}

fn cmd_rules_list(config: &Config, lang: Lang, rules: Vec<PathBuf>, json: bool) -> ExitCode {
    let set = match load_rules(config, rules, lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    if json {
        let list: Vec<serde_json::Value> = set
            .rules()
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "title": r.title, "title_vi": r.title_vi, "severity": r.severity,
                    "tags": r.tags, "file": r.file, "line": r.line, "author": r.author,
                    "kind": r.kind.as_str(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let header: &[&str] = say_list(lang);
    let rows: Vec<Vec<String>> = set
        .rules()
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                report::severity_name(r.severity, lang).to_string(),
                report::cell(r.title_in(lang), 60),
                r.tags.join(","),
                format!("{}:{}", r.file, r.line),
            ]
        })
        .collect();
    out!("{}", report::table(header, &rows));
    ExitCode::SUCCESS
}

fn say_list(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Vi => &["Mã", "Mức độ", "Tên", "Nhãn", "Tệp"],
        Lang::En => &["Id", "Severity", "Title", "Tags", "File"],
    }
}

/// `socwatch run`: a runbook. Logging, config and rules (every problem before failing), store,
/// sockets, then the daemon until SIGTERM/SIGINT; SIGHUP reloads the rules.
/// `socwatch cluster status`: asks the NATS server (not a node), so it works while nodes are down.
fn cluster_status(config: &Config, lang: Lang, json: bool) -> ExitCode {
    let Some(settings) = &config.cluster else {
        errln!("{}", tr!(lang, ClusterNotConfigured));
        return ExitCode::from(EXIT_INVALID);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            errln!("{}", tr!(lang, RunCannotStartRuntime, error = err));
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let metrics = std::sync::Arc::new(socwatch::metrics::Metrics::default());
    let asked = runtime.block_on(async {
        let link = socwatch::cluster::connect(config, settings, &metrics).await?;
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            socwatch::cluster::status::report(&link),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 10 s"))?
    });
    match asked {
        Ok(report) if json => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            out!(
                "{}",
                socwatch::report::cluster_text(&report, lang, jiff::Timestamp::now())
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            errln!(
                "{}",
                tr!(
                    lang,
                    ClusterUnreachable,
                    nats = settings.nats.get_ref(),
                    error = format!("{err:#}")
                )
            );
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn cmd_run(config: Config, config_file: Option<PathBuf>, lang: Lang) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOCWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for warning in socwatch::security::config_warnings(&config) {
        tracing::warn!("{warning}");
    }
    let rules = match load_rules(&config, Vec::new(), lang) {
        Ok(set) => set,
        Err(code) => return code,
    };
    if let Err(err) = socwatch::security::create_data_dir(&config.daemon.data_dir) {
        errln!(
            "{}",
            tr!(
                lang,
                RunCannotCreateDataDir,
                path = config.daemon.data_dir.display(),
                error = err
            )
        );
        return ExitCode::from(EXIT_RUNTIME);
    }
    for warning in socwatch::security::file_warnings(&config, config_file.as_deref()) {
        tracing::warn!("{warning}");
    }
    let policy = socwatch::alerting::OutboxPolicy::from_config(&config);
    let store = match socwatch::store::Store::open(&config.daemon.data_dir, policy) {
        Ok(store) => std::sync::Arc::new(store),
        Err(err) => {
            errln!(
                "{}",
                tr!(
                    lang,
                    RunCannotOpenStore,
                    path = config.daemon.data_dir.display(),
                    error = incidents_cmd::store_error(&err, lang)
                )
            );
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            errln!("{}", tr!(lang, RunCannotStartRuntime, error = err));
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(async move {
        let bound = socwatch::daemon::Bound::bind(&config).await?;
        let syslog: Vec<String> = bound
            .syslog_udp
            .iter()
            .filter_map(|(_, s)| s.local_addr().ok().map(|a| format!("udp:{a}")))
            .chain(
                bound
                    .syslog_tcp
                    .iter()
                    .filter_map(|(_, l)| l.local_addr().ok().map(|a| format!("tcp:{a}"))),
            )
            .chain(
                bound
                    .syslog_tls
                    .iter()
                    .filter_map(|(_, l, _)| l.local_addr().ok().map(|a| format!("tls:{a}"))),
            )
            .collect();
        // Handlers first: a SIGTERM sent as soon as "running" is logged must stop us gracefully,
        // not kill us with the default action.
        let rules_count = rules.len();
        let (rules_tx, _) = tokio::sync::watch::channel(std::sync::Arc::new(rules));
        let shutdown = socwatch::daemon::reload::signals(config_file, rules_tx.clone());
        tracing::info!(
            api = %bound.api.local_addr()?,
            syslog = %syslog.join(","),
            file_sources = socwatch::daemon::file_sources(&config).len(),
            rules = rules_count,
            "socwatch running"
        );
        socwatch::daemon::run(config, rules_tx, store, bound, shutdown, || {
            socwatch::daemon::notify_systemd("READY=1");
        })
        .await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            // The daemon's own errors (bind, API) come as an English chain, like its log.
            errln!("{}", tr!(lang, RunFailed, error = format!("{err:#}")));
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
