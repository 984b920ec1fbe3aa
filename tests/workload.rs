//! Workload identity against the recording server (tests/support/idp_server.py): what the
//! token request carries under the JWT-bearer grant, token exchange and federated client
//! assertions, and that every attempt (a retry too) reads the token files anew and signs a new
//! assertion. Assertions are verified here with ring, not with the library's code.

#[path = "support/idp/mod.rs"]
mod idp_support;

use cloudauth::{Code, Session};
use idp_support::{make_key, public_key, verified, Dir, Idp};
use ring::signature;
use serde_json::Value;

const SUBJECT_A: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnLWE";
const SUBJECT_B: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiIn0.c2lnLWI";
const ASSERTION_A: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJhIn0.YXNzLWE";
const ASSERTION_B: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJiIn0.YXNzLWI";

fn field<'a>(form: &'a Value, name: &str) -> Option<&'a str> {
    form[name]
        .as_array()
        .and_then(|v| v.last())
        .and_then(Value::as_str)
}

fn fields(form: &Value) -> Vec<String> {
    let mut names: Vec<String> = form.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

#[test]
fn a_retry_sends_the_rotated_files_of_a_token_exchange() {
    let idp = Idp::start();
    let d = Dir::new("wl-retry");
    let (subject, assertion) = (d.path("subject"), d.path("assertion"));
    std::fs::write(&subject, format!("{SUBJECT_A}\n")).unwrap();
    std::fs::write(&assertion, ASSERTION_A).unwrap();
    let token_url = format!("{}/rotate/token?dir={}", idp.url, d.0.display());
    let session = Session::new(&idp.config(&[
        ("token_url", &token_url),
        ("grant_type", "token_exchange"),
        ("subject_token_file", &subject),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("actor_token_file", &assertion),
        ("auth_method", "client_assertion"),
        ("client_assertion_file", &assertion),
        ("audience", "https://sts.example/pool"),
        ("resource", "https://api.example/"),
        ("scope", "read"),
        ("max_retries", "1"),
    ]))
    .unwrap();
    // The platform rewrites both files while the first attempt is in flight.
    std::fs::write(d.path("subject.next"), SUBJECT_B).unwrap();
    std::fs::write(d.path("assertion.next"), format!("{ASSERTION_B}\n\n")).unwrap();
    assert!(session
        .with_token(str::to_owned)
        .unwrap()
        .starts_with("tok-"));
    let forms = idp.token_forms();
    let [first, second] = &forms[..] else {
        panic!("two attempts expected: {forms:?}")
    };
    assert_eq!(field(first, "subject_token"), Some(SUBJECT_A));
    assert_eq!(field(first, "client_assertion"), Some(ASSERTION_A));
    assert_eq!(field(second, "subject_token"), Some(SUBJECT_B));
    assert_eq!(field(second, "client_assertion"), Some(ASSERTION_B));
    assert_eq!(field(second, "actor_token"), Some(ASSERTION_B));
    assert_eq!(
        field(second, "grant_type"),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(
        field(second, "subject_token_type"),
        Some("urn:ietf:params:oauth:token-type:jwt")
    );
    assert_eq!(
        field(second, "actor_token_type"),
        Some("urn:ietf:params:oauth:token-type:jwt")
    );
    assert_eq!(
        field(second, "client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(field(second, "audience"), Some("https://sts.example/pool"));
    assert_eq!(field(second, "resource"), Some("https://api.example/"));
    assert_eq!(field(second, "scope"), Some("read"));
    assert_eq!(field(second, "client_id"), Some("idp-client"));
    assert!(second.get("client_secret").is_none());
}

#[test]
fn jwt_bearer_signs_a_new_assertion_for_every_attempt() {
    let idp = Idp::start();
    let d = Dir::new("wl-jwt-bearer");
    let key = d.path("k.pem");
    make_key("p256", &key);
    std::fs::write(d.path("trigger.next"), "x").unwrap();
    let token_url = format!("{}/rotate/token?dir={}", idp.url, d.0.display());
    let session = Session::new(&idp.config(&[
        ("token_url", &token_url),
        ("grant_type", "jwt_bearer"),
        ("client_key_file", &key),
        ("client_key_id", "k1"),
        ("assertion_subject", "user@example.com"),
        ("scope", "https://www.googleapis.com/auth/cloud-platform"),
        ("max_retries", "1"),
    ]))
    .unwrap();
    session.with_token(str::to_owned).unwrap();
    let forms = idp.token_forms();
    assert_eq!(forms.len(), 2, "{forms:?}");
    let mut jtis = Vec::new();
    for form in &forms {
        // No client authentication: no client_id, no secret; scope as a form field.
        assert_eq!(fields(form), ["assertion", "grant_type", "scope"]);
        let (header, claims) = verified(
            field(form, "assertion").unwrap(),
            &signature::ECDSA_P256_SHA256_FIXED,
            &public_key("p256", &key),
        );
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some("ES256"), Some("k1"))
        );
        assert_eq!(claims["iss"], "idp-client");
        assert_eq!(claims["sub"], "user@example.com");
        assert_eq!(claims["aud"], token_url.as_str());
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(exp > iat && exp - iat <= 3600, "{claims}");
        assert!(claims.get("scope").is_none());
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    assert_ne!(jtis[0], jtis[1], "a retry re-sent an assertion");
}

#[test]
fn client_assertion_aud_for_private_key_jwt() {
    let idp = Idp::start();
    let d = Dir::new("wl-aud");
    let key = d.path("k.pem");
    make_key("p256", &key);
    let issuer = format!("{}/good", idp.url);
    for (aud, extra, want) in [
        (
            "https://login.example/tenant/v2.0",
            None,
            "https://login.example/tenant/v2.0",
        ),
        ("issuer", Some(issuer.as_str()), issuer.as_str()),
        (
            "token_endpoint",
            Some(issuer.as_str()),
            &*format!("{}/token", idp.url),
        ),
    ] {
        let mut cfg = idp.config(&[
            ("auth_method", "private_key_jwt"),
            ("client_key_file", &key),
            ("client_assertion_aud", aud),
        ]);
        if let Some(issuer) = extra {
            // Discovery finds the token endpoint (token_url unset); the issuer identifier
            // is the aud when asked for.
            cfg = cloudauth::Config::default();
            for (k, v) in [
                ("client_id", "idp-client"),
                ("issuer", issuer),
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &key),
                ("client_assertion_aud", aud),
            ] {
                cfg.set(k, v).unwrap();
            }
        }
        let session = Session::new(&cfg).unwrap();
        session.with_token(str::to_owned).unwrap();
        let form = idp.token_forms().pop().unwrap();
        let (_, claims) = verified(
            field(&form, "client_assertion").unwrap(),
            &signature::ECDSA_P256_SHA256_FIXED,
            &public_key("p256", &key),
        );
        assert_eq!(claims["aud"], want, "{aud}");
    }
    // issuer without an issuer: said at session_new.
    let err = Session::new(&idp.config(&[
        ("auth_method", "private_key_jwt"),
        ("client_key_file", &key),
        ("client_assertion_aud", "issuer"),
    ]))
    .err()
    .unwrap();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(
        err.message.starts_with("client_assertion_aud=issuer"),
        "{}",
        err.message
    );
}

#[test]
fn set_credentials_is_refused_without_a_secret() {
    let idp = Idp::start();
    let d = Dir::new("wl-setcred");
    let assertion = d.path("a");
    std::fs::write(&assertion, ASSERTION_A).unwrap();
    let session = Session::new(&idp.config(&[
        ("auth_method", "client_assertion"),
        ("client_assertion_file", &assertion),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe",
        ),
    ]))
    .unwrap();
    session.with_token(str::to_owned).unwrap();
    let form = idp.token_forms().pop().unwrap();
    assert_eq!(
        field(&form, "client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-spiffe")
    );
    let err = session.set_credentials("idp-client", "secret").unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
}
