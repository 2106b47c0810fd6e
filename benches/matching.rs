//! Matching cost per line (`RuleSet::matches_into`, prefilter + conditions) on decoded events, with
//! the shipped rules and with 2,000 generated rules added, on the same auth.log and nginx lines.
//! Also 20 vs 2,000 generated rules alone. The target: the per-line cost with 2,000 rules
//! is at most 2x the cost with 20.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use socwatch::decode::Decoder;
use socwatch::model::{Event, Format, SourceMeta};
use socwatch::rules::{MatchScratch, RuleMatch, RuleSet};

const LINES: usize = 20_000;

fn match_all(
    rules: &RuleSet,
    events: &[Event<'_>],
    meta: &SourceMeta,
    scratch: &mut MatchScratch,
    out: &mut Vec<RuleMatch>,
) -> usize {
    let mut matched = 0;
    for event in events {
        rules.matches_into(event, meta, scratch, out);
        matched += out.len();
    }
    matched
}

fn decode(format: Format, lines: &[String]) -> Vec<Event<'_>> {
    let mut decoder = Decoder::new(format, support::context());
    lines.iter().map(|l| decoder.decode(l)).collect()
}

fn bench_matching(c: &mut Criterion) {
    let auth = support::auth_lines(LINES);
    let nginx = support::nginx_lines(LINES);
    // Auth lines with 1% lines that generated rules match, so their regexes and captures run too.
    let mut rng = support::Rng::new(7);
    let mixed: Vec<String> = auth
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if i % 100 == 50 {
                support::generated_rule_line(rng.below(2000), &mut rng)
            } else {
                line.clone()
            }
        })
        .collect();
    let auth_events = decode(Format::Syslog, &auth);
    let mixed_events = decode(Format::Syslog, &mixed);
    let nginx_events = decode(Format::Nginx, &nginx);

    let shipped = RuleSet::shipped();
    let shipped_2000 = support::shipped_plus_generated(2000);
    let generated_20 = support::generated_rules(20);
    let generated_2000 = support::generated_rules(2000);
    let meta = SourceMeta::new("bench");

    let cases: Vec<(String, &RuleSet, &[Event<'_>])> = vec![
        (
            format!("auth/shipped_{}", shipped.len()),
            &shipped,
            &auth_events,
        ),
        (
            format!("auth/shipped_plus_2000_{}", shipped_2000.len()),
            &shipped_2000,
            &auth_events,
        ),
        ("auth/generated_20".into(), &generated_20, &auth_events),
        ("auth/generated_2000".into(), &generated_2000, &auth_events),
        (
            "auth_1pct_generated_hits/generated_20".into(),
            &generated_20,
            &mixed_events,
        ),
        (
            "auth_1pct_generated_hits/generated_2000".into(),
            &generated_2000,
            &mixed_events,
        ),
        (
            format!(
                "auth_1pct_generated_hits/shipped_plus_2000_{}",
                shipped_2000.len()
            ),
            &shipped_2000,
            &mixed_events,
        ),
        (
            format!("nginx/shipped_{}", shipped.len()),
            &shipped,
            &nginx_events,
        ),
        (
            format!("nginx/shipped_plus_2000_{}", shipped_2000.len()),
            &shipped_2000,
            &nginx_events,
        ),
    ];

    let mut group = c.benchmark_group("match");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(LINES as u64));
    let mut scratch = MatchScratch::default();
    let mut out = Vec::new();
    for (name, rules, events) in &cases {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| match_all(rules, black_box(events), &meta, &mut scratch, &mut out))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let sources = socwatch::rules::shipped_sources();
    group.bench_function("shipped", |b| {
        b.iter(|| RuleSet::build(black_box(&sources)))
    });
    group.bench_function("generated_2000", |b| {
        b.iter(|| support::generated_rules(2000))
    });
    group.finish();
}

criterion_group!(benches, bench_matching);

/// `SOCWATCH_WRITE_RULES=DIR cargo bench --bench matching` writes the generated rule sets
/// (`DIR/generated-20/rules.yml`, `DIR/generated-2000/rules.yml`) for `benches/compare.sh` and exits.
fn main() {
    if let Some(dir) = std::env::var_os("SOCWATCH_WRITE_RULES") {
        for n in [20, 2000] {
            let folder = std::path::Path::new(&dir).join(format!("generated-{n}"));
            std::fs::create_dir_all(&folder).expect("create the rules folder");
            std::fs::write(folder.join("rules.yml"), support::generated_rules_yaml(n))
                .expect("write the rules");
            println!("{}", folder.display());
        }
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
