//! The `server` section: the listener, TLS, and the tokens that guard each kind of endpoint.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::check::Checker;

/// The one listener of a process and how it is guarded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; unset means the role's default (`127.0.0.1:9470` for `exporter`,
    /// `run` and `demo`, `127.0.0.1:9471` for `sidecar`). `--listen` overrides it.
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Bearer tokens, each enforced on its endpoints when set.
    pub auth: AuthConfig,
}

/// A PEM certificate chain and private key for the listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM file with the private key.
    pub key_file: PathBuf,
}

/// Where the bearer tokens come from: for each token a file or an environment variable, not both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// File holding the token required by `POST /api/v1/events` and `POST /api/v2/alerts`.
    pub ingest_token_file: Option<PathBuf>,
    /// Environment variable holding the ingest token.
    pub ingest_token_env: Option<String>,
    /// File holding the token required for silences, acks, outbox retries and reloads.
    pub admin_token_file: Option<PathBuf>,
    /// Environment variable holding the admin token.
    pub admin_token_env: Option<String>,
    /// File holding the token required by the read endpoints (every `GET` but `/metrics`,
    /// `/-/healthy`, `/-/ready` and action links).
    pub read_token_file: Option<PathBuf>,
    /// Environment variable holding the read token.
    pub read_token_env: Option<String>,
}

/// The tokens loaded from [`AuthConfig`]; a token that is `None` is not enforced.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Guards ingest endpoints.
    pub ingest: Option<Secret>,
    /// Guards admin endpoints.
    pub admin: Option<Secret>,
    /// Guards read endpoints.
    pub read: Option<Secret>,
}

/// A secret string that never shows in `Debug` or `Display` (both print `***`).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the few places that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret, in time that depends only on the candidate's
    /// length, not on where the first difference is.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let secret = self.0.as_bytes();
        let mut difference = secret.len() ^ candidate.len();
        if secret.is_empty() {
            return candidate.is_empty();
        }
        for (i, byte) in candidate.iter().enumerate() {
            difference |= usize::from(secret[i % secret.len()] ^ byte);
        }
        std::hint::black_box(difference) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The three tokens, their names in messages and their fields.
const TOKENS: [(&str, &str, &str); 3] = [
    ("ingest", "ingest_token_file", "ingest_token_env"),
    ("admin", "admin_token_file", "admin_token_env"),
    ("read", "read_token_file", "read_token_env"),
];

impl AuthConfig {
    fn sources(&self) -> [(Option<&Path>, Option<&str>); 3] {
        [
            (
                self.ingest_token_file.as_deref(),
                self.ingest_token_env.as_deref(),
            ),
            (
                self.admin_token_file.as_deref(),
                self.admin_token_env.as_deref(),
            ),
            (
                self.read_token_file.as_deref(),
                self.read_token_env.as_deref(),
            ),
        ]
    }

    /// Reads each configured token from its file (a trailing newline is dropped) or environment
    /// variable. An unreadable or empty file, or an unset or empty variable, is an error that
    /// names the file or variable, never the value.
    pub fn load_tokens(&self) -> Result<Tokens, ConfigError> {
        self.load_tokens_with(|var| std::env::var_os(var))
    }

    /// [`AuthConfig::load_tokens`] with environment variables looked up by `lookup`.
    pub fn load_tokens_with(
        &self,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Tokens, ConfigError> {
        let mut loaded = [None, None, None];
        for (slot, ((token, file_field, env_field), (file, env))) in
            loaded.iter_mut().zip(TOKENS.iter().zip(self.sources()))
        {
            *slot = match (file, env) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::TokenConflict {
                        file_field,
                        env_field,
                    });
                }
                (Some(path), None) => Some(read_secret_file(path, token)?),
                (None, Some(var)) => Some(read_secret_env(var, token, &lookup)?),
                (None, None) => None,
            };
        }
        let [ingest, admin, read] = loaded;
        Ok(Tokens {
            ingest,
            admin,
            read,
        })
    }
}

/// Reads a secret from a file, dropping a trailing newline; `what` names it in errors.
pub(crate) fn read_secret_file(path: &Path, what: &'static str) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(ConfigError::EmptySecretFile {
            what,
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(value))
}

/// Reads a secret from an environment variable; `what` names it in errors.
pub(crate) fn read_secret_env(
    var: &str,
    what: &'static str,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<Secret, ConfigError> {
    let problem = |problem| ConfigError::SecretEnv {
        what,
        var: var.to_owned(),
        problem,
    };
    let value = lookup(var).ok_or_else(|| problem("is not set"))?;
    let value = value
        .into_string()
        .map_err(|_| problem("is not valid UTF-8"))?;
    if value.is_empty() {
        return Err(problem("is empty"));
    }
    Ok(Secret::new(value))
}

impl ServerConfig {
    pub(crate) fn check(&self, c: &mut Checker<'_>) {
        if let Some(tls) = &self.tls {
            c.within("tls", |c| {
                c.non_empty_path("cert_file", &tls.cert_file);
                c.non_empty_path("key_file", &tls.key_file);
            });
        }
        c.within("auth", |c| {
            for ((_, file_field, env_field), (file, env)) in TOKENS.iter().zip(self.auth.sources())
            {
                c.exclusive(file_field, file.is_some(), env_field, env.is_some());
                if let Some(path) = file {
                    c.non_empty_path(file_field, path);
                }
                if let Some(var) = env {
                    check_env_name(c, env_field, var);
                }
            }
        });
    }
}

/// `field` names an environment variable: non-empty, without `=` or NUL.
pub(crate) fn check_env_name(c: &mut Checker<'_>, field: &str, var: &str) {
    if var.is_empty() || var.contains(['=', '\0']) {
        c.field_error(field, format!("invalid environment variable name {var:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hides_itself_and_compares() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert!(secret.matches(b"hunter2"));
        assert!(!secret.matches(b"hunter3"));
        assert!(!secret.matches(b"hunter"));
        assert!(!secret.matches(b"hunter22"));
        assert!(!secret.matches(b""));
        assert_eq!(secret.expose(), "hunter2");
    }
}
