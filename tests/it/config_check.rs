//! `socwatch config check` on file sources that read nothing (issue 11, finding 8): a glob that
//! matches no file and a file that does not exist are warned about in the config's language, and
//! `--strict` turns the warnings into exit 3.

use crate::support::{socwatch, stderr, stdout};

/// A config whose first file source is fine and whose second names nothing that exists.
fn site(lang: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("logs/empty")).unwrap();
    std::fs::write(dir.path().join("logs/app.log"), "").unwrap();
    std::fs::write(dir.path().join("logs/web-access.log"), "").unwrap();
    let config = dir.path().join("socwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"{root}/data\"\nlang = \"{lang}\"\n\n\
             [[source.file]]\npaths = [\"{root}/logs/app.log\", \"{root}/logs/*access.log\"]\n\n\
             [[source.file]]\npaths = [\"{root}/logs/empty/*.log\", \"{root}/logs/missing.log\"]\n"
        ),
    )
    .unwrap();
    (dir, config.display().to_string())
}

#[test]
fn config_check_warns_about_sources_that_match_nothing_and_strict_fails() {
    let (dir, config) = site("en");
    let root = dir.path().display();
    let out = socwatch(&["--config", &config, "config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("config is valid"), "{}", stdout(&out));
    let warnings: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("[[source.file]] 2")
            && warnings[0].contains(&format!("'{root}/logs/empty/*.log' matches no file")),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("[[source.file]] 2")
            && warnings[1].contains(&format!("'{root}/logs/missing.log' does not exist")),
        "{warnings:?}"
    );

    let strict = socwatch(&["--config", &config, "config", "check", "--strict"]);
    assert_eq!(strict.status.code(), Some(3), "{}", stderr(&strict));
    assert!(
        stderr(&strict).contains("2 warnings; --strict refuses them"),
        "{}",
        stderr(&strict)
    );

    // Once the sources name files that exist, --strict passes.
    std::fs::write(dir.path().join("logs/empty/a.log"), "").unwrap();
    std::fs::write(dir.path().join("logs/missing.log"), "").unwrap();
    let fixed = socwatch(&["--config", &config, "config", "check", "--strict"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", stderr(&fixed));
    assert!(!stderr(&fixed).contains("warning"), "{}", stderr(&fixed));
}

#[test]
fn config_check_warnings_are_in_vietnamese_with_lang_vi() {
    let (dir, config) = site("vi");
    let root = dir.path().display();
    let out = socwatch(&["--config", &config, "config", "check", "--strict"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cảnh báo: [[source.file]] 2: '{root}/logs/empty/*.log' không khớp tệp nào"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "cảnh báo: [[source.file]] 2: '{root}/logs/missing.log' không tồn tại"
        )),
        "{err}"
    );
    assert!(
        err.contains("2 cảnh báo; --strict không chấp nhận"),
        "{err}"
    );
    // The language flag wins over the config's.
    let en = socwatch(&["--config", &config, "--lang", "en", "config", "check"]);
    assert!(stderr(&en).contains("matches no file"), "{}", stderr(&en));
}
