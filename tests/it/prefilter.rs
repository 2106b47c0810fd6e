//! The literal prefilter must never hide a match: over every line of the fail2ban samples and the
//! shipped examples, the rules found through the prefilter are exactly those that hold when every
//! rule is evaluated on its own.

use socwatch::decode::{DecodeContext, Decoder, detect_format, prepare_line};
use socwatch::model::SourceMeta;
use socwatch::rules::RuleSet;

use crate::support::{corpus_dir, crate_dir};

fn text_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn prefilter_agrees_with_evaluating_every_rule() {
    let set = RuleSet::shipped();
    let mut files = Vec::new();
    text_files(&corpus_dir().join("fail2ban/logs"), &mut files);
    text_files(&crate_dir().join("examples"), &mut files);
    let meta = SourceMeta::new("corpus");
    let ctx = DecodeContext::new(
        jiff::tz::TimeZone::UTC,
        "2026-11-22T00:00:00Z".parse().unwrap(),
    );
    let (mut lines, mut matched) = (0, 0);
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let prepared: Vec<_> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.starts_with(b"#"))
            .map(|l| prepare_line(l, 65536))
            .collect();
        let texts: Vec<&str> = prepared.iter().map(|l| l.text.as_ref()).collect();
        let mut decoder = Decoder::new(detect_format(&texts), ctx.clone());
        for text in texts {
            let event = decoder.decode(text);
            let via_prefilter: Vec<usize> =
                set.matches(&event, &meta).iter().map(|m| m.rule).collect();
            let every_rule: Vec<usize> = (0..set.len())
                .filter(|&i| set.eval_rule(i, &event, &meta).is_some())
                .collect();
            assert_eq!(via_prefilter, every_rule, "{}: {text}", file.display());
            lines += 1;
            matched += usize::from(!every_rule.is_empty());
        }
    }
    assert!(
        lines > 1000 && matched > 500,
        "the corpus was read: {lines} lines, {matched} matched"
    );
}
