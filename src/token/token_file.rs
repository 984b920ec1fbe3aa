//! A token the platform keeps in a file and rewrites every few minutes (a Kubernetes projected
//! service-account token, Azure's federated token, a SPIFFE JWT-SVID, a CI job's OIDC token):
//! read whole at every attempt, so a rotated file is always what is sent. The content is a
//! secret: messages name the key and the path, never a byte of the file.

use crate::error::{quote_prefix, Error, Result};
use crate::secret::Secret;
use std::io::Read;

/// Platform tokens are a few KiB; a bigger file is not one (and is not read whole).
const MAX_BYTES: u64 = 64 * 1024;

/// Which key a file belongs to and whether it must hold a JWT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFile {
    /// The configuration key, named in every message (`client_assertion_file`, …).
    pub key: &'static str,
    pub path: String,
    /// The content must be a compact JWS or JWE (checked by shape, never verified here).
    pub jwt: bool,
}

impl TokenFile {
    pub fn new(key: &'static str, path: &str, jwt: bool) -> TokenFile {
        TokenFile {
            key,
            path: path.to_owned(),
            jwt,
        }
    }

    /// The token as of now, trailing whitespace dropped.
    pub fn read(&self) -> Result<Secret> {
        let (key, shown) = (self.key, quote_prefix(&self.path, 200));
        let bad = |why: &str| Error::invalid(format!("{key}: '{shown}' {why}"));
        let file = std::fs::File::open(&self.path)
            .map_err(|e| Error::invalid(format!("{key}: cannot read '{shown}': {e}")))?;
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::invalid(format!("{key}: cannot read '{shown}': {e}")))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(bad(&format!(
                "is larger than {} KiB, so not a token",
                MAX_BYTES / 1024
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("is not text"))?;
        let token = text.trim_end();
        if token.is_empty() {
            return Err(bad("is empty"));
        }
        if token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(bad(
                "holds characters a token cannot have (spaces, controls or non-ASCII)",
            ));
        }
        if self.jwt && !is_compact_jwt(token) {
            return Err(bad(
                "does not hold a JWT (expected base64url parts joined by '.', a JSON header)",
            ));
        }
        Ok(Secret::new(token))
    }
}

/// A compact JWS (3 parts) or JWE (5 parts) whose first part decodes to a JSON object with
/// `alg`: the shape only, enough to catch a wrong file (a PEM key, a JSON document, a path).
pub fn is_compact_jwt(token: &str) -> bool {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    if !matches!(parts.len(), 3 | 5) {
        return false;
    }
    let b64url = |p: &&str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !parts.iter().all(b64url) || parts[0].is_empty() || parts[1].is_empty() {
        return false;
    }
    let Ok(header) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&header)
        .ok()
        .and_then(|h| h.get("alg").map(|a| a.is_string()))
        .unwrap_or(false)
}

/// The `iss` and `sub` of a JWS's payload, unverified: only to tell apart whose token a shared
/// cache entry holds (two workloads exchanging their own tokens must not share one).
pub fn subject_of(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let field = |k: &str| claims.get(k).and_then(|v| v.as_str()).unwrap_or("");
    Some(format!(
        "{}:{}\0{}:{}",
        field("iss").len(),
        field("iss"),
        field("sub").len(),
        field("sub")
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", e(r#"{"alg":"RS256"}"#), e(claims))
    }

    fn file_with(dir: &std::path::Path, name: &str, content: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn reads_the_current_content_without_trailing_whitespace() {
        let dir = tempdir();
        let token = jwt(r#"{"sub":"a"}"#);
        let path = file_with(&dir, "t", format!("{token}\r\n \n").as_bytes());
        let f = TokenFile::new("client_assertion_file", &path, true);
        assert_eq!(f.read().unwrap().expose(), token);
        let rotated = jwt(r#"{"sub":"b"}"#);
        std::fs::write(&path, &rotated).unwrap();
        assert_eq!(f.read().unwrap().expose(), rotated, "re-read, not cached");
    }

    #[test]
    fn bad_files_name_the_key_and_never_quote_the_content() {
        let dir = tempdir();
        let secret_looking = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
        let cases: Vec<(String, &str)> = vec![
            (
                dir.join("missing").to_str().unwrap().to_owned(),
                "cannot read",
            ),
            (file_with(&dir, "empty", b" \n\t\n"), "is empty"),
            (
                file_with(&dir, "pem", secret_looking.as_bytes()),
                "token cannot have",
            ),
            (
                file_with(&dir, "json", br#"{"token":"MIIEvQIBADANBgkqhkiG9w0"}"#),
                "does not hold a JWT",
            ),
            (
                file_with(&dir, "two", b"MIIEvQIBADANBgkqhkiG9w0.abc"),
                "does not hold a JWT",
            ),
            (file_with(&dir, "bin", &[0xff, 0xfe, 0x00]), "is not text"),
            (
                file_with(&dir, "big", &vec![b'a'; 70 * 1024]),
                "larger than",
            ),
        ];
        for (path, why) in cases {
            let err = TokenFile::new("subject_token_file", &path, true)
                .read()
                .unwrap_err();
            assert_eq!(err.code, crate::error::Code::CLOUDAUTH_ERR_INVALID_ARGUMENT);
            assert!(
                err.message.starts_with("subject_token_file: "),
                "{}",
                err.message
            );
            assert!(err.message.contains(why), "{why}: {}", err.message);
            assert!(!err.message.contains("MIIEvQ"), "{}", err.message);
        }
        // Not every subject token is a JWT (an opaque access token, a SAML assertion).
        let opaque = file_with(&dir, "opaque", b"ya29.opaque-token\n");
        let f = TokenFile::new("subject_token_file", &opaque, false);
        assert_eq!(f.read().unwrap().expose(), "ya29.opaque-token");
    }

    #[test]
    fn jwt_shape_and_subject() {
        let t = jwt(r#"{"iss":"https://k8s","sub":"system:serviceaccount:ns:sa"}"#);
        assert!(is_compact_jwt(&t));
        assert!(is_compact_jwt(&format!("{t}.x.y")));
        assert!(!is_compact_jwt("a.b.c"));
        assert!(!is_compact_jwt(&format!("{t}.x")));
        let a = subject_of(&t).unwrap();
        assert!(a.contains("system:serviceaccount:ns:sa"));
        assert_ne!(
            a,
            subject_of(&jwt(
                r#"{"iss":"https://k8s","sub":"system:serviceaccount:ns:other"}"#
            ))
            .unwrap()
        );
        assert_eq!(subject_of("opaque"), None);
    }

    pub(crate) fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cloudauth-token-file-{}-{}",
            std::process::id(),
            crate::jose::random_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
