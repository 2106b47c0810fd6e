//! `scan` end to end: read a file, detect its format, decode, match the shipped rules, correlate.
//! The file is written once to a temp folder (from `SOCWATCH_BENCH_DIR` when set, else generated).

mod support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use socwatch::correlate::Limits;
use socwatch::decode::DEFAULT_MAX_LINE_BYTES;
use socwatch::model::{Format, Logsource};
use socwatch::rules::RuleSet;
use socwatch::scan::{Input, ScanOptions, scan};

const LINES: usize = 200_000;

fn write_lines(path: &Path, lines: &[String]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
}

fn options() -> ScanOptions {
    ScanOptions {
        format: Format::Auto,
        logsource: Logsource::default(),
        zone: TimeZone::UTC,
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        host: "-".into(),
        unit: "bench".into(),
        now: "2026-11-21T00:00:00Z".parse().unwrap(),
        limits: Limits::default(),
        case_window: socwatch::cases::DEFAULT_WINDOW,
        jobs: 1,
        piece_bytes: socwatch::scan::PIECE_BYTES,
        progress: None,
        keep_matches: false,
    }
}

fn bench_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.log");
    let nginx = dir.path().join("access.log");
    write_lines(&auth, &support::auth_lines(LINES));
    write_lines(&nginx, &support::nginx_lines(LINES));
    let shipped = std::sync::Arc::new(RuleSet::shipped());
    let shipped_2000 = std::sync::Arc::new(support::shipped_plus_generated(2000));
    let opts = options();

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, path, rules) in [
        ("auth/shipped", &auth, &shipped),
        ("auth/shipped_plus_2000", &auth, &shipped_2000),
        ("nginx/shipped", &nginx, &shipped),
        ("nginx/shipped_plus_2000", &nginx, &shipped_2000),
    ] {
        let inputs = [Input::Path(path.clone())];
        group.bench_function(name, |b| {
            b.iter(|| {
                let report = scan(&inputs, rules, &opts);
                assert_eq!(report.lines(), LINES as u64);
                report.incidents.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
