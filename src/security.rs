//! Security by default: the one reader of secret files and its permission rule, the API token
//! socwatch generates on its first start, and the warnings for settings that weaken it.
//!
//! The rule, for every secret file (API token, operator tokens, national token, SMTP password,
//! client key): nobody but its owner and its group may have any access (no "other" bits), its
//! group may read but not write, the owner is root or the service user, and a group-readable file
//! belongs to root's group or the service's group. So `0600` and `0640 root:socwatch` are accepted,
//! `0644` or `0660` are refused with a message naming the file and its mode.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, EmailSecurity};

/// The file name of the generated API token inside `daemon.data_dir`.
pub const GENERATED_TOKEN: &str = "api.token";
/// Random bytes in a generated token (hex-encoded: 64 characters).
pub const TOKEN_BYTES: usize = 32;

/// Who may own a secret file and which group may read it.
///
/// The service user is the user this process runs as and the owner of `daemon.data_dir` (the
/// unit's `StateDirectory`, `socwatch:socwatch`): the daemon, running as `socwatch`, and the CLI,
/// run by root, then agree on the same files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    uids: Vec<u32>,
    gids: Vec<u32>,
}

impl Trust {
    /// Root, the user and group this process runs as, and the owner and group of `data_dir` when
    /// it exists.
    pub fn new(data_dir: &Path) -> Trust {
        let mut uids = vec![0, rustix::process::geteuid().as_raw()];
        let mut gids = vec![0, rustix::process::getegid().as_raw()];
        if let Ok(meta) = std::fs::metadata(data_dir) {
            uids.push(meta.uid());
            gids.push(meta.gid());
        }
        for ids in [&mut uids, &mut gids] {
            ids.sort_unstable();
            ids.dedup();
        }
        Trust { uids, gids }
    }

    /// Exactly these owners and groups (tests).
    pub fn of(uids: Vec<u32>, gids: Vec<u32>) -> Trust {
        Trust { uids, gids }
    }

    /// Why a file of this owner, group and mode is not fit to hold a secret; None when it is.
    pub fn refusal(&self, uid: u32, gid: u32, mode: u32) -> Option<Refusal> {
        let mode = mode & 0o7777;
        if mode & 0o027 != 0 {
            return Some(Refusal::Exposed { mode });
        }
        if !self.uids.contains(&uid) {
            return Some(Refusal::Owner { uid });
        }
        if mode & 0o040 != 0 && !self.gids.contains(&gid) {
            return Some(Refusal::Group { gid, mode });
        }
        None
    }
}

/// What is wrong with a secret file's ownership or mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Others may read, write or run it, or its group may write it.
    Exposed { mode: u32 },
    /// Owned by a user who is neither root nor the service user.
    Owner { uid: u32 },
    /// Readable by a group that is neither root's nor the service's.
    Group { gid: u32, mode: u32 },
}

/// A secret file that cannot be used. Every message names the setting and the file.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "permission denied reading {what} {} as uid {uid}; a secret file is 0640 root:socwatch, or 0600 owned by the user socwatch runs as",
        path.display()
    )]
    Denied {
        what: String,
        path: PathBuf,
        uid: u32,
    },
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} {} is open to other users (mode {mode:04o}); a secret file must be 0600 or 0640: chmod 0640 {}",
        path.display(),
        path.display()
    )]
    Exposed {
        what: String,
        path: PathBuf,
        mode: u32,
    },
    #[error(
        "{what} {} belongs to uid {uid}, which may change it; a secret file belongs to root or the socwatch service user: chown root {}",
        path.display(),
        path.display()
    )]
    Owner {
        what: String,
        path: PathBuf,
        uid: u32,
    },
    #[error(
        "{what} {} is readable by group {gid} (mode {mode:04o}), which is neither root's nor the socwatch service's; chgrp socwatch {} or chmod 0600 it",
        path.display(),
        path.display()
    )]
    Group {
        what: String,
        path: PathBuf,
        gid: u32,
        mode: u32,
    },
    #[error("{what} {} is empty", path.display())]
    Empty { what: String, path: PathBuf },
    #[error("{what} {} is not UTF-8 text", path.display())]
    NotText { what: String, path: PathBuf },
    #[error("cannot generate {what} {}: {source}", path.display())]
    Generate {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SecretError {
    /// The process may not open the file at all (another user's secret).
    pub fn is_denied(&self) -> bool {
        matches!(self, SecretError::Denied { .. })
    }

    fn io(what: &str, path: &Path, source: std::io::Error) -> SecretError {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            SecretError::Denied {
                what: what.to_string(),
                path: path.to_path_buf(),
                uid: rustix::process::geteuid().as_raw(),
            }
        } else {
            SecretError::Io {
                what: what.to_string(),
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// Reads a secret file's bytes after checking it against the rule. `what` names the setting
/// (`email.password_file`) for messages. The mode is read from the opened file, so the file that
/// was checked is the file that is read.
pub fn read_bytes(path: &Path, what: &str, trust: &Trust) -> Result<Vec<u8>, SecretError> {
    let mut file = std::fs::File::open(path).map_err(|err| SecretError::io(what, path, err))?;
    let meta = file
        .metadata()
        .map_err(|err| SecretError::io(what, path, err))?;
    let (what, path_buf) = (what.to_string(), path.to_path_buf());
    match trust.refusal(meta.uid(), meta.gid(), meta.mode()) {
        Some(Refusal::Exposed { mode }) => {
            return Err(SecretError::Exposed {
                what,
                path: path_buf,
                mode,
            });
        }
        Some(Refusal::Owner { uid }) => {
            return Err(SecretError::Owner {
                what,
                path: path_buf,
                uid,
            });
        }
        Some(Refusal::Group { gid, mode }) => {
            return Err(SecretError::Group {
                what,
                path: path_buf,
                gid,
                mode,
            });
        }
        None => {}
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|err| SecretError::io(&what, path, err))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SecretError::Empty {
            what,
            path: path_buf,
        });
    }
    Ok(bytes)
}

/// Reads a secret text (token, password): the content less its trailing line ending, so a
/// password may begin or end with spaces.
pub fn read_text(path: &Path, what: &str, trust: &Trust) -> Result<String, SecretError> {
    let bytes = read_bytes(path, what, trust)?;
    let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
        what: what.to_string(),
        path: path.to_path_buf(),
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// The API token at `path`, created on first use: 32 random bytes from the OS, hex-encoded,
/// written to a temporary file of mode 0600 and renamed into place, so a crash never leaves a
/// half-written token. Returns the token and whether it was created now.
pub fn generated_token(path: &Path, trust: &Trust) -> Result<(String, bool), SecretError> {
    generated_secret(path, "the generated API token", trust)
}

/// A secret of 32 random bytes, hex-encoded, at `path`, created on first use like the API token
/// (`generated_token`); `what` names it in errors. The evidence signing key is one.
pub fn generated_secret(
    path: &Path,
    what: &str,
    trust: &Trust,
) -> Result<(String, bool), SecretError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return read_text(path, what, trust).map(|token| (token, false)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(SecretError::io(what, path, err)),
    }
    let generate = |source| SecretError::Generate {
        what: what.into(),
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|err| generate(std::io::Error::other(err.to_string())))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // A leftover from a crash between create and rename holds nothing anyone relies on.
    let _ = std::fs::remove_file(&temporary);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{token}\n").as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
            _ => Ok(()),
        });
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(generate(err));
    }
    Ok((token, true))
}

/// Creates `daemon.data_dir` if it is missing, with mode 0750: incidents carry log lines, which
/// are not for every local user.
pub fn create_data_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
}

/// The settings of `config` that weaken socwatch's defences, one warning each. Pure: the files'
/// modes are in [`file_warnings`].
pub fn config_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let listen = config.api.listen.get_ref();
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>()
        && !addr.ip().is_loopback()
    {
        warnings.push(format!(
            "api.listen {listen} is not a loopback address: bearer tokens and incidents cross the network in plain HTTP; listen on 127.0.0.1 or put a TLS proxy in front"
        ));
    }
    if let Some(email) = &config.email
        && email.security == EmailSecurity::None
    {
        warnings.push(format!(
            "email.security = \"none\": alerts{} go to {} unencrypted",
            if email.password_file.is_some() {
                " and the SMTP password"
            } else {
                ""
            },
            email.smtp.get_ref()
        ));
    }
    if let Some(national) = &config.forward.national
        && national.url.get_ref().starts_with("http://")
    {
        warnings.push(format!(
            "forward.national.url {} is plain http: alerts{} are sent unencrypted (meant for tests on loopback only)",
            national.url.get_ref(),
            if national.token_file.is_some() {
                " and the bearer token"
            } else {
                ""
            }
        ));
    }
    warnings
}

/// Warnings about the modes of what socwatch trusts: the data folder open to every user, and
/// the config file or rule paths that every user may change.
pub fn file_warnings(config: &Config, config_file: Option<&Path>) -> Vec<String> {
    let mut warnings = Vec::new();
    let mode = |path: &Path| std::fs::metadata(path).ok().map(|m| m.mode() & 0o7777);
    let data_dir = &config.daemon.data_dir;
    if let Some(m) = mode(data_dir)
        && m & 0o007 != 0
    {
        warnings.push(format!(
            "daemon.data_dir {} is open to every local user (mode {m:04o}): they can read incidents and their log lines; chmod 0750 {}",
            data_dir.display(),
            data_dir.display()
        ));
    }
    let trusted = config_file.map(|p| ("config file", p)).into_iter().chain(
        config
            .daemon
            .rules
            .iter()
            .map(|p| ("rule path", p.as_path())),
    );
    for (what, path) in trusted {
        if let Some(m) = mode(path)
            && m & 0o002 != 0
        {
            warnings.push(format!(
                "{what} {} can be changed by every local user (mode {m:04o}); chmod o-w {}",
                path.display(),
                path.display()
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_permission_rule() {
        let trust = Trust::of(vec![0, 107], vec![0, 113]);
        let cases: &[(u32, u32, u32, Option<Refusal>)] = &[
            (0, 0, 0o600, None),
            (0, 113, 0o640, None),
            (107, 113, 0o600, None),
            (107, 113, 0o400, None),
            (0, 0, 0o440, None),
            // Any access for others, or a group that may write: refused.
            (0, 113, 0o644, Some(Refusal::Exposed { mode: 0o644 })),
            (0, 113, 0o604, Some(Refusal::Exposed { mode: 0o604 })),
            (0, 113, 0o660, Some(Refusal::Exposed { mode: 0o660 })),
            (0, 113, 0o602, Some(Refusal::Exposed { mode: 0o602 })),
            (0, 113, 0o601, Some(Refusal::Exposed { mode: 0o601 })),
            // Another user could rewrite it.
            (1000, 113, 0o600, Some(Refusal::Owner { uid: 1000 })),
            // Group-readable by a group that is not the service's (users, adm...).
            (
                0,
                100,
                0o640,
                Some(Refusal::Group {
                    gid: 100,
                    mode: 0o640,
                }),
            ),
            // Any group when the group may not read.
            (0, 100, 0o600, None),
        ];
        for &(uid, gid, mode, expected) in cases {
            assert_eq!(
                trust.refusal(uid, gid, mode),
                expected,
                "uid {uid} gid {gid} mode {mode:o}"
            );
        }
    }

    #[test]
    fn secrets_are_read_once_checked_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let trust = Trust::new(dir.path());
        let path = dir.path().join("smtp.password");
        std::fs::write(&path, " s3cret pass \r\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            read_text(&path, "email.password_file", &trust).unwrap(),
            " s3cret pass "
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_text(&path, "email.password_file", &trust)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "email.password_file {0} is open to other users (mode 0644); a secret file must be 0600 or 0640: chmod 0640 {0}",
                path.display()
            )
        );
        std::fs::write(&path, "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_text(&path, "email.password_file", &trust).unwrap_err();
        assert!(err.to_string().ends_with("is empty"), "{err}");
        let err = read_bytes(&dir.path().join("missing"), "x", &trust).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read x ") && !err.is_denied(),
            "{err}"
        );
    }

    #[test]
    fn a_generated_token_is_random_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let trust = Trust::new(dir.path());
        let path = dir.path().join(GENERATED_TOKEN);
        let (token, created) = generated_token(&path, &trust).unwrap();
        assert!(created);
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(
            generated_token(&path, &trust).unwrap(),
            (token.clone(), false)
        );
        let other = tempfile::tempdir().unwrap();
        let (second, _) = generated_token(&other.path().join(GENERATED_TOKEN), &trust).unwrap();
        assert_ne!(token, second);
        // A token that was made readable to everyone is refused, not silently replaced.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            generated_token(&path, &trust),
            Err(SecretError::Exposed { mode: 0o644, .. })
        ));
    }

    #[test]
    fn weakening_settings_are_named() {
        let config = Config::parse(
            "c.toml",
            "[api]\nlisten = \"0.0.0.0:8610\"\ntoken_file = \"/t\"\n\n\
             [forward.national]\nurl = \"http://127.0.0.1:9/alerts\"\ntoken_file = \"/n\"\n\n\
             [email]\nsmtp = \"127.0.0.1:25\"\nsecurity = \"none\"\nfrom = \"a@example.gov.vn\"\nto = [\"b@example.gov.vn\"]\n",
        )
        .unwrap();
        let warnings = config_warnings(&config);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("api.listen 0.0.0.0:8610 is not a loopback address"));
        assert!(warnings[1].starts_with("email.security = \"none\""));
        assert!(warnings[2].contains("bearer token are sent unencrypted"));
        assert!(config_warnings(&Config::default()).is_empty());

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        create_data_dir(&data).unwrap();
        assert_eq!(
            std::fs::metadata(&data).unwrap().mode() & 0o777,
            0o750,
            "created private"
        );
        let mut config = Config::default();
        config.daemon.data_dir = data.clone();
        assert!(file_warnings(&config, None).is_empty());
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("socwatch.toml");
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let warnings = file_warnings(&config, Some(&file));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("open to every local user (mode 0755)"));
        assert!(warnings[1].starts_with("config file"));
    }
}
