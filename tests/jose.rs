//! The JOSE module against keys made by openssl in every PEM form: each signs a JWS that
//! ring's verifier accepts with the public key taken from the JWK we publish; bad key files
//! and mismatched certificates are refused with a message naming the key, never its contents.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cloudauth::jose::{jwk, Alg, SigningKey};
use cloudauth::Code;
use ring::signature;
use serde_json::Value;

#[path = "support/idp/mod.rs"]
mod idp_support;
use idp_support::{make_key, openssl, Dir};

/// Every key form the library accepts, made by openssl: (file, expected default alg).
fn make_keys(d: &Dir) -> Vec<(String, Alg)> {
    let p = |n| d.path(n);
    make_key("rsa", &p("rsa8.pem"));
    openssl(&[
        "rsa",
        "-in",
        &p("rsa8.pem"),
        "-traditional",
        "-out",
        &p("rsa1.pem"),
    ]);
    make_key("p256", &p("p256sec1.pem"));
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        &p("p256sec1.pem"),
        "-out",
        &p("p256.pem"),
    ]);
    make_key("p384", &p("p384sec1.pem"));
    make_key("ed25519", &p("ed.pem"));
    vec![
        (p("rsa8.pem"), Alg::RS256),
        (p("rsa1.pem"), Alg::RS256),
        (p("p256sec1.pem"), Alg::ES256),
        (p("p256.pem"), Alg::ES256),
        (p("p384sec1.pem"), Alg::ES384),
        (p("ed.pem"), Alg::EdDSA),
    ]
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// Verifies a compact JWS with ring, using only the public JWK.
fn verify(jws: &str, jwk_text: &str, alg: Alg) {
    let jwk: Value = serde_json::from_str(jwk_text).unwrap();
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let sig = b64(sig);
    let m = |k: &str| b64(jwk[k].as_str().unwrap());
    let ok = match alg {
        Alg::RS256 | Alg::PS256 => {
            let params = if alg == Alg::PS256 {
                &signature::RSA_PSS_2048_8192_SHA256
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA256
            };
            signature::RsaPublicKeyComponents {
                n: m("n"),
                e: m("e"),
            }
            .verify(params, input.as_bytes(), &sig)
            .is_ok()
        }
        Alg::ES256 | Alg::ES384 => {
            let mut point = vec![4u8];
            point.extend(m("x"));
            point.extend(m("y"));
            let params = if alg == Alg::ES256 {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            signature::UnparsedPublicKey::new(params, point)
                .verify(input.as_bytes(), &sig)
                .is_ok()
        }
        Alg::EdDSA => signature::UnparsedPublicKey::new(&signature::ED25519, m("x"))
            .verify(input.as_bytes(), &sig)
            .is_ok(),
        Alg::HS256 => unreachable!(),
    };
    assert!(ok, "{alg:?}: the signature does not verify");
}

#[test]
fn every_key_form_signs_what_its_jwk_verifies() {
    let d = Dir::new("forms");
    for (path, natural) in make_keys(&d) {
        let key = SigningKey::from_file("client_key_file", &path, None).unwrap();
        assert_eq!(key.alg(), natural, "{path}");
        let jwk = jwk::public_jwk(&key).unwrap();
        let jws = key.sign_jws(r#"{"alg":"X"}"#, r#"{"a":1}"#);
        verify(&jws, &jwk, natural);
        assert!(!jwk.contains("\"d\""), "no private member: {jwk}");
        assert_eq!(jwk::thumbprint(&key).unwrap().len(), 43);
    }
    // PS256 with an RSA key.
    let key =
        SigningKey::from_file("client_key_file", &d.path("rsa8.pem"), Some(Alg::PS256)).unwrap();
    let jws = key.sign_jws("{}", "{}");
    verify(&jws, &jwk::public_jwk(&key).unwrap(), Alg::PS256);
}

#[test]
fn rfc8037_thumbprint() {
    // RFC 8037 A.1 and A.3: the Ed25519 key and its JWK thumbprint.
    let seed = b64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let mut pkcs8 = hex("302e020100300506032b657004220420");
    pkcs8.extend(seed);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&pkcs8)
    );
    let key = SigningKey::from_pem("k", "mem", pem.as_bytes(), None).unwrap();
    assert_eq!(
        jwk::public_jwk(&key).unwrap(),
        r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
    );
    assert_eq!(
        jwk::thumbprint(&key).unwrap(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn hs256_matches_ring_hmac() {
    let key = SigningKey::hmac(b"shared secret");
    let jws = key.sign_jws(r#"{"alg":"HS256"}"#, r#"{"x":1}"#);
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"shared secret");
    ring::hmac::verify(&k, input.as_bytes(), &b64(sig)).unwrap();
    assert!(jwk::public_jwk(&key).is_none());
}

#[test]
fn bad_key_files_name_the_key_and_never_quote_it() {
    let d = Dir::new("bad");
    let keys = make_keys(&d);
    let rsa = &keys[0].0;
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        rsa,
        "-passout",
        "pass:pw",
        "-out",
        &d.path("enc.pem"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        rsa,
        "-subj",
        "/CN=c",
        "-days",
        "1",
        "-out",
        &d.path("cert.pem"),
    ]);
    std::fs::write(d.path("junk.pem"), "hello SECRETCONTENT").unwrap();
    let cases: Vec<(String, Option<Alg>)> = vec![
        (d.path("missing.pem"), None),
        (d.path("enc.pem"), None),
        (d.path("junk.pem"), None),
        (d.path("cert.pem"), None),
        (rsa.clone(), Some(Alg::ES256)),
        (keys[2].0.clone(), Some(Alg::ES384)),
        (keys[5].0.clone(), Some(Alg::RS256)),
    ];
    for (path, alg) in cases {
        let err = SigningKey::from_file("client_key_file", &path, alg).unwrap_err();
        assert_eq!(err.code, Code::CLOUDAUTH_ERR_INVALID_ARGUMENT, "{path}");
        assert!(
            err.message.starts_with("client_key_file: "),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains("SECRETCONTENT") && !err.message.contains("BEGIN"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains('\n') && err.message.len() < 400,
            "{}",
            err.message
        );
    }
}

#[test]
fn certificate_thumbprint_only_for_the_matching_key() {
    let d = Dir::new("cert");
    let keys = make_keys(&d);
    for (i, (path, _)) in keys
        .iter()
        .enumerate()
        .filter(|(i, _)| [0, 3, 5].contains(i))
    {
        let cert = d.path(&format!("cert{i}.pem"));
        openssl(&[
            "req", "-x509", "-key", path, "-subj", "/CN=c", "-days", "1", "-out", &cert,
        ]);
        let key = SigningKey::from_file("client_key_file", path, None).unwrap();
        let x5t = jwk::cert_thumbprint("client_cert_file", &cert, &key).unwrap();
        // openssl's own SHA-256 fingerprint of the DER, base64url.
        let out = openssl(&["x509", "-in", &cert, "-noout", "-fingerprint", "-sha256"]);
        let text = String::from_utf8(out).unwrap();
        let fp = hex(&text.trim().rsplit('=').next().unwrap().replace(':', ""));
        assert_eq!(x5t, URL_SAFE_NO_PAD.encode(fp));
        let other = SigningKey::from_file("client_key_file", &keys[(i + 2) % 6].0, None).unwrap();
        let err = jwk::cert_thumbprint("client_cert_file", &cert, &other).unwrap_err();
        assert!(
            err.message.starts_with("client_cert_file: ") && err.message.contains("does not match"),
            "{}",
            err.message
        );
    }
    assert!(jwk::cert_thumbprint(
        "client_cert_file",
        &keys[0].0,
        &SigningKey::generate_es256()
    )
    .unwrap_err()
    .message
    .contains("no PEM certificate"));
}
