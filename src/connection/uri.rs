//! The parts of Python's `urllib.parse` (3.11+) that Airflow's `Connection.from_uri` and
//! `get_uri` depend on, re-implemented to the byte: `urlsplit` with its `username`,
//! `password`, `hostname` and `port` properties, `quote(s, safe='')`, `quote_plus`,
//! `unquote`, `urlencode` and `parse_qsl(..., keep_blank_values=True)`.
//!
//! The `url` crate is deliberately not used for splitting: it implements the WHATWG
//! URL standard, which normalizes hosts and paths differently from Python.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Python's always-safe set is `A-Za-z0-9_.-~`; `quote(s, safe='')` escapes the rest.
const PY_QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `urllib.parse.quote(s, safe='')`.
pub(crate) fn quote(s: &str) -> String {
    utf8_percent_encode(s, PY_QUOTE).to_string()
}

/// Python's `quote(s)` with its default `safe='/'`.
const PY_QUOTE_KEEP_SLASH: &AsciiSet = &PY_QUOTE.remove(b'/');

/// `urllib.parse.quote(s)`, whose default `safe` is `/` (Airflow masks this form too).
pub(crate) fn quote_keep_slash(s: &str) -> String {
    utf8_percent_encode(s, PY_QUOTE_KEEP_SLASH).to_string()
}

/// `urllib.parse.quote_plus(s, safe='')`: as [`quote`], with spaces as `+`.
pub(crate) fn quote_plus(s: &str) -> String {
    // Every `%` in the output starts an escape, so `%20` can only be an escaped space.
    quote(s).replace("%20", "+")
}

/// `urllib.parse.unquote(s)`: `%XX` escapes decoded as UTF-8, invalid sequences as U+FFFD.
pub(crate) fn unquote(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `urllib.parse.urlencode(pairs)` (with its default `quote_via=quote_plus`).
pub(crate) fn urlencode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `dict(parse_qsl(query, keep_blank_values=True))` in insertion order: a repeated key
/// keeps its first position and its last value. Also returns each pair's raw value.
pub(crate) fn parse_qsl_dict(query: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    // form_urlencoded splits on `&`, skips empty pieces, splits at the first `=`, turns `+`
    // into spaces and decodes lossily: exactly parse_qsl with keep_blank_values.
    let raws = query.split('&').filter(|p| !p.is_empty());
    for ((k, v), raw) in url::form_urlencoded::parse(query.as_bytes()).zip(raws) {
        let raw_value = raw.split_once('=').map_or("", |(_, v)| v).to_string();
        match out.iter_mut().find(|(key, _, _)| *key == k) {
            Some(slot) => {
                slot.1 = v.into_owned();
                slot.2 = raw_value;
            }
            None => out.push((k.into_owned(), v.into_owned(), raw_value)),
        }
    }
    out
}

/// Why Python's `urlsplit` (or one of its properties) rejected a URL. Never echoes input.
pub(crate) type SplitError = &'static str;

/// The result of `urlsplit` (the fragment is dropped: Airflow ignores it).
#[derive(Debug, Default)]
pub(crate) struct Split {
    pub scheme: String,
    pub netloc: String,
    pub path: String,
    pub query: String,
}

/// `urllib.parse.urlsplit(url)` as of Python 3.11.4+ (bracket and NFKC checks included).
pub(crate) fn urlsplit(url: &str) -> Result<Split, SplitError> {
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let mut url: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut split = Split::default();
    if let Some(i) = url.find(':')
        && i > 0
        && url.as_bytes()[0].is_ascii_alphabetic()
        && url[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        split.scheme = url[..i].to_ascii_lowercase();
        url.drain(..=i);
    }
    if url.starts_with("//") {
        let end = url[2..].find(['/', '?', '#']).map_or(url.len(), |e| e + 2);
        split.netloc = url[2..end].to_string();
        url.drain(..end);
        let netloc = &split.netloc;
        if netloc.contains('[') != netloc.contains(']') {
            return Err("unbalanced `[` or `]` in the authority");
        }
        if let Some((_, after)) = netloc.split_once('[') {
            check_bracketed_host(after.split_once(']').map_or(after, |(h, _)| h))?;
        }
    }
    if let Some(i) = url.find('#') {
        url.truncate(i);
    }
    if let Some((path, query)) = url.split_once('?') {
        split.query = query.to_string();
        url.truncate(path.len());
    }
    check_netloc(&split.netloc)?;
    split.path = url;
    Ok(split)
}

/// Python's `_check_bracketed_host`: an IPv6 address (with optional zone) or IPvFuture.
fn check_bracketed_host(host: &str) -> Result<(), SplitError> {
    if let Some(rest) = host.strip_prefix('v') {
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        return match rest[hex..].strip_prefix('.') {
            Some(tail) if hex > 0 && !tail.is_empty() => Ok(()),
            _ => Err("invalid IPvFuture host in brackets"),
        };
    }
    let (addr, zone) = match host.split_once('%') {
        Some((_, zone)) if zone.is_empty() || zone.contains('%') => {
            return Err("invalid IPv6 zone in brackets");
        }
        Some((addr, zone)) => (addr, Some(zone)),
        None => (host, None),
    };
    if zone.is_none() && addr.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("an IPv4 address cannot be in brackets");
    }
    addr.parse::<std::net::Ipv6Addr>()
        .map(|_| ())
        .map_err(|_| "invalid IPv6 address in brackets")
}

/// Python's `_checknetloc`: reject characters whose NFKC form contains one of `/?#@:`
/// (the complete list for Unicode 14).
fn check_netloc(netloc: &str) -> Result<(), SplitError> {
    const NFKC_DELIMITERS: [char; 19] = [
        '\u{2047}', '\u{2048}', '\u{2049}', '\u{2100}', '\u{2101}', '\u{2105}', '\u{2106}',
        '\u{2A74}', '\u{FE13}', '\u{FE16}', '\u{FE55}', '\u{FE56}', '\u{FE5F}', '\u{FE6B}',
        '\u{FF03}', '\u{FF0F}', '\u{FF1A}', '\u{FF1F}', '\u{FF20}',
    ];
    if netloc.contains(NFKC_DELIMITERS) {
        return Err("the authority contains characters that NFKC-normalize to a delimiter");
    }
    Ok(())
}

impl Split {
    /// `SplitResult.username` / `.password` (both raw, still percent-encoded).
    pub fn userinfo(&self) -> (Option<&str>, Option<&str>) {
        match self.netloc.rsplit_once('@') {
            Some((info, _)) => match info.split_once(':') {
                Some((user, pass)) => (Some(user), Some(pass)),
                None => (Some(info), None),
            },
            None => (None, None),
        }
    }

    /// Python's `_hostinfo`: the raw host and port text.
    fn hostinfo(&self) -> (&str, Option<&str>) {
        let hostinfo = self
            .netloc
            .rsplit_once('@')
            .map_or(&*self.netloc, |(_, h)| h);
        let (host, port) = match hostinfo.split_once('[') {
            Some((_, bracketed)) => {
                let (host, rest) = bracketed.split_once(']').unwrap_or((bracketed, ""));
                (host, rest.split_once(':').map_or("", |(_, p)| p))
            }
            None => hostinfo.split_once(':').unwrap_or((hostinfo, "")),
        };
        (host, Some(port).filter(|p| !p.is_empty()))
    }

    /// `SplitResult.hostname`: lower-cased up to the first `%` (a zone id keeps its case).
    pub fn hostname(&self) -> Option<String> {
        let (host, _) = self.hostinfo();
        if host.is_empty() {
            return None;
        }
        Some(match host.split_once('%') {
            Some((h, zone)) => format!("{}%{zone}", h.to_lowercase()),
            None => host.to_lowercase(),
        })
    }

    /// `SplitResult.port`: ASCII digits in 0..=65535, else an error.
    pub fn port(&self) -> Result<Option<u16>, SplitError> {
        let Some(port) = self.hostinfo().1 else {
            return Ok(None);
        };
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                "the port is not a number (a `/`, `?` or `#` in the password must be percent-encoded)",
            );
        }
        let digits = port.trim_start_matches('0');
        if digits.len() > 5 {
            return Err("the port is out of range 0-65535");
        }
        let value: u32 = digits.parse().unwrap_or(0);
        u16::try_from(value)
            .map(Some)
            .map_err(|_| "the port is out of range 0-65535")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_python() {
        // Expected values printed by CPython 3.11.
        assert_eq!(
            quote("a b/c:d@e%f#g?h&i+j~k*l'm(n)é€🔑"),
            "a%20b%2Fc%3Ad%40e%25f%23g%3Fh%26i%2Bj~k%2Al%27m%28n%29%C3%A9%E2%82%AC%F0%9F%94%91"
        );
        assert_eq!(quote_plus("a b+c~*"), "a+b%2Bc~%2A");
        assert_eq!(quote_plus("%20 "), "%2520+");
        assert_eq!(quote_keep_slash("a/b c"), "a/b%20c");
        assert_eq!(urlencode([("k y", "v&w"), ("", "")]), "k+y=v%26w&=");
        assert_eq!(unquote("a%2Fb%zz%C3"), "a/b%zz\u{FFFD}");
    }

    #[test]
    fn parse_qsl_keeps_blanks_and_last_value() {
        let pairs = parse_qsl_dict("a=1&&b&c=x+y%2B&a=2");
        let flat: Vec<_> = pairs.iter().map(|(k, v, r)| (&**k, &**v, &**r)).collect();
        assert_eq!(
            flat,
            [("a", "2", "2"), ("b", "", ""), ("c", "x y+", "x+y%2B")]
        );
    }

    #[test]
    fn urlsplit_matches_python() {
        let s = urlsplit(" \tPostgres://u:p@[::1]:5432/db?x=1#frag").unwrap();
        assert_eq!(
            (&*s.scheme, &*s.netloc, &*s.path, &*s.query),
            ("postgres", "u:p@[::1]:5432", "/db", "x=1")
        );
        assert_eq!(s.userinfo(), (Some("u"), Some("p")));
        assert_eq!(s.hostname().as_deref(), Some("::1"));
        assert_eq!(s.port(), Ok(Some(5432)));
        let s = urlsplit("//AB%CD@Host%2FX:0").unwrap();
        assert_eq!(s.hostname().as_deref(), Some("host%2FX"));
        assert_eq!(s.userinfo(), (Some("AB%CD"), None));
        assert_eq!(s.port(), Ok(Some(0)));
        assert_eq!(urlsplit("1a:b").unwrap().scheme, "");
        assert!(urlsplit("http://[::1").is_err());
        assert!(urlsplit("http://[127.0.0.1]").is_err());
        assert!(urlsplit("http://[fe80::1%25eth0]").is_ok());
        assert!(urlsplit("http://[v1.x]").is_ok());
        assert!(urlsplit("http://a\u{FF20}b").is_err());
        assert!(urlsplit("http://h:65536").unwrap().port().is_err());
        assert!(urlsplit("http://h:+1").unwrap().port().is_err());
        assert_eq!(urlsplit("http://h:").unwrap().port(), Ok(None));
    }
}
