//! curl's URL globbing (`{a,b}` sets and `[1-3]`, `[a-c]`, `[01-10:2]` ranges, `\` escapes,
//! `[::1]` IPv6 literals left alone), expanded for the part of a URL that decides where it
//! goes: the scheme and the host. Anything curl would read differently is an error.

/// The most URL heads checked for one argument; a glob with more is refused.
const MAX_EXPANSIONS: usize = 1000;

/// Everything before the first `/`, `?` or `#` outside a glob pattern (a literal `://` after the
/// scheme aside): scheme, user info, host and port, globbed. Not an URL of its own.
pub fn head(url: &str) -> &str {
    let bytes = url.as_bytes();
    let mut depth_set = false;
    let mut depth_range = false;
    let mut seen_scheme = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' if !depth_range => depth_set = true,
            b'}' => depth_set = false,
            b'[' if !depth_set => depth_range = true,
            b']' => depth_range = false,
            b':' if !seen_scheme && !depth_set && !depth_range && url[i..].starts_with("://") => {
                seen_scheme = true;
                i += 3;
                continue;
            }
            b'/' | b'?' | b'#' if !depth_set && !depth_range => return &url[..i],
            _ => {}
        }
        i += 1;
    }
    url
}

/// Every string the glob `pattern` stands for, or why it cannot be read.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let alternatives: Vec<String> = match chars[i] {
            '\\' if i + 1 < chars.len() => {
                i += 2;
                vec![chars[i - 1].to_string()]
            }
            '{' => {
                let end = find_close(&chars, i, '}')?;
                let items = split_set(&chars[i + 1..end]);
                i = end + 1;
                items
            }
            '[' if ipv6_literal(&chars[i..]).is_some() => {
                let len = ipv6_literal(&chars[i..]).unwrap_or(1);
                i += len;
                vec![chars[i - len..i].iter().collect()]
            }
            '[' => {
                let end = find_close(&chars, i, ']')?;
                let range: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                expand_range(&range)?
            }
            c => {
                i += 1;
                vec![c.to_string()]
            }
        };
        if out.len() * alternatives.len() > MAX_EXPANSIONS {
            return Err(format!(
                "the glob expands to more than {MAX_EXPANSIONS} hosts"
            ));
        }
        out = out
            .iter()
            .flat_map(|prefix| alternatives.iter().map(move |a| format!("{prefix}{a}")))
            .collect();
    }
    Ok(out)
}

fn find_close(chars: &[char], open: usize, close: char) -> Result<usize, String> {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            c if c == close => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    Err(format!("an unmatched '{}' in the glob", chars[open]))
}

fn split_set(inner: &[char]) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            '\\' if i + 1 < inner.len() => {
                i += 1;
                items.last_mut().expect("one item").push(inner[i]);
            }
            ',' => items.push(String::new()),
            c => items.last_mut().expect("one item").push(c),
        }
        i += 1;
    }
    items
}

/// `[a-z]`, `[0-9]`, `[001-100]`, each with an optional `:step`.
fn expand_range(range: &str) -> Result<Vec<String>, String> {
    let bad = || format!("'[{range}]' is not a range curl reads");
    let (span, step) = match range.split_once(':') {
        Some((span, step)) => (span, step.parse::<usize>().map_err(|_| bad())?.max(1)),
        None => (range, 1),
    };
    let (from, to) = span.split_once('-').ok_or_else(bad)?;
    let letters = |s: &str| {
        let mut c = s.chars();
        match (c.next(), c.next()) {
            (Some(ch), None) if ch.is_ascii_alphabetic() => Some(ch),
            _ => None,
        }
    };
    if let (Some(a), Some(b)) = (letters(from), letters(to)) {
        return Ok((a..=b).step_by(step).map(String::from).collect());
    }
    let (a, b) = (
        from.parse::<u64>().map_err(|_| bad())?,
        to.parse::<u64>().map_err(|_| bad())?,
    );
    if b < a || (b - a) as usize / step > MAX_EXPANSIONS {
        return Err(bad());
    }
    let width = if from.starts_with('0') { from.len() } else { 0 };
    Ok((a..=b)
        .step_by(step)
        .map(|n| format!("{n:0width$}"))
        .collect())
}

/// The length of an IPv6 address literal `[...]` at the start, which curl does not glob.
fn ipv6_literal(chars: &[char]) -> Option<usize> {
    let end = chars.iter().position(|c| *c == ']')?;
    let inner: String = chars[1..end].iter().collect();
    let address = inner.split('%').next().unwrap_or("");
    address
        .parse::<std::net::Ipv6Addr>()
        .is_ok()
        .then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_stop_at_the_path() {
        assert_eq!(head("example.com:80/a"), "example.com:80");
        assert_eq!(head("{http,https}://h/x"), "{http,https}://h");
        assert_eq!(head("{http://a,https://b}/x"), "{http://a,https://b}");
        assert_eq!(head("http://[::1]:8/x"), "http://[::1]:8");
        assert_eq!(head("h?q=1"), "h");
    }

    #[test]
    fn sets_ranges_and_literals() {
        assert_eq!(
            expand("{http,https}://h").unwrap(),
            ["http://h", "https://h"]
        );
        assert_eq!(expand("h[1-3]").unwrap(), ["h1", "h2", "h3"]);
        assert_eq!(expand("h[08-10:2]").unwrap(), ["h08", "h10"]);
        assert_eq!(expand("[a-c]").unwrap(), ["a", "b", "c"]);
        assert_eq!(expand("http://[::1]:8").unwrap(), ["http://[::1]:8"]);
        assert_eq!(expand("a\\{b").unwrap(), ["a{b"]);
        assert!(expand("{a,b").is_err());
        assert!(expand("[1-99999]").is_err());
    }
}
