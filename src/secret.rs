//! A string that must never be shown: zeroed when dropped, `***` in `Debug`; and the
//! [`Scrubber`] that takes every form a secret travels in out of text a server sent back.

use zeroize::Zeroize;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: &str) -> Self {
        Secret(value.to_owned())
    }

    /// Drops one trailing newline (`\n` or `\r\n`), as a secret file usually ends with.
    pub fn trim_end_newline(&mut self) {
        let keep = self.0.trim_end_matches(['\n', '\r']).len();
        // truncate keeps the bytes in the allocation; zero them first.
        self.0[keep..].zeroize_tail();
        self.0.truncate(keep);
    }

    /// The plain value, for the one place that has to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    /// Takes the string without copying it, so no unzeroed copy is left behind.
    fn from(value: String) -> Self {
        Secret(value)
    }
}

trait ZeroizeTail {
    fn zeroize_tail(&mut self);
}

impl ZeroizeTail for str {
    fn zeroize_tail(&mut self) {
        // SAFETY: zero bytes are valid UTF-8.
        unsafe { self.as_bytes_mut() }.zeroize();
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Removes credentials from text derived from what a server said. A server (or a proxy's error
/// page) may echo the request back, so every form the secret travelled in is looked for: raw,
/// form- and percent-encoded (`+` or `%20` for a space), JSON-escaped, base64 (the `Basic`
/// value and the secret alone, padded or not, standard or URL-safe alphabet), and the decoded
/// `id:secret` pair. Matching ignores ASCII case, so `%2b` and `%2B` (or any mix) are caught;
/// scrubbing a little too much is harmless. Run it on the whole text before any shortening: a
/// cut secret no longer matches.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Longest first, so a form that contains another is replaced whole.
    forms: Vec<Secret>,
}

impl Scrubber {
    /// For the token endpoint: the secret, and the `id:secret` pair Basic auth encodes.
    pub fn for_credentials(client_id: &str, secret: &Secret) -> Scrubber {
        let mut s = Scrubber::default();
        let form = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        s.add(secret.expose());
        s.add_base64(&format!("{}:{}", form(client_id), form(secret.expose())));
        s.add_base64(&format!("{client_id}:{}", secret.expose()));
        s.sort();
        s
    }

    /// For an API request: the token it carried.
    pub fn for_token(token: &str) -> Scrubber {
        let mut s = Scrubber::default();
        s.add(token);
        s.sort();
        s
    }

    /// Also scrubs a compact JWS (a client assertion, a DPoP proof), whole and its signature
    /// alone: a server may echo just that, and on its own it is what makes the JWS usable.
    pub fn also_jws(&mut self, jws: &str) {
        self.add(jws);
        if let Some((_, signature)) = jws.rsplit_once('.') {
            self.add(signature);
        }
        self.sort();
    }

    /// `value` in its textual encodings, and its base64.
    fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut forms = vec![
            value.to_owned(),
            form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            percent_encode(value, false),
            percent_encode(value, true),
        ];
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json[1..json.len() - 1].to_owned());
        }
        for f in forms {
            self.push(f);
        }
        self.add_base64(value);
    }

    fn add_base64(&mut self, value: &str) {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        use base64::Engine as _;
        // The unpadded form is a prefix of the padded one, so it covers both.
        self.push(STANDARD_NO_PAD.encode(value));
        self.push(URL_SAFE_NO_PAD.encode(value));
    }

    fn push(&mut self, form: String) {
        let form = form.to_ascii_lowercase();
        if !form.is_empty() && !self.forms.iter().any(|f| f.expose() == form) {
            self.forms.push(Secret::new(&form));
        }
    }

    fn sort(&mut self) {
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
    }

    /// `text` with every known form, in any ASCII case, replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.forms {
            // ASCII lower-casing keeps byte offsets, so matches in `lower` are matches in `out`.
            let lower = out.to_ascii_lowercase();
            let hits: Vec<usize> = lower.match_indices(form.expose()).map(|(i, _)| i).collect();
            for i in hits.into_iter().rev() {
                out.replace_range(i..i + form.expose().len(), "***");
            }
        }
        out
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters; `space_plus` writes a
/// space as `+` (the form encoding some servers use for query strings).
fn percent_encode(value: &str, space_plus: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' if space_plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_the_secret_is_scrubbed() {
        use base64::Engine as _;
        let secret = Secret::new("Sx7+Qv/z %q\"u:=&");
        let s = Scrubber::for_credentials("my id", &secret);
        let form: String = form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
        let pair = format!("my+id:{form}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&pair);
        for text in [
            secret.expose().to_owned(),
            format!("client_secret={form}&x"),
            form.to_ascii_lowercase(),
            form.replacen("%2B", "%2b", 1),
            percent_encode(secret.expose(), false),
            format!("Basic {b64}"),
            pair.clone(),
            format!("my id:{}", secret.expose()),
            serde_json::to_string(secret.expose()).unwrap(),
            base64::engine::general_purpose::URL_SAFE.encode(secret.expose()),
        ] {
            let out = s.scrub(&format!("echo: {text} end"));
            assert!(!out.contains(secret.expose()), "{text} -> {out}");
            assert!(!out.contains(&form), "{text} -> {out}");
            assert!(!out.contains(&b64[..b64.len() - 2]), "{text} -> {out}");
            assert!(out.starts_with("echo: ") && out.ends_with(" end"), "{out}");
        }
        assert_eq!(s.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }
}
