//! Loading the configuration file: every failure case has a fixture under `tests/data/config/`
//! and its exact message, with line and column.

use std::ffi::OsString;
use std::path::Path;

use tradewatch::config::{AuthConfig, Config, ConfigError, FsyncMode};

const DIR: &str = "tests/data/config";

fn load(name: &str) -> Result<Config, ConfigError> {
    Config::load(&Path::new(DIR).join(name))
}

/// The error message of a fixture that must fail, with the directory stripped.
fn error(name: &str) -> String {
    match load(name) {
        Ok(_) => panic!("{name} loaded but should have failed"),
        Err(error) => error.to_string().replace(&format!("{DIR}/"), ""),
    }
}

#[test]
fn unknown_key_at_top_level() {
    assert_eq!(
        error("unknown_key_top.yaml"),
        "unknown_key_top.yaml:3:1: unknown field `servre`, expected one of `server`, `storage`, `exporter`, `sidecar`, `notifier`"
    );
}

#[test]
fn unknown_key_in_a_section() {
    assert_eq!(
        error("unknown_key_nested.yaml"),
        "unknown_key_nested.yaml:3:5: server.auth: unknown field `ingest_token_fil`, expected one of `ingest_token_file`, `ingest_token_env`, `admin_token_file`, `admin_token_env`, `read_token_file`, `read_token_env`"
    );
}

#[test]
fn unknown_key_deep_in_a_list() {
    assert_eq!(
        error("unknown_key_deep.yaml"),
        "unknown_key_deep.yaml:9:13: exporter.collectors.json[0].values[0]: unknown field `unit`, expected one of `metric`, `pointer`, `type`, `help`"
    );
}

#[test]
fn bad_duration() {
    assert_eq!(
        error("bad_duration.yaml"),
        "bad_duration.yaml:3:22: storage.snapshot_interval: unknown unit \" minutes\" in duration \"5 minutes\""
    );
}

#[test]
fn bad_durations_are_all_reported_with_other_problems() {
    assert_eq!(
        error("many_durations.yaml"),
        [
            "many_durations.yaml:3:22: storage.snapshot_interval: unknown unit \" minutes\" in duration \"5 minutes\"",
            "many_durations.yaml:4:22: storage.journal_retention: unknown unit \" days\" in duration \"90 days\"",
            "many_durations.yaml:7:21: sidecar.outage_tolerance: not a valid duration string: \"30m1h\"",
            "many_durations.yaml:8:21: sidecar.external_labels.bad-name: invalid label name \"bad-name\"",
            "many_durations.yaml:10:21: notifier.outbox.max_age: unknown unit \"x\" in duration \"1x\"",
        ]
        .join("\n")
    );
}

#[test]
fn bad_enum_value() {
    assert_eq!(
        error("bad_fsync.yaml"),
        "bad_fsync.yaml:2:10: storage.fsync: unknown variant `sometimes`, expected one of `batch`, `interval`, `never`"
    );
}

#[test]
fn bucket_list_not_increasing() {
    assert_eq!(
        error("bad_buckets.yaml"),
        "bad_buckets.yaml:3:50: exporter.buckets.trading_order_latency_seconds[2]: bucket 3 (0.005) must be greater than bucket 2 (0.01)"
    );
}

#[test]
fn negative_buckets() {
    assert_eq!(
        error("negative_buckets.yaml"),
        "negative_buckets.yaml:3:37: exporter.buckets.trading_order_latency_seconds[0]: bucket 1 must be ≥ 0, not -1 (observations are never negative)"
    );
}

#[test]
fn token_from_file_and_env() {
    assert_eq!(
        error("token_file_and_env.yaml"),
        "token_file_and_env.yaml:4:5: server.auth.ingest_token_env: ingest_token_file and ingest_token_env are mutually exclusive"
    );
}

#[test]
fn remote_and_scrape_targets() {
    assert_eq!(
        error("remote_and_targets.yaml"),
        "remote_and_targets.yaml:5:3: sidecar.remote: remote and scrape.targets are mutually exclusive: rules read either a remote API or scraped targets"
    );
}

#[test]
fn bad_scrape_sizes_and_limits() {
    let units =
        "use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB";
    assert_eq!(
        error("scrape_limits.yaml"),
        [
            format!("scrape_limits.yaml:5:22: sidecar.scrape.body_size_limit: unknown unit \" MB\" in size \"10 MB\": {units}, not both kinds in one size"),
            format!("scrape_limits.yaml:9:26: sidecar.scrape.targets[0].body_size_limit: unknown unit \"kb\" in size \"512kb\": {units}, not both kinds in one size"),
            "scrape_limits.yaml:13:18: sidecar.scrape.targets[1].timeout: timeout (3s) must not be longer than interval (2s)".to_owned(),
            "scrape_limits.yaml:14:9: sidecar.scrape.targets[2]: same url, job and labels as targets[0]: a target is scraped once".to_owned(),
            format!("scrape_limits.yaml:16:26: sidecar.scrape.targets[2].body_size_limit: missing unit in size \"10\": {units}"),
        ]
        .join("\n")
    );
}

#[test]
fn notifier_config_file_and_inline() {
    assert_eq!(
        error("notifier_config_twice.yaml"),
        "notifier_config_twice.yaml:3:3: notifier.config: config_file and config are mutually exclusive"
    );
}

#[test]
fn bad_label_name() {
    assert_eq!(
        error("bad_label_name.yaml"),
        "bad_label_name.yaml:4:5: sidecar.external_labels.trading-desk: invalid label name \"trading-desk\""
    );
}

#[test]
fn syntax_error() {
    assert_eq!(
        error("syntax_error.yaml"),
        "syntax_error.yaml:4:8: did not find expected ',' or '}', while parsing a flow mapping at line 3 column 8"
    );
}

#[test]
fn type_error() {
    assert_eq!(
        error("type_error.yaml"),
        "type_error.yaml:3:21: exporter.limits.max_body_bytes: invalid type: string \"lots\", expected u64"
    );
}

#[test]
fn every_semantic_error_is_reported_in_file_order() {
    let error = load("many_errors.yaml").unwrap_err();
    assert_eq!(error.diagnostics().len(), 11);
    assert_eq!(
        error.to_string().replace(&format!("{DIR}/"), ""),
        [
            "many_errors.yaml:5:5: server.auth.admin_token_env: admin_token_file and admin_token_env are mutually exclusive",
            "many_errors.yaml:8:5: exporter.buckets.0bad: invalid metric name \"0bad\"",
            "many_errors.yaml:9:37: exporter.buckets.trading_cycle_duration_seconds: bucket list must not be empty",
            "many_errors.yaml:10:38: exporter.buckets.trading_lock_wait_seconds[1]: bucket 2 must be finite, not inf (the +Inf bucket is implied)",
            "many_errors.yaml:12:21: sidecar.external_labels.__env: label name \"__env\" is reserved (names starting with __ are internal)",
            "many_errors.yaml:15:14: sidecar.scrape.timeout: timeout (5s) must not be longer than interval (1s)",
            "many_errors.yaml:18:14: sidecar.alerting.alertmanagers[0].url: invalid url \"alertmanager:9093\": scheme must be http or https, not alertmanager",
            "many_errors.yaml:20:17: notifier.external_url: invalid url \"not a url\": relative URL without a base",
            "many_errors.yaml:22:20: notifier.outbox.backoff.min: backoff min (10m) must not exceed max (5m)",
            "many_errors.yaml:24:18: notifier.escalations[0].matchers[0]: invalid matcher \"severity\": no operator (=, !=, =~, !~)",
            "many_errors.yaml:25:14: notifier.escalations[0].after: must be greater than 0s",
        ]
        .join("\n")
    );
}

#[test]
fn missing_file() {
    let message = load("no_such_file.yaml").unwrap_err().to_string();
    assert!(
        message.starts_with("failed to read config file tests/data/config/no_such_file.yaml: "),
        "{message}"
    );
}

#[test]
fn full_example_loads() {
    let config = load("full.yaml").unwrap();
    assert_eq!(config.server.listen, Some("0.0.0.0:9470".parse().unwrap()));
    assert_eq!(config.storage.fsync, FsyncMode::Interval);
    assert_eq!(config.storage.fsync_interval.to_string(), "500ms");
    assert_eq!(config.storage.alert_log_retention.to_string(), "1y");
    assert_eq!(config.exporter.limits.max_labels_per_metric, 8);
    assert_eq!(
        config.exporter.buckets["trading_cycle_duration_seconds"].len(),
        7
    );
    assert_eq!(config.exporter.collectors.json[0].labels.len(), 2);
    assert_eq!(
        config.exporter.collectors.sqlite[0].queries[0].label_columns,
        ["venue"]
    );
    assert_eq!(
        config.sidecar.self_.instance.as_deref(),
        Some("trading-box:9470")
    );
    assert_eq!(
        config.sidecar.scrape.targets[0].labels["engine_host"],
        "trading-box"
    );
    let scrape = &config.sidecar.scrape;
    let target = &scrape.targets[0];
    assert_eq!(scrape.body_size_limit.bytes(), 32 << 20);
    assert_eq!(scrape.body_size_limit_of(target).bytes(), 8 << 20);
    assert_eq!(scrape.sample_limit_of(target), 50_000);
    assert_eq!(scrape.interval_of(target).to_string(), "2s");
    assert_eq!(scrape.timeout_of(target).to_string(), "500ms");
    assert_eq!(config.notifier.timezone, "America/New_York");
    assert_eq!(config.notifier.escalations[0].after.to_string(), "10m");
    assert_eq!(
        config.notifier.receivers["ops-webhook"]
            .webhook
            .as_ref()
            .unwrap()
            .headers["X-Desk"],
        "equities"
    );
    assert_eq!(
        config.notifier.receivers["trader-email"]
            .email
            .as_ref()
            .unwrap()
            .auth_password_env
            .as_deref(),
        Some("SMTP_PASSWORD")
    );
}

#[test]
fn remote_example_loads_with_inline_alertmanager_config() {
    let config = load("remote.yaml").unwrap();
    let remote = config.sidecar.remote.unwrap();
    assert_eq!(
        remote.write_url.as_deref(),
        Some("http://prometheus:9090/api/v1/write")
    );
    assert_eq!(
        remote.auth.basic_auth.unwrap().password_env.as_deref(),
        Some("PROM_PASSWORD")
    );
    let inline = config.notifier.config.unwrap();
    assert_eq!(inline["route"]["receiver"], "ops");
    assert_eq!(
        inline["receivers"][0]["webhook_configs"][0]["url"],
        "http://hooks:8080/alert"
    );
}

#[test]
fn bundled_config_loads() {
    let config = Config::bundled();
    assert_eq!(
        config.server.listen,
        Some("127.0.0.1:9470".parse().unwrap())
    );
    assert_eq!(config.storage.data_dir, Path::new("./tradewatch-data"));
}

#[test]
fn tokens_from_a_file_and_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ingest.token");
    std::fs::write(&file, "s3cret-ingest\n").unwrap();
    let auth = AuthConfig {
        ingest_token_file: Some(file),
        admin_token_env: Some("TW_TEST_ADMIN".to_owned()),
        ..AuthConfig::default()
    };
    let env = |var: &str| (var == "TW_TEST_ADMIN").then(|| OsString::from("s3cret-admin"));
    let tokens = auth.load_tokens_with(env).unwrap();
    assert_eq!(tokens.ingest.as_ref().unwrap().expose(), "s3cret-ingest");
    assert!(tokens.admin.as_ref().unwrap().matches(b"s3cret-admin"));
    assert!(!tokens.admin.as_ref().unwrap().matches(b"s3cret-admiN"));
    assert!(tokens.read.is_none());
    // Neither Debug nor Display shows a secret.
    let shown = format!("{tokens:?} {}", tokens.ingest.as_ref().unwrap());
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("***"));
}

#[test]
fn token_from_the_real_environment() {
    // PATH is set wherever tests run; reading it proves the default lookup is the environment.
    let auth = AuthConfig {
        read_token_env: Some("PATH".to_owned()),
        ..AuthConfig::default()
    };
    let tokens = auth.load_tokens().unwrap();
    assert!(!tokens.read.unwrap().expose().is_empty());
}

#[test]
fn token_errors_name_the_source_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let auth = AuthConfig {
        admin_token_file: Some(empty.clone()),
        ..AuthConfig::default()
    };
    assert_eq!(
        auth.load_tokens().unwrap_err().to_string(),
        format!("admin token file {} is empty", empty.display())
    );

    let missing = dir.path().join("missing.token");
    let auth = AuthConfig {
        read_token_file: Some(missing.clone()),
        ..AuthConfig::default()
    };
    let message = auth.load_tokens().unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "failed to read read token file {}: ",
            missing.display()
        )),
        "{message}"
    );

    let auth = AuthConfig {
        ingest_token_env: Some("TW_TEST_INGEST".to_owned()),
        ..AuthConfig::default()
    };
    let unset = auth.load_tokens_with(|_| None).unwrap_err().to_string();
    assert_eq!(
        unset,
        "environment variable TW_TEST_INGEST for the ingest token is not set"
    );
    let empty_env = auth
        .load_tokens_with(|_| Some(OsString::new()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        empty_env,
        "environment variable TW_TEST_INGEST for the ingest token is empty"
    );

    let both = AuthConfig {
        ingest_token_file: Some(empty),
        ingest_token_env: Some("TW_TEST_INGEST".to_owned()),
        ..AuthConfig::default()
    };
    assert_eq!(
        both.load_tokens().unwrap_err().to_string(),
        "ingest_token_file and ingest_token_env are mutually exclusive"
    );
}
