//! TLS: verification is always on, and `ca_file` adds a private root to the system's.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::Code;

#[test]
fn ca_file_adds_a_trusted_root_and_verification_stays_on() {
    let server = common::pki::TlsServer::start("tls");
    let (dir, port) = (&server.dir, &server.port);
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
}
