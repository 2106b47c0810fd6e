//! Hand-checked positive and negative events for each Sigma modifier and condition form, run
//! through a whole `RuleSet` (prefilter included) and against direct evaluation.

use crate::model::{Event, Logsource, SourceMeta};
use crate::rules::{LoadStatus, RuleSet, RuleSource};

fn set_of(yaml: &str) -> RuleSet {
    RuleSet::build(&[RuleSource {
        name: "test.yml".into(),
        text: yaml.into(),
    }])
    .unwrap_or_else(|problems| panic!("{problems:?}"))
}

/// A Sigma rule with this detection, for JSON events of any logsource.
fn rule(detection: &str) -> RuleSet {
    let indented: String = detection.lines().map(|l| format!("  {l}\n")).collect();
    set_of(&format!(
        "title: t\nid: t1\nlogsource: {{category: application}}\ndetection:\n{indented}level: high\n"
    ))
}

fn json_event(line: &str) -> Event<'_> {
    let ctx = crate::decode::DecodeContext::new(
        jiff::tz::TimeZone::UTC,
        "2026-11-22T00:00:00Z".parse().unwrap(),
    );
    let mut event = crate::decode::Decoder::new(crate::model::Format::Json, ctx).decode(line);
    event.logsource = Logsource {
        category: Some("application".into()),
        ..Logsource::default()
    };
    event
}

/// Whether the rule matches the line, checking that the prefilter agrees with direct evaluation.
fn hits(set: &RuleSet, line: &str) -> bool {
    let event = json_event(line);
    let meta = SourceMeta::new("test");
    let direct = set.eval_rule(0, &event, &meta).is_some();
    let via = !set.matches(&event, &meta).is_empty();
    assert_eq!(direct, via, "prefilter disagrees on {line}");
    direct
}

/// (detection, [(event, expected)]).
fn check(cases: &[(&str, &[(&str, bool)])]) {
    for (detection, events) in cases {
        let set = rule(detection);
        for (line, want) in *events {
            assert_eq!(hits(&set, line), *want, "{detection}\n on {line}");
        }
    }
}

#[test]
fn plain_values_are_case_insensitive_whole_values_with_wildcards() {
    check(&[
        (
            "sel: {User: Admin}\ncondition: sel",
            &[
                (r#"{"User":"admin"}"#, true),
                (r#"{"User":"ADMIN"}"#, true),
                (r#"{"User":"administrator"}"#, false),
                (r#"{"Other":"admin"}"#, false),
            ],
        ),
        (
            "sel: {Path: 'C:\\Win*\\cmd.exe'}\ncondition: sel",
            &[
                (r#"{"Path":"c:\\windows\\CMD.exe"}"#, true),
                (r#"{"Path":"C:\\Win\\cmd.exe"}"#, true),
                (r#"{"Path":"D:\\windows\\cmd.exe"}"#, false),
            ],
        ),
        (
            "sel: {Code: 'a?c'}\ncondition: sel",
            &[
                (r#"{"Code":"abc"}"#, true),
                (r#"{"Code":"ac"}"#, false),
                (r#"{"Code":"abbc"}"#, false),
            ],
        ),
        (
            // Escaped wildcards are literal characters.
            "sel: {Q: 'what\\?'}\ncondition: sel",
            &[(r#"{"Q":"what?"}"#, true), (r#"{"Q":"whatx"}"#, false)],
        ),
        (
            "sel: {Q: 'a\\*b*'}\ncondition: sel",
            &[(r#"{"Q":"a*bcd"}"#, true), (r#"{"Q":"axbcd"}"#, false)],
        ),
        (
            // A number compares as its text.
            "sel: {EventID: 4625}\ncondition: sel",
            &[
                (r#"{"EventID":4625}"#, true),
                (r#"{"EventID":"4625"}"#, true),
                (r#"{"EventID":46250}"#, false),
            ],
        ),
        (
            // null: the field is absent or empty.
            "sel: {Parent: null}\ncondition: sel",
            &[
                (r#"{"Other":"x"}"#, true),
                (r#"{"Parent":""}"#, true),
                (r#"{"Parent":"x"}"#, false),
            ],
        ),
        (
            "sel: {Any: '*'}\ncondition: sel",
            &[(r#"{"Any":"x"}"#, true), (r#"{"Other":"x"}"#, false)],
        ),
    ]);
}

#[test]
fn maps_are_and_lists_are_or() {
    check(&[
        (
            "sel:\n  A: x\n  B: [y, z]\ncondition: sel",
            &[
                (r#"{"A":"x","B":"z"}"#, true),
                (r#"{"A":"x","B":"w"}"#, false),
                (r#"{"A":"q","B":"y"}"#, false),
            ],
        ),
        (
            "sel:\n  - A: x\n  - B: y\ncondition: sel",
            &[
                (r#"{"A":"x"}"#, true),
                (r#"{"B":"y"}"#, true),
                (r#"{"A":"y","B":"x"}"#, false),
            ],
        ),
        (
            // Keywords: anywhere in the event, case-insensitive, any of them.
            "keywords:\n  - 'Failed Password'\n  - 'invalid user'\ncondition: keywords",
            &[
                (r#"{"msg":"sshd: failed password for root"}"#, true),
                (r#"{"msg":"Invalid user bob"}"#, true),
                (r#"{"msg":"accepted publickey"}"#, false),
            ],
        ),
        (
            "keywords:\n  '|all':\n    - 'alpha'\n    - 'beta'\ncondition: keywords",
            &[
                (r#"{"msg":"beta then alpha"}"#, true),
                (r#"{"msg":"alpha only"}"#, false),
            ],
        ),
    ]);
}

#[test]
fn string_modifiers() {
    check(&[
        (
            "sel: {CommandLine|contains: 'whoami'}\ncondition: sel",
            &[
                (r#"{"CommandLine":"cmd /c WHOAMI /all"}"#, true),
                (r#"{"CommandLine":"who am i"}"#, false),
            ],
        ),
        (
            "sel: {Image|startswith: '/tmp/'}\ncondition: sel",
            &[
                (r#"{"Image":"/TMP/x"}"#, true),
                (r#"{"Image":"/var/tmp/x"}"#, false),
            ],
        ),
        (
            "sel: {Image|endswith: ['/nc', '/ncat']}\ncondition: sel",
            &[
                (r#"{"Image":"/usr/bin/ncat"}"#, true),
                (r#"{"Image":"/usr/bin/nc"}"#, true),
                (r#"{"Image":"/usr/bin/nc.openbsd"}"#, false),
            ],
        ),
        (
            "sel: {CommandLine|contains|all: ['-e', 'sh']}\ncondition: sel",
            &[
                (r#"{"CommandLine":"nc -e /bin/sh"}"#, true),
                (r#"{"CommandLine":"nc /bin/sh"}"#, false),
            ],
        ),
        (
            "sel: {User|cased: Admin}\ncondition: sel",
            &[
                (r#"{"User":"Admin"}"#, true),
                (r#"{"User":"admin"}"#, false),
            ],
        ),
        (
            "sel: {CommandLine|contains|cased: 'Invoke-'}\ncondition: sel",
            &[
                (r#"{"CommandLine":"x Invoke-Expr"}"#, true),
                (r#"{"CommandLine":"x invoke-expr"}"#, false),
            ],
        ),
        (
            "sel: {CommandLine|windash|contains: ' -enc '}\ncondition: sel",
            &[
                (r#"{"CommandLine":"powershell /enc abc"}"#, true),
                (r#"{"CommandLine":"powershell \u2013enc abc"}"#, true),
                (r#"{"CommandLine":"powershell -ENC abc"}"#, true),
                (r#"{"CommandLine":"powershell +enc abc"}"#, false),
            ],
        ),
    ]);
}

#[test]
fn regex_modifier_and_flags() {
    check(&[
        (
            "sel: {Q|re: 'union\\s+select'}\ncondition: sel",
            &[
                (r#"{"Q":"1 union  select 2"}"#, true),
                // `re` is case-sensitive unless `i` is given.
                (r#"{"Q":"1 UNION SELECT 2"}"#, false),
            ],
        ),
        (
            "sel: {Q|re|i: 'union\\s+select'}\ncondition: sel",
            &[
                (r#"{"Q":"1 UNION SELECT 2"}"#, true),
                (r#"{"Q":"union"}"#, false),
            ],
        ),
        (
            "sel: {Q|re|m: '^second$'}\ncondition: sel",
            &[
                (r#"{"Q":"first\nsecond"}"#, true),
                (r#"{"Q":"first second"}"#, false),
            ],
        ),
        (
            "sel: {Q|re|s: 'a.b'}\ncondition: sel",
            &[(r#"{"Q":"a\nb"}"#, true), (r#"{"Q":"a\n\nb"}"#, false)],
        ),
    ]);
}

#[test]
fn cidr_numbers_exists_fieldref() {
    check(&[
        (
            "sel: {SourceIp|cidr: ['10.0.0.0/8', '2001:db8::/32']}\ncondition: sel",
            &[
                (r#"{"SourceIp":"10.1.2.3"}"#, true),
                (r#"{"SourceIp":"2001:db8::5"}"#, true),
                (r#"{"SourceIp":"11.1.2.3"}"#, false),
                (r#"{"SourceIp":"nope"}"#, false),
            ],
        ),
        (
            "sel: {Port|gt: 1024}\ncondition: sel",
            &[(r#"{"Port":8080}"#, true), (r#"{"Port":1024}"#, false)],
        ),
        (
            "sel: {Port|gte: 1024}\ncondition: sel",
            &[(r#"{"Port":1024}"#, true), (r#"{"Port":80}"#, false)],
        ),
        (
            "sel: {Port|lt: 1024}\ncondition: sel",
            &[(r#"{"Port":80}"#, true), (r#"{"Port":1024}"#, false)],
        ),
        (
            "sel: {Port|lte: 1024}\ncondition: sel",
            &[(r#"{"Port":1024}"#, true), (r#"{"Port":1025}"#, false)],
        ),
        (
            "sel: {Token|exists: true}\ncondition: sel",
            &[(r#"{"Token":""}"#, true), (r#"{"Other":"x"}"#, false)],
        ),
        (
            "sel: {Token|exists: false}\ncondition: sel",
            &[(r#"{"Other":"x"}"#, true), (r#"{"Token":"x"}"#, false)],
        ),
        (
            "sel: {SubjectUser|fieldref: TargetUser}\ncondition: sel",
            &[
                (r#"{"SubjectUser":"Bob","TargetUser":"bob"}"#, true),
                (r#"{"SubjectUser":"bob","TargetUser":"alice"}"#, false),
                (r#"{"SubjectUser":"bob"}"#, false),
            ],
        ),
        (
            "sel: {CommandLine|fieldref|contains: User}\ncondition: sel",
            &[
                (r#"{"CommandLine":"run as bob now","User":"bob"}"#, true),
                (r#"{"CommandLine":"run as alice","User":"bob"}"#, false),
            ],
        ),
    ]);
}

#[test]
fn base64_modifiers() {
    check(&[
        (
            // base64 of "ping" is cGluZw==; base64 text is compared case-sensitively.
            "sel: {Data|base64: ping}\ncondition: sel",
            &[
                (r#"{"Data":"cGluZw=="}"#, true),
                (r#"{"Data":"CGLUZW=="}"#, false),
            ],
        ),
        (
            // "/bin/bash" inside a longer base64 text, at each of the three offsets.
            "sel: {Data|base64offset|contains: '/bin/bash'}\ncondition: sel",
            &[
                (r#"{"Data":"echo L2Jpbi9iYXNo | base64 -d"}"#, true),
                (r#"{"Data":"IC9iaW4vYmFzaA=="}"#, true),
                (r#"{"Data":"ICAvYmluL2Jhc2g="}"#, true),
                (r#"{"Data":"L2Jpbi9zaA=="}"#, false),
            ],
        ),
        (
            // UTF-16LE "ab" = 61 00 62 00 → YQBiAA==.
            "sel: {Data|wide|base64: ab}\ncondition: sel",
            &[
                (r#"{"Data":"YQBiAA=="}"#, true),
                (r#"{"Data":"YWI="}"#, false),
            ],
        ),
    ]);
}

#[test]
fn condition_forms() {
    let detection = "sel_a: {A: x}\nsel_b: {B: y}\nfilter: {C: z}\n";
    check(&[
        (
            &format!("{detection}condition: sel_a and sel_b"),
            &[(r#"{"A":"x","B":"y"}"#, true), (r#"{"A":"x"}"#, false)],
        ),
        (
            &format!("{detection}condition: sel_a or sel_b"),
            &[(r#"{"B":"y"}"#, true), (r#"{"C":"z"}"#, false)],
        ),
        (
            &format!("{detection}condition: sel_a and not filter"),
            &[(r#"{"A":"x"}"#, true), (r#"{"A":"x","C":"z"}"#, false)],
        ),
        (
            &format!("{detection}condition: (sel_a or sel_b) and not filter"),
            &[(r#"{"B":"y"}"#, true), (r#"{"B":"y","C":"z"}"#, false)],
        ),
        (
            &format!("{detection}condition: 1 of sel_*"),
            &[(r#"{"B":"y"}"#, true), (r#"{"C":"z"}"#, false)],
        ),
        (
            &format!("{detection}condition: all of sel_*"),
            &[
                (r#"{"A":"x","B":"y"}"#, true),
                (r#"{"A":"x","C":"z"}"#, false),
            ],
        ),
        (
            &format!("{detection}condition: 1 of them"),
            &[(r#"{"C":"z"}"#, true), (r#"{"D":"w"}"#, false)],
        ),
        (
            &format!("{detection}condition: all of them"),
            &[
                (r#"{"A":"x","B":"y","C":"z"}"#, true),
                (r#"{"A":"x","B":"y"}"#, false),
            ],
        ),
        (
            &format!("{detection}condition:\n  - sel_a and sel_b\n  - filter"),
            &[(r#"{"C":"z"}"#, true), (r#"{"A":"x"}"#, false)],
        ),
    ]);
}

#[test]
fn attribution_and_level() {
    let set = set_of(
        "title: Suspicious thing\nid: 11111111-2222-3333-4444-555555555555\nstatus: test\n\
         author: Jane Doe\nlevel: informational\ntags: [attack.t1110]\nreferences: [https://x]\n\
         falsepositives: [none]\nlogsource: {product: linux}\ndetection:\n  k: [evil]\n  condition: k\n",
    );
    let rule = set.rule(0);
    assert_eq!(rule.title, "Suspicious thing");
    assert_eq!(rule.id, "11111111-2222-3333-4444-555555555555");
    assert_eq!(rule.author.as_deref(), Some("Jane Doe"));
    assert_eq!(rule.severity, crate::model::Severity::Info);
    assert_eq!(rule.tags, vec!["attack.t1110".to_string()]);
}

#[test]
fn unsupported_and_idle_are_reported_not_fatal() {
    let set = set_of(
        "title: a\nid: a\nlogsource: {product: linux}\ndetection:\n  s: {X|expand: '%servers%'}\n  condition: s\n\
         ---\ntitle: b\nid: b\nlogsource: {product: linux}\ndetection:\n  s: {X: y}\n  condition: s | count() > 5\n\
         ---\ntitle: c\nid: c\nlogsource: {product: zeek, service: dns}\ndetection:\n  s: {query: x}\n  condition: s\n\
         ---\ntitle: d\nid: d\nlogsource: {product: linux, service: sshd}\ndetection:\n  k: ['Failed password']\n  condition: k\n",
    );
    let report = set.load_report();
    let status: Vec<(&str, &LoadStatus)> =
        report.iter().map(|e| (e.id.as_str(), &e.status)).collect();
    assert!(matches!(status[0], ("a", LoadStatus::Unsupported(r)) if r.contains("expand")));
    assert!(matches!(status[1], ("b", LoadStatus::Unsupported(r)) if r.contains("correlation")));
    assert!(matches!(status[2], ("c", LoadStatus::Idle(_))));
    assert!(matches!(status[3], ("d", LoadStatus::Loaded)));
}

#[test]
fn correlations_feed_from_their_rules() {
    let set = set_of(
        "title: many failures\nid: corr\nauthor: Corr Author\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [fail]\n  group-by: [src]\n  timespan: 10m\n  condition: {gte: 3}\n\
         ---\ntitle: one failure\nid: base\nname: fail\nlogsource: {category: application}\ndetection:\n  s: {result: failure}\n  condition: s\n",
    );
    let corr = set.rules().iter().position(|r| r.id == "corr").unwrap();
    let base = set.rules().iter().position(|r| r.id == "base").unwrap();
    assert!(!set.rule(base).emit, "generate defaults to false");
    assert_eq!(set.rule(corr).threshold.count, 3);
    assert_eq!(set.rule(corr).threshold.group_by, vec!["src".to_string()]);
    let event = json_event(r#"{"result":"failure","src":"1.2.3.4"}"#);
    let found = set.matches(&event, &SourceMeta::new("t"));
    assert_eq!(found.iter().map(|m| m.rule).collect::<Vec<_>>(), vec![corr]);
}

/// Feeds JSON lines (one per second) through the rules and the correlator; returns the groups of
/// the incidents opened, by rule id.
fn correlate(set: &RuleSet, lines: &[&str]) -> Vec<(String, Vec<String>)> {
    use crate::correlate::{Change, Correlator, Limits, Observation, Origin};
    let mut correlator = Correlator::new(set, Limits::default());
    let meta = SourceMeta::new("t");
    let mut opened = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let event = json_event(line);
        let ts = jiff::Timestamp::from_second(1_800_000_000 + i as i64).unwrap();
        let origin = Origin {
            host: "h",
            system: "",
            level: 0,
            unit: "",
        };
        for found in set.matches(&event, &meta) {
            let obs = Observation::of(set, &found, &event, &meta, ts, origin);
            if let Some(Change::Opened(incident)) = correlator.observe(set, obs) {
                opened.push((incident.rule_id, incident.group.into_values().collect()));
            }
        }
    }
    opened
}

const BASES: &str = "---\ntitle: fail\nid: fail\nlogsource: {category: application}\ndetection:\n  s: {result: failure}\n  condition: s\n\
---\ntitle: ok\nid: ok\nname: success\nlogsource: {category: application}\ndetection:\n  s: {result: success}\n  condition: s\n";

#[test]
fn value_count_counts_distinct_values_per_group() {
    let set = set_of(&format!(
        "title: spray\nid: spray\ncorrelation:\n  type: value_count\n  rules: [fail]\n  group-by: [src]\n  timespan: 1h\n  condition: {{gte: 3, field: user}}\n{BASES}"
    ));
    let opened = correlate(
        &set,
        &[
            r#"{"result":"failure","src":"a","user":"u1"}"#,
            r#"{"result":"failure","src":"a","user":"u1"}"#,
            r#"{"result":"failure","src":"b","user":"u1"}"#,
            r#"{"result":"failure","src":"a","user":"u2"}"#,
            r#"{"result":"failure","src":"b","user":"u2"}"#,
            r#"{"result":"failure","src":"a","user":"u3"}"#,
        ],
    );
    assert_eq!(opened, vec![("spray".to_string(), vec!["a".to_string()])]);
}

#[test]
fn temporal_needs_every_rule_in_any_order_and_aliases_name_the_group() {
    let set = set_of(&format!(
        "title: both\nid: both\ngenerate: true\ncorrelation:\n  type: temporal\n  rules: [fail, success]\n  group-by: [peer]\n  timespan: 1m\n  aliases:\n    peer:\n      fail: src\n      success: client\n{BASES}"
    ));
    let base = set.rules().iter().position(|r| r.id == "fail").unwrap();
    assert!(
        set.rule(base).emit,
        "generate: true keeps the base rule's incidents"
    );
    let opened = correlate(
        &set,
        &[
            r#"{"result":"success","client":"a"}"#,
            r#"{"result":"failure","src":"b"}"#,
            r#"{"result":"failure","src":"a"}"#,
        ],
    );
    let both: Vec<_> = opened.iter().filter(|(r, _)| r == "both").collect();
    assert_eq!(both, vec![&("both".to_string(), vec!["a".to_string()])]);
    assert!(opened.iter().any(|(r, _)| r == "fail"), "{opened:?}");
}

#[test]
fn unsupported_correlations_say_why() {
    let set = set_of(&format!(
        "title: few\nid: few\ncorrelation:\n  type: event_count\n  rules: [fail]\n  timespan: 1h\n  condition: {{lt: 3}}\n\
---\ntitle: many\nid: many\ncorrelation:\n  type: event_count\n  rules: [fail]\n  timespan: 1h\n  condition: {{gte: 2}}\n\
---\ntitle: after\nid: after\ncorrelation:\n  type: event_count\n  rules: [few]\n  timespan: 1h\n  condition: {{gte: 2}}\n\
---\ntitle: chain\nid: chain\ncorrelation:\n  type: event_count\n  rules: [many]\n  timespan: 1h\n  condition: {{gte: 2}}\n\
---\ntitle: lost\nid: lost\ncorrelation:\n  type: event_count\n  rules: [nowhere]\n  timespan: 1h\n  condition: {{gte: 2}}\n{BASES}"
    ));
    let report = set.load_report();
    let reason = |id: &str| match &report.iter().find(|e| e.id == id).unwrap().status {
        LoadStatus::Unsupported(r) => r.clone(),
        other => panic!("{id}: {other:?}"),
    };
    assert!(reason("few").contains("lt"), "{}", reason("few"));
    assert!(reason("chain").contains("chained"), "{}", reason("chain"));
    assert!(
        reason("lost").contains("unknown rule"),
        "{}",
        reason("lost")
    );
    assert!(
        reason("after").contains("unsupported"),
        "{}",
        reason("after")
    );
    // Referred to by `many` (generate defaults to false), the base rule opens no incident itself.
    let base = set.rules().iter().position(|r| r.id == "fail").unwrap();
    assert!(!set.rule(base).emit);
}

/// One scratch reused across lines of different logsources and across rule sets (as a matcher
/// keeps it): each line sees exactly the routes of its own logsource.
#[test]
fn a_reused_scratch_routes_each_line_by_its_own_logsource() {
    let two = set_of(
        "title: a\nid: a1\nlogsource: {product: linux, service: sshd}\ndetection:\n  \
         keywords: [intruder]\n  condition: keywords\nlevel: high\n---\n\
         title: b\nid: b1\nlogsource: {product: linux, service: nginx}\ndetection:\n  \
         keywords: [intruder]\n  condition: keywords\nlevel: high\n",
    );
    let other = set_of(
        "title: c\nid: c1\nlogsource: {product: linux, service: nginx}\ndetection:\n  \
         keywords: [intruder]\n  condition: keywords\nlevel: high\n",
    );
    let meta = SourceMeta::new("test");
    let mut scratch = crate::rules::MatchScratch::default();
    let mut out = Vec::new();
    let mut matched = |set: &RuleSet, service: &'static str| {
        let mut event = json_event(r#"{"msg": "an intruder"}"#);
        event.logsource = Logsource {
            product: Some("linux".into()),
            service: Some(service.into()),
            category: None,
        };
        set.matches_into(&event, &meta, &mut scratch, &mut out);
        out.iter()
            .map(|m| set.rule(m.rule).id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(matched(&two, "sshd"), ["a1"]);
    assert_eq!(matched(&two, "sshd"), ["a1"]);
    assert_eq!(matched(&two, "nginx"), ["b1"]);
    assert_eq!(matched(&other, "nginx"), ["c1"]);
    assert_eq!(matched(&two, "nginx"), ["b1"]);
    assert!(matched(&two, "postfix").is_empty());
}
