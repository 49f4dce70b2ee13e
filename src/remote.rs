//! The sidecar's remote mode (`sidecar.remote`): whole rule expressions evaluated by a
//! Prometheus-compatible API (`/api/v1/query`), as vmalert does, so the same rules run against
//! Prometheus, Thanos, Mimir or VictoriaMetrics; recording-rule results and `ALERTS` written back
//! with Prometheus remote write.
//!
//! ```
//! use tradewatch::model::labels::Labels;
//! use tradewatch::promql::InstantSample;
//! use tradewatch::remote::write::encode;
//!
//! let sample = InstantSample {
//!     labels: Labels::from_pairs([("__name__", "up")]),
//!     t: 1,
//!     f: 1.0,
//! };
//! // One TimeSeries with one label and one sample, before snappy.
//! let bytes = encode(&[sample]);
//! assert_eq!(bytes[0], 0x0a);
//! assert_eq!(bytes.len(), 2 + 2 + 14 + 2 + 11);
//! ```

pub mod query;
pub mod write;

use crate::config::ConfigError;
use crate::config::server::{Secret, read_secret_env, read_secret_file};
use crate::config::sidecar::RemoteAuth;

pub use query::{QueryClient, RemoteError};
pub use write::{RemoteWriter, WriteStats};

/// Credentials sent to the remote API and the remote-write endpoint.
#[derive(Clone, Default)]
pub enum Auth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

impl Auth {
    /// Reads the secrets `auth` names (files relative to the working directory).
    pub fn load(auth: &RemoteAuth) -> Result<Auth, ConfigError> {
        if let Some(path) = &auth.bearer_token_file {
            return Ok(Auth::Bearer(read_secret_file(
                path,
                "sidecar.remote bearer",
            )?));
        }
        let Some(basic) = &auth.basic_auth else {
            return Ok(Auth::None);
        };
        let what = "sidecar.remote basic_auth password";
        let password = match (&basic.password_file, &basic.password_env) {
            (Some(path), _) => read_secret_file(path, what)?,
            (None, Some(var)) => read_secret_env(var, what, |v| std::env::var_os(v))?,
            (None, None) => Secret::new(""),
        };
        Ok(Auth::Basic {
            username: basic.username.clone(),
            password,
        })
    }

    /// `request` with these credentials.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
        }
    }
}

/// The message of `e` with its sources, as `a: b: c` (reqwest's own message leaves out the
/// cause, "connection refused" say).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
