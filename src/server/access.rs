//! Who may do what over HTTP: the bearer token, the `Host` and `Origin` checks against DNS
//! rebinding and cross-site requests, and the content type of mutating requests.
//!
//! The decisions are plain functions of the request headers ([`Access`]'s `check_*`), so they
//! are tested without a server; the middleware at the end applies them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::IntCounter;

use crate::config::{Secret, TOKEN_ENV};
use crate::sinks::metrics::Metrics;

/// What a listener asks of its requests.
pub struct Access {
    /// The bearer token; `None`: reads are open and mutating requests are refused.
    pub token: Option<Secret>,
    /// Reads need no token even when one is configured.
    pub public_read: bool,
    /// `Host` values answered, and foreign origins allowed; empty: any host, same origin only.
    pub allowed_hosts: Vec<String>,
    refused: RefusalCounters,
}

/// Why a request is refused; each maps to one status and one explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is not in `server.allowed_hosts` (a DNS-rebinding page, or a misrouted client).
    Host,
    /// A browser sent the request from a page of another site.
    Origin,
    /// No `Authorization: Bearer` header, or not the configured token.
    Token,
    /// A mutating request while no token is configured.
    NoToken,
    /// A mutating request with a body that is not JSON (what an HTML form or a simple
    /// cross-site `fetch` can send).
    ContentType,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Self::Host,
        Self::Origin,
        Self::Token,
        Self::NoToken,
        Self::ContentType,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Origin => "origin",
            Self::Token => "token",
            Self::NoToken => "no_token",
            Self::ContentType => "content_type",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Host => StatusCode::MISDIRECTED_REQUEST,
            Self::Origin | Self::NoToken => StatusCode::FORBIDDEN,
            Self::Token => StatusCode::UNAUTHORIZED,
            Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn message(self) -> String {
        match self {
            Self::Host => "this Host is not in server.allowed_hosts\n".into(),
            Self::Origin => "cross-origin requests are refused (Origin is neither this host nor \
                             in server.allowed_hosts)\n"
                .into(),
            Self::Token => "send the API token as `Authorization: Bearer TOKEN`\n".into(),
            Self::NoToken => format!(
                "changes through the API are disabled until a token is configured: set \
                 [server] token_file = \"/path/to/token\" in the config, or the {TOKEN_ENV} \
                 environment variable, then send `Authorization: Bearer TOKEN`\n"
            ),
            Self::ContentType => {
                "send no body, or one with `Content-Type: application/json`\n".into()
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.message()).into_response();
        if self == Self::Token {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"streamwatch\""),
            );
        }
        response
    }
}

/// `streamwatch_http_requests_refused_total`, one handle per reason resolved at start.
#[derive(Default)]
struct RefusalCounters(Vec<(Refusal, IntCounter)>);

impl RefusalCounters {
    fn new(metrics: &Metrics) -> Self {
        Self(
            Refusal::ALL
                .iter()
                .map(|&r| (r, metrics.http.refused.with_label_values(&[r.label()])))
                .collect(),
        )
    }

    fn count(&self, refusal: Refusal) {
        if let Some((_, c)) = self.0.iter().find(|(r, _)| *r == refusal) {
            c.inc();
        }
    }
}

impl Access {
    pub fn new(token: Option<Secret>, public_read: bool, allowed_hosts: Vec<String>) -> Self {
        Self {
            token,
            public_read,
            allowed_hosts,
            refused: RefusalCounters::default(),
        }
    }

    /// Counts refusals in `metrics` from now on.
    pub fn counted(mut self, metrics: &Metrics) -> Self {
        self.refused = RefusalCounters::new(metrics);
        self
    }

    /// Whether reads need the token.
    pub fn reads_need_token(&self) -> bool {
        self.token.is_some() && !self.public_read
    }

    /// `Host` against `allowed_hosts` (any host when it is empty).
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.allowed_hosts.is_empty() {
            return Ok(());
        }
        let host = header_str(headers, header::HOST).ok_or(Refusal::Host)?;
        if self.allowed_hosts.iter().any(|a| host_matches(host, a)) {
            Ok(())
        } else {
            Err(Refusal::Host)
        }
    }

    /// A browser's `Origin` must be the host it sent the request to, or an allowed host.
    /// Requests without one (curl, Prometheus, same-origin GETs) pass.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let authority = origin
            .to_str()
            .ok()
            .and_then(origin_authority)
            .ok_or(Refusal::Origin)?;
        let same = header_str(headers, header::HOST)
            .is_some_and(|h| strip_default_port(h).eq_ignore_ascii_case(&authority));
        if same
            || self
                .allowed_hosts
                .iter()
                .any(|a| host_matches(&authority, a))
        {
            Ok(())
        } else {
            Err(Refusal::Origin)
        }
    }

    pub fn check_read(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.reads_need_token() {
            self.check_token(headers)
        } else {
            Ok(())
        }
    }

    /// Mutating requests: the token (never a cookie: a browser would attach that to a
    /// cross-site request), and no body or a JSON one (a form cannot send JSON).
    pub fn check_write(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.token.is_none() {
            return Err(Refusal::NoToken);
        }
        self.check_token(headers)?;
        if body_is_json_or_absent(headers) {
            Ok(())
        } else {
            Err(Refusal::ContentType)
        }
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let token = self.token.as_ref().ok_or(Refusal::NoToken)?;
        match bearer(headers) {
            Some(given) if token.matches(given) => Ok(()),
            _ => Err(Refusal::Token),
        }
    }

    fn refuse(&self, refusal: Refusal) -> Response {
        self.refused.count(refusal);
        refusal.into_response()
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token of `Authorization: Bearer TOKEN` (the scheme is case-insensitive, RFC 9110).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    Some(rest[start..].trim_ascii_end())
}

/// `scheme://host[:port]` → `host[:port]` without the scheme's default port; `null` and
/// anything with a path or user info → `None`.
fn origin_authority(origin: &str) -> Option<String> {
    let (scheme, authority) = origin.split_once("://")?;
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return None;
    }
    let authority = match (
        scheme.to_ascii_lowercase().as_str(),
        authority.rsplit_once(':'),
    ) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h,
        _ => authority,
    };
    Some(authority.to_ascii_lowercase())
}

/// A `Host` of `h:80` or `h:443` as the browser's origin writes it (without the port).
fn strip_default_port(host: &str) -> &str {
    host.strip_suffix(":80")
        .or_else(|| host.strip_suffix(":443"))
        .unwrap_or(host)
}

/// `host[:port]` against an allowed entry: an entry with a port matches only that port, one
/// without matches the name on any port.
pub fn host_matches(host: &str, allowed: &str) -> bool {
    let (name, _) = split_port(host);
    match split_port(allowed) {
        (_, Some(_)) => host.eq_ignore_ascii_case(allowed),
        (allowed_name, None) => name.eq_ignore_ascii_case(allowed_name),
    }
}

/// `name:port` → (name, port); IPv6 literals keep their brackets.
fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rsplit_once(':') {
        Some((name, port))
            if (!name.contains(':') || name.ends_with(']'))
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (name, Some(port))
        }
        _ => (host, None),
    }
}

fn body_is_json_or_absent(headers: &HeaderMap) -> bool {
    if let Some(ct) = header_str(headers, header::CONTENT_TYPE) {
        let essence = ct.split(';').next().unwrap_or("").trim();
        return essence.eq_ignore_ascii_case("application/json");
    }
    // Without a type, only no body at all is accepted.
    let empty_length = header_str(headers, header::CONTENT_LENGTH).is_none_or(|l| l.trim() == "0");
    empty_length && !headers.contains_key(header::TRANSFER_ENCODING)
}

/// Every request of the main listener but the probes: `Host`, then `Origin`.
pub async fn guard_site(State(a): State<Arc<Access>>, req: Request, next: Next) -> Response {
    match a
        .check_host(req.headers())
        .and_then(|()| a.check_origin(req.headers()))
    {
        Ok(()) => next.run(req).await,
        Err(r) => a.refuse(r),
    }
}

/// The read API, evidence and `/metrics`.
pub async fn guard_read(State(a): State<Arc<Access>>, req: Request, next: Next) -> Response {
    match a.check_read(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => a.refuse(r),
    }
}

/// Mutating endpoints.
pub async fn guard_write(State(a): State<Arc<Access>>, req: Request, next: Next) -> Response {
    match a.check_write(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => a.refuse(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-token-0123456789";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn access(token: bool, public_read: bool, hosts: &[&str]) -> Access {
        Access::new(
            token.then(|| Secret::new(TOKEN).unwrap()),
            public_read,
            hosts.iter().map(|h| h.to_string()).collect(),
        )
    }

    const AUTH: (&str, &str) = ("authorization", "Bearer s3cret-token-0123456789");

    #[test]
    fn writes_need_a_configured_token_sent_as_bearer() {
        let none = access(false, false, &[]);
        assert_eq!(none.check_write(&headers(&[AUTH])), Err(Refusal::NoToken));
        let a = access(true, false, &[]);
        assert_eq!(a.check_write(&headers(&[])), Err(Refusal::Token));
        let wrong = ("authorization", "Bearer s3cret-token-012345678X");
        assert_eq!(a.check_write(&headers(&[wrong])), Err(Refusal::Token));
        let basic = ("authorization", "Basic czNjcmV0");
        assert_eq!(a.check_write(&headers(&[basic])), Err(Refusal::Token));
        let cookie = ("cookie", "token=s3cret-token-0123456789");
        assert_eq!(a.check_write(&headers(&[cookie])), Err(Refusal::Token));
        assert_eq!(a.check_write(&headers(&[AUTH])), Ok(()));
        let lower = ("authorization", "bearer  s3cret-token-0123456789");
        assert_eq!(a.check_write(&headers(&[lower])), Ok(()));
    }

    #[test]
    fn writes_take_json_or_no_body() {
        let a = access(true, false, &[]);
        let json = ("content-type", "application/json; charset=utf-8");
        assert_eq!(a.check_write(&headers(&[AUTH, json])), Ok(()));
        let text = ("content-type", "text/plain");
        assert_eq!(
            a.check_write(&headers(&[AUTH, text])),
            Err(Refusal::ContentType)
        );
        let form = ("content-type", "application/x-www-form-urlencoded");
        assert_eq!(
            a.check_write(&headers(&[AUTH, form])),
            Err(Refusal::ContentType)
        );
        let body = ("content-length", "12");
        assert_eq!(
            a.check_write(&headers(&[AUTH, body])),
            Err(Refusal::ContentType)
        );
        assert_eq!(
            a.check_write(&headers(&[AUTH, ("content-length", "0")])),
            Ok(())
        );
    }

    #[test]
    fn reads_are_open_without_a_token_or_with_public_read() {
        assert_eq!(access(false, false, &[]).check_read(&headers(&[])), Ok(()));
        assert_eq!(access(true, true, &[]).check_read(&headers(&[])), Ok(()));
        let a = access(true, false, &[]);
        assert_eq!(a.check_read(&headers(&[])), Err(Refusal::Token));
        assert_eq!(a.check_read(&headers(&[AUTH])), Ok(()));
    }

    #[test]
    fn hosts_are_checked_only_when_listed() {
        let any = access(false, false, &[]);
        assert_eq!(
            any.check_host(&headers(&[("host", "evil.example")])),
            Ok(())
        );
        let a = access(false, false, &["monitor.example.com", "127.0.0.1:9723"]);
        for ok in [
            "monitor.example.com",
            "MONITOR.example.com:8443",
            "127.0.0.1:9723",
        ] {
            assert_eq!(a.check_host(&headers(&[("host", ok)])), Ok(()), "{ok}");
        }
        for bad in ["127.0.0.1:9724", "127.0.0.1", "rebind.evil.example:9723"] {
            assert_eq!(
                a.check_host(&headers(&[("host", bad)])),
                Err(Refusal::Host),
                "{bad}"
            );
        }
        assert_eq!(a.check_host(&headers(&[])), Err(Refusal::Host));
        assert!(host_matches("[::1]:9723", "[::1]"));
        assert!(!host_matches("[::1]:9723", "[::1]:9724"));
    }

    #[test]
    fn origins_must_be_the_host_or_allowed() {
        let a = access(false, false, &["monitor.example.com"]);
        let check = |origin: &str, host: &str| {
            a.check_origin(&headers(&[("origin", origin), ("host", host)]))
        };
        assert_eq!(check("http://127.0.0.1:9723", "127.0.0.1:9723"), Ok(()));
        assert_eq!(
            check("https://monitor.example.com", "10.0.0.5:9723"),
            Ok(())
        );
        assert_eq!(check("http://h.example:80", "h.example"), Ok(()));
        assert_eq!(check("http://h.example", "h.example:80"), Ok(()));
        assert_eq!(
            check("http://evil.example", "127.0.0.1:9723"),
            Err(Refusal::Origin)
        );
        assert_eq!(
            check("http://127.0.0.1:8000", "127.0.0.1:9723"),
            Err(Refusal::Origin)
        );
        assert_eq!(check("null", "127.0.0.1:9723"), Err(Refusal::Origin));
        assert_eq!(a.check_origin(&headers(&[("host", "x")])), Ok(()));
    }

    #[test]
    fn refusals_never_echo_the_token() {
        for r in Refusal::ALL {
            assert!(!r.message().contains(TOKEN));
        }
        let resp = Refusal::Token.into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
