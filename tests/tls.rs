//! TLS: verification is always on, and `ca_file` adds a private root to the system's.

use cloudauth::Code;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl {args:?}");
}

/// A private CA and a leaf certificate for 127.0.0.1 signed by it.
fn make_pki(dir: &Path) {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cloudauth test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
}

#[test]
fn ca_file_adds_a_trusted_root_and_verification_stays_on() {
    let dir = std::env::temp_dir().join(format!("cloudauth-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_pki(&dir);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/tls_token_server.py"
    );
    let mut child = Command::new("python3")
        .args([
            script,
            dir.join("leaf.pem").to_str().unwrap(),
            dir.join("leaf.key").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().strip_prefix("PORT ").unwrap().to_owned();

    let mut cfg = cloudauth::Config::default();
    cfg.set("client_id", "id").unwrap();
    cfg.set("client_secret", "secret").unwrap();
    cfg.set(
        "token_url",
        &format!("https://127.0.0.1:{port}/connect/token"),
    )
    .unwrap();
    cfg.set("max_retries", "0").unwrap();

    let untrusted = cloudauth::Session::new(&cfg)
        .unwrap()
        .with_token(str::to_owned)
        .unwrap_err();
    assert_eq!(
        untrusted.code,
        Code::CLOUDAUTH_ERR_NETWORK,
        "{}",
        untrusted.message
    );
    assert!(
        untrusted.message.to_lowercase().contains("certificate"),
        "{}",
        untrusted.message
    );

    cfg.set("ca_file", dir.join("ca.pem").to_str().unwrap())
        .unwrap();
    let token = cloudauth::Session::new(&cfg)
        .unwrap()
        .with_token(str::to_owned)
        .unwrap();
    assert_eq!(token, "tls-token");

    // API requests to the session's origin over https (the direct path): verified the same way.
    cfg.set("base_url", &format!("https://127.0.0.1:{port}/api"))
        .unwrap();
    let s = cloudauth::Session::new(&cfg).unwrap();
    for _ in 0..3 {
        let r = s.request("GET", "/v1/x", [], b"").unwrap();
        assert_eq!(r.status, 200);
        let seen: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(seen["authorization"], "Bearer tls-token");
        assert_eq!(seen["host"], format!("127.0.0.1:{port}"));
    }
    // The certificate names 127.0.0.1 only: by another name the handshake fails, and says so.
    let err = s
        .request(
            "GET",
            &format!("https://localhost:{port}/api/v1/x"),
            [],
            b"",
        )
        .unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
    assert!(err.message.contains("certificate"), "{}", err.message);
    cfg.set("base_url", &format!("https://localhost:{port}/api"))
        .unwrap();
    let err = cloudauth::Session::new(&cfg)
        .unwrap()
        .request("GET", "/v1/x", [], b"")
        .unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_NETWORK, "{}", err.message);
    assert!(
        err.message.contains("TLS handshake") && err.message.contains("certificate"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("tls-token"), "{}", err.message);

    cfg.set(
        "ca_file",
        dir.join("leaf.key")
            .with_extension("missing")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let err = cloudauth::Session::new(&cfg).err().unwrap();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(err.message.starts_with("ca_file"), "{}", err.message);

    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
