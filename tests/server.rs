//! The listener on real sockets: TLS with rustls, the data directory lock, graceful shutdown.

use std::time::Duration;

use tradewatch::config::Config;
use tradewatch::roles::{Exporter, RoleError};

fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        "server:\n  listen: 127.0.0.1:0\n{extra}storage:\n  data_dir: {}\n  fsync: never\n",
        dir.display()
    );
    Config::parse(&text, "test.yaml").unwrap()
}

#[tokio::test]
async fn serves_tls_with_the_configured_certificate() {
    tradewatch::server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "  tls:\n    cert_file: {}\n    key_file: {}\n",
        cert_file.display(),
        key_file.display()
    );
    let exporter = Exporter::start(&config(&dir.path().join("data"), &tls))
        .await
        .unwrap();
    let port = exporter.addr.port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(exporter.run(async move {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let res = client
        .post(format!("https://localhost:{port}/api/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(r#"{"type":"kill_switch","active":true,"engine":"tls"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = client
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("trading_kill_switch_active{engine=\"tls\"} 1"),
        "{text}"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(dir.path().join("data/snapshot/registry.jsonl").exists());
}

#[tokio::test]
async fn one_exporter_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let first = Exporter::start(&cfg).await.unwrap();
    let second = Exporter::start(&cfg).await;
    match second {
        Err(RoleError::Locked { role, path }) => {
            assert_eq!(role, "exporter");
            assert_eq!(path, dir.path().join("exporter.lock"));
        }
        other => panic!(
            "expected the lock to refuse a second exporter, got {:?}",
            other.err()
        ),
    }
    drop(first);
    let again = Exporter::start(&cfg).await;
    assert!(again.is_ok(), "{:?}", again.err());
}

#[test]
fn one_tls_stack_and_one_crypto_provider() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    for banned in [
        "openssl",
        "openssl-sys",
        "native-tls",
        "aws-lc-rs",
        "aws-lc-sys",
    ] {
        assert!(
            !lock.contains(&format!("name = \"{banned}\"\n")),
            "{banned} is in Cargo.lock"
        );
    }
    assert!(lock.contains("name = \"ring\"\n"));
}
