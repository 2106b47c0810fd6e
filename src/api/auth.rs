//! Who is calling: the request's bearer token, matched against the shared (admin) token and the
//! operators' tokens (`[[api.operator]]`). The caller, not the request body, says who acted.

use std::path::{Path, PathBuf};

use super::Token;
use crate::config::Config;
use crate::security::{self, SecretError, Trust};

/// What a lifecycle action done with the shared token is recorded as.
pub const ADMIN: &str = "admin";

/// The identity a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The shared token (`api.token_file`, else the generated one): root and the service user.
    Admin,
    /// An operator's own token; actions are recorded under this name.
    Operator(String),
}

/// The tokens the API accepts.
#[derive(Clone, Debug)]
pub struct Auth {
    admin: Token,
    operators: Vec<(String, Token)>,
}

impl Auth {
    pub fn new(admin: Token) -> Auth {
        Auth {
            admin,
            operators: Vec::new(),
        }
    }

    /// Adds an operator. A token already in use (by the admin or another operator) is refused:
    /// it could not tell who acted.
    pub fn with_operator(mut self, name: &str, token: Token) -> Result<Auth, String> {
        let taken = std::iter::once(&self.admin)
            .chain(self.operators.iter().map(|(_, t)| t))
            .any(|known| known.matches(token.as_str().as_bytes()));
        if taken {
            return Err(format!(
                "the token of operator '{name}' is already used by the shared token or another operator"
            ));
        }
        self.operators.push((name.to_string(), token));
        Ok(self)
    }

    /// Who presents `presented`, if anyone. Every token is compared (in constant time each), so
    /// the answer's timing does not tell which one nearly matched.
    pub fn caller(&self, presented: &[u8]) -> Option<Caller> {
        let mut found = self.admin.matches(presented).then_some(Caller::Admin);
        for (name, token) in &self.operators {
            if token.matches(presented) && found.is_none() {
                found = Some(Caller::Operator(name.clone()));
            }
        }
        found
    }

    /// The daemon's tokens: the shared one from `api.token_file`, else the one generated in
    /// `daemon.data_dir` (created on first start, its path logged, never its content), and every
    /// `[[api.operator]]`'s. All go through the one secret reader.
    pub fn load(config: &Config) -> Result<Auth, SecretError> {
        let trust = Trust::new(&config.daemon.data_dir);
        let admin = match &config.api.token_file {
            Some(path) => read_token(path, "api.token_file", &trust)?,
            None => {
                let path = generated_token_path(config);
                let (text, created) = security::generated_token(&path, &trust)?;
                if created {
                    tracing::info!(path = %path.display(), "API token generated (mode 0600); the CLI and curl read it from there");
                } else {
                    tracing::info!(path = %path.display(), "API token");
                }
                token_of(&text, &path, "the generated API token")?
            }
        };
        if admin.as_str().len() < 32 {
            tracing::warn!(
                "the shared API token has {} characters; a guessable token opens the API: use at least 32 (the generated one has 64)",
                admin.as_str().len()
            );
        }
        let mut auth = Auth::new(admin);
        for operator in &config.api.operator {
            let name = operator.name.get_ref();
            let what = format!("api.operator '{name}' token_file");
            let token = read_token(&operator.token_file, &what, &trust)?;
            if token.as_str().len() < 32 {
                tracing::warn!(
                    operator = %name,
                    "this operator's token has fewer than 32 characters; use a long random one"
                );
            }
            auth = auth
                .with_operator(name, token)
                .map_err(|message| SecretError::Io {
                    what,
                    path: operator.token_file.clone(),
                    source: std::io::Error::other(message),
                })?;
        }
        Ok(auth)
    }
}

/// Where the generated shared token lives: `daemon.data_dir/api.token`.
pub fn generated_token_path(config: &Config) -> PathBuf {
    config.daemon.data_dir.join(security::GENERATED_TOKEN)
}

/// The shared token's file: `api.token_file`, else the generated one.
pub fn shared_token_path(config: &Config) -> PathBuf {
    config
        .api
        .token_file
        .clone()
        .unwrap_or_else(|| generated_token_path(config))
}

/// Reads a token file through the secret reader; whitespace around the token is dropped.
pub fn read_token(path: &Path, what: &str, trust: &Trust) -> Result<Token, SecretError> {
    let text = security::read_text(path, what, trust)?;
    token_of(&text, path, what)
}

fn token_of(text: &str, path: &Path, what: &str) -> Result<Token, SecretError> {
    Token::new(text).ok_or_else(|| SecretError::Empty {
        what: what.to_string(),
        path: path.to_path_buf(),
    })
}

/// Whether `name` can stand for who acted: not blank, at most [`super::MAX_BY_CHARS`]
/// characters, no control characters, no surrounding spaces.
pub fn check_actor_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.trim() != name {
        return Err("must not begin or end with spaces".into());
    }
    if name.chars().count() > super::MAX_BY_CHARS {
        return Err(format!("is longer than {} characters", super::MAX_BY_CHARS));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}
