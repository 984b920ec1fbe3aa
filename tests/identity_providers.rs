//! private_key_jwt, client_secret_jwt, audience/resource/token_param and discovery against a
//! recording server on 127.0.0.1 (tests/support/idp_server.py): each assertion the library
//! sent is verified here with ring, from the public key openssl derives.

#[path = "support/idp/mod.rs"]
mod idp_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cloudauth::{Code, Config, Session};
use idp_support::{b64, make_key, openssl, public_key, verified, Dir, Idp};
use ring::signature;
use serde_json::Value;
use std::collections::HashSet;

fn field<'a>(form: &'a Value, name: &str) -> Option<&'a str> {
    form[name]
        .as_array()
        .and_then(|v| v.last())
        .and_then(Value::as_str)
}

fn token(s: &Session) -> cloudauth::Result<String> {
    s.with_token(str::to_owned)
}

#[test]
fn private_key_jwt_sends_a_fresh_verifiable_assertion_and_no_secret() {
    let idp = Idp::start();
    let d = Dir::new("pkjwt");
    let cases: [(
        &str,
        Option<&str>,
        &'static dyn signature::VerificationAlgorithm,
        &str,
    ); 5] = [
        ("rsa", None, &signature::RSA_PKCS1_2048_8192_SHA256, "RS256"),
        (
            "rsa",
            Some("PS256"),
            &signature::RSA_PSS_2048_8192_SHA256,
            "PS256",
        ),
        ("p256", None, &signature::ECDSA_P256_SHA256_FIXED, "ES256"),
        ("p384", None, &signature::ECDSA_P384_SHA384_FIXED, "ES384"),
        ("ed25519", None, &signature::ED25519, "EdDSA"),
    ];
    let mut jtis = HashSet::new();
    for (i, (kind, alg, verifier, alg_name)) in cases.into_iter().enumerate() {
        let key = d.path(&format!("{i}.pem"));
        make_key(kind, &key);
        let mut extra = vec![
            ("auth_method", "private_key_jwt"),
            ("client_key_file", key.as_str()),
            ("client_key_id", "kid-1"),
            // A secret in the environment is not sent under private_key_jwt.
            ("client_secret", "must-not-travel"),
        ];
        if let Some(alg) = alg {
            extra.push(("client_assertion_alg", alg));
        }
        let session = Session::new(&idp.config(&extra)).unwrap();
        for _ in 0..2 {
            assert!(token(&session).unwrap().starts_with("tok-"));
            session.invalidate();
        }
        let forms = idp.token_forms();
        for form in &forms[forms.len() - 2..] {
            assert_eq!(field(form, "grant_type"), Some("client_credentials"));
            assert_eq!(
                field(form, "client_assertion_type"),
                Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            );
            assert!(form.get("client_secret").is_none(), "{form}");
            assert!(!form.to_string().contains("must-not-travel"));
            let jws = field(form, "client_assertion").unwrap();
            let (header, claims) = verified(jws, verifier, &public_key(kind, &key));
            assert_eq!(header["alg"], alg_name);
            assert_eq!(header["kid"], "kid-1");
            assert!(header.get("x5t#S256").is_none());
            assert_eq!(claims["iss"], "idp-client");
            assert_eq!(claims["sub"], "idp-client");
            assert_eq!(claims["aud"], format!("{}/token", idp.url));
            let (iat, exp) = (
                claims["iat"].as_u64().unwrap(),
                claims["exp"].as_u64().unwrap(),
            );
            assert!(exp > iat && exp - iat <= 300, "{claims}");
            assert!(
                jtis.insert(claims["jti"].as_str().unwrap().to_owned()),
                "jti reused"
            );
        }
    }
}

#[test]
fn certificate_thumbprint_goes_in_the_header_and_key_rotates_with_the_file() {
    let idp = Idp::start();
    let d = Dir::new("x5t");
    let (key, cert) = (d.path("k.pem"), d.path("c.pem"));
    make_key("rsa", &key);
    openssl(&[
        "req", "-x509", "-key", &key, "-subj", "/CN=app", "-days", "1", "-out", &cert,
    ]);
    let session = Session::new(&idp.config(&[
        ("auth_method", "private_key_jwt"),
        ("client_key_file", &key),
        ("client_cert_file", &cert),
    ]))
    .unwrap();
    token(&session).unwrap();
    let der = openssl(&["x509", "-in", &cert, "-outform", "DER"]);
    let x5t = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &der));
    let form = idp.token_forms().pop().unwrap();
    let (header, _) = verified(
        field(&form, "client_assertion").unwrap(),
        &signature::RSA_PKCS1_2048_8192_SHA256,
        &public_key("rsa", &key),
    );
    assert_eq!(header["x5t#S256"], x5t);

    // Rotation: a new key and certificate in place; the next fetch signs with the new key.
    let old_public = public_key("rsa", &key);
    make_key("rsa", &d.path("k2.pem"));
    openssl(&[
        "req",
        "-x509",
        "-key",
        &d.path("k2.pem"),
        "-subj",
        "/CN=app",
        "-days",
        "1",
        "-out",
        &d.path("c2.pem"),
    ]);
    std::fs::rename(d.path("k2.pem"), &key).unwrap();
    std::fs::rename(d.path("c2.pem"), &cert).unwrap();
    session.invalidate();
    token(&session).unwrap();
    let form = idp.token_forms().pop().unwrap();
    let jws = field(&form, "client_assertion").unwrap();
    verified(
        jws,
        &signature::RSA_PKCS1_2048_8192_SHA256,
        &public_key("rsa", &key),
    );
    assert_ne!(old_public, public_key("rsa", &key));

    // A certificate that no longer matches the key: the fetch says so, naming the key.
    make_key("rsa", &d.path("k3.pem"));
    std::fs::rename(d.path("k3.pem"), &key).unwrap();
    session.invalidate();
    let err = token(&session).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(
        err.message.starts_with("client_cert_file: ") && err.message.contains("does not match"),
        "{}",
        err.message
    );
}

#[test]
fn client_secret_jwt_signs_hs256_with_the_secret() {
    let idp = Idp::start();
    let session = Session::new(&idp.config(&[
        ("auth_method", "client_secret_jwt"),
        ("client_secret", "shared-hmac-secret"),
    ]))
    .unwrap();
    token(&session).unwrap();
    let form = idp.token_forms().pop().unwrap();
    assert!(form.get("client_secret").is_none());
    assert!(!form.to_string().contains("shared-hmac-secret"));
    let jws = field(&form, "client_assertion").unwrap();
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"shared-hmac-secret");
    ring::hmac::verify(&key, input.as_bytes(), &b64(sig)).expect("HS256 with the secret");
    let header: Value = serde_json::from_slice(&b64(input.split('.').next().unwrap())).unwrap();
    assert_eq!(header["alg"], "HS256");
}

#[test]
fn bad_key_settings_fail_at_session_new_naming_the_key() {
    let idp = Idp::start();
    let d = Dir::new("bad");
    let rsa = d.path("rsa.pem");
    make_key("rsa", &rsa);
    let ed = d.path("ed.pem");
    make_key("ed25519", &ed);
    std::fs::write(d.path("junk.pem"), "TOPSECRET not a key").unwrap();
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &rsa,
        "-passout",
        "pass:x",
        "-out",
        &d.path("enc.pem"),
    ]);
    let missing = d.path("missing.pem");
    let junk = d.path("junk.pem");
    let enc = d.path("enc.pem");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("auth_method", "private_key_jwt")],
            "client_key_file is not set",
        ),
        (
            vec![
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &missing),
            ],
            "client_key_file: cannot read",
        ),
        (
            vec![
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &junk),
            ],
            "client_key_file: ",
        ),
        (
            vec![
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &enc),
            ],
            "encrypted",
        ),
        (
            vec![
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &ed),
                ("client_assertion_alg", "RS256"),
            ],
            "cannot sign RS256",
        ),
        (
            vec![
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &rsa),
                ("client_assertion_alg", "HS256"),
            ],
            "client_assertion_alg",
        ),
        (
            vec![
                ("auth_method", "private_key_jwt"),
                ("client_key_file", &rsa),
                ("client_cert_file", &ed),
            ],
            "client_cert_file: ",
        ),
        (
            vec![
                ("auth_method", "client_secret_jwt"),
                ("client_secret", "s"),
                ("client_assertion_alg", "ES256"),
            ],
            "client_assertion_alg",
        ),
    ];
    for (extra, expected) in cases {
        let err = Session::new(&idp.config(&extra)).err().expect("refused");
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT, "{extra:?}");
        assert!(err.message.contains(expected), "{extra:?}: {}", err.message);
        assert!(
            !err.message.contains("TOPSECRET") && !err.message.contains("BEGIN"),
            "{}",
            err.message
        );
    }
    // The key file removed after session_new: the fetch fails, naming the key.
    let key = d.path("later.pem");
    make_key("p256", &key);
    let session = Session::new(&idp.config(&[
        ("auth_method", "private_key_jwt"),
        ("client_key_file", &key),
    ]))
    .unwrap();
    std::fs::remove_file(&key).unwrap();
    let err = token(&session).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
    assert!(
        err.message.starts_with("client_key_file: cannot read"),
        "{}",
        err.message
    );
    // set_credentials cannot swap a secret in under private_key_jwt.
    assert!(session.set_credentials("other", "secret").is_err());
}

#[test]
fn audience_resource_and_token_params_are_form_fields() {
    let idp = Idp::start();
    let session = Session::new(&idp.config(&[
        ("client_secret", "s"),
        ("audience", "https://api.example/"),
        ("resource", "https://a.example/, https://b.example/x"),
        ("token_param.tenant", "t 1&2"),
        ("token_param.x", "gone"),
        ("token_param.x", ""),
    ]))
    .unwrap();
    token(&session).unwrap();
    let form = idp.token_forms().pop().unwrap();
    assert_eq!(
        form["audience"],
        serde_json::json!(["https://api.example/"])
    );
    assert_eq!(
        form["resource"],
        serde_json::json!(["https://a.example/", "https://b.example/x"])
    );
    assert_eq!(form["tenant"], serde_json::json!(["t 1&2"]));
    assert!(form.get("x").is_none());
    let mut cfg = Config::default();
    for name in [
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    ] {
        let err = cfg.set(&format!("token_param.{name}"), "v").unwrap_err();
        assert!(err.message.starts_with("token_param."), "{}", err.message);
    }
    for bad in ["not a url", "https://a.example/#frag"] {
        let err = cfg.set("resource", bad).unwrap_err();
        assert!(err.message.starts_with("resource"), "{}", err.message);
    }
    cfg.set("resource", "urn:example:api,https://r.example")
        .unwrap();
    assert_eq!(cfg.resource, ["urn:example:api", "https://r.example"]);
}

#[test]
fn discovery_finds_the_endpoint_and_explains_each_failure() {
    let idp = Idp::start();
    let issuer = |case: &str| format!("{}/{case}", idp.url);
    let base = |case: &str| {
        let mut cfg = Config::default();
        cfg.set("client_id", "idp-client").unwrap();
        cfg.set("client_secret", "s").unwrap();
        cfg.set("issuer", &issuer(case)).unwrap();
        cfg
    };
    for case in ["good", "oidc"] {
        let session = Session::new(&base(case)).unwrap();
        assert!(token(&session).unwrap().starts_with("tok-"), "{case}");
        session.invalidate();
        token(&session).unwrap();
        let gets = idp
            .requests()
            .into_iter()
            .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().contains(case))
            .count();
        // Once per session: good finds RFC 8414 at once; oidc needs the 404 first.
        assert_eq!(gets, if case == "good" { 1 } else { 2 }, "{case}");
    }
    for (case, expected) in [
        ("missing", "HTTP 404"),
        ("html", "did not answer JSON"),
        ("foreign", "names the issuer 'https://evil.example'"),
        ("noendpoint", "has no token_endpoint"),
    ] {
        let err = token(&Session::new(&base(case)).unwrap()).unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_TOKEN_ENDPOINT, "{case}");
        assert!(
            err.message.starts_with("discovery of issuer '"),
            "{case}: {}",
            err.message
        );
        assert!(err.message.contains(expected), "{case}: {}", err.message);
        assert!(!err.message.contains('\n'));
    }
    // A failure is not remembered: the next fetch discovers again.
    let session = Session::new(&base("flaky")).unwrap();
    assert!(token(&session).unwrap_err().message.contains("HTTP 500"));
    assert!(token(&session).unwrap().starts_with("tok-"));
    // The server's list of auth methods is honoured.
    let err = token(&Session::new(&base("picky")).unwrap()).unwrap_err();
    assert!(
        err.message.contains("does not offer client_secret_post"),
        "{}",
        err.message
    );
    // An explicit token_url wins: no discovery request at all.
    let before = idp.requests().len();
    let mut cfg = base("missing");
    cfg.set("token_url", &format!("{}/token", idp.url)).unwrap();
    token(&Session::new(&cfg).unwrap()).unwrap();
    let after = idp.requests();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap()["method"], "POST");
    // The assertion's aud is the discovered endpoint.
    let d = Dir::new("disc");
    let key = d.path("k.pem");
    make_key("p256", &key);
    let mut cfg = base("good");
    cfg.set("auth_method", "private_key_jwt").unwrap();
    cfg.set("client_key_file", &key).unwrap();
    token(&Session::new(&cfg).unwrap()).unwrap();
    let form = idp.token_forms().pop().unwrap();
    let (_, claims) = verified(
        field(&form, "client_assertion").unwrap(),
        &signature::ECDSA_P256_SHA256_FIXED,
        &public_key("p256", &key),
    );
    assert_eq!(claims["aud"], format!("{}/token", idp.url));
    // Plain http to a remote issuer is refused at session_new.
    let mut cfg = base("good");
    cfg.set("issuer", "http://idp.example/").unwrap();
    assert_eq!(
        Session::new(&cfg).err().unwrap().code,
        Code::CLOUDAUTH_ERR_INSECURE_URL
    );
}
