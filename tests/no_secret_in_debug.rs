//! No type that holds a token, secret, assertion, proof or private key shows it in its Debug
//! output (issue 26): each such type is formatted here with a known value inside, and a scan of
//! src/ fails for a `#[derive(Debug)]` type with such a field, so a new one cannot slip in.

use cloudauth::dpop::Dpop;
use cloudauth::http::request::ApiRequest;
use cloudauth::jose::SigningKey;
use cloudauth::secret::Secret;
use cloudauth::token::shared::seal::Entry;
use cloudauth::token::{parse_grant, Token};
use cloudauth::Config;
use std::time::{Duration, Instant};

const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl";
const SECRET: &str = "Sup3r-Secret-Value";

fn hides(what: &str, debug: String, secrets: &[&str]) {
    for s in secrets {
        assert!(!debug.contains(s), "{what}'s Debug shows {s:?}: {debug}");
    }
    assert!(!debug.is_empty());
}

#[test]
fn each_type_holding_a_credential_hides_it() {
    let body = format!(r#"{{"access_token":"{TOKEN}","expires_in":60}}"#);
    let grant = parse_grant(body.as_bytes(), Duration::from_secs(60)).unwrap();
    hides("Grant", format!("{grant:?}"), &[TOKEN]);

    let token = Token::new(
        TOKEN.into(),
        Duration::from_secs(60),
        Duration::ZERO,
        Instant::now(),
    )
    .unwrap();
    hides("Token", format!("{token:?}"), &[TOKEN, "c2VjcmV0"]);

    let entry = Entry {
        token: TOKEN.into(),
        refresh_at_ms: 1,
        expires_at_ms: 2,
    };
    hides("Entry", format!("{entry:?}"), &[TOKEN]);

    hides("Secret", format!("{:?}", Secret::new(SECRET)), &[SECRET]);

    let hmac = SigningKey::hmac(SECRET.as_bytes());
    hides("SigningKey", format!("{hmac:?}"), &[SECRET]);

    let mut cfg = Config::default();
    for (k, v) in [
        ("client_secret", SECRET.to_owned()),
        ("proxy", format!("http://user:{SECRET}@proxy.example:3128")),
        ("redis_url", format!("redis://:{SECRET}@127.0.0.1:6379/0")),
        (
            "token_url",
            format!("https://u:{SECRET}@auth.example/token?k={SECRET}"),
        ),
        ("base_url", format!("https://u:{SECRET}@api.example/")),
        ("token_param.api_key", SECRET.to_owned()),
        ("dpop", "true".to_owned()),
    ] {
        cfg.set(k, &v).unwrap();
    }
    hides("Config", format!("{cfg:?}"), &[SECRET]);

    let dpop = Dpop::new(None).unwrap();
    hides("Dpop", format!("{dpop:?}"), &["\"d\""]);
    let url = url::Url::parse("https://api.example/x").unwrap();
    let proof = dpop.proof("GET", &url, Some(token.ath()));
    let proof_text = proof.to_str().unwrap().to_owned();
    hides(
        "a DPoP proof's HeaderValue",
        format!("{proof:?}"),
        &[&proof_text[..40]],
    );
    hides("Token's bearer", format!("{:?}", token.bearer()), &[TOKEN]);

    let request = ApiRequest::new(
        "POST",
        &format!("https://u:{SECRET}@api.example/x?key={SECRET}"),
        "https://api.example",
        false,
        [format!("X-Api-Key: {SECRET}").as_str()],
        SECRET.as_bytes(),
    )
    .unwrap();
    hides("ApiRequest", format!("{request:?}"), &[SECRET]);
}

/// Field names and types that mark a credential. A derived Debug prints every field, so a type
/// with one of these must write its own.
const NAMES: &[&str] = &[
    "token",
    "secret",
    "assertion",
    "proof",
    "password",
    "private",
];
const TYPES: &[&str] = &[
    "Secret",
    "Token",
    "SigningKey",
    "CertifiedKey",
    "Zeroizing",
    "Grant",
    "Entry",
    "Sealer",
    "Dpop",
];
/// A field named with a marker word holds a credential when its type can hold text or bytes,
/// and it is not a path, URL or list of supported names.
fn harmless(name: &str, ty: &str) -> bool {
    let text = ["String", "str", "Vec<u8>", "Bytes", "HeaderValue"]
        .iter()
        .any(|t| ty.contains(t));
    !text
        // Paths, URLs, type URNs (`subject_token_type`) and the names of who an assertion is
        // from or about (`assertion_issuer`): what a credential is, never one.
        || ["_file", "_url", "_supported", "_endpoint", "_type", "_issuer", "_subject"]
            .iter()
            .any(|s| name.ends_with(s))
}

#[test]
fn no_derived_debug_on_a_type_that_holds_a_credential() {
    let mut offenders = Vec::new();
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#[derive(") {
            rest = &rest[i..];
            let attr_end = rest.find(")]").unwrap();
            let derives_debug = rest[..attr_end].contains("Debug");
            let item = &rest[attr_end..];
            rest = &rest[attr_end + 2..];
            if !derives_debug {
                continue;
            }
            scanned += 1;
            // The item's body: up to its end at brace/paren depth 0 or a `;`.
            let start = item.find(['{', '(', ';']).unwrap();
            let mut depth = 0;
            let mut end = start;
            for (k, c) in item[start..].char_indices() {
                match c {
                    '{' | '(' | '<' => depth += 1,
                    '}' | ')' | '>' => depth -= 1,
                    ';' if depth == 0 => {}
                    _ => {}
                }
                if depth == 0 {
                    end = start + k;
                    break;
                }
            }
            let head = item[..start].trim();
            let body = &item[start..=end];
            for line in body.lines() {
                let line = line
                    .trim()
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub(super) ")
                    .trim_start_matches("pub ");
                if line.starts_with("//") {
                    continue;
                }
                let (name, ty) = line.split_once(':').unwrap_or(("", line));
                let lname = name.to_ascii_lowercase();
                let flagged = (NAMES.iter().any(|n| lname.contains(n)) && !harmless(name, ty))
                    || TYPES.iter().any(|t| {
                        ty.split(|c: char| !c.is_alphanumeric() && c != '_')
                            .any(|w| w == *t)
                    });
                if flagged {
                    offenders.push(format!(
                        "{}: {} ({})",
                        p.display(),
                        head.lines().last().unwrap_or(head),
                        line
                    ));
                }
            }
        }
    }
    assert!(scanned > 15, "scanned only {scanned} derives");
    assert!(
        offenders.is_empty(),
        "derived Debug on types with credentials:\n{}",
        offenders.join("\n")
    );
}
