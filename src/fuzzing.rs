//! The fuzz targets' bodies (fuzz/, `make fuzz`): one function per parser that reads outside
//! input, each feeding it the fuzzer's bytes and checking what must hold whatever they are.
//! A broken invariant panics, which libFuzzer reports as a crash. Kept in the crate, not in
//! fuzz/, so that they reach `pub(crate)` parsers without widening the API, and so that
//! `cargo test` (tests/fuzz_corpus.rs) replays every committed corpus and crash input through
//! the same checks on stable Rust. Not an API: hidden from the docs, may change at any time.

use crate::config::{keys, Config, TOKEN_PARAM_PREFIX};
use crate::dpop::{self, Dpop};
use crate::http::request::ApiRequest;
use crate::jose::{jwk, Alg, SigningKey};
use crate::token::discovery::Discovery;
use crate::token::shared::redis::RedisCache;
use crate::token::shared::seal::{Entry, Sealer};
use crate::token::{parse_grant, Grant, Token};
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use url::Url;

const HOUR: Duration = Duration::from_secs(3600);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// A message a caller may see: one line as the core makes it (the C boundary also turns
/// control characters into spaces, but a message that needs that has lost its shape), and
/// never `secret` (when it is long enough to be told apart from ordinary words). The length is
/// the boundary's to bound (`error::one_line`): the token endpoint scrubs a server's whole text
/// of credentials first and only then may it be cut.
fn check_message(message: &str, secret: &str) {
    assert!(
        !message.contains(['\n', '\r', '\0']),
        "a message of more than one line: {message:?}"
    );
    if secret.len() >= 8 {
        assert!(!message.contains(secret), "the message shows the secret");
    }
}

/// Splits the input at the first `sep` byte: two independent inputs from one.
fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A token endpoint's 200 body (RFC 6749 §5.1 and every lenient form of `expires_in`:
/// numbers, numeric strings, floats, huge, negative, tiny).
pub fn token_response(data: &[u8]) {
    match parse_grant(data, HOUR) {
        Ok(g) => {
            assert!(!g.access_token.is_empty());
            assert!(!g.expires_in.is_zero() && g.expires_in <= YEAR);
            if let Some(r) = g.refresh_in {
                assert!(!r.is_zero() && r <= YEAR);
            }
            // Debug output does not depend on the token: it cannot show it.
            let other = Grant {
                access_token: "x".repeat(g.access_token.len()),
                ..g
            };
            let g = parse_grant(data, HOUR).unwrap();
            assert_eq!(
                format!("{g:?}"),
                format!("{other:?}"),
                "Grant's Debug shows the token"
            );
            let (skew, now) = (Duration::from_secs(60), Instant::now());
            match Token::new(g.access_token.clone(), g.expires_in, skew, now) {
                Ok(t) => {
                    assert!(t.refresh_at <= t.expires_at);
                    assert!(t.value().bytes().all(|b| b.is_ascii_graphic()));
                    let o = Token::new(other.access_token, g.expires_in, skew, now).unwrap();
                    assert_eq!(format!("{t:?}"), format!("{o:?}"), "Token's Debug shows it");
                }
                Err(e) => check_message(&e.message, ""),
            }
        }
        // The refusals name fields and quote other values (token_type...), never access_token.
        Err(e) => check_message(&e.message, ""),
    }
}

/// An authorization server's metadata document (RFC 8414), with plain http allowed or not
/// (first byte).
pub fn discovery_metadata(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let allow_insecure = flags & 1 == 1;
    let issuer = "https://issuer.example/tenant";
    let d = Discovery::new(issuer, allow_insecure).expect("a valid issuer");
    let at = Url::parse("https://issuer.example/.well-known/oauth-authorization-server").unwrap();
    match d.read(&at, body) {
        Ok(m) => {
            assert_eq!(m.issuer, issuer);
            for url in [Some(&m.token_endpoint), m.mtls_token_endpoint.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(matches!(url.scheme(), "http" | "https") && url.host().is_some());
                assert!(
                    allow_insecure
                        || url.scheme() == "https"
                        || crate::http::url_policy::is_loopback(url)
                );
            }
        }
        Err(e) => check_message(&e.message, ""),
    }
}

/// The algorithm a key is asked to sign with: none (its usual one) or each of them.
fn alg_of(b: u8) -> Option<Alg> {
    [
        Alg::RS256,
        Alg::PS256,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
    ]
    .get(b as usize % 7)
    .copied()
}

/// What must hold of a parsed key: its public JWK is JSON with exactly the RFC 7638 members
/// in order, the thumbprint is that JSON's SHA-256, and it signs.
fn check_key(key: &SigningKey) {
    let Some(jwk) = jwk::public_jwk(key) else {
        assert_eq!(key.alg(), Alg::HS256);
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&jwk).expect("the JWK is JSON");
    let members: Vec<&String> = v.as_object().expect("an object").keys().collect();
    let mut sorted = members.clone();
    sorted.sort();
    assert_eq!(members, sorted, "RFC 7638 wants the members in order");
    let expected = match v["kty"].as_str() {
        Some("RSA") => vec!["e", "kty", "n"],
        Some("EC") => vec!["crv", "kty", "x", "y"],
        Some("OKP") => vec!["crv", "kty", "x"],
        other => panic!("unexpected kty {other:?}"),
    };
    assert_eq!(members, expected);
    for m in members {
        assert!(!v[m].as_str().unwrap().is_empty());
    }
    if v["kty"] == "EC" {
        assert_eq!(
            v["x"].as_str().unwrap().len(),
            v["y"].as_str().unwrap().len()
        );
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes());
    assert_eq!(
        jwk::thumbprint(key).unwrap(),
        crate::jose::b64url(digest.as_ref())
    );
    assert!(!key.sign(b"header.claims").is_empty());
}

/// A PEM private key file as `client_key_file` / `dpop_key_file` hold it; the first byte
/// picks the algorithm asked for.
pub fn pem_key(data: &[u8]) {
    let Some((&alg, pem)) = data.split_first() else {
        return;
    };
    match SigningKey::from_pem("client_key_file", "/fuzz/key.pem", pem, alg_of(alg)) {
        Ok(key) => check_key(&key),
        Err(e) => {
            check_message(&e.message, "");
            assert!(!e.message.contains("-----"), "a message quotes the file");
        }
    }
}

/// A DER private key (PKCS#8, PKCS#1 RSA or SEC1 EC, picked by the first byte) as PEM
/// carries it, so the fuzzer works on the DER the key parsers and the JWK builder read.
pub fn der_key_jwk(data: &[u8]) {
    let Some((&pick, der)) = data.split_first() else {
        return;
    };
    let label = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"][pick as usize % 3];
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    match SigningKey::from_pem("dpop_key_file", "/fuzz/key.pem", pem.as_bytes(), None) {
        Ok(key) => check_key(&key),
        Err(e) => check_message(&e.message, ""),
    }
}

/// A client certificate chain and its key (mTLS, `x5t#S256`): the PEM texts split at the
/// first 0xFF byte.
pub fn certificate(data: &[u8]) {
    let (cert, key) = split(data, 0xFF);
    if let Err(e) = crate::http::client_cert::parse_pem(cert, key) {
        check_message(&e.message, "");
        assert!(!e.message.contains("-----"), "a message quotes the file");
    }
    let Ok(signing) = SigningKey::from_pem("client_key_file", "/fuzz/key.pem", key, None) else {
        return;
    };
    match jwk::cert_thumbprint_pem("client_cert_file", "/fuzz/cert.pem", cert, &signing) {
        Ok(t) => assert_eq!(t.len(), 43),
        Err(e) => check_message(&e.message, ""),
    }
}

/// The key every sealed-entry check uses, derived once.
fn sealer() -> &'static Sealer {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    SEALER.get_or_init(|| Sealer::new(b"fuzz client secret", "fuzz-cache-key"))
}

/// A shared-cache entry as the file or Redis cache hands it back. Raw bytes must open to an
/// error (only the secret's holder can make an entry). Then a real entry made from the input
/// is sealed, changed where the input says (one bit, a cut, or bytes added) and opened: the
/// unchanged one opens to itself, every changed one is refused, and no other key opens it.
pub fn sealed_entry(data: &[u8]) {
    let sealer = sealer();
    if let Ok(e) = sealer.open(data) {
        panic!("opened a forged entry ({} byte token)", e.token.len());
    }
    if data.len() < 19 {
        return;
    }
    let (head, token) = data.split_at(19);
    let entry = Entry {
        token: String::from_utf8_lossy(token).into_owned(),
        refresh_at_ms: u64::from_le_bytes(head[0..8].try_into().unwrap()),
        expires_at_ms: u64::from_le_bytes(head[8..16].try_into().unwrap()),
    };
    let sealed = sealer.seal(&entry).expect("sealing works");
    assert!(sealer.open(&sealed) == Ok(entry.clone()), "a round trip");
    let other = Sealer::new(b"fuzz client secret", "another-cache-key");
    assert!(
        other.open(&sealed).is_err(),
        "an entry moved to another key opens"
    );
    let at = u16::from_le_bytes([head[16], head[17]]) as usize % sealed.len();
    let mut changed = sealed.clone();
    match head[18] % 3 {
        0 => changed[at] ^= 1 << (head[18] % 8),
        1 => changed.truncate(at),
        _ => changed.extend_from_slice(&head[..1 + at % 8]),
    }
    assert!(sealer.open(&changed).is_err(), "a changed entry opens");
}

/// A Redis server's reply (RESP2/RESP3 bytes) to each command the cache sends: GET (an entry,
/// then opened), SET NX (the lock), EVAL (compare-and-delete/expire) and SET. An error reply
/// becomes a message that never shows the password, however the server echoes it.
pub fn redis_reply(data: &[u8]) {
    use ::redis::{FromRedisValue, RedisError, RedisResult, Value};
    static CACHE: OnceLock<RedisCache> = OnceLock::new();
    // Nothing connects: the client is only built, and `message` only formats.
    let cache = CACHE.get_or_init(|| {
        RedisCache::new(
            "redis://:S3cret%2Bpass@127.0.0.1:1/0",
            None,
            "fuzz",
            Duration::from_secs(1),
        )
        .expect("a valid URL")
    });
    let reply: RedisResult<Value> =
        ::redis::parse_redis_value(data).and_then(|v| v.extract_error());
    let check = |e: &RedisError| {
        let m = cache.message("GET failed", e);
        check_message(&m, "S3cret%2Bpass");
        check_message(&m, "S3cret+pass");
    };
    let value = match reply {
        Ok(v) => v,
        Err(e) => return check(&e),
    };
    match Option::<Vec<u8>>::from_redis_value(value.clone()) {
        Ok(Some(entry)) => {
            assert!(sealer().open(&entry).is_err(), "opened a forged entry");
        }
        Ok(None) => {}
        Err(e) => check(&RedisError::from(e)),
    }
    if let Err(e) = Option::<String>::from_redis_value(value.clone()) {
        check(&RedisError::from(e));
    }
    if let Err(e) = i64::from_redis_value(value.clone()) {
        check(&RedisError::from(e));
    }
    if let Err(e) = <()>::from_redis_value(value) {
        check(&RedisError::from(e));
    }
}

/// `cloudauth_config_set(key, value)`: the key picked by the first byte (every known key,
/// and `token_param.` names), the value the rest. A refused value leaves the configuration
/// as it was and a message that never shows a secret's value; header lines (as
/// `cloudauth_session_request` takes them) are checked against the value too.
pub fn config_value(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let keys: Vec<&str> = keys().collect();
    let (name, value) = match value.split_once('\u{0}') {
        Some((n, v)) if pick as usize % (keys.len() + 1) == keys.len() => {
            (format!("{TOKEN_PARAM_PREFIX}{n}"), v)
        }
        _ => (keys[pick as usize % keys.len()].to_owned(), value),
    };
    let mut cfg = Config::default();
    let before = format!("{cfg:?}");
    // What a message or the Debug output must never show: a client secret's value, the
    // password in a URL (redis_url, proxy, token_url...). Checked by setting the same value
    // with the secret replaced: what is shown must not change.
    let secret = match name.as_str() {
        "client_secret" => value.to_owned(),
        "token_url" | "base_url" | "proxy" | "redis_url" | "issuer" => Url::parse(value)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let replaced = (!secret.is_empty() && value.matches(secret.as_str()).count() == 1)
        .then(|| value.replace(secret.as_str(), &"Z".repeat(secret.len())))
        .filter(|r| r != value);
    let outcome = cfg.set(&name, value);
    if let Err(e) = &outcome {
        assert_eq!(
            format!("{cfg:?}"),
            before,
            "a refused value changed the config"
        );
        check_message(&e.message, "");
    }
    if let Some(replaced) = replaced {
        let mut other = Config::default();
        match (&outcome, other.set(&name, &replaced)) {
            (Ok(()), Ok(())) => {
                assert_eq!(
                    format!("{cfg:?}"),
                    format!("{other:?}"),
                    "Debug shows {name}"
                )
            }
            (Err(a), Err(b)) => assert_eq!(a.message, b.message, "a message shows {name}"),
            _ => {} // the secret's characters decided (a URL that no longer parses)
        }
    }
    match ApiRequest::new("GET", "/x", "https://api.example", false, [value], b"") {
        Ok(r) => {
            let (n, v) = r.headers.iter().next().expect("one header");
            assert!(!n.as_str().eq_ignore_ascii_case("authorization"));
            assert!(!v.as_bytes().contains(&b'\n') && !v.as_bytes().contains(&b'\r'));
        }
        Err(e) => check_message(&e.message, ""),
    }
}

/// The DPoP session every DPoP check uses: its key is generated once.
fn dpop() -> &'static Dpop {
    static DPOP: OnceLock<Dpop> = OnceLock::new();
    DPOP.get_or_init(|| Dpop::new(None).unwrap())
}

/// `WWW-Authenticate` fields (one per line) and a `DPoP-Nonce` (after a NUL) of a response:
/// the challenge list parses without panicking, a `DPoP error="use_dpop_nonce"` challenge is
/// found wherever it stands, and a learned nonce goes into the next proof exactly.
pub fn www_authenticate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (fields, nonce) = text.split_once('\0').unwrap_or((text, ""));
    let mut headers = HeaderMap::new();
    let mut expected = false;
    for field in fields.split('\n') {
        let Ok(v) = HeaderValue::from_str(field) else {
            continue;
        };
        let challenges = dpop::challenges(field);
        expected |= challenges.iter().any(|c| {
            c.scheme.eq_ignore_ascii_case("dpop")
                && c.params
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("error") && v == "use_dpop_nonce")
        });
        for c in &challenges {
            assert!(!c.scheme.is_empty() && field.contains(&c.scheme));
        }
        headers.append(WWW_AUTHENTICATE, v);
    }
    assert_eq!(dpop::asks_for_nonce(&headers), expected);
    let url = Url::parse("https://api.example/v1").unwrap();
    if let Ok(v) = HeaderValue::from_str(nonce) {
        headers.insert("dpop-nonce", v);
        if dpop().learn(&url, &headers) {
            let proof = dpop().proof("GET", &url, None);
            assert_eq!(proof_claims(&proof)["nonce"], nonce);
        }
    }
}

fn proof_claims(proof: &HeaderValue) -> serde_json::Value {
    let claims = proof.to_str().unwrap().split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// A request target joined to `base_url` (split at the first newline): a target that is not
/// absolute stays on `base_url`'s origin, under its path, and a DPoP proof for the result
/// names it without user info, query or fragment.
pub fn url_join(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (base, target) = text
        .split_once('\n')
        .unwrap_or(("https://api.example/v3", text));
    let mut cfg = Config::default();
    if cfg.set("base_url", base).is_err() {
        return;
    }
    let base = cfg.base_url.clone();
    let base_url = Url::parse(&base).expect("base_url was checked");
    let request = ApiRequest::new("GET", target, &base, true, [], b"");
    let absolute = {
        let scheme_end = target.find(':');
        let path_start = target.find(['/', '?', '#']).unwrap_or(target.len());
        scheme_end.is_some_and(|i| i > 0 && i < path_start)
    };
    match request {
        Ok(r) => {
            if !absolute {
                assert_eq!(
                    r.url.origin(),
                    base_url.origin(),
                    "a relative target left base_url's origin"
                );
                assert_eq!(r.url.username(), base_url.username());
                assert_eq!(r.url.password(), base_url.password());
            }
            let htu = dpop::htu(&r.url);
            assert!(htu.username().is_empty() && htu.password().is_none());
            assert!(htu.query().is_none() && htu.fragment().is_none());
            let claims = proof_claims(&dpop().proof("GET", &r.url, None));
            assert_eq!(claims["htu"], htu.as_str());
        }
        Err(e) => check_message(&e.message, ""),
    }
}
