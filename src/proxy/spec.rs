//! What the engine asks of the proxy: toxic specs, directions and ids.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Identifies one toxic added to one proxy (sequential from 1, per proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToxicId(pub u64);

impl fmt::Display for ToxicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "toxic-{}", self.0)
    }
}

/// Identifies one proxied connection (sequential from 1 in accept order, per proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// Which byte stream of a connection a toxic acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client → server (requests).
    Upstream,
    /// Server → client (responses).
    Downstream,
}

/// One fault to apply to a proxy's connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ToxicSpec {
    /// What the toxic does.
    pub kind: ToxicKind,
    /// Which stream it acts on (ignored by `down`; the http toxics always act on requests).
    pub direction: Direction,
    /// Share of connections it applies to, `0.0..=1.0`, decided once per connection from the
    /// proxy's seed (`1.0`: every connection).
    pub toxicity: f64,
}

impl ToxicSpec {
    /// A toxic on every connection (`toxicity: 1.0`).
    pub fn new(kind: ToxicKind, direction: Direction) -> Self {
        ToxicSpec { kind, direction, toxicity: 1.0 }
    }

    /// The same toxic on a share of the connections.
    pub fn with_toxicity(mut self, toxicity: f64) -> Self {
        self.toxicity = toxicity;
        self
    }
}

/// The toxics. Each one's behaviour is documented in its own file under `src/proxy/toxic/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± `jitter`.
    Latency {
        /// Added delay.
        #[serde(with = "duration_text")]
        latency: Duration,
        /// Uniform spread around `latency`, per chunk.
        #[serde(with = "duration_text")]
        jitter: Duration,
    },
    /// Limit the stream to `bytes_per_sec`.
    Bandwidth {
        /// Rate limit.
        bytes_per_sec: u64,
    },
    /// Stop forwarding; close the connection after `after` (`0`: hold it open until removed).
    Timeout {
        /// When to close (`0`: never).
        #[serde(with = "duration_text")]
        after: Duration,
    },
    /// On the first data, hold it and send a TCP RST to both peers `after` later.
    ResetPeer {
        /// Delay from the first data to the reset.
        #[serde(with = "duration_text")]
        after: Duration,
    },
    /// Delay the close (FIN) of the stream by `delay`.
    SlowClose {
        /// How long the close is held back.
        #[serde(with = "duration_text")]
        delay: Duration,
    },
    /// Cut chunks into small pieces of `average` ± `variation` bytes, `delay` apart.
    Slicer {
        /// Mean piece size in bytes.
        average: usize,
        /// Uniform spread of the piece size.
        variation: usize,
        /// Pause between pieces.
        #[serde(with = "duration_text")]
        delay: Duration,
    },
    /// Forward `bytes` bytes, then close the connection.
    LimitData {
        /// Bytes let through (counted from when the toxic applies).
        bytes: u64,
    },
    /// Refuse new connections (listeners closed) and close existing ones.
    Down,
    /// Answer requests with `status` instead of forwarding them (http proxies only).
    HttpError {
        /// HTTP status the client sees.
        status: u16,
        /// Share of matching requests answered so, `0.0..=1.0`.
        probability: f64,
        /// Which requests it considers (default: all).
        #[serde(default, skip_serializing_if = "RequestMatch::is_any")]
        route: RequestMatch,
    },
    /// Hold requests back by `delay` before forwarding them (http proxies only).
    HttpDelay {
        /// How long a request is held.
        #[serde(with = "duration_text")]
        delay: Duration,
        /// Share of matching requests delayed, `0.0..=1.0`.
        probability: f64,
        /// Which requests it considers (default: all).
        #[serde(default, skip_serializing_if = "RequestMatch::is_any")]
        route: RequestMatch,
    },
    /// Forward requests, then close the connection in the middle of their response: the client
    /// gets the response head and `after` bytes of its body (http proxies only).
    HttpAbort {
        /// Body bytes delivered before the close.
        after: u64,
        /// Share of matching requests whose response is cut, `0.0..=1.0`.
        probability: f64,
        /// Which requests it considers (default: all).
        #[serde(default, skip_serializing_if = "RequestMatch::is_any")]
        route: RequestMatch,
    },
    /// Forward requests and cut their response body to `bytes`, with `Content-Length` rewritten to
    /// match: a well-formed, shorter answer (http proxies only).
    HttpTruncate {
        /// Body bytes kept.
        bytes: u64,
        /// Share of matching requests whose response is truncated, `0.0..=1.0`.
        probability: f64,
        /// Which requests it considers (default: all).
        #[serde(default, skip_serializing_if = "RequestMatch::is_any")]
        route: RequestMatch,
    },
}

/// Which HTTP requests an http toxic considers: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RequestMatch {
    /// Request methods, compared exactly (`POST`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// A path pattern, matched against the request target without its query string: `*` matches
    /// any characters but `/`, `**` any characters at all, everything else itself
    /// (`/invoices`, `/invoices/*`, `/api/**`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers that must be present, name (any case) and value pattern (`*` matches any
    /// characters; `*` alone: present with any value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

/// One header condition of a [`RequestMatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name, compared without regard to case.
    pub name: String,
    /// Value pattern (`*` matches any characters).
    pub value: String,
}

impl RequestMatch {
    /// Whether it matches every request.
    pub fn is_any(&self) -> bool {
        self.methods.is_empty() && self.path.is_none() && self.headers.is_empty()
    }

    /// Whether a request with this method, target and headers matches.
    pub fn matches(&self, method: &str, target: &str, headers: &[(&str, &[u8])]) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return false;
        }
        if let Some(pattern) = &self.path {
            let path = target.split(['?', '#']).next().unwrap_or_default();
            if !glob(pattern.as_bytes(), path.as_bytes(), true) {
                return false;
            }
        }
        self.headers.iter().all(|wanted| {
            headers.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case(&wanted.name)
                    && glob(wanted.value.as_bytes(), value.trim_ascii(), false)
            })
        })
    }
}

/// Glob match: `**` matches anything; `*` anything but `/` when `segments`, anything otherwise.
/// Backtracking: patterns are short and written by the scenario's author (validation allows at
/// most four stars), request targets at most a head's size.
pub(crate) fn glob(pattern: &[u8], text: &[u8], segments: bool) -> bool {
    fn go(pattern: &[u8], text: &[u8], segments: bool) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => {
                let (deep, rest) = match rest.split_first() {
                    Some((b'*', after)) => (true, after),
                    _ => (!segments, rest),
                };
                // Try every split point the star may cover.
                for taken in 0..=text.len() {
                    if go(rest, &text[taken..], segments) {
                        return true;
                    }
                    if !deep && text.get(taken) == Some(&b'/') {
                        return false;
                    }
                }
                false
            }
            Some((byte, rest)) => text.first() == Some(byte) && go(rest, &text[1..], segments),
        }
    }
    go(pattern, text, segments)
}

impl ToxicKind {
    /// The kebab-case name, as in events and scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset-peer",
            ToxicKind::SlowClose { .. } => "slow-close",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit-data",
            ToxicKind::Down => "down",
            ToxicKind::HttpError { .. } => "http-error",
            ToxicKind::HttpDelay { .. } => "http-delay",
            ToxicKind::HttpAbort { .. } => "http-abort",
            ToxicKind::HttpTruncate { .. } => "http-truncate",
        }
    }

    /// Whether the toxic reads HTTP requests (a no-op on proxies without `http`).
    pub fn is_http(&self) -> bool {
        matches!(
            self,
            ToxicKind::HttpError { .. }
                | ToxicKind::HttpDelay { .. }
                | ToxicKind::HttpAbort { .. }
                | ToxicKind::HttpTruncate { .. }
        )
    }

    /// Whether the toxic acts on responses as well: a stage on each direction, the request side
    /// telling the response side which answers to change.
    pub fn is_http_response(&self) -> bool {
        matches!(self, ToxicKind::HttpAbort { .. } | ToxicKind::HttpTruncate { .. })
    }
}

/// Durations as `250ms`, `30s` or `1500us`: the proxy depends on nothing else in the crate, so it
/// carries its own small format instead of the scenario's.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// The shortest exact text: whole seconds as `Ns`, whole milliseconds as `Nms`, else `Nus`.
    pub fn format(d: Duration) -> String {
        let us = d.as_micros();
        if us % 1_000_000 == 0 {
            format!("{}s", us / 1_000_000)
        } else if us % 1_000 == 0 {
            format!("{}ms", us / 1_000)
        } else {
            format!("{us}us")
        }
    }

    /// Read what [`format`] writes.
    pub fn parse(text: &str) -> Option<Duration> {
        let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
            (n, 1_000)
        } else if let Some(n) = text.strip_suffix("us") {
            (n, 1)
        } else if let Some(n) = text.strip_suffix('s') {
            (n, 1_000_000)
        } else {
            return None;
        };
        let n: u64 = number.parse().ok()?;
        Some(Duration::from_micros(n.checked_mul(scale)?))
    }

    /// Serialize as [`format`] writes it.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Read what `serialize` wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("bad duration `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_the_shortest_exact_unit() {
        for (d, text) in [
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1500us"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(duration_text::format(d), text);
            assert_eq!(duration_text::parse(text), Some(d));
        }
        assert_eq!(duration_text::parse("5m"), None);
    }

    #[test]
    fn path_globs_match_within_a_segment_or_across_them() {
        for (pattern, path, want) in [
            ("/invoices", "/invoices", true),
            ("/invoices", "/invoices/7", false),
            ("/invoices", "/invoice", false),
            ("/invoices/*", "/invoices/7", true),
            ("/invoices/*", "/invoices/", true),
            ("/invoices/*", "/invoices/7/lines", false),
            ("/invoices/*", "/invoices", false),
            ("/api/**", "/api/v1/users/9", true),
            ("/api/**", "/apiary", false),
            ("/**/health", "/a/b/health", true),
            ("/*.json", "/x.json", true),
            ("/*.json", "/a/x.json", false),
            ("**", "/anything/at/all", true),
        ] {
            assert_eq!(glob(pattern.as_bytes(), path.as_bytes(), true), want, "{pattern} {path}");
        }
    }

    #[test]
    fn requests_match_on_method_path_without_query_and_headers() {
        let route = RequestMatch {
            methods: vec!["POST".into(), "PUT".into()],
            path: Some("/invoices/*".into()),
            headers: vec![HeaderMatch { name: "X-Tenant".into(), value: "acme-*".into() }],
        };
        let tenant: &[(&str, &[u8])] = &[("x-tenant", b" acme-eu ")];
        assert!(route.matches("POST", "/invoices/7?draft=1", tenant));
        assert!(route.matches("PUT", "/invoices/7", tenant));
        assert!(!route.matches("GET", "/invoices/7", tenant));
        assert!(!route.matches("POST", "/health", tenant));
        assert!(!route.matches("POST", "/invoices/7", &[("x-tenant", b"other")]));
        assert!(!route.matches("POST", "/invoices/7", &[]));
        assert!(RequestMatch::default().matches("GET", "/", &[]));
    }

    #[test]
    fn specs_serialize_kebab_case_and_round_trip() {
        let spec = ToxicSpec::new(
            ToxicKind::Latency { latency: Duration::from_millis(100), jitter: Duration::ZERO },
            Direction::Downstream,
        );
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": {"type": "latency", "latency": "100ms", "jitter": "0s"},
                               "direction": "downstream", "toxicity": 1.0})
        );
        let back: ToxicSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        let http =
            ToxicKind::HttpError { status: 503, probability: 0.5, route: RequestMatch::default() };
        assert_eq!(
            serde_json::to_value(&http).unwrap(),
            serde_json::json!({"type": "http-error", "status": 503, "probability": 0.5})
        );
        let route = RequestMatch {
            methods: vec!["POST".into()],
            path: Some("/invoices/*".into()),
            headers: vec![HeaderMatch { name: "x-tenant".into(), value: "acme".into() }],
        };
        let abort = ToxicKind::HttpAbort { after: 10, probability: 1.0, route };
        let json = serde_json::to_value(&abort).unwrap();
        assert_eq!(json["route"]["methods"], serde_json::json!(["POST"]));
        assert_eq!(serde_json::from_value::<ToxicKind>(json).unwrap(), abort);
        let bw = ToxicKind::Bandwidth { bytes_per_sec: 10 };
        assert_eq!(serde_json::to_value(&bw).unwrap()["bytes-per-sec"], 10);
    }
}
