//! `local_endpoints=`: the base URLs of the user's own OpenAI-compatible servers (vLLM, LM
//! Studio, llama.cpp's server, ...), reached through `ChatOpenAI(base_url=...)`. Such a
//! client reports `ls_provider` `openai`, so nothing else tells its calls from OpenAI's; a
//! loopback address is no proof either (a LiteLLM proxy on `localhost:4000` forwards to paid
//! APIs), so only the URLs the user lists are local.
//!
//! An entry is `scheme://host[:port][/path]` (`http` or `https`), normalised: scheme and
//! host lower-cased, the scheme's default port dropped (`http://h:80` is `http://h`),
//! trailing slashes removed. A call's base URL matches an entry when scheme, host and port
//! are equal and its path is the entry's or lies below it (`/v1` matches `/v1` and
//! `/v1/chat`, not `/v10`). Host names are compared as written: `localhost` is not
//! `127.0.0.1`.

use std::sync::Arc;

/// One normalised entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    scheme: String,
    host: String,
    port: u16,
    /// Without a trailing slash; empty for the root.
    path: String,
    /// The normalised URL, the record's `price_entry` after `local:`.
    text: Arc<str>,
}

/// The user's local endpoints, normalised.
#[derive(Clone, Debug, Default)]
pub struct LocalEndpoints(Vec<Endpoint>);

/// What is wrong with a URL, for the error naming the entry.
fn parse(url: &str) -> Result<Endpoint, &'static str> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("no scheme (expected scheme://host[:port][/path])")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err("the scheme must be http or https"),
    };
    if rest.contains(['?', '#']) {
        return Err("a base URL has no query or fragment");
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("a base URL carries no user name or password");
    }
    let (host, port) = split_port(authority)?;
    let host = host.to_ascii_lowercase();
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("the port must be a number from 1 to 65535")?,
        None => default_port,
    };
    let path = path.trim_end_matches('/').to_string();
    let shown_port = if port == default_port {
        String::new()
    } else {
        format!(":{port}")
    };
    let text = Arc::from(format!("{scheme}://{host}{shown_port}{path}"));
    Ok(Endpoint {
        scheme,
        host,
        port,
        path,
        text,
    })
}

/// `host[:port]` (an IPv6 host in brackets) into its host and port text.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ']'")?;
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("the IPv6 host is malformed");
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 host")?),
        };
        (&authority[..h.len() + 2], port)
    } else {
        let (h, p) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if !h.chars().all(ok) {
            return Err("the host may hold only letters, digits, '-', '.' and '_'");
        }
        (h, p)
    };
    if host.is_empty() {
        return Err("no host");
    }
    Ok((host, port))
}

/// `url` with any `user:password@` before the host replaced by `***@`, for an error message
/// (a log must not keep a password).
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

impl LocalEndpoints {
    /// The endpoints `urls` name; an error names the first malformed one and what is wrong.
    ///
    /// # Errors
    /// A message for the user's `ValueError`.
    pub fn new<S: AsRef<str>>(urls: &[S]) -> Result<Self, String> {
        let mut list = Vec::with_capacity(urls.len());
        for u in urls {
            let u = u.as_ref();
            let e = parse(u).map_err(|why| {
                format!(
                    "local_endpoints: {:?} is not a base URL: {why} (e.g. \
                     \"http://localhost:8000/v1\")",
                    redacted(u)
                )
            })?;
            if !list.contains(&e) {
                list.push(e);
            }
        }
        Ok(LocalEndpoints(list))
    }

    /// Whether no endpoint is listed (the binding then reads no base URL).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalised entries, as given order.
    pub fn urls(&self) -> Vec<Arc<str>> {
        self.0.iter().map(|e| e.text.clone()).collect()
    }

    /// The listed endpoint `base_url` lies under (the longest path wins), normalised; `None`
    /// when none matches or `base_url` is no URL.
    pub fn matching(&self, base_url: &str) -> Option<Arc<str>> {
        if self.0.is_empty() {
            return None;
        }
        let url = parse(base_url).ok()?;
        self.0
            .iter()
            .filter(|e| {
                e.scheme == url.scheme
                    && e.host == url.host
                    && e.port == url.port
                    && url
                        .path
                        .strip_prefix(e.path.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|e| e.path.len())
            .map(|e| e.text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(urls: &[&str]) -> LocalEndpoints {
        LocalEndpoints::new(urls).unwrap()
    }

    #[test]
    fn entries_are_normalised() {
        let e = eps(&[
            "HTTP://LocalHost:8000/v1/",
            "https://gpu.lan:443",
            "http://[::1]:1234/api//",
            "http://127.0.0.1:80/",
        ]);
        let urls: Vec<String> = e.urls().iter().map(ToString::to_string).collect();
        assert_eq!(
            urls,
            [
                "http://localhost:8000/v1",
                "https://gpu.lan",
                "http://[::1]:1234/api",
                "http://127.0.0.1",
            ]
        );
        // The same endpoint twice is kept once.
        assert_eq!(eps(&["http://a:80", "http://A/"]).urls().len(), 1);
    }

    #[test]
    fn a_base_url_matches_by_prefix_on_whole_path_segments() {
        let e = eps(&["http://localhost:8000/v1", "http://localhost:1234"]);
        let m = |u: &str| e.matching(u).map(|t| t.to_string());
        assert_eq!(
            m("http://localhost:8000/v1").as_deref(),
            Some("http://localhost:8000/v1")
        );
        assert_eq!(
            m("http://LOCALHOST:8000/v1/").as_deref(),
            Some("http://localhost:8000/v1")
        );
        assert_eq!(
            m("http://localhost:8000/v1/chat").as_deref(),
            Some("http://localhost:8000/v1")
        );
        assert_eq!(m("http://localhost:8000/v10"), None);
        assert_eq!(m("http://localhost:8000/"), None);
        assert_eq!(m("https://localhost:8000/v1"), None);
        assert_eq!(m("http://127.0.0.1:8000/v1"), None);
        assert_eq!(m("http://localhost:4000/v1"), None);
        assert_eq!(
            m("http://localhost:1234/v1").as_deref(),
            Some("http://localhost:1234")
        );
        assert_eq!(m("not a url"), None);
        // Default ports on either side.
        let e = eps(&["http://box/v1"]);
        assert!(e.matching("http://box:80/v1").is_some());
        assert!(e.matching("http://box:8080/v1").is_none());
    }

    #[test]
    fn the_longest_listed_path_wins() {
        let e = eps(&["http://h:1", "http://h:1/a/b"]);
        assert_eq!(
            e.matching("http://h:1/a/b/c").as_deref(),
            Some("http://h:1/a/b")
        );
        assert_eq!(e.matching("http://h:1/a").as_deref(), Some("http://h:1"));
    }

    #[test]
    fn malformed_entries_are_refused_with_the_reason() {
        for (bad, why) in [
            ("localhost:8000", "no scheme"),
            ("ftp://h/v1", "http or https"),
            ("http://", "no host"),
            ("http://h:0", "port"),
            ("http://h:99999", "port"),
            ("http://h:abc", "port"),
            ("http://h/v1?x=1", "query"),
            ("http://user:pw@h/v1", "password"),
            ("http://h h/v1", "host may hold"),
            ("http://[::1/v1", "closing"),
        ] {
            let err = LocalEndpoints::new(&[bad]).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                err.contains(&format!("{:?}", redacted(bad))),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn an_error_never_repeats_a_password() {
        let err = LocalEndpoints::new(&["http://user:s3cret@h:1/v1"]).unwrap_err();
        assert!(!err.contains("s3cret") && !err.contains("user:"), "{err}");
        assert!(err.contains("\"http://***@h:1/v1\""), "{err}");
    }
}
