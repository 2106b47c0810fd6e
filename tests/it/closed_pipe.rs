//! A reader that goes away (`socwatch rules list | head -1`) ends a command quietly with exit 0,
//! like grep, never with a panic (issue 11, finding 8). Every printing command writes into a real
//! pipe whose reading end is closed before it starts, so its first write fails.

use std::path::Path;
use std::process::{ChildStdin, Command, Output, Stdio};

use crate::support::crate_dir;

/// The writing end of a real pipe nobody reads any more: its reader (`true`) has exited.
fn closed_pipe() -> ChildStdin {
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run true");
    let pipe = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    pipe
}

/// Runs socwatch with stdout into a closed pipe, and stderr too when `stderr_closed`.
fn run_into_closed_pipe(config: &Path, args: &[&str], stderr_closed: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_socwatch"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(crate_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::from(closed_pipe()));
    if stderr_closed {
        command.stderr(Stdio::from(closed_pipe()));
    } else {
        command.stderr(Stdio::piped());
    }
    command.output().expect("run socwatch")
}

#[test]
fn every_printing_command_exits_0_quietly_when_its_reader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("socwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"{}/data\"\nlang = \"en\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    // An empty store, so that the incident and outbox commands have something to print.
    drop(socwatch::store::Store::open(dir.path().join("data"), Default::default()).unwrap());
    let commands: &[&[&str]] = &[
        &["--version"],
        &["--help"],
        &["rules", "list"],
        &["rules", "list", "--json"],
        &["--lang", "vi", "rules", "list"],
        &["rules", "check"],
        &["rules", "test"],
        &["scan", "examples/auth.log", "examples/access.log"],
        &["scan", "--json", "examples/auth.log"],
        &["config", "check"],
        &["incidents", "list"],
        &["incidents", "list", "--json"],
        &["incidents", "export", "--format", "csv"],
        &["outbox", "status"],
        &["outbox", "status", "--json"],
    ];
    for args in commands {
        for stderr_closed in [false, true] {
            let out = run_into_closed_pipe(&config, args, stderr_closed);
            assert_eq!(
                out.status.code(),
                Some(0),
                "socwatch {} (stderr closed: {stderr_closed}): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            let said = String::from_utf8_lossy(&out.stderr).to_lowercase();
            for noise in ["panicked", "broken pipe", "cannot write"] {
                assert!(
                    !said.contains(noise),
                    "socwatch {} said: {said}",
                    args.join(" ")
                );
            }
        }
    }
}
