//! The commands' output streams. Text for stdout goes through `outln!`/`out!`: a reader that went
//! away (`socwatch rules list | head -1`) ends the program at once with exit 0, as grep does, and
//! any other write error with exit 1. Diagnostics go through `errln!`/`err!`, which ignore a closed
//! stderr. `println!` and friends panic on both, so the binary does not use them.

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};
use std::sync::OnceLock;

use socwatch::model::Lang;

/// The operator's language, for the one message this module writes itself.
static LANG: OnceLock<Lang> = OnceLock::new();

/// Set once the config and `--lang` are known.
pub fn set_lang(lang: Lang) {
    let _ = LANG.set(lang);
}

/// Writes to stdout and flushes, so a failure is seen here and not lost at exit.
pub fn stdout(args: Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_fmt(args).and_then(|()| out.flush()) {
        if err.kind() == ErrorKind::BrokenPipe {
            // Whoever reads has all they wanted: nothing failed.
            std::process::exit(0);
        }
        let lang = LANG.get().copied().unwrap_or_default();
        let text = socwatch::tr!(lang, CannotWriteOutput, error = err);
        stderr(format_args!("{text}\n"));
        std::process::exit(crate::EXIT_RUNTIME.into());
    }
}

/// Writes to stderr; a stderr nobody reads is not worth failing the command for.
pub fn stderr(args: Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `println!` to stdout, ending quietly when the reader is gone.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to stdout, ending quietly when the reader is gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that ignores a closed stderr.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!($($arg)*))
    };
}
