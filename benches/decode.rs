//! Decoding throughput per format: `prepare_line` + `Decoder::decode` over generated lines, and
//! `detect_format` on a file's first lines. Lines per second is criterion's "elements/s".
//! The `decode_line` group keeps the decoder's single-line cases: syslog must stay well under 200 ns
//! a line, web access under 400 ns.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use socwatch::decode::{DEFAULT_MAX_LINE_BYTES, Decoder, detect_format, prepare_line};
use socwatch::model::Format;

const LINES: usize = 20_000;

const AUTH_LOG: &str = "Nov 22 10:01:02 portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2";
const RFC5424: &str = r#"<34>1 2026-11-22T10:01:02.123Z portal-01 sshd 811 - [origin ip="10.0.0.1"] Failed password for root"#;
const ACCESS: &str = r#"203.0.113.7 - - [22/Nov/2026:10:01:02 +0700] "GET /wp-login.php?redirect_to=%2Fwp-admin%2F HTTP/1.1" 404 162 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)""#;
const ACCESS_PLAIN: &str = r#"203.0.113.7 - - [22/Nov/2026:10:01:02 +0700] "GET /index.html HTTP/1.1" 200 612 "-" "curl/8.5.0""#;
const JSON: &str = r#"{"@timestamp":"2026-11-22T10:01:02.123+07:00","level":"warn","message":"login failed","user":{"name":"alice"},"src_ip":"203.0.113.7"}"#;

fn decode_all(decoder: &mut Decoder, lines: &[String]) -> usize {
    let mut fields = 0;
    for line in lines {
        let prepared = prepare_line(line.as_bytes(), DEFAULT_MAX_LINE_BYTES);
        let event = decoder.decode(&prepared.text);
        fields += event.fields.len() + event.derived.len();
    }
    fields
}

fn bench_decode(c: &mut Criterion) {
    let inputs: Vec<(&str, Format, Vec<String>)> = vec![
        ("syslog_rfc3164", Format::Syslog, support::auth_lines(LINES)),
        (
            "syslog_iso",
            Format::Syslog,
            support::syslog_iso_lines(LINES),
        ),
        (
            "syslog_rfc5424",
            Format::Syslog,
            support::syslog_5424_lines(LINES),
        ),
        ("nginx_combined", Format::Nginx, support::nginx_lines(LINES)),
        ("json", Format::Json, support::json_lines(LINES)),
        ("plain", Format::Plain, support::auth_lines(LINES)),
        // `Auto` without detection: every line tries the decoders in turn (the worst case).
        (
            "auto_per_line_nginx",
            Format::Auto,
            support::nginx_lines(LINES),
        ),
    ];
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, format, lines) in &inputs {
        let mut decoder = Decoder::new(*format, support::context());
        group.bench_function(*name, |b| {
            b.iter(|| decode_all(&mut decoder, black_box(lines)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode_line");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    for (name, format, line) in [
        ("syslog_3164", Format::Syslog, AUTH_LOG),
        ("syslog_5424", Format::Syslog, RFC5424),
        ("access_encoded", Format::Nginx, ACCESS),
        ("access_plain", Format::Nginx, ACCESS_PLAIN),
        ("json", Format::Json, JSON),
        ("auto_access", Format::Auto, ACCESS_PLAIN),
    ] {
        let mut decoder = Decoder::new(format, support::context());
        group.bench_function(name, |b| {
            b.iter(|| black_box(decoder.decode(black_box(line))).fields.len())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("prepare_line");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(LINES as u64));
    let lines = support::auth_lines(LINES);
    group.bench_function("auth_valid_utf8", |b| {
        b.iter(|| {
            lines
                .iter()
                .map(|l| {
                    prepare_line(black_box(l.as_bytes()), DEFAULT_MAX_LINE_BYTES)
                        .text
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("detect_format");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(1));
    for (name, _, lines) in &inputs[..5] {
        let sample: Vec<&str> = lines.iter().take(20).map(String::as_str).collect();
        group.bench_function(*name, |b| b.iter(|| detect_format(black_box(&sample))));
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
