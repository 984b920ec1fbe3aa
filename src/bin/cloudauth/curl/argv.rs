//! Reads curl's argv as curl does, to know every URL it will use before it gets the token:
//! option values are skipped, every other argument (and `--url`'s value) is a URL, globbed
//! unless `-g`, with http as the scheme when none is written (curl's guess by host prefix
//! aside, e.g. `ftp.`). Ways to name URLs or options that cannot be read here are refused.

use super::{glob, options};
use crate::exit::Failure;
use cloudauth::http::url_policy::{check_secure, redact_str};
use url::Url;

/// What `cloudauth curl` runs: the arguments (relative URLs joined to base_url, the user's
/// `--write-out` taken out) and the user's `--write-out` format.
pub struct Plan {
    pub args: Vec<String>,
    pub write_out: Option<String>,
}

/// Options refused, with why.
fn refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "config" => "it reads options and URLs from a file this command cannot check",
        "next" => "the token header would not reach the URLs after it; run one command per request",
        "location-trusted" => "it sends the token to every host a redirect names",
        "stderr" => "this command reads curl's stderr to see the server's answer",
        "variable" => "its values can end up in URLs this command cannot check",
        n if n.starts_with("expand-") => "it builds URLs from variables this command cannot check",
        _ => return None,
    })
}

/// Options that send a request somewhere else than its URL's host says.
const REROUTING: &[&str] = &[
    "connect-to",
    "resolve",
    "proxy",
    "preproxy",
    "socks4",
    "socks4a",
    "socks5",
    "socks5-hostname",
];

pub fn read(args: &[String], base_url: &str, allow_insecure_http: bool) -> Result<Plan, Failure> {
    let mut plan = Plan {
        args: Vec::with_capacity(args.len()),
        write_out: None,
    };
    let mut urls = Vec::new();
    let mut globoff = false;
    let mut proto_default = None;
    let mut rerouted = None;
    let mut only_urls = false;
    let mut i = 0;
    while i < args.len() {
        let start = i;
        let arg = &args[i];
        i += 1;
        if only_urls || !arg.starts_with('-') || arg == "-" {
            urls.push(join(arg, base_url));
            plan.args.push(join(arg, base_url));
            continue;
        }
        if arg == "--" {
            only_urls = true;
            plan.args.push(arg.clone());
            continue;
        }
        // The option's long name and its value, if it takes one.
        let (name, value) = match arg.strip_prefix("--") {
            Some(long) => match options::resolve(long) {
                Some((name, true)) => {
                    i += 1;
                    (name.to_owned(), args.get(i - 1).cloned())
                }
                Some((name, false)) => (name.to_owned(), None),
                None => (long.to_owned(), None),
            },
            None => match short_option(&arg[1..], &mut globoff)? {
                Some((name, Some(value))) => (name.to_owned(), Some(value)),
                Some((name, None)) => {
                    i += 1;
                    (name.to_owned(), args.get(i - 1).cloned())
                }
                None => (String::new(), None),
            },
        };
        if let Some(why) = refused(&name) {
            return Err(refuse(arg, why));
        }
        match (name.as_str(), value) {
            ("write-out", Some(format)) => {
                // Kept: the short options before `w` in a cluster (`-sSw FORMAT`).
                let before = arg[1..].find(|c| options::SHORT_WITH_VALUE.contains(c));
                if let Some(n) = before.filter(|&n| n > 0 && !arg.starts_with("--")) {
                    plan.args.push(format!("-{}", &arg[1..=n]));
                }
                plan.write_out = Some(format);
                continue;
            }
            ("url", Some(url)) if url.starts_with('@') => {
                return Err(refuse(
                    "--url @FILE",
                    "it reads URLs from a file this command cannot check",
                ))
            }
            ("url", Some(url)) => {
                urls.push(join(&url, base_url));
                plan.args.push("--url".into());
                plan.args.push(join(&url, base_url));
                continue;
            }
            ("globoff", _) => globoff = true,
            ("proto-default", Some(p)) => proto_default = Some(p.to_ascii_lowercase()),
            (n, _) if REROUTING.contains(&n) => rerouted = Some(arg.clone()),
            _ => {}
        }
        plan.args
            .extend(args[start..i.min(args.len())].iter().cloned());
    }
    for url in &urls {
        let heads = if globoff {
            vec![glob::head(url).to_owned()]
        } else {
            glob::expand(glob::head(url)).map_err(|why| unreadable(url, &why))?
        };
        for head in heads {
            let target =
                target(&head, proto_default.as_deref()).map_err(|why| unreadable(url, &why))?;
            if target.scheme() == "https" || allow_insecure_http {
                continue;
            }
            check_secure("curl URL", &target, false)?;
            if let Some(option) = &rerouted {
                return Err(refuse(
                    option,
                    "with a plain-http URL it can send the token unencrypted to another host; \
                     use https",
                ));
            }
        }
    }
    Ok(plan)
}

/// A cluster of short options (`-sSL`, `-XPOST`, `-o` FILE): the long name of the one that
/// takes a value, with the value when it is in the cluster.
fn short_option(
    cluster: &str,
    globoff: &mut bool,
) -> Result<Option<(&'static str, Option<String>)>, Failure> {
    for (at, c) in cluster.char_indices() {
        match c {
            'K' => return Err(refuse("-K", refused("config").unwrap_or_default())),
            ':' => return Err(refuse("-:", refused("next").unwrap_or_default())),
            'g' => *globoff = true,
            _ => {}
        }
        if options::SHORT_WITH_VALUE.contains(c) {
            let rest = &cluster[at + c.len_utf8()..];
            let name = match c {
                'w' => "write-out",
                'x' => "proxy",
                _ => "",
            };
            return Ok(Some((name, (!rest.is_empty()).then(|| rest.to_owned()))));
        }
    }
    Ok(None)
}

/// A path is joined to base_url as `cloudauth request` does; anything else stays as given.
fn join(arg: &str, base_url: &str) -> String {
    match arg.strip_prefix('/') {
        Some(path) => format!("{}/{path}", base_url.trim_end_matches('/')),
        None => arg.to_owned(),
    }
}

/// Where a URL head (no path) sends the request, with the scheme curl picks: the written one,
/// else the host's prefix (`ftp.`, `dict.`, `ldap.`, `imap.`, `smtp.`, `pop3.`), else
/// `--proto-default`, else http. Only http(s) may carry the token.
fn target(head: &str, proto_default: Option<&str>) -> Result<Url, String> {
    let written = head
        .find(':')
        .filter(|&i| {
            i > 0
                && head[i + 1..].starts_with('/')
                && head[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                && head.starts_with(|c: char| c.is_ascii_alphabetic())
        })
        .map(|i| head[..i].to_ascii_lowercase());
    let url = match written {
        Some(_) => format!("{head}/"),
        None => {
            let host = head.rsplit('@').next().unwrap_or(head).to_ascii_lowercase();
            let guessed = ["ftp", "dict", "ldap", "imap", "smtp", "pop3"]
                .into_iter()
                .find(|p| host.starts_with(&format!("{p}.")));
            let scheme = guessed.or(proto_default).unwrap_or("http");
            format!("{scheme}://{head}/")
        }
    };
    let parsed = Url::parse(&url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(parsed),
        "http" | "https" => Err("it has no host".into()),
        other => Err(format!(
            "scheme {other}: cloudauth curl sends the token with http(s) requests only"
        )),
    }
}

fn refuse(option: &str, why: &str) -> Failure {
    Failure::Usage(format!("cloudauth curl: {option} is refused: {why}"))
}

fn unreadable(url: &str, why: &str) -> Failure {
    Failure::Usage(format!(
        "cloudauth curl: refused '{}': {why}",
        redact_str(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, Failure> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        read(&args, "http://127.0.0.1:9/api/", false)
    }

    fn insecure(args: &[&str]) -> bool {
        matches!(plan(args), Err(Failure::Library(e)) if e.code == cloudauth::Code::CLOUDAUTH_ERR_INSECURE_URL)
    }

    #[test]
    fn urls_without_a_scheme_are_http() {
        assert!(insecure(&["example.com/a"]));
        assert!(insecure(&["example.com:80/a"]));
        assert!(insecure(&["-G", "-d", "x=1", "example.com/a"]));
        assert!(insecure(&["--url", "example.com"]));
        assert!(insecure(&["-sS", "EXAMPLE.com"]));
        assert!(insecure(&["--", "example.com"]));
        assert!(insecure(&["{https,http}://example.com/"]));
        assert!(insecure(&["http://example.[a-c]om/"]));
        assert!(insecure(&["--proto-default", "http", "example.com"]));
        assert!(plan(&["--proto-default", "https", "example.com"]).is_ok());
        assert!(plan(&["https://example.com/a", "-o", "out", "127.0.0.1:8/x"]).is_ok());
        assert!(plan(&["-sSo", "example.com", "https://example.com"]).is_ok());
        assert!(plan(&["--user-a", "example.com", "https://example.com"]).is_ok());
        assert!(plan(&["-g", "https://example.com/{a"]).is_ok());
    }

    #[test]
    fn other_schemes_and_unreadable_urls_are_refused() {
        for args in [
            &["ftp://example.com/"][..],
            &["ftp.example.com/x"],
            &["file:///proc/self/environ"],
            &["https://{a,b"],
        ] {
            assert!(matches!(plan(args), Err(Failure::Usage(_))), "{args:?}");
        }
    }

    #[test]
    fn options_that_hide_urls_or_reroute_plain_http_are_refused() {
        for args in [
            &["-K", "f"][..],
            &["-sK", "f"],
            &["--config", "f"],
            &["--conf", "f"],
            &["--next"],
            &["-:"],
            &["--location-trusted"],
            &["--url", "@urls"],
            &["--variable", "a=b"],
            &["--expand-url", "x"],
            &["--connect-to", "::evil.example:80", "http://127.0.0.1/"],
            &["--resolve", "localhost:80:192.0.2.1", "http://localhost/"],
        ] {
            assert!(matches!(plan(args), Err(Failure::Usage(_))), "{args:?}");
        }
        assert!(plan(&["--connect-to", "::h:443", "https://example.com/"]).is_ok());
    }

    #[test]
    fn paths_join_base_url_and_write_out_is_taken_out() {
        let p = plan(&["-sw", "%{http_code}", "/x?y=1"]).unwrap();
        assert_eq!(p.args, ["-s", "http://127.0.0.1:9/api/x?y=1"]);
        assert_eq!(p.write_out.as_deref(), Some("%{http_code}"));
        let p = plan(&["--write-out", "W", "--url", "/z", "-H", "A: b"]).unwrap();
        assert_eq!(p.args, ["--url", "http://127.0.0.1:9/api/z", "-H", "A: b"]);
        assert_eq!(p.write_out.as_deref(), Some("W"));
    }
}
