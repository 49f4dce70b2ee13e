//! The shape of `alertmanager.yml` as written: what serde reads, strictly (unknown keys are
//! errors), before the checks of [`super`] turn it into a validated configuration.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{IgnoredAny, Visitor};

use crate::model::PromDuration;

/// A scalar read as text, as Go's YAML decoder does for string fields (`code: 500` is `"500"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub global: Option<RawGlobal>,
    pub route: Option<RawRoute>,
    pub inhibit_rules: Option<Vec<RawInhibitRule>>,
    pub receivers: Option<Vec<RawReceiver>>,
    pub templates: Option<Vec<String>>,
    pub mute_time_intervals: Option<Vec<RawNamedInterval>>,
    pub time_intervals: Option<Vec<RawNamedInterval>>,
}

/// `global`.
#[derive(Debug, Default, Deserialize)]
#[allow(
    dead_code,
    reason = "settings of other receiver kinds are accepted and unused"
)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub resolve_timeout: Option<PromDuration>,
    pub http_config: Option<RawHttpConfig>,
    pub smtp_from: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_secret: Option<String>,
    pub smtp_auth_secret_file: Option<String>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_require_tls: Option<bool>,
    pub smtp_tls_config: Option<RawTlsConfig>,
    // Settings of receivers tradewatch does not have: accepted (URLs checked), unused.
    pub slack_api_url: Option<String>,
    pub slack_api_url_file: Option<IgnoredAny>,
    pub pagerduty_url: Option<String>,
    pub opsgenie_api_url: Option<String>,
    pub opsgenie_api_key: Option<IgnoredAny>,
    pub opsgenie_api_key_file: Option<IgnoredAny>,
    pub wechat_api_url: Option<String>,
    pub wechat_api_secret: Option<IgnoredAny>,
    pub wechat_api_corp_id: Option<IgnoredAny>,
    pub victorops_api_url: Option<String>,
    pub victorops_api_key: Option<IgnoredAny>,
    pub victorops_api_key_file: Option<IgnoredAny>,
    pub telegram_api_url: Option<String>,
    pub webex_api_url: Option<String>,
}

/// A node of the `route` tree.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub receiver: Option<String>,
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "match")]
    pub match_eq: Option<BTreeMap<String, Scalar>>,
    pub match_re: Option<BTreeMap<String, Scalar>>,
    pub matchers: Option<Vec<Scalar>>,
    pub mute_time_intervals: Option<Vec<String>>,
    pub active_time_intervals: Option<Vec<String>>,
    #[serde(rename = "continue")]
    pub continue_matching: Option<bool>,
    pub routes: Option<Vec<RawRoute>>,
    pub group_wait: Option<PromDuration>,
    pub group_interval: Option<PromDuration>,
    pub repeat_interval: Option<PromDuration>,
}

/// One of `inhibit_rules`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInhibitRule {
    pub source_match: Option<BTreeMap<String, Scalar>>,
    pub source_match_re: Option<BTreeMap<String, Scalar>>,
    pub source_matchers: Option<Vec<Scalar>>,
    pub target_match: Option<BTreeMap<String, Scalar>>,
    pub target_match_re: Option<BTreeMap<String, Scalar>>,
    pub target_matchers: Option<Vec<Scalar>>,
    pub equal: Option<Vec<String>>,
}

/// One of `receivers`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReceiver {
    pub name: Option<String>,
    pub email_configs: Option<Vec<RawEmail>>,
    pub webhook_configs: Option<Vec<RawWebhook>>,
    // Kinds Alertmanager has and tradewatch does not: refused with a clear message.
    pub discord_configs: Option<IgnoredAny>,
    pub pagerduty_configs: Option<IgnoredAny>,
    pub slack_configs: Option<IgnoredAny>,
    pub opsgenie_configs: Option<IgnoredAny>,
    pub wechat_configs: Option<IgnoredAny>,
    pub pushover_configs: Option<IgnoredAny>,
    pub victorops_configs: Option<IgnoredAny>,
    pub sns_configs: Option<IgnoredAny>,
    pub telegram_configs: Option<IgnoredAny>,
    pub webex_configs: Option<IgnoredAny>,
    pub msteams_configs: Option<IgnoredAny>,
}

impl RawReceiver {
    /// The receiver kinds set that tradewatch does not deliver to.
    pub fn unsupported(&self) -> Vec<&'static str> {
        [
            ("discord_configs", self.discord_configs.is_some()),
            ("pagerduty_configs", self.pagerduty_configs.is_some()),
            ("slack_configs", self.slack_configs.is_some()),
            ("opsgenie_configs", self.opsgenie_configs.is_some()),
            ("wechat_configs", self.wechat_configs.is_some()),
            ("pushover_configs", self.pushover_configs.is_some()),
            ("victorops_configs", self.victorops_configs.is_some()),
            ("sns_configs", self.sns_configs.is_some()),
            ("telegram_configs", self.telegram_configs.is_some()),
            ("webex_configs", self.webex_configs.is_some()),
            ("msteams_configs", self.msteams_configs.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// One of a receiver's `email_configs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEmail {
    pub send_resolved: Option<bool>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub hello: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<String>,
    pub auth_identity: Option<String>,
    pub headers: Option<BTreeMap<String, Scalar>>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub require_tls: Option<bool>,
    pub tls_config: Option<RawTlsConfig>,
}

/// One of a receiver's `webhook_configs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpConfig>,
    pub url: Option<String>,
    pub url_file: Option<String>,
    pub max_alerts: Option<u64>,
}

/// Prometheus's `http_config` (the parts tradewatch uses; proxies and OAuth 2 are refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpConfig {
    pub basic_auth: Option<RawBasicAuth>,
    pub authorization: Option<RawAuthorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<RawTlsConfig>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub oauth2: Option<IgnoredAny>,
    pub proxy_url: Option<IgnoredAny>,
    pub no_proxy: Option<IgnoredAny>,
    pub proxy_from_environment: Option<IgnoredAny>,
    pub proxy_connect_header: Option<IgnoredAny>,
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub username: Option<String>,
    pub username_file: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsConfig {
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub cert: Option<String>,
    pub cert_file: Option<String>,
    pub key: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

/// One of `time_intervals` or `mute_time_intervals`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamedInterval {
    pub name: Option<String>,
    pub time_intervals: Option<Vec<RawTimeInterval>>,
}

/// One interval of a named set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeInterval {
    pub times: Option<Vec<RawTimeRange>>,
    pub weekdays: Option<Vec<Scalar>>,
    pub days_of_month: Option<Vec<Scalar>>,
    pub months: Option<Vec<Scalar>>,
    pub years: Option<Vec<Scalar>>,
    pub location: Option<String>,
}

/// `{start_time, end_time}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeRange {
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}
