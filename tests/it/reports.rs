//! The national forms (issue 15): `socwatch report incident` and `report monitoring` on a store the
//! real daemon made. The PDF is read back with poppler's `pdftotext` (the Vietnamese labels, the
//! rule, the system, the level) and drawn with `pdftoppm -png` (an image with dark pixels); the
//! HTML escapes a log line's markup; the monitoring report counts exactly the period's incidents;
//! the report made through the running daemon's API says what the store says; a template in
//! `[reports] template_dir` replaces the built-in one, its values escaped too.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use socwatch::query::Filters;

use crate::daemon::{Site, line};
use crate::support::{stderr, stdout};

const UNIT: &str = "Trung tâm Giám sát an toàn không gian mạng tỉnh";
const AGENCY: &str = "Sở Khoa học và Công nghệ";
/// A log line whose "address" is markup: it must reach the HTML as text.
const SCRIPT: &str = "<script>alert(1)</script>";

/// A store the real daemon made: three incidents on 22 November, one (the markup) on 22 November
/// too, one on 25 November; one acknowledged with a note through the API. `remote` is the
/// incident report the CLI made through the API while the daemon ran.
struct Fixture {
    _site: Site,
    data: PathBuf,
    acked: String,
    script: String,
    late: String,
    remote: String,
    /// The monitoring report of 22 November made through the API while the daemon ran.
    remote_monitoring: String,
}

/// The period of the monitoring tests: 22 and 23 November in Asia/Ho_Chi_Minh.
const SINCE: &str = "2026-11-21T17:00:00Z";
const UNTIL: &str = "2026-11-23T17:00:00Z";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let site = Site::new(false);
        site.add_config(&format!(
            "[reports]\nunit = \"{UNIT}\"\nagency = \"{AGENCY}\"\n"
        ));
        let daemon = site.start();
        site.point_cli_at(&daemon);
        let mut lines: Vec<String> = ["203.0.113.7", "203.0.113.8", "198.51.100.9"]
            .iter()
            .enumerate()
            .flat_map(|(i, a)| (0..2).map(move |n| line(i * 10 + n, a)))
            .collect();
        lines.push(line(90, SCRIPT));
        lines.push("Nov 25 09:30:00 portal-01 app[1]: attempt 7 from 192.0.2.44".into());
        let sent = lines.len() as u64;
        site.append(lines);
        daemon.wait_stored("", sent);
        let client = daemon.client();
        let incidents = client.list(&Filters::default()).unwrap();
        assert_eq!(incidents.len(), 5);
        let find = |value: &str| {
            incidents
                .iter()
                .find(|i| i.group.values().any(|v| v == value))
                .map(|i| i.id.clone())
                .unwrap()
        };
        let acked = find("203.0.113.7");
        client
            .transition(
                &acked,
                socwatch::store::Action::Ack,
                None,
                "chặn IP tại tường lửa",
            )
            .unwrap();
        let remote = run_in(
            &site.path("socwatch.toml"),
            &["--lang", "vi", "report", "incident", &acked],
        );
        assert!(remote.status.success(), "{}", stderr(&remote));
        let remote_monitoring = run_in(
            &site.path("socwatch.toml"),
            &[
                "--lang",
                "vi",
                "report",
                "monitoring",
                "--since",
                SINCE,
                "--until",
                UNTIL,
            ],
        );
        assert!(
            remote_monitoring.status.success(),
            "{}",
            stderr(&remote_monitoring)
        );
        let fixture = Fixture {
            data: site.path("data"),
            acked,
            script: find(SCRIPT),
            late: find("192.0.2.44"),
            remote: stdout(&remote),
            remote_monitoring: stdout(&remote_monitoring),
            _site: site,
        };
        daemon.stop();
        fixture
    })
}

fn run_in(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_socwatch"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// A copy of the fixture's store (each test opens its own: sled allows one process per store)
/// and a config on it, with `extra` added to `[reports]`.
struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new(extra: &str) -> Local {
        let dir = tempfile::tempdir().unwrap();
        crate::evidence::copy_dir(&fixture().data, &dir.path().join("data"));
        std::fs::write(
            dir.path().join("socwatch.toml"),
            format!(
                "[daemon]\ndata_dir = \"{}\"\n\n[reports]\nunit = \"{UNIT}\"\nagency = \"{AGENCY}\"\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        Local { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = run_in(&self.dir.path().join("socwatch.toml"), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The PDF made by `args` + `--format pdf --output`, as `pdftotext -layout` reads it.
    fn pdf_text(&self, args: &[&str]) -> (PathBuf, String) {
        let pdf = self.path("report.pdf");
        let mut all = args.to_vec();
        all.extend(["--format", "pdf", "--output", pdf.to_str().unwrap()]);
        self.run(&all);
        let out = Command::new("pdftotext")
            .args(["-layout", pdf.to_str().unwrap(), "-"])
            .output()
            .expect("pdftotext (poppler-utils) runs");
        assert!(out.status.success(), "pdftotext: {}", stderr(&out));
        (pdf, stdout(&out))
    }
}

/// The report without its "made at" line, which names the minute it was made, and without its
/// proof, which the checkpoint signed at the daemon's stop changed.
fn without_made_line(html: &str) -> String {
    let html = html.split("<section id=\"proof\">").next().unwrap();
    html.lines()
        .filter(|l| !l.contains("Ngày lập báo cáo") && !l.contains("Report made"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_incident_report_names_the_national_forms_fields_in_html() {
    let local = Local::new("");
    let html = stdout(&local.run(&["report", "incident", &fixture().acked]));
    for label in [
        "Báo cáo ban đầu sự cố",
        "Đơn vị vận hành",
        UNIT,
        "Cơ quan chủ quản",
        AGENCY,
        "Hệ thống thông tin</th><td>dvc-portal",
        "Cấp độ</th><td>3",
        "Phương thức phát hiện</th><td>tự động, socwatch",
        "Luật</th><td>test-attempt",
        // The line's time carries no zone: the machine's (UTC here), shown in Asia/Ho_Chi_Minh.
        "Thời điểm phát hiện</th><td>22/11/2026 17:00",
        "Trạng thái</th><td>Đã tiếp nhận",
        "chặn IP tại tường lửa",
        "Chứng cứ",
        "attempt 0 from 203.0.113.7",
        "Bằng chứng toàn vẹn",
        "Kích thước cây",
    ] {
        assert!(html.contains(label), "{label} missing from:\n{html}");
    }
    // The proof is `socwatch verify --incident`'s, with the signed checkpoint's every line.
    let proof: socwatch::evidence::Proof = serde_json::from_slice(
        &local
            .run(&["verify", "--incident", &fixture().acked, "--json"])
            .stdout,
    )
    .unwrap();
    assert!(html.contains(&format!("Chỉ số lá</th><td>{}<", proof.leaf_index)));
    assert!(html.contains(&format!("Kích thước cây</th><td>{}<", proof.tree_size)));
    assert!(html.contains(&proof.root.replace('/', "&#x2f;")) || html.contains(&proof.root));
    let note = proof
        .checkpoint
        .expect("the daemon signed a checkpoint at SIGTERM");
    for line in note.lines().filter(|l| !l.is_empty()) {
        let escaped = line.replace('/', "&#x2f;").replace('+', "&#x2b;");
        assert!(
            html.contains(line) || html.contains(&escaped),
            "{line} missing from:\n{html}"
        );
    }
}

#[test]
fn a_log_lines_markup_is_escaped_in_the_html() {
    let local = Local::new("");
    let html = stdout(&local.run(&["report", "incident", &fixture().script]));
    assert!(!html.contains(SCRIPT), "{html}");
    assert!(
        html.contains("attempt 90 from &#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
}

#[test]
fn the_incident_report_in_english() {
    let local = Local::new("");
    let html = stdout(&local.run(&["--lang", "en", "report", "incident", &fixture().acked]));
    for label in [
        "<html lang=\"en\">",
        "Initial incident report",
        "Operating unit",
        "Protection level (cấp độ)</th><td>3",
        "automatic, socwatch",
        "acknowledged",
        "Inclusion proof",
    ] {
        assert!(html.contains(label), "{label} missing from:\n{html}");
    }
    assert!(!html.contains("Đơn vị vận hành"));
}

#[test]
fn the_report_made_through_the_daemons_api_says_what_the_store_says() {
    let local = Local::new("");
    let html = stdout(&local.run(&["report", "incident", &fixture().acked]));
    assert!(fixture().remote.contains("Cấp độ</th><td>3"));
    assert_eq!(
        without_made_line(&fixture().remote),
        without_made_line(&html)
    );
}

/// A PNG's pixels as gray levels (8-bit gray or RGB, no interlace: what `pdftoppm -png` writes).
fn png_gray_pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (mut pos, mut idat, mut size, mut bpp) = (8, Vec::new(), (0, 0), 1);
    while pos + 8 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &png[pos + 4..pos + 8];
        let data = &png[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                size = (
                    u32::from_be_bytes(data[0..4].try_into().unwrap()),
                    u32::from_be_bytes(data[4..8].try_into().unwrap()),
                );
                assert_eq!((data[8], data[12]), (8, 0), "8 bits, not interlaced");
                bpp = match data[9] {
                    0 => 1,
                    2 => 3,
                    other => panic!("PNG color type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = size.0 as usize * bpp;
    let rows = size.1 as usize;
    let mut bytes = vec![0u8; stride * rows];
    for y in 0..rows {
        let row = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let at = |yy: usize, xx: usize| bytes[yy * stride + xx];
            let a = if x >= bpp { at(y, x - bpp) } else { 0 };
            let b = if y > 0 { at(y - 1, x) } else { 0 };
            let c = if x >= bpp && y > 0 {
                at(y - 1, x - bpp)
            } else {
                0
            };
            let predicted = match row[0] {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            bytes[y * stride + x] = row[1 + x].wrapping_add(predicted);
        }
    }
    let gray = bytes
        .chunks(bpp)
        .map(|p| (p.iter().map(|v| u32::from(*v)).sum::<u32>() / bpp as u32) as u8)
        .collect();
    (size.0, size.1, gray)
}

#[test]
fn the_incident_report_as_pdf_reads_back_in_vietnamese_and_draws() {
    let local = Local::new("");
    let started = std::time::Instant::now();
    let (pdf, text) = local.pdf_text(&["report", "incident", &fixture().acked]);
    let took = started.elapsed();
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for label in [
        "Báo cáo ban đầu sự cố",
        "Đơn vị vận hành",
        UNIT,
        "Cơ quan chủ quản",
        AGENCY,
        "Cấp độ 3",
        "Hệ thống thông tin dvc-portal",
        "Luật test-attempt",
        "tự động, socwatch",
        "Đã tiếp nhận",
        "chặn IP tại tường lửa",
        "attempt 0 from 203.0.113.7",
        "Bằng chứng toàn vẹn",
    ] {
        assert!(squeezed.contains(label), "{label} missing from:\n{text}");
    }
    let size = std::fs::metadata(&pdf).unwrap().len();
    eprintln!("incident report PDF: {size} bytes; made and read back in {took:?}");
    let prefix = local.path("page");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "50", "-f", "1", "-l", "1"])
        .arg(&pdf)
        .arg(&prefix)
        .output()
        .expect("pdftoppm (poppler-utils) runs");
    assert!(out.status.success(), "pdftoppm: {}", stderr(&out));
    let png = std::fs::read_dir(local.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .expect("pdftoppm wrote a PNG");
    let (w, h, pixels) = png_gray_pixels(&std::fs::read(png).unwrap());
    assert!(w > 300 && h > 400, "{w}x{h}");
    let dark = pixels.iter().filter(|p| **p < 128).count();
    // Text covers a few percent of a page: not blank, not black.
    assert!(dark > pixels.len() / 200, "{dark} dark of {}", pixels.len());
    assert!(dark < pixels.len() / 3, "{dark} dark of {}", pixels.len());
}

#[test]
fn the_monitoring_report_counts_the_periods_incidents_only() {
    let local = Local::new("");
    let all: Vec<serde_json::Value> =
        serde_json::from_slice(&local.run(&["incidents", "list", "--json"]).stdout).unwrap();
    let (since, until) = (SINCE, UNTIL);
    let inside: Vec<&serde_json::Value> = all
        .iter()
        .filter(|i| {
            let first: jiff::Timestamp = i["first_seen"].as_str().unwrap().parse().unwrap();
            first >= since.parse().unwrap() && first < until.parse().unwrap()
        })
        .collect();
    assert_eq!(inside.len(), 4, "the fixture's 22 November incidents");
    let args = ["report", "monitoring", "--since", since, "--until", until];
    let html = stdout(&local.run(&args));
    assert!(html.contains("Tổng số sự cố</th><td>4<"), "{html}");
    assert!(
        html.contains("<td>Cao</td><td>4</td>"),
        "by severity: {html}"
    );
    assert!(
        html.contains("<td>dvc-portal</td><td>3</td><td>4</td>"),
        "by system: {html}"
    );
    assert!(
        html.contains("<td>test-attempt</td><td>every attempt</td><td>4</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>Đã tiếp nhận</td><td>1</td>"),
        "by status: {html}"
    );
    assert!(html.contains("<td>Mở</td><td>3</td>"), "by status: {html}");
    let short = |id: &str| socwatch::report::short_id(id).to_string();
    assert!(html.contains(&short(&fixture().acked)));
    assert!(
        !html.contains(&short(&fixture().late)),
        "25 November is outside"
    );
    assert!(html.contains("Điểm kiểm tra được ký"));
    // Through the API while the daemon ran: the same counts and incidents (the checkpoint differs,
    // signed again at stop).
    let cut =
        |html: &str| without_made_line(html.split("<section id=\"checkpoint\">").next().unwrap());
    assert_eq!(cut(&fixture().remote_monitoring), cut(&html));
    let (_, text) = local.pdf_text(&args);
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(squeezed.contains("Báo cáo giám sát định kỳ"), "{text}");
    assert!(squeezed.contains("Tổng số sự cố 4"), "{text}");
    assert!(!squeezed.contains(&short(&fixture().late)), "{text}");
}

#[test]
fn a_template_in_template_dir_replaces_the_built_in_one_and_escapes() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("incident-report.html"),
        "<h1>MẪU SỐ 01 {{ title }}</h1>{% for s in sections %}{% if s.id == \"evidence\" %}\
         {% for line in s.pre %}<p>{{ line }}</p>{% endfor %}{% endif %}{% endfor %}",
    )
    .unwrap();
    let local = Local::new(&format!(
        "template_dir = \"{}\"\n",
        templates.path().display()
    ));
    let html = stdout(&local.run(&["report", "incident", &fixture().script]));
    assert!(html.starts_with("<h1>MẪU SỐ 01 Báo cáo ban đầu"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains(SCRIPT), "{html}");
    // The monitoring template is not in the folder: the built-in one is used.
    let out = local.run(&["report", "monitoring", "--since", "30d", "--until", "1h"]);
    assert!(stdout(&out).contains("Báo cáo giám sát định kỳ"));
}

#[test]
fn a_pdf_goes_to_a_pipe_and_a_reversed_period_is_a_usage_error() {
    let local = Local::new("");
    let out = run_in(
        &local.path("socwatch.toml"),
        &["report", "monitoring", "--since", "1h", "--until", "2h"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run_in(
        &local.path("socwatch.toml"),
        &[
            "report",
            "incident",
            fixture().acked.as_str(),
            "--format",
            "pdf",
        ],
    );
    // stdout is a pipe here: the PDF comes out on it.
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.starts_with(b"%PDF-"));
}
