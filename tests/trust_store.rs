//! The system's trust store is read at the first TLS connection of a process, not when a
//! session is made, and once: alone in its binary, so no other test loads it first.

mod common;

use cloudauth::tls::roots;

#[test]
fn the_trust_store_is_read_at_the_first_tls_connection_and_shared() {
    let server = common::pki::TlsServer::start("trust-store");
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

    // The first connection does: a session with ca_file trusts the system's roots and its own.
    let r = private.request("GET", "/v1/x", [], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(roots::loaded());
    let system = roots::system();
    assert!(!system.is_empty(), "this machine has a system trust store");

    // The session without ca_file still refuses the private CA's certificate.
    let err = plain.with_token(str::to_owned).unwrap_err();
    assert_eq!(err.code, cloudauth::Code::CLOUDAUTH_ERR_NETWORK);
    assert!(err.message.contains("certificate"), "{}", err.message);

    // Later sessions share the same parsed store.
    let again = cloudauth::Session::new(&cfg).unwrap();
    assert_eq!(again.request("GET", "/v1/x", [], b"").unwrap().status, 200);
    assert!(std::sync::Arc::ptr_eq(&system, &roots::system()));
}
