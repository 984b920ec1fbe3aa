use super::{arg_out, arg_str, boundary, boundary_value, free_box};
use crate::config::Config;
use crate::error::cloudauth_result;
use std::ffi::c_char;

/// A configuration builder: a set of string keys and values from which sessions are made.
///
/// Thread-safety: single owner; do not use one config from two threads at once.
/// Ownership: created by `cloudauth_config_new`, freed by `cloudauth_config_free`.
pub struct cloudauth_config {
    pub(super) inner: Config,
}

/// Creates a configuration with every key at its default. Never returns NULL (on allocation
/// failure the process aborts, as Rust does); NULL only after an internal error, with a message.
///
/// The caller owns the result and must free it with `cloudauth_config_free`, also after it
/// has been used to create sessions (`cloudauth_session_new` copies it).
#[no_mangle]
pub extern "C" fn cloudauth_config_new() -> *mut cloudauth_config {
    boundary_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(cloudauth_config {
            inner: Config::default(),
        })))
    })
}

/// Sets one configuration key to a value given as a string (numbers in decimal, booleans as
/// "true"/"false"). Both strings are copied; the caller keeps ownership of them.
///
/// Keys: client_id, client_secret, token_url, base_url, scope, auth_method
/// (client_secret_post | client_secret_basic; more below), timeout_ms, connect_timeout_ms, refresh_skew_s,
/// max_retries, max_retry_wait_ms, default_expires_in_s, max_response_bytes, user_agent,
/// ca_file, proxy ("none" to bypass the environment's proxy), allow_insecure_http.
///
/// Identity providers (docs/identity-providers.md): auth_method also takes private_key_jwt
/// (a JWT signed with client_key_file, a PEM key: RSA, EC P-256/P-384 or Ed25519; kid from
/// client_key_id, alg from client_assertion_alg = RS256 | PS256 | ES256 | ES384 | EdDSA,
/// default from the key; x5t#S256 from client_cert_file) and client_secret_jwt (HS256 with
/// the secret). dpop=true signs a DPoP proof (RFC 9449) for the token request and every API
/// request with a per-session ES256 key, or the PEM key in dpop_key_file (only then may a
/// shared cache hold the token). issuer=URL discovers the token endpoint (RFC 8414, then
/// OpenID Connect Discovery); an explicit token_url wins. audience, resource (comma-separated:
/// one field each) and token_param.NAME add form fields to the token request; NAME may not be
/// one the library writes (grant_type, client_id, client_secret, client_assertion*, scope,
/// audience, resource). Key files are read when the session is made and, except
/// dpop_key_file, at every token request; their contents never appear in a message.
///
/// Mutual TLS (RFC 8705): auth_method=tls_client_auth (a CA-issued certificate) or
/// self_signed_tls_client_auth, with client_cert_file (PEM, leaf first, chain allowed) and
/// client_key_file (PEM PKCS#8, or traditional RSA / EC; RSA, EC P-256, P-384, Ed25519; not
/// encrypted), and no client_secret; token_url must be https. The token request sends
/// client_id and presents the certificate; so does every API request to base_url's origin
/// (certificate-bound tokens), and no request to any other origin, redirects included. Both
/// files are checked by cloudauth_session_new and read again at each token request: replacing
/// them rotates the certificate for the connections opened afterwards. With `issuer`, the
/// token request goes to the metadata's mtls_endpoint_aliases.token_endpoint when there is one.
/// Messages name the key and the path, never the files' contents.
///
/// Workload identity (docs/identity-providers.md, "Workload identity"): tokens with no
/// stored secret. auth_method=client_assertion sends the JWT in client_assertion_file (a
/// federated credential a platform rewrites: Azure's AZURE_FEDERATED_TOKEN_FILE, a Kubernetes
/// service-account token, a SPIFFE JWT-SVID), read at every attempt, retries included, with
/// client_assertion_type (default urn:ietf:params:oauth:client-assertion-type:jwt-bearer);
/// auth_method=none sends no client authentication. client_assertion_aud is the aud of the
/// assertions cloudauth signs: token_endpoint (default), issuer, or any other value.
/// grant_type = client_credentials (default) | jwt_bearer | token_exchange (or the grants'
/// URNs). jwt_bearer (RFC 7523 section 2.1) signs an assertion with client_key_file, or with
/// the key in credentials_file (a Google service-account key file, which also gives client_id,
/// the kid and token_url); iss = assertion_issuer or client_id, sub = assertion_subject when
/// set, scope as a claim when scope_in_assertion (default: true with credentials_file).
/// token_exchange (RFC 8693) sends subject_token_file (read at every attempt) as
/// subject_token_type (default urn:ietf:params:oauth:token-type:jwt), requested_token_type,
/// actor_token_file / actor_token_type, with audience, resource and scope; an
/// issued_token_type other than the one asked for is CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE. Both
/// grants default to auth_method=none unless a secret or an auth_method is set.
/// token_cache_key_file seals shared-cache entries when there is no secret or private key
/// (required for token_cache=redis then; the file cache makes a per-user key). Keys that do
/// not fit together (a secret with client_assertion, subject_token_file without
/// token_exchange) fail cloudauth_session_new with a message naming the key; a bad token or
/// key file fails there and at each later token request.
///
/// Returns CLOUDAUTH_ERR_INVALID_ARGUMENT for a NULL argument, invalid UTF-8, an unknown key
/// or a malformed value; the message names the key (never the secret's value). On failure the
/// configuration is unchanged.
///
/// # Safety
/// `cfg` is NULL or a live config; `key` and `value` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_config_set(
    cfg: *mut cloudauth_config,
    key: *const c_char,
    value: *const c_char,
) -> cloudauth_result {
    boundary(|| {
        let cfg = arg_out(cfg, "cfg")?;
        let key = arg_str(key, "key")?;
        let value = arg_str(value, "value")?;
        cfg.inner.set(key, value)
    })
}

/// Sets configuration keys from environment variables: for every known key K (the list in
/// `cloudauth_config_set`), the variable `<prefix><K in upper case>`, when it is set, is applied
/// exactly as `cloudauth_config_set(cfg, K, value)` would apply it. With prefix NULL the
/// prefix is "CLOUDAUTH_": CLOUDAUTH_CLIENT_ID, CLOUDAUTH_CLIENT_SECRET, CLOUDAUTH_TOKEN_URL,
/// CLOUDAUTH_TIMEOUT_MS, ... A prefix "" reads CLIENT_ID, TOKEN_URL, ...
///
/// token_param.NAME is not read from the environment (a variable name cannot spell every
/// field name); set it with cloudauth_config_set.
///
/// Only known keys are read; other variables (CLOUDAUTH_LIBRARY, say) are ignored, and unset
/// variables leave their keys as they were, so keys set before this call act as defaults that
/// the environment overrides, and keys set after it override the environment. An empty
/// variable is an empty value, not an unset one.
///
/// Returns CLOUDAUTH_ERR_INVALID_ARGUMENT for a NULL `cfg`, a prefix that is not UTF-8 or
/// contains '=', a variable whose value is not UTF-8, or a malformed value; the message names
/// the variable (e.g. "CLOUDAUTH_TIMEOUT_MS: 'soon' is not valid; ...") and never shows a
/// secret's value. On failure the configuration is unchanged.
///
/// Reads the process environment with getenv semantics: do not call setenv/putenv on another
/// thread at the same time.
///
/// # Safety
/// `cfg` is NULL or a live config; `prefix` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_config_from_env(
    cfg: *mut cloudauth_config,
    prefix: *const c_char,
) -> cloudauth_result {
    boundary(|| {
        let cfg = arg_out(cfg, "cfg")?;
        let prefix = if prefix.is_null() {
            None
        } else {
            Some(arg_str(prefix, "prefix")?)
        };
        cfg.inner.set_from_env(prefix)
    })
}

/// Frees a configuration; the secret it held is zeroed. NULL is a no-op. Sessions created from
/// it are not affected.
///
/// # Safety
/// `cfg` is NULL or a config from `cloudauth_config_new` that has not been freed.
#[no_mangle]
pub unsafe extern "C" fn cloudauth_config_free(cfg: *mut cloudauth_config) {
    free_box(cfg)
}
