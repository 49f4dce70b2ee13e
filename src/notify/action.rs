//! One-tap action links (DESIGN §3): each firing alert of a notification carries links to
//! acknowledge it and to silence it for an hour, four hours or until the end of the day in the
//! configured zone. A link is `<external_url>/a/<token>`; the token holds the action, the
//! alert (fingerprint, labels) and an expiry, signed with HMAC-SHA256 under the key of
//! `notifier.action_links.secret_file` (or one generated into the data directory). The API
//! (`crate::api::action`) shows a confirm page on GET and performs the action on POST, once.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use std::time::Duration;
//! use tradewatch::notify::action::{ActionLinks, LinkError};
//!
//! let links = ActionLinks::new(b"0123456789abcdef0123456789abcdef".to_vec(),
//!     Duration::from_secs(3600), "http://trading-box:9470", "UTC").unwrap();
//! let alert = tradewatch::notify::Alert {
//!     labels: [("alertname".to_string(), "TradingKillSwitchActive".to_string())].into(),
//!     annotations: Default::default(),
//!     starts_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
//!     ends_at: Utc.timestamp_opt(1_700_009_000, 0).unwrap(),
//!     updated_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
//!     generator_url: String::new(),
//!     timeout: false,
//! };
//! let now = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
//! let made = links.for_alert(&alert, now);
//! assert_eq!(made[0].label, "Acknowledge");
//! let token = made[0].url.rsplit('/').next().unwrap();
//! assert!(links.verify(token, now).is_ok());
//! let later = Utc.timestamp_opt(1_700_003_800, 0).unwrap();
//! assert!(matches!(links.verify(token, later), Err(LinkError::Expired)));
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Alert;
use super::email::Link;
use crate::config::ActionLinksConfig;

/// The file a generated key is kept in, in the data directory.
pub const GENERATED_KEY_FILE: &str = "action_links.key";

/// Shortest key accepted from `secret_file`, in bytes.
const MIN_KEY_LEN: usize = 16;

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Acknowledge the alert.
    #[serde(rename = "ack")]
    Acknowledge,
    /// Silence it for an hour.
    #[serde(rename = "s1h")]
    Silence1h,
    /// Silence it for four hours.
    #[serde(rename = "s4h")]
    Silence4h,
    /// Silence it until midnight in the configured zone.
    #[serde(rename = "seod")]
    SilenceEndOfDay,
}

impl Action {
    /// Every action, in the order links are shown.
    pub const ALL: [Action; 4] = [
        Action::Acknowledge,
        Action::Silence1h,
        Action::Silence4h,
        Action::SilenceEndOfDay,
    ];

    /// What it does, as the confirm page says it.
    pub fn description(self) -> &'static str {
        match self {
            Action::Acknowledge => "Acknowledge",
            Action::Silence1h => "Silence for 1 hour",
            Action::Silence4h => "Silence for 4 hours",
            Action::SilenceEndOfDay => "Silence until the end of the day",
        }
    }

    /// The button's text.
    pub fn label(self) -> &'static str {
        match self {
            Action::Acknowledge => "Acknowledge",
            Action::Silence1h => "Silence 1h",
            Action::Silence4h => "Silence 4h",
            Action::SilenceEndOfDay => "Silence until end of day",
        }
    }
}

/// What a token says; signed, so every field is as tradewatch wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The action.
    #[serde(rename = "a")]
    pub action: Action,
    /// The alert's fingerprint, 16 hex digits.
    #[serde(rename = "f")]
    pub fingerprint: String,
    /// The alert's labels (a silence matches them all).
    #[serde(rename = "l")]
    pub labels: BTreeMap<String, String>,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// A random id: the link can be used once.
    #[serde(rename = "n")]
    pub id: String,
}

impl Claims {
    /// The alert's name.
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token, or signed with another key, or altered.
    #[error("this link is not valid: it was altered or not made by this tradewatch")]
    BadSignature,
    /// Past its expiry.
    #[error("this link has expired")]
    Expired,
}

impl LinkError {
    /// The outcome label of `tradewatch_action_links_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            LinkError::BadSignature => "bad_signature",
            LinkError::Expired => "expired",
        }
    }
}

/// Why the links cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ActionLinksError {
    /// The key file could not be read or written.
    #[error("action_links: {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key is too short.
    #[error("action_links: {path}: the key must hold at least {MIN_KEY_LEN} bytes")]
    ShortKey {
        /// The file.
        path: PathBuf,
    },
    /// The time zone is not an IANA zone.
    #[error("action_links: unknown time zone {0:?}")]
    TimeZone(String),
}

/// Makes and checks action links.
pub struct ActionLinks {
    key: Vec<u8>,
    ttl: Duration,
    base: String,
    zone: Zone,
}

impl std::fmt::Debug for ActionLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionLinks")
            .field("ttl", &self.ttl)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
enum Zone {
    Utc,
    Local,
    Named(chrono_tz::Tz),
}

impl ActionLinks {
    /// Links signed with `key`, valid for `ttl`, under `external_url`; "end of the day" is
    /// midnight in `timezone` (an IANA name, `UTC` or `Local`).
    pub fn new(
        key: Vec<u8>,
        ttl: Duration,
        external_url: &str,
        timezone: &str,
    ) -> Result<ActionLinks, ActionLinksError> {
        let zone = match timezone {
            "UTC" => Zone::Utc,
            "Local" => Zone::Local,
            name => Zone::Named(
                name.parse()
                    .map_err(|_| ActionLinksError::TimeZone(name.to_owned()))?,
            ),
        };
        Ok(ActionLinks {
            key,
            ttl,
            base: external_url.trim_end_matches('/').to_owned(),
            zone,
        })
    }

    /// The links of `notifier.action_links`: the key read from `secret_file`, or from
    /// `<data_dir>/action_links.key`, which is generated (32 random bytes, hex, mode 0600)
    /// when absent.
    pub fn load(
        config: &ActionLinksConfig,
        data_dir: &Path,
        external_url: &str,
        timezone: &str,
    ) -> Result<ActionLinks, ActionLinksError> {
        let key = match &config.secret_file {
            Some(path) => read_key(path)?,
            None => generated_key(&data_dir.join(GENERATED_KEY_FILE))?,
        };
        ActionLinks::new(key, config.ttl.0, external_url, timezone)
    }

    /// A token for `claims`: the claims as JSON, base64url, a dot, and the HMAC-SHA256 of
    /// that first part, base64url.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims)
            .unwrap_or_else(|e| unreachable!("claims of strings serialize: {e}"));
        let body = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The claims of `token` if its signature holds and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, LinkError> {
        let (body, signature) = token.split_once('.').ok_or(LinkError::BadSignature)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::BadSignature)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| LinkError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| LinkError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| LinkError::BadSignature)?;
        if now.timestamp() >= claims.expires {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    /// The links shown with `alert` in a notification made at `now`: none for a resolved
    /// alert.
    pub fn for_alert(&self, alert: &Alert, now: DateTime<Utc>) -> Vec<Link> {
        if alert.resolved_at(now) {
            return Vec::new();
        }
        let expires = now.timestamp() + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        Action::ALL
            .into_iter()
            .map(|action| {
                let claims = Claims {
                    action,
                    fingerprint: alert.fingerprint().to_string(),
                    labels: alert.labels.clone(),
                    expires,
                    id: random_hex(12),
                };
                Link {
                    label: action.label().to_owned(),
                    url: format!("{}/a/{}", self.base, self.sign(&claims)),
                }
            })
            .collect()
    }

    /// When a silence made by `action` at `now` ends (`None` for an acknowledgement).
    pub fn silence_end(&self, action: Action, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match action {
            Action::Acknowledge => None,
            Action::Silence1h => Some(now + chrono::Duration::hours(1)),
            Action::Silence4h => Some(now + chrono::Duration::hours(4)),
            Action::SilenceEndOfDay => Some(match self.zone {
                Zone::Utc => next_midnight(&Utc, now),
                Zone::Local => next_midnight(&chrono::Local, now),
                Zone::Named(tz) => next_midnight(&tz, now),
            }),
        }
    }

    /// `at` as people read it in the configured zone (`Sun 6 Dec 23:59 EST`).
    pub fn show_time(&self, at: DateTime<Utc>) -> String {
        const FORMAT: &str = "%a %-d %b %H:%M %Z";
        match self.zone {
            Zone::Utc => at.format(FORMAT).to_string(),
            Zone::Local => at
                .with_timezone(&chrono::Local)
                .format("%a %-d %b %H:%M")
                .to_string(),
            Zone::Named(tz) => at.with_timezone(&tz).format(FORMAT).to_string(),
        }
    }
}

/// The first midnight after `now` in `zone` (the first instant of the next day; when that day
/// starts in a gap, its first valid instant).
fn next_midnight<Z: TimeZone>(zone: &Z, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(zone).date_naive();
    let tomorrow = local.checked_add_days(Days::new(1)).unwrap_or(local);
    let mut at = tomorrow.and_time(NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(t) = zone.from_local_datetime(&at).earliest() {
            return t.with_timezone(&Utc);
        }
        at += chrono::Duration::minutes(30);
    }
    now + chrono::Duration::days(1)
}

fn read_key(path: &Path) -> Result<Vec<u8>, ActionLinksError> {
    let text = std::fs::read(path).map_err(|source| ActionLinksError::Key {
        path: path.to_owned(),
        source,
    })?;
    let key = text.trim_ascii().to_vec();
    if key.len() < MIN_KEY_LEN {
        return Err(ActionLinksError::ShortKey {
            path: path.to_owned(),
        });
    }
    Ok(key)
}

fn generated_key(path: &Path) -> Result<Vec<u8>, ActionLinksError> {
    if path.exists() {
        return read_key(path);
    }
    let err = |source| ActionLinksError::Key {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let key = random_hex(32);
    // Written aside and renamed, so a crash never leaves a short key behind.
    let tmp = path.with_extension("key.tmp");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(err)?;
        file.write_all(format!("{key}\n").as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    tracing::info!(file = %path.display(), "Generated the action link signing key.");
    Ok(key.into_bytes())
}

/// `bytes` random bytes from the system's source, as hex.
fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .expect("the system's random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(zone: &str) -> ActionLinks {
        ActionLinks::new(
            b"k3y-k3y-k3y-k3y-k3y".to_vec(),
            Duration::from_secs(3600),
            "http://trading-box:9470/",
            zone,
        )
        .unwrap()
    }

    fn claims() -> Claims {
        Claims {
            action: Action::Silence4h,
            fingerprint: "0123456789abcdef".into(),
            labels: [("alertname".to_string(), "X".to_string())].into(),
            expires: 1_700_003_600,
            id: "abc".into(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn a_token_reads_back_until_it_expires() {
        let l = links("UTC");
        let token = l.sign(&claims());
        assert_eq!(l.verify(&token, at(1_700_003_599)), Ok(claims()));
        assert_eq!(l.verify(&token, at(1_700_003_600)), Err(LinkError::Expired));
    }

    #[test]
    fn an_altered_token_or_another_key_is_refused() {
        let l = links("UTC");
        let token = l.sign(&claims());
        let now = at(1_700_000_000);
        // Another action written into the claims, with the old signature.
        let mut other = claims();
        other.action = Action::Acknowledge;
        let forged = format!(
            "{}.{}",
            l.sign(&other).split_once('.').unwrap().0,
            token.split_once('.').unwrap().1
        );
        assert_eq!(l.verify(&forged, now), Err(LinkError::BadSignature));
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(l.verify(&flipped, now), Err(LinkError::BadSignature));
        for junk in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert_eq!(l.verify(junk, now), Err(LinkError::BadSignature), "{junk}");
        }
        let other_key =
            ActionLinks::new(b"another-key-entirely".to_vec(), Duration::ZERO, "", "UTC").unwrap();
        assert_eq!(other_key.verify(&token, now), Err(LinkError::BadSignature));
    }

    #[test]
    fn silences_end_after_their_span_or_at_midnight_in_the_zone() {
        let now = at(1_700_000_000); // Tue 14 Nov 2023 22:13:20 UTC, 17:13:20 in New York
        let l = links("America/New_York");
        assert_eq!(l.silence_end(Action::Acknowledge, now), None);
        assert_eq!(
            l.silence_end(Action::Silence1h, now),
            Some(at(1_700_003_600))
        );
        assert_eq!(
            l.silence_end(Action::Silence4h, now),
            Some(at(1_700_014_400))
        );
        // Midnight of Wed 15 Nov in New York is 05:00 UTC.
        assert_eq!(
            l.silence_end(Action::SilenceEndOfDay, now),
            Some(Utc.with_ymd_and_hms(2023, 11, 15, 5, 0, 0).unwrap())
        );
        assert_eq!(
            links("UTC").silence_end(Action::SilenceEndOfDay, now),
            Some(Utc.with_ymd_and_hms(2023, 11, 15, 0, 0, 0).unwrap())
        );
        assert_eq!(l.show_time(at(1_700_003_600)), "Tue 14 Nov 18:13 EST");
    }

    #[test]
    fn links_for_a_firing_alert_only() {
        let l = links("UTC");
        let mut alert = Alert {
            labels: [("alertname".to_string(), "X".to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: at(0),
            ends_at: at(2_000_000_000),
            updated_at: at(0),
            generator_url: String::new(),
            timeout: false,
        };
        let now = at(1_700_000_000);
        let made = l.for_alert(&alert, now);
        let labels: Vec<&str> = made.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Acknowledge",
                "Silence 1h",
                "Silence 4h",
                "Silence until end of day"
            ]
        );
        for link in &made {
            let token = link.url.strip_prefix("http://trading-box:9470/a/").unwrap();
            let claims = l.verify(token, now).unwrap();
            assert_eq!(claims.fingerprint, alert.fingerprint().to_string());
            assert_eq!(claims.expires, 1_700_003_600);
        }
        let ids: std::collections::BTreeSet<String> = made
            .iter()
            .map(|m| l.verify(m.url.rsplit('/').next().unwrap(), now).unwrap().id)
            .collect();
        assert_eq!(ids.len(), 4, "each link its own id");
        alert.ends_at = at(1_600_000_000);
        assert!(l.for_alert(&alert, now).is_empty());
    }

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = ActionLinksConfig {
            secret_file: None,
            ttl: crate::model::PromDuration::from_secs(60),
        };
        let a = ActionLinks::load(&config, dir.path(), "http://x", "UTC").unwrap();
        let path = dir.path().join(GENERATED_KEY_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = ActionLinks::load(&config, dir.path(), "http://x", "UTC").unwrap();
        let token = a.sign(&claims());
        assert!(
            b.verify(&token, at(0)).is_ok(),
            "the same key after a restart"
        );

        std::fs::write(dir.path().join("short"), "tiny\n").unwrap();
        let short = ActionLinksConfig {
            secret_file: Some(dir.path().join("short")),
            ..config
        };
        let err = ActionLinks::load(&short, dir.path(), "http://x", "UTC").unwrap_err();
        assert!(err.to_string().contains("at least 16 bytes"), "{err}");
    }
}
