//! Decoder throughput on typical lines: syslog must stay well under 200 ns a line, web access under 400 ns.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use socwatch::decode::{DecodeContext, Decoder};
use socwatch::model::Format;

const AUTH_LOG: &str = "Nov 22 10:01:02 portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2";
const RFC5424: &str = r#"<34>1 2026-11-22T10:01:02.123Z portal-01 sshd 811 - [origin ip="10.0.0.1"] Failed password for root"#;
const ACCESS: &str = r#"203.0.113.7 - - [22/Nov/2026:10:01:02 +0700] "GET /wp-login.php?redirect_to=%2Fwp-admin%2F HTTP/1.1" 404 162 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)""#;
const ACCESS_PLAIN: &str = r#"203.0.113.7 - - [22/Nov/2026:10:01:02 +0700] "GET /index.html HTTP/1.1" 200 612 "-" "curl/8.5.0""#;
const JSON: &str = r#"{"@timestamp":"2026-11-22T10:01:02.123+07:00","level":"warn","message":"login failed","user":{"name":"alice"},"src_ip":"203.0.113.7"}"#;

fn ctx() -> DecodeContext {
    let zone = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("bundled tzdb");
    DecodeContext::new(
        zone,
        "2026-11-23T00:00:00+07:00".parse().expect("valid stamp"),
    )
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("syslog_3164", Format::Syslog, AUTH_LOG),
        ("syslog_5424", Format::Syslog, RFC5424),
        ("access_encoded", Format::Nginx, ACCESS),
        ("access_plain", Format::Nginx, ACCESS_PLAIN),
        ("json", Format::Json, JSON),
        ("auto_access", Format::Auto, ACCESS_PLAIN),
    ];
    for (name, format, line) in cases {
        let mut decoder = Decoder::new(format, ctx());
        c.bench_function(name, |b| {
            b.iter(|| black_box(decoder.decode(black_box(line))))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
