//! Notification templates against Alertmanager: the templates of
//! `tests/data/template/am_templates.tmpl` and Alertmanager's default templates, rendered over
//! `am_data.json` as text and as HTML, must give the bytes `amtool template render` (Debian's
//! prometheus-alertmanager 0.25) gives, as recorded in `am_expected.json`. Where amtool is
//! installed the recording is checked against it; `TRADEWATCH_RECORD=1` rewrites it.

mod support;

use serde::{Deserialize, Serialize};
use tradewatch::template::alertmanager::{Data, NotificationTemplates};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/template");
const DEFAULTS_GLOB: &str = "/usr/share/prometheus/alertmanager/*.tmpl";

/// `amtool` (Debian's `prometheus-alertmanager`).
const AMTOOL: support::Needs = support::Needs {
    what: "amtool",
    probe: &["amtool", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Case {
    text: String,
    html: bool,
    output: String,
    error: String,
}

fn cases() -> Vec<(String, bool)> {
    let file = std::fs::read_to_string(format!("{DIR}/am_templates.tmpl")).unwrap();
    let mut out = Vec::new();
    for line in file.lines() {
        if let Some(rest) = line.strip_prefix("{{ define \"") {
            let name = rest.split('"').next().unwrap();
            out.push((format!("{{{{ template \"{name}\" . }}}}"), false));
            out.push((format!("{{{{ template \"{name}\" . }}}}"), true));
        }
    }
    for name in [
        "email.default.subject",
        "__subject",
        "__alertmanagerURL",
        "slack.default.title",
        "slack.default.fallback",
        "slack.default.titlelink",
        "pagerduty.default.instances",
        "opsgenie.default.description",
        "wechat.default.message",
        "victorops.default.state_message",
        "pushover.default.message",
        "sns.default.message",
        "telegram.default.message",
        "discord.default.message",
        "webex.default.message",
    ] {
        out.push((format!("{{{{ template \"{name}\" . }}}}"), false));
    }
    out.push((
        "{{ template \"__text_alert_list\" .Alerts.Firing }}".into(),
        false,
    ));
    out.push(("{{ template \"email.default.html\" . }}".into(), true));
    out.push(("{{ template \"email.default.subject\" . }}".into(), true));
    out.push(("{{ template \"nope\" . }}".into(), false));
    out.push(("{{ .Alerts.Nope }}".into(), false));
    out.push(("{{ if }}".into(), false));
    out
}

fn ours(text: &str, html: bool) -> (String, String) {
    let mut t = NotificationTemplates::new();
    let own = std::fs::read_to_string(format!("{DIR}/am_templates.tmpl")).unwrap();
    t.add("am_templates.tmpl", &own).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/am_data.json")).unwrap())
            .unwrap();
    let data = Data::from_json(&json).unwrap();
    let r = if html {
        t.execute_html(text, &data)
    } else {
        t.execute_text(text, &data)
    };
    match r {
        Ok(s) => (s, String::new()),
        Err(e) => (String::new(), e.to_string()),
    }
}

fn amtool(text: &str, html: bool) -> (String, String) {
    let out = std::process::Command::new("amtool")
        .args([
            "template",
            "render",
            &format!("--template.glob={DEFAULTS_GLOB}"),
            &format!("--template.glob={DIR}/am_templates.tmpl"),
            &format!("--template.data={DIR}/am_data.json"),
            &format!("--template.type={}", if html { "html" } else { "text" }),
            &format!("--template.text={text}"),
        ])
        .output()
        .unwrap();
    if out.status.success() {
        (String::from_utf8(out.stdout).unwrap(), String::new())
    } else {
        let err = String::from_utf8(out.stderr).unwrap();
        (
            String::new(),
            err.trim_end()
                .trim_start_matches("amtool: error: ")
                .to_string(),
        )
    }
}

fn recorded() -> Vec<Case> {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/am_expected.json")).unwrap())
        .unwrap()
}

#[test]
fn renders_as_amtool_recorded() {
    let expected = recorded();
    let cases = cases();
    assert_eq!(
        expected.len(),
        cases.len(),
        "am_expected.json is stale: rerun with TRADEWATCH_RECORD=1"
    );
    let mut failures = Vec::new();
    for want in &expected {
        let (output, error) = ours(&want.text, want.html);
        if output != want.output || error != want.error {
            failures.push(format!(
                "{} (html: {})\n  amtool: {:?} / {:?}\n    ours: {:?} / {:?}",
                want.text, want.html, want.output, want.error, output, error
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        expected.len(),
        failures.join("\n")
    );
}

#[test]
fn recording_matches_amtool() {
    if !support::available("recording_matches_amtool", &[&AMTOOL]) {
        return;
    }
    if !std::path::Path::new("/usr/share/prometheus/alertmanager/default.tmpl").exists() {
        support::skip(
            "recording_matches_amtool",
            "Alertmanager's default templates not found (apt-get install prometheus-alertmanager)",
        );
        return;
    }
    let fresh: Vec<Case> = cases()
        .into_iter()
        .map(|(text, html)| {
            let (output, error) = amtool(&text, html);
            Case {
                text,
                html,
                output,
                error,
            }
        })
        .collect();
    if std::env::var("TRADEWATCH_RECORD").is_ok_and(|v| v == "1") {
        let json = serde_json::to_string_pretty(&fresh).unwrap();
        std::fs::write(format!("{DIR}/am_expected.json"), json + "\n").unwrap();
        return;
    }
    assert_eq!(
        recorded(),
        fresh,
        "am_expected.json differs from amtool: rerun with TRADEWATCH_RECORD=1"
    );
}
