//! A string that must never be shown: zeroed when dropped, `***` in `Debug`.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }
}
