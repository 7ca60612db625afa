//! Query parameters of server URLs, taken out before the client library parses the URL.

/// `url` without the query parameters named in `names`, and those parameters (percent-decoded,
/// in order). The query starts at the first `?` after the user part (which ends at the first
/// `@`, as the PostgreSQL client reads it).
pub fn take_query_params(url: &str, names: &[&str]) -> (String, Vec<(String, String)>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let after_user = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let Some(q) = url[after_user..].find('?').map(|i| after_user + i) else {
        return (url.to_string(), Vec::new());
    };
    let (head, query) = (&url[..q], &url[q + 1..]);
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key = percent_decode(k);
        if names.contains(&key.as_str()) {
            taken.push((key, percent_decode(v)));
        } else {
            kept.push(part);
        }
    }
    let rebuilt = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    (rebuilt, taken)
}

/// `%XX` escapes decoded (a malformed escape is kept as it is).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                // Two hex digits: at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_taken_out() {
        let (rest, taken) = take_query_params(
            "postgresql://u:p%3Fw@h:5/db?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Ftmp%2Fca%20x.pem",
            &["sslmode", "sslrootcert"],
        );
        assert_eq!(rest, "postgresql://u:p%3Fw@h:5/db?connect_timeout=5");
        assert_eq!(
            taken,
            vec![
                ("sslmode".to_string(), "verify-full".to_string()),
                ("sslrootcert".to_string(), "/tmp/ca x.pem".to_string())
            ]
        );
        // A '?' in the (unencoded) password is not the query's start.
        let (rest, taken) =
            take_query_params("postgresql://u:a?b@h/db?sslmode=require", &["sslmode"]);
        assert_eq!(rest, "postgresql://u:a?b@h/db");
        assert_eq!(taken.len(), 1);
        let (rest, taken) = take_query_params("rediss://h:6380/0", &["sslrootcert"]);
        assert_eq!((rest.as_str(), taken.len()), ("rediss://h:6380/0", 0));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
