//! `credentials_file`: a Google service-account key file (the JSON `gcloud iam
//! service-accounts keys create` writes). It gives the JWT-bearer grant its issuer
//! (`client_email`), key (`private_key`), key id (`private_key_id`) and token endpoint
//! (`token_uri`). The file is a secret: read whole at every token request (replacing it rotates
//! the key), zeroed after use, and never quoted: a malformed one is named by field.

use crate::error::{quote_prefix, Error, Result};
use crate::jose::{Alg, SigningKey};
use crate::secret::Secret;
use zeroize::Zeroizing;

const KEY: &str = "credentials_file";
/// A key file is about 2.3 KiB; anything much bigger is not one.
const MAX_BYTES: usize = 256 * 1024;

/// What a service-account file holds, the key already parsed.
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: Option<String>,
    pub token_uri: Option<String>,
    pub key: SigningKey,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("key", &"***")
            .finish()
    }
}

/// The file's text, for the shared cache's sealing key (it is as stable as a client secret).
pub fn read_text(path: &str) -> Result<Secret> {
    let bytes = read(path)?;
    Ok(Secret::new(&String::from_utf8_lossy(&bytes)))
}

fn read(path: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = crate::jose::key::read_secret_file(KEY, path)?;
    if bytes.len() > MAX_BYTES {
        return Err(Error::invalid(format!(
            "{KEY}: '{}' is larger than {} KiB, so not a service-account key file",
            quote_prefix(path, 200),
            MAX_BYTES / 1024
        )));
    }
    Ok(bytes)
}

impl ServiceAccount {
    /// Reads and checks the file now. `alg` is `client_assertion_alg` (Google wants RS256, the
    /// RSA key's default).
    pub fn load(path: &str, alg: Option<Alg>) -> Result<ServiceAccount> {
        let bytes = read(path)?;
        ServiceAccount::parse(path, &bytes, alg)
    }

    pub fn parse(path: &str, bytes: &[u8], alg: Option<Alg>) -> Result<ServiceAccount> {
        let shown = quote_prefix(path, 200);
        let bad = |why: String| Error::invalid(format!("{KEY}: '{shown}' {why}"));
        // serde's message says where, never what: still, only a fixed text is shown. (The
        // parsed copy is not zeroed: serde_json's values cannot be; the PEM copy below is.)
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|_| bad("is not JSON (expected a Google service-account key file)".into()))?;
        let obj = json
            .as_object()
            .ok_or_else(|| bad("is JSON but not an object".into()))?;
        match obj.get("type").and_then(|t| t.as_str()) {
            None | Some("service_account") => {}
            Some("external_account") => {
                return Err(bad(
                    "is an external_account (workload identity federation) configuration, \
                     not a service-account key; use grant_type=token_exchange with \
                     subject_token_file (README, \"Workload identity\")"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(bad(format!(
                    "has type '{}', not service_account",
                    quote_prefix(other, 40)
                )))
            }
        }
        let text = |field: &str, required: bool| -> Result<Option<String>> {
            match obj.get(field) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                None | Some(serde_json::Value::Null) if !required => Ok(None),
                None => Err(bad(format!("has no {field}"))),
                Some(_) => Err(bad(format!("has a {field} that is not a non-empty string"))),
            }
        };
        let client_email = text("client_email", true)?.unwrap_or_default();
        let private_key_id = text("private_key_id", false)?;
        let token_uri = text("token_uri", false)?;
        if let Some(uri) = &token_uri {
            crate::http::url_policy::parse_http_url("token_uri", uri)
                .map_err(|_| bad("has a token_uri that is not an http(s) URL".into()))?;
        }
        let pem = match obj.get("private_key") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Zeroizing::new(s.clone()),
            None => return Err(bad("has no private_key".into())),
            Some(_) => return Err(bad("has a private_key that is not a PEM string".into())),
        };
        // from_pem names the field, not the file's text; an encrypted key is refused there.
        let key = SigningKey::from_pem(&format!("{KEY} private_key"), path, pem.as_bytes(), alg)?;
        Ok(ServiceAccount {
            client_email,
            private_key_id,
            token_uri,
            key,
        })
    }
}
