//! Arbitrary bytes as a rule file through `RuleSet::build`: every problem is reported, never a panic.
//! Rules that build are matched against a few decoded lines, so their conditions run too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use socwatch::decode::Decoder;
use socwatch::model::{Format, SourceMeta};
use socwatch::rules::{MatchScratch, RuleSet, RuleSource};

#[path = "common.rs"]
mod common;

const LINES: [(&str, Format); 4] = [
    (
        "Nov 22 10:01:02 portal-01 sshd[811]: Failed password for root from 203.0.113.7 port 51514 ssh2",
        Format::Syslog,
    ),
    (
        r#"203.0.113.7 - - [22/Nov/2026:10:01:02 +0700] "GET /a.php?id=1%27%20or%201=1 HTTP/1.1" 404 162 "-" "sqlmap/1.7""#,
        Format::Nginx,
    ),
    (
        r#"{"level":"warn","message":"login failed","user":{"name":"alice"},"src_ip":"::ffff:10.0.0.1","n":"12"}"#,
        Format::Json,
    ),
    ("plain text with 127.0.0.1 and 42", Format::Plain),
];

fn meta() -> &'static SourceMeta {
    static META: OnceLock<SourceMeta> = OnceLock::new();
    META.get_or_init(|| SourceMeta::new("fuzz"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = RuleSource {
        name: "fuzz.yml".into(),
        text: text.to_owned(),
    };
    match RuleSet::build(&[source]) {
        Ok(rules) => {
            let mut scratch = MatchScratch::default();
            let mut out = Vec::new();
            for (line, format) in LINES {
                let mut decoder = Decoder::new(format, common::context(0));
                let event = decoder.decode(line);
                rules.matches_into(&event, meta(), &mut scratch, &mut out);
                for m in &out {
                    assert!(m.rule < rules.len());
                }
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "an error comes with its problems");
            for p in &problems {
                assert_eq!(p.file, "fuzz.yml");
                assert!(!p.message.is_empty());
            }
        }
    }
});
