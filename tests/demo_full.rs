//! `tradewatch demo` as a person runs it: within its run it writes `.eml` files whose subjects
//! name the kill switch, the circuit breaker and the daily loss limit, the engine's events are
//! all accepted, and it stops by itself at `--duration`.

use std::process::Command;

#[test]
fn the_demo_emails_the_kill_switch_the_breaker_and_the_loss_limit() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_tradewatch"))
        .args(["demo", "--duration", "40s", "--speed", "2", "--dir"])
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("rejected 0"), "{stdout}");
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/metrics")),
        "{stdout}"
    );
    let mut subjects = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("emails")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned();
        assert!(text.contains("Content-Type: text/html"), "{text}");
        subjects.push(subject);
    }
    for alert in [
        "TradingKillSwitchActive",
        "TradingCircuitBreakerTripped",
        "TradingDailyLossLimitBreached",
    ] {
        assert!(
            subjects
                .iter()
                .any(|s| s.starts_with("[FIRING:") && s.contains(alert)),
            "no email for {alert}: {subjects:?}\n{stdout}"
        );
    }
}
