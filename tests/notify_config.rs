//! The notifier's Alertmanager configuration: every fixture under `tests/data/notify/invalid`
//! fails with exactly the messages listed here (all problems at once, each located), the valid
//! ones load with Alertmanager's defaults, the inline `notifier.config` form is read from a
//! tradewatch configuration with positions in that file, and the real `amtool check-config`
//! agrees with us on which fixtures are valid.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tradewatch::notify::config::{AlertmanagerConfig, IntegrationKind, NotifyConfigError};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/notify");

/// `amtool` (Debian's `prometheus-alertmanager`).
const AMTOOL: support::Needs = support::Needs {
    what: "amtool",
    probe: &["amtool", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

fn fixture(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// The error of parsing fixture `name`, origin shown as the name.
fn error_of(name: &str) -> String {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    match AlertmanagerConfig::parse(&text, name) {
        Ok(_) => panic!("{name} loaded, but it is invalid"),
        Err(e) => e.to_string(),
    }
}

fn lines(s: &[&str]) -> String {
    s.join("\n")
}

#[test]
fn invalid_fixtures_report_every_problem_exactly() {
    let cases: &[(&str, &[&str])] = &[
        (
            "invalid/many.yml",
            &[
                "invalid/many.yml:4:17: route.routes[0].receiver: undefined receiver \"nobody\" used in route",
                "invalid/many.yml:5:18: route.routes[0].matchers[0]: error parsing regexp \"(critical\": unclosed group",
                "invalid/many.yml:7:29: route.routes[1].mute_time_intervals[0]: undefined time interval \"holidays\" used in route",
                "invalid/many.yml:8:29: route.routes[1].group_by[1]: duplicated label \"alertname\" in group_by",
                "invalid/many.yml:9:23: route.routes[1].group_interval: group_interval cannot be zero",
                "invalid/many.yml:12:11: receivers[1].name: notification config name \"ops\" is not unique",
            ],
        ),
        (
            "invalid/root_matchers.yml",
            &[
                "invalid/root_matchers.yml:3:3: route.matchers: root route must not have any matchers",
                "invalid/root_matchers.yml:4:3: route.continue: cannot have continue in root route",
            ],
        ),
        (
            "invalid/empty.yml",
            &["invalid/empty.yml: no route provided in config"],
        ),
        (
            "invalid/root_no_receiver.yml",
            &[
                "invalid/root_no_receiver.yml:1:1: route: root route must specify a default receiver",
            ],
        ),
        (
            "invalid/durations.yml",
            &[
                "invalid/durations.yml:2:20: global.resolve_timeout: unknown unit \" minutes\" in duration \"5 minutes\"",
                "invalid/durations.yml:5:15: route.group_wait: unknown unit \"x\" in duration \"30x\"",
            ],
        ),
        (
            "invalid/unknown_field.yml",
            &[
                "invalid/unknown_field.yml:3:3: route: unknown field `recevier`, expected one of `receiver`, `group_by`, `match`, `match_re`, `matchers`, `mute_time_intervals`, `active_time_intervals`, `continue`, `routes`, `group_wait`, `group_interval`, `repeat_interval`",
            ],
        ),
        (
            "invalid/email.yml",
            &[
                "invalid/email.yml:6:9: receivers[0].email_configs[0]: missing to address in email config",
                "invalid/email.yml:7:9: receivers[0].email_configs[1]: no global SMTP from set",
                "invalid/email.yml:8:20: receivers[0].email_configs[1].smarthost: address smtp.example.com: missing port in address",
                "invalid/email.yml:11:11: receivers[0].email_configs[1].headers.subject: duplicate header \"Subject\" in email config",
            ],
        ),
        (
            "invalid/webhook.yml",
            &[
                "invalid/webhook.yml:6:14: receivers[0].webhook_configs[0].url: unsupported scheme \"ftp\" for URL",
                "invalid/webhook.yml:7:9: receivers[0].webhook_configs[1]: one of url or url_file must be configured",
                "invalid/webhook.yml:11:11: receivers[0].webhook_configs[2].http_config.bearer_token_file: at most one of bearer_token & bearer_token_file must be configured",
            ],
        ),
        (
            "invalid/matchers.yml",
            &[
                "invalid/matchers.yml:4:18: route.routes[0].matchers[0]: matcher value contains unescaped double quote: \"critical",
                "invalid/matchers.yml:4:40: route.routes[0].matchers[1]: bad matcher format: 1x=2",
                "invalid/matchers.yml:7:9: route.routes[1].match.bad-name: invalid label name \"bad-name\"",
                "invalid/matchers.yml:9:14: route.routes[1].match_re.job: error parsing regexp \"[a-\": invalid character class range, the start must be <= the end",
            ],
        ),
        (
            "invalid/time_intervals.yml",
            &[
                "invalid/time_intervals.yml:8:17: time_intervals[0].time_intervals[0].times[0]: start time cannot be equal or greater than end time",
                "invalid/time_intervals.yml:9:20: time_intervals[0].time_intervals[0].weekdays[0]: start day cannot be before end day",
                "invalid/time_intervals.yml:10:25: time_intervals[0].time_intervals[0].days_of_month[0]: 0 is not a valid day of the month: out of range",
                "invalid/time_intervals.yml:11:18: time_intervals[0].time_intervals[0].months[0]: smarch is not a valid month",
                "invalid/time_intervals.yml:12:19: time_intervals[0].time_intervals[0].location: unknown time zone Mars/Olympus",
                "invalid/time_intervals.yml:13:5: time_intervals[1]: missing name in time interval",
            ],
        ),
        (
            "invalid/inhibit.yml",
            &[
                "invalid/inhibit.yml:6:23: inhibit_rules[0].source_matchers[0]: error parsing regexp \"(\": unclosed group",
                "invalid/inhibit.yml:8:7: inhibit_rules[0].target_match.not valid: invalid label name \"not valid\"",
                "invalid/inhibit.yml:9:13: inhibit_rules[0].equal[0]: \"1abc\" is not a valid label name",
            ],
        ),
        (
            "invalid/group_by.yml",
            &[
                "invalid/group_by.yml:3:3: route.group_by: cannot have wildcard group_by (`...`) and other labels at the same time",
                "invalid/group_by.yml:3:32: route.group_by[2]: invalid label name \"bad-label\" in group_by list",
            ],
        ),
        (
            "invalid/global.yml",
            &[
                "invalid/global.yml:2:19: global.smtp_smarthost: address mail.example.com: missing port in address",
                "invalid/global.yml:4:3: global.smtp_auth_password_file: at most one of smtp_auth_password & smtp_auth_password_file must be configured",
            ],
        ),
        (
            "invalid/global_urls.yml",
            &[
                "invalid/global_urls.yml:3:18: global.slack_api_url: parse \"not a url\": relative URL without a base",
                "invalid/global_urls.yml:4:18: global.pagerduty_url: unsupported scheme \"ftp\" for URL",
            ],
        ),
        (
            "tradewatch_only/slack.yml",
            &[
                "tradewatch_only/slack.yml:5:5: receivers[0].slack_configs: slack_configs are not supported by tradewatch (it delivers email_configs and webhook_configs)",
            ],
        ),
    ];
    let mut listed: Vec<&str> = cases.iter().map(|(name, _)| *name).collect();
    for (name, expected) in cases {
        assert_eq!(error_of(name), lines(expected), "{name}");
    }
    // Every invalid fixture has its case above.
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture("invalid"))
        .unwrap()
        .map(|e| format!("invalid/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    on_disk.sort();
    listed.retain(|n| n.starts_with("invalid/"));
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn the_trading_fixture_loads_with_alertmanager_defaults() {
    let config = AlertmanagerConfig::load(&fixture("valid/trading.yml")).unwrap();
    assert_eq!(config.global.resolve_timeout, Duration::from_secs(120));
    let root = &config.route;
    assert_eq!(root.opts.receiver, "ops-webhook");
    assert_eq!(root.opts.group_wait, Duration::from_secs(10));
    // Inherited down the tree unless overridden.
    let critical = &root.routes[0];
    assert_eq!(critical.opts.group_wait, Duration::ZERO);
    assert_eq!(critical.opts.group_interval, Duration::from_secs(60));
    assert_eq!(critical.opts.repeat_interval, Duration::from_secs(7200));
    let desk = &critical.routes[0];
    assert!(desk.opts.group_by_all);
    assert_eq!(desk.opts.group_wait, Duration::ZERO);
    // match_re is anchored as Alertmanager prints it.
    assert_eq!(
        root.routes[2].matchers.to_string(),
        "{venue=~\"^(?:binance|coinbase)$\"}"
    );
    assert_eq!(
        root.routes[3].routes[0].key(),
        "{}/{env!=\"test\",severity=~\"warning|info\"}/{strategy=\"carry\",venue!~\"lse|nyse\"}"
    );
    // Globals fill the email configs; send_resolved defaults differ by kind.
    let trader = config.receiver("trader-email").unwrap();
    let email = &trader.email_configs[0];
    assert_eq!(email.smarthost, "smtp.example.com:587");
    assert_eq!(email.from, "tradewatch@example.com");
    assert_eq!(email.auth_password.as_deref(), Some("secret"));
    assert_eq!(email.hello, "localhost");
    assert!(email.require_tls);
    assert_eq!(
        email.headers.get("X-Priority").map(String::as_str),
        Some("1")
    );
    let momentum = &config.receiver("momentum-team").unwrap().email_configs[0];
    assert!(!momentum.send_resolved);
    assert!(!momentum.require_tls);
    let ops = &config.receiver("ops-webhook").unwrap().webhook_configs[0];
    assert!(ops.send_resolved);
    assert_eq!(ops.max_alerts, 20);
    let auth = ops.http_config.authorization.as_ref().unwrap();
    assert_eq!(
        (auth.kind.as_str(), auth.credentials.as_deref()),
        ("Bearer", Some("abc"))
    );
    let integrations = trader.integrations();
    assert_eq!(integrations.len(), 1);
    assert_eq!(integrations[0].0.kind, IntegrationKind::Email);
    assert!(integrations[0].1);
    // Both interval lists are known by name; templates resolve against the file's directory.
    assert_eq!(
        config.time_intervals.keys().collect::<Vec<_>>(),
        ["market-hours", "month-end", "weekends"]
    );
    assert_eq!(
        config.templates,
        [fixture("valid/templates/*.tmpl").display().to_string()]
    );
    assert_eq!(config.inhibit_rules.len(), 2);
    assert_eq!(
        config.inhibit_rules[1].target_matchers.to_string(),
        "{severity=~\"^(?:warning|info)$\"}"
    );
}

#[test]
fn url_file_and_smtp_secret_files_are_read() {
    let config = AlertmanagerConfig::load(&fixture("tradewatch_only/url_file.yml")).unwrap();
    let hook = &config.receiver("hook").unwrap().webhook_configs[0];
    assert_eq!(hook.url, None);
    assert_eq!(
        hook.url_file.as_deref(),
        Some(Path::new("/run/secrets/webhook-url"))
    );
}

#[test]
fn a_tradewatch_config_points_at_the_file_or_holds_it_inline() {
    let by_file = AlertmanagerConfig::load_any(&fixture("tradewatch_file.yaml")).unwrap();
    assert_eq!(by_file.route.opts.receiver, "ops-webhook");
    let inline = AlertmanagerConfig::load_any(&fixture("tradewatch_inline.yaml")).unwrap();
    assert_eq!(inline.route.routes[0].opts.receiver, "pager");
    assert_eq!(
        inline.receiver("pager").unwrap().webhook_configs[0]
            .url
            .as_deref(),
        Some("http://127.0.0.1:9000/page")
    );
    // Problems of the inline form are located in the tradewatch file.
    let path = fixture("tradewatch_inline_bad.yaml");
    let error = AlertmanagerConfig::load_any(&path).unwrap_err();
    let origin = path.display().to_string();
    assert_eq!(
        error.to_string(),
        format!(
            "{origin}:5:19: notifier.config.route.group_wait: not a valid duration string: \"soon\"\n\
             {origin}:7:21: notifier.config.route.routes[0].receiver: undefined receiver \"pager\" used in route"
        )
    );
    // The same shape as JSON-shaped data, as `notifier.config` holds it.
    let value: serde_json::Value = serde_json::json!({
        "route": {"receiver": "ops", "routes": [{"receiver": "nobody"}]},
        "receivers": [{"name": "ops"}],
    });
    let error = AlertmanagerConfig::from_value(&value, "tradewatch.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "tradewatch.yaml: notifier.config.route.routes[0].receiver: undefined receiver \"nobody\" used in route"
    );
    let value = serde_json::json!({"route": {"receiver": "ops"}, "receivers": [{"name": "ops"}]});
    assert!(AlertmanagerConfig::from_value(&value, "tradewatch.yaml").is_ok());
    // A tradewatch config without a notifier configuration says so.
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("tradewatch.yaml");
    std::fs::write(&bare, "storage:\n  data_dir: /tmp/x\n").unwrap();
    assert!(matches!(
        AlertmanagerConfig::load_any(&bare),
        Err(NotifyConfigError::Missing { .. })
    ));
}

/// Fixtures amtool 0.25 reads differently on purpose: later Alertmanager fields, and receiver
/// kinds tradewatch refuses.
const DIVERGENT: [&str; 2] = ["tradewatch_only/url_file.yml", "tradewatch_only/slack.yml"];

#[test]
fn amtool_check_config_agrees_on_valid_and_invalid_fixtures() {
    if !support::available("amtool_check_config_agrees", &[&AMTOOL]) {
        return;
    }
    let mut checked = 0;
    for dir in ["valid", "invalid", "tradewatch_only"] {
        for entry in std::fs::read_dir(fixture(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let ours = AlertmanagerConfig::load(&path).is_ok();
            let out = std::process::Command::new("amtool")
                .arg("check-config")
                .arg(&path)
                .output()
                .unwrap();
            let theirs = out.status.success();
            if DIVERGENT.contains(&name.as_str()) {
                assert_ne!(ours, theirs, "{name}: expected to diverge from amtool 0.25");
            } else {
                assert_eq!(
                    ours,
                    theirs,
                    "{name}: tradewatch valid={ours}, amtool valid={theirs}: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

#[test]
fn amtool_agrees_on_which_regexes_and_matchers_are_valid() {
    if !support::available("amtool_agrees_on_regexes", &[&AMTOOL]) {
        return;
    }
    let regexes = [
        "x|y",
        "(",
        "[a-",
        "x{1001}",
        "x{2,1000}",
        "a**",
        "a*?",
        "a??",
        "a{2}{3}",
        "(?P<n>x)",
        "(?<n>x)",
        "\\\\z",
        "\\\\Z",
        "[[:word:]]",
        "[[:nope:]]",
        "\\\\pN",
        "\\\\p{Greek}",
        "(?i)x",
        "(?U)x+",
        "x{,2}",
        "\\\\Qa.b\\\\E",
        "[]a]",
        "[^]a]",
        "\\\\C",
        "(?s).",
        "\\\\8",
    ];
    let matchers = [
        "a=b",
        "a = \"b\"",
        "{a=b, c!=d}",
        "a=~\"x|y\"",
        "ñ=x",
        "a:b=x",
        "a=b\"c",
        "a=\"b",
        "1a=b",
        "a",
        "a=\\\"b\\\"",
        "{a=b,}",
        "a==b",
        "a!~\"(\"",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<String> = regexes
        .iter()
        .map(|re| {
            format!("route:\n  receiver: r\n  routes:\n    - match_re: {{a: '{re}'}}\nreceivers: [{{name: r}}]\n")
        })
        .collect();
    cases.extend(matchers.iter().map(|m| {
        format!(
            "route:\n  receiver: r\n  routes:\n    - matchers: ['{}']\nreceivers: [{{name: r}}]\n",
            m.replace('\'', "''")
        )
    }));
    for (i, text) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&path, text).unwrap();
        let ours = AlertmanagerConfig::load(&path);
        let theirs = std::process::Command::new("amtool")
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            ours.is_ok(),
            theirs.status.success(),
            "{text}\nours: {ours:?}\namtool: {}",
            String::from_utf8_lossy(&theirs.stdout)
        );
    }
}

/// Go's toolchain (Debian's `golang-go`): its `regexp` is the oracle of matcher regexes.
const GO: support::Needs = support::Needs {
    what: "go",
    probe: &["go", "version"],
    install: "apt-get install golang-go",
};

#[test]
fn matcher_regexes_match_as_go_regexp_does() {
    use tradewatch::notify::matcher::{MatchOp, Matcher};
    if !support::available("matcher_regexes_match_as_go", &[&GO]) {
        return;
    }
    let patterns = [
        "x|y",
        ".*",
        ".+",
        "\\d+",
        "\\D",
        "\\w+",
        "\\W",
        "\\s",
        "\\S+",
        "a\\b",
        "\\bk",
        "[\\d]+",
        "[\\w-]+",
        "[^\\d]",
        "[\\D]",
        "[[:alpha:]]+",
        "[[:^digit:]]+",
        "[[:word:]]+",
        "(?i)k",
        "(?i)s",
        "(?i)é",
        "(?s).",
        ".",
        "a$",
        "(?m)a$",
        "\\pL+",
        "\\p{Greek}",
        "\\PL",
        "[^a]",
        "\\x{41}",
        "\\x41",
        "\\Qa.b\\E",
        "a{,2}",
        "a{2}",
        "a{2,}",
        "a{1,2}?",
        "[]a]+",
        "[^]a]",
        "[a-]+",
        "[-a]",
        "[a&&b]+",
        "[a~~b]+",
        "[[]",
        "\\.",
        "\\\\",
        "é+",
        "\\u00e9",
        "\\z",
        "\\A.",
        "(?U)a+",
        "[\\s\\S]",
        "\\pN+",
        "[\\p{Lu}]",
        "(a|ab)(c|bcd)",
        "\\C",
        "{",
        "}",
        "a{",
        "a{1",
        "x{2,1}",
        "\\012",
        "\\1",
        "\\8",
        "\\12",
        "(?i)[k]",
        "[\\x{41}-\\x{43}]+",
        "[\\pL]+",
        "\\P{Greek}",
        "a\\z",
        "(?i:K)a",
        "[[:upper:]]",
        "(?i)[[:upper:]]",
        "\\B",
        "x*?",
        "[a-c--b]",
        "\\e",
        "\\u",
        "\\!",
        "[\\b]",
        "\\v",
        "(?i)ß",
        "\\pZ",
        "[^\\s]",
        "[\\S]",
        "(?-s:.)",
        "(?i)\\x{212a}",
    ];
    let inputs: Vec<&str> = vec![
        "", "a", "x", "y", "5", "55", "\u{663}", "é", "É", "\n", "a\n", "\u{212a}", "k", "K",
        "\u{17f}", "s", "S", "{,2}", "aa", "aaa", "a{,2}", "x y", "A_1", "a-b", "]", "[", "-",
        "a&b", "a~b", ".", "a.b", "\\", "ab", "abcd", "A", "\u{3b1}", "\u{391}", "\t", "{", "}",
        "a{", "a{1", "\u{2028}", "ß",
    ];
    let cases: Vec<serde_json::Value> = patterns
        .iter()
        .map(|p| serde_json::json!({"pattern": p, "inputs": inputs}))
        .collect();
    let (status, stdout, stderr) = support::run_with_input(
        "go",
        &[
            "run",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/notify/regex_match.go"
            ),
        ],
        serde_json::to_string(&cases).unwrap().as_bytes(),
    );
    assert!(status.success(), "{stderr}");
    #[derive(serde::Deserialize)]
    struct GoResult {
        error: bool,
        matches: Vec<bool>,
    }
    let results: Vec<GoResult> = serde_json::from_str(&stdout).unwrap();
    let mut mismatches = Vec::new();
    for (pattern, go) in patterns.iter().zip(&results) {
        match Matcher::new(MatchOp::Regex, "a", pattern) {
            Err(e) if !go.error => {
                mismatches.push(format!("{pattern:?}: we refuse ({e}), Go compiles"))
            }
            Ok(_) if go.error => mismatches.push(format!("{pattern:?}: we compile, Go refuses")),
            Err(_) => {}
            Ok(m) => {
                for (input, want) in inputs.iter().zip(&go.matches) {
                    if m.matches_value(input) != *want {
                        mismatches.push(format!("{pattern:?} on {input:?}: Go says {want}"));
                    }
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
