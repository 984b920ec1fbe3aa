//! The system's trust store is read at the first TLS connection of a process, not when a
//! session is made, and once; its directory only when the bundle file's roots reject a chain.
//! Alone in its binary: it sets SSL_CERT_FILE and SSL_CERT_DIR, and no other test may load the
//! store first.

#[path = "support/common/mod.rs"]
mod common;

use cloudauth::tls::roots;

#[test]
fn the_trust_store_is_read_at_the_first_tls_connection_and_shared() {
    let server = common::pki::TlsServer::start("trust-store");
    // The system's bundle file, and a directory holding the server's CA (as
    // /etc/ssl/certs holds a root per file): the CA is trusted through the directory only.
    let bundle = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/cert.pem",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a system CA bundle");
    let dir = server.dir.join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(server.dir.join("ca.pem"), dir.join("test-ca.pem")).unwrap();
    std::env::set_var("SSL_CERT_FILE", bundle);
    std::env::set_var("SSL_CERT_DIR", &dir);

    let https = format!("https://127.0.0.1:{}", server.port);
    let mut cfg = cloudauth::Config::default();
    cfg.set("client_id", "id").unwrap();
    cfg.set("client_secret", "secret").unwrap();
    cfg.set("max_retries", "0").unwrap();
    cfg.set("token_url", &format!("{https}/connect/token"))
        .unwrap();
    cfg.set("base_url", &format!("{https}/api")).unwrap();

    // Making sessions (with and without ca_file) reads no trust store.
    let plain = cloudauth::Session::new(&cfg).unwrap();
    cfg.set("ca_file", server.dir.join("ca.pem").to_str().unwrap())
        .unwrap();
    let private = cloudauth::Session::new(&cfg).unwrap();
    assert!(
        !roots::loaded(),
        "session_new read the system's trust store"
    );

    // The first connection reads the bundle file; ca_file's root is enough: no directory.
    let r = private.request("GET", "/v1/x", [], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(roots::loaded() && !roots::whole_store_loaded());
    let bundled = roots::bundle();
    assert!(!bundled.is_empty(), "the bundle file's roots");

    // The session without ca_file trusts the CA through the directory, read now.
    assert_eq!(plain.with_token(str::to_owned).unwrap(), "tls-token");
    assert_eq!(roots::system().len(), bundled.len() + 1);

    // Later sessions share the same parsed stores.
    let again = cloudauth::Session::new(&cfg).unwrap();
    assert_eq!(again.request("GET", "/v1/x", [], b"").unwrap().status, 200);
    assert!(std::sync::Arc::ptr_eq(&bundled, &roots::bundle()));

    // A server by a name its certificate does not carry is refused by both stages.
    let err = plain
        .request(
            "GET",
            &format!("https://localhost:{}/api/v1/x", server.port),
            [],
            b"",
        )
        .unwrap_err();
    assert_eq!(err.code, cloudauth::Code::CLOUDAUTH_ERR_NETWORK);
    assert!(err.message.contains("certificate"), "{}", err.message);
}
