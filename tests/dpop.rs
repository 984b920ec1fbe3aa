//! DPoP (RFC 9449) against the recording server (tests/support/idp_server.py): every proof
//! the library sent is verified here with ring from the `jwk` in its own header, and checked
//! for typ, htm, htu, iat, jti, ath and nonce; nonces are learned and the resend is bounded.

#[path = "support/idp/mod.rs"]
mod idp_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cloudauth::{Code, Config, Session};
use idp_support::{b64, make_key, Dir, Idp};
use ring::signature;
use serde_json::Value;
use std::collections::HashSet;

/// Header and claims of a proof, after checking its signature with the key in its header.
fn proof(jws: &str) -> (Value, Value) {
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let header: Value = serde_json::from_slice(&b64(input.split('.').next().unwrap())).unwrap();
    assert_eq!(header["typ"], "dpop+jwt");
    let jwk = &header["jwk"];
    assert!(jwk.get("d").is_none(), "no private member in the jwk");
    let m = |k: &str| b64(jwk[k].as_str().unwrap());
    let ok = match header["alg"].as_str().unwrap() {
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(m("x"));
            point.extend(m("y"));
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &b64(sig))
                .is_ok()
        }
        "EdDSA" => signature::UnparsedPublicKey::new(&signature::ED25519, m("x"))
            .verify(input.as_bytes(), &b64(sig))
            .is_ok(),
        other => panic!("unexpected alg {other}"),
    };
    assert!(ok, "the proof's signature verifies with its jwk");
    let claims = serde_json::from_slice(&b64(input.split('.').nth(1).unwrap())).unwrap();
    (header, claims)
}

fn sha256_b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

fn dpop_config(idp: &Idp, token_path: &str, extra: &[(&str, &str)]) -> Config {
    let mut cfg = idp.config(&[("client_secret", "dpop-secret"), ("dpop", "true")]);
    cfg.set("token_url", &format!("{}{token_path}", idp.url))
        .unwrap();
    for (k, v) in extra {
        cfg.set(k, v).unwrap();
    }
    cfg
}

fn since(idp: &Idp, n: usize) -> Vec<Value> {
    idp.requests().split_off(n)
}

#[test]
fn token_and_api_requests_carry_verifiable_proofs_of_one_key() {
    let idp = Idp::start();
    let session = Session::new(&dpop_config(&idp, "/token", &[])).unwrap();
    let r1 = session.request("GET", "/api?q=secret#f", [], b"").unwrap();
    assert_eq!(r1.status, 200);
    session.request("POST", "/api", [], b"x").unwrap();
    let reqs = idp.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let (token_req, api) = (&reqs[0], &reqs[1..]);
    let (th, tc) = proof(token_req["headers"]["dpop"].as_str().unwrap());
    assert_eq!(tc["htm"], "POST");
    assert_eq!(tc["htu"], format!("{}/token", idp.url));
    assert!(tc.get("ath").is_none());
    let mut jtis = HashSet::from([tc["jti"].as_str().unwrap().to_owned()]);
    let token = api[0]["headers"]["authorization"].as_str().unwrap();
    let value = token
        .strip_prefix("DPoP ")
        .expect("the DPoP scheme for a DPoP token");
    for (req, method) in api.iter().zip(["GET", "POST"]) {
        assert_eq!(req["headers"]["authorization"], token);
        let (h, c) = proof(req["headers"]["dpop"].as_str().unwrap());
        assert_eq!(h["jwk"], th["jwk"], "one key for the session");
        assert_eq!(c["htm"], method);
        assert_eq!(
            c["htu"],
            format!("{}/api", idp.url),
            "no query, no fragment"
        );
        assert_eq!(c["ath"], sha256_b64(value));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(c["iat"].as_u64().unwrap().abs_diff(now) < 60);
        assert!(
            jtis.insert(c["jti"].as_str().unwrap().to_owned()),
            "jti reused"
        );
    }
}

#[test]
fn token_endpoint_nonce_is_learned_and_asked_for_once() {
    let idp = Idp::start();
    let session = Session::new(&dpop_config(&idp, "/nonce/token", &[])).unwrap();
    session.with_token(|_| ()).unwrap();
    let posts: Vec<Value> = idp.requests();
    assert_eq!(posts.len(), 2, "one resend with the nonce");
    assert!(proof(posts[0]["headers"]["dpop"].as_str().unwrap())
        .1
        .get("nonce")
        .is_none());
    assert_eq!(
        proof(posts[1]["headers"]["dpop"].as_str().unwrap()).1["nonce"],
        "server-nonce-1"
    );
    assert_eq!(session.stats().token_requests, 2);
    // Learned: the next fetch sends it at once.
    session.invalidate();
    session.with_token(|_| ()).unwrap();
    let reqs = since(&idp, 2);
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        proof(reqs[0]["headers"]["dpop"].as_str().unwrap()).1["nonce"],
        "server-nonce-1"
    );
}

#[test]
fn api_nonce_challenge_resends_once_with_the_same_token() {
    let idp = Idp::start();
    let session = Session::new(&dpop_config(&idp, "/token", &[])).unwrap();
    let r = session.request("GET", "/api/nonce", [], b"").unwrap();
    assert_eq!(r.status, 200);
    let reqs = idp.requests();
    let gets: Vec<&Value> = reqs.iter().filter(|r| r["method"] == "GET").collect();
    assert_eq!(gets.len(), 2);
    assert_eq!(
        gets[0]["headers"]["authorization"],
        gets[1]["headers"]["authorization"]
    );
    assert_eq!(
        proof(gets[1]["headers"]["dpop"].as_str().unwrap()).1["nonce"],
        "api-nonce-1"
    );
    let stats = session.stats();
    assert_eq!((stats.token_requests, stats.unauthorized_resends), (1, 0));

    // A server that always asks again: exactly one resend, then its 401 is the answer.
    let before = idp.requests().len();
    let r = session.request("GET", "/api/nonce-loop", [], b"").unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(since(&idp, before).len(), 2);
    assert_eq!(
        session.stats().token_requests,
        1,
        "a nonce challenge is not a rejection"
    );
}

#[test]
fn dpop_token_without_dpop_is_refused_and_echoed_proofs_are_scrubbed() {
    let idp = Idp::start();
    let mut cfg = idp.config(&[("client_secret", "long-enough-secret")]);
    cfg.set("token_url", &format!("{}/dpop-always/token", idp.url))
        .unwrap();
    let err = Session::new(&cfg).unwrap().with_token(|_| ()).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE);
    assert!(
        err.message.contains("token_type is DPoP"),
        "{}",
        err.message
    );

    let d = Dir::new("echo");
    let key = d.path("k.pem");
    make_key("p256", &key);
    let cfg = dpop_config(
        &idp,
        "/echo/token",
        &[
            ("auth_method", "private_key_jwt"),
            ("client_key_file", &key),
        ],
    );
    let before = idp.requests().len();
    let err = Session::new(&cfg).unwrap().with_token(|_| ()).unwrap_err();
    let sent = &since(&idp, before)[0];
    let proof_sent = sent["headers"]["dpop"].as_str().unwrap();
    let assertion = sent["form"]["client_assertion"][0].as_str().unwrap();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_AUTH_REJECTED);
    assert!(err.message.contains("got proof ***"), "{}", err.message);
    for (what, secret) in [("proof", proof_sent), ("assertion", assertion)] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !err.message.contains(signature),
            "{what} leaked: {}",
            err.message
        );
    }
}

#[test]
fn pinned_key_is_used_and_only_then_the_shared_cache_holds_dpop_tokens() {
    let idp = Idp::start();
    let d = Dir::new("pinned");
    let key = d.path("dpop.pem");
    make_key("ed25519", &key);
    let cache_dir = d.path("cache");
    let pinned = [
        ("dpop_key_file", key.as_str()),
        ("token_cache", "file"),
        ("token_cache_dir", cache_dir.as_str()),
    ];
    let a = Session::new(&dpop_config(&idp, "/token", &pinned)).unwrap();
    a.request("GET", "/api", [], b"").unwrap();
    let b = Session::new(&dpop_config(&idp, "/token", &pinned)).unwrap();
    b.request("GET", "/api", [], b"").unwrap();
    assert_eq!(
        b.stats().token_requests,
        0,
        "b took a's DPoP token from the shared cache"
    );
    assert_eq!(b.stats().shared_cache_hits, 1);
    let reqs = idp.requests();
    let (h, _) = proof(reqs.last().unwrap()["headers"]["dpop"].as_str().unwrap());
    assert_eq!(h["alg"], "EdDSA");
    assert_eq!(
        reqs.last().unwrap()["headers"]["authorization"],
        reqs[1]["headers"]["authorization"]
    );

    // A generated key: each session keeps its token to itself.
    let own = [
        ("token_cache", "file"),
        ("token_cache_dir", cache_dir.as_str()),
    ];
    let c = Session::new(&dpop_config(&idp, "/token", &own)).unwrap();
    c.with_token(|_| ()).unwrap();
    let e = Session::new(&dpop_config(&idp, "/token", &own)).unwrap();
    e.with_token(|_| ()).unwrap();
    assert_eq!((c.stats().token_requests, e.stats().token_requests), (1, 1));
    assert_eq!(e.stats().shared_cache_hits, 0);

    // A bad dpop_key_file is refused at session_new, naming it.
    std::fs::write(d.path("bad.pem"), "nope").unwrap();
    let bad = d.path("bad.pem");
    let err = Session::new(&dpop_config(&idp, "/token", &[("dpop_key_file", &bad)]))
        .err()
        .unwrap();
    assert!(
        err.message.starts_with("dpop_key_file: "),
        "{}",
        err.message
    );
    let mut cfg = idp.config(&[
        ("client_secret", "long-enough-secret"),
        ("dpop_key_file", &key),
    ]);
    cfg.set("dpop", "false").unwrap();
    assert!(Session::new(&cfg)
        .err()
        .unwrap()
        .message
        .contains("dpop_key_file is set but dpop is not"));
}

#[test]
fn token_endpoint_nonce_loop_is_bounded_to_one_resend() {
    let idp = Idp::start();
    let session = Session::new(&dpop_config(&idp, "/nonce-loop/token", &[])).unwrap();
    let err = session.with_token(|_| ()).unwrap_err();
    assert_eq!(err.code, Code::CLOUDAUTH_ERR_AUTH_REJECTED);
    assert!(err.message.contains("use_dpop_nonce"), "{}", err.message);
    assert_eq!(idp.requests().len(), 2, "the first request and one resend");
    assert_eq!(session.stats().token_requests, 2);
}

#[test]
fn a_same_origin_redirect_under_dpop_carries_a_fresh_proof_naming_each_hop() {
    let idp = Idp::start();
    let session = Session::new(&dpop_config(&idp, "/token", &[])).unwrap();
    let r = session.request("GET", "/api/redirect", [], b"").unwrap();
    assert_eq!(r.status, 200);
    let gets: Vec<_> = idp
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    let claims: Vec<_> = gets
        .iter()
        .map(|g| proof(g["headers"]["dpop"].as_str().unwrap()).1)
        .collect();
    assert_eq!(claims[0]["htu"], format!("{}/api/redirect", idp.url));
    assert_eq!(claims[1]["htu"], format!("{}/api", idp.url));
    assert_ne!(claims[0]["jti"], claims[1]["jti"], "one proof per hop");
    assert_eq!(
        gets[0]["headers"]["authorization"],
        gets[1]["headers"]["authorization"]
    );
}
