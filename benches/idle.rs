//! What an idle daemon costs: the real `socwatch run` with the shipped `systemd/socwatch.toml`
//! (a literal file source and a glob source), its paths moved into a temporary folder, and its
//! CPU time (utime + stime from `/proc/PID/stat`) over 10 seconds in which nothing is written.
//! Target: under 1 % of one core. Run with `cargo bench --bench idle`; `SOCWATCH_BIN=PATH`
//! measures another build of the binary (an older one, for a before/after comparison).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The idle span measured.
const WINDOW: Duration = Duration::from_secs(10);
/// Left to the daemon after its "running" line before measuring, so start-up work (the first
/// poll of every source, the store's first flush) is not counted as idling.
const SETTLE: Duration = Duration::from_secs(1);
/// The target: a share of one core.
const TARGET: f64 = 0.01;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> u64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The shipped example config with its paths under `root` and the API on a free port.
fn shipped_config(root: &Path) -> String {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/socwatch.toml"),
    )
    .expect("systemd/socwatch.toml");
    let root = root.display();
    shipped
        .replace("/var/lib/socwatch", &format!("{root}/data"))
        .replace("/var/log/", &format!("{root}/log/"))
        .replace("127.0.0.1:8610", "127.0.0.1:0")
}

/// Runs the daemon on `root` and returns its CPU ticks over `WINDOW`.
fn measure(binary: &str, root: &Path) -> u64 {
    let config = root.join("socwatch.toml");
    std::fs::write(&config, shipped_config(root)).unwrap();
    let mut child = Command::new(binary)
        .args(["--config", config.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start socwatch run");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("socwatch running") => break,
            Some(Ok(_)) => {}
            other => panic!("socwatch run ended before it ran: {other:?}"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(SETTLE);
    let before = cpu_ticks(child.id());
    std::thread::sleep(WINDOW);
    let ticks = cpu_ticks(child.id()) - before;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    ticks
}

fn main() {
    let binary =
        std::env::var("SOCWATCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_socwatch").into());
    let hz = ticks_per_second();
    println!(
        "idle daemon, shipped systemd/socwatch.toml, {} s after a {} s settle ({binary})",
        WINDOW.as_secs(),
        SETTLE.as_secs()
    );
    println!("| log folders | CPU ticks ({hz}/s) | share of one core | target < 1 % |");
    println!("|---|---:|---:|---|");
    let mut worst: f64 = 0.0;
    for (name, with_files) in [
        ("empty (no file yet)", false),
        ("with auth.log and nginx/access.log", true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("log/nginx")).unwrap();
        if with_files {
            let auth = "Nov 22 10:00:00 portal-01 sshd[1]: Accepted publickey for deploy from 10.0.0.5 port 5 ssh2\n";
            std::fs::write(dir.path().join("log/auth.log"), auth.repeat(100)).unwrap();
            let web = "10.0.0.5 - - [22/Nov/2026:10:00:00 +0700] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\"\n";
            std::fs::write(dir.path().join("log/nginx/access.log"), web.repeat(100)).unwrap();
        }
        let ticks = measure(&binary, dir.path());
        let share = ticks as f64 / (hz as f64 * WINDOW.as_secs_f64());
        worst = worst.max(share);
        println!(
            "| {name} | {ticks} | {:.2} % | {} |",
            share * 100.0,
            if share < TARGET { "met" } else { "MISSED" }
        );
    }
    println!("worst: {:.2} % of one core", worst * 100.0);
}
