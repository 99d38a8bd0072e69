//! HTTP for adaptive streams: every request bounded in bytes and time, every failure named
//! with the `code` label it is counted under and a reason that tells the user what broke.

use std::time::Duration;

use bytes::Bytes;

/// Redirects followed before a request counts as a redirect loop.
const MAX_REDIRECTS: usize = 10;

/// A URL as messages show it: credentials and signed-URL tokens replaced with `***`.
pub fn shown(url: &reqwest::Url) -> String {
    crate::config::redact_url(url.as_str())
}

/// How a request ended: the `code` label and, for failures, what to tell the user.
pub enum Fetched {
    Ok(Vec<u8>),
    Failed(Failure),
}

/// A failed request: `code` is the `code` label (`404`, `timeout`, `connect`, `invalid`...).
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: String,
    pub reason: String,
}

impl Failure {
    pub fn new(code: &str, reason: String) -> Self {
        Self {
            code: code.to_owned(),
            reason,
        }
    }

    /// `e` without the URL it names (the reason starts with the URL already).
    fn from_reqwest(url: &reqwest::Url, e: reqwest::Error) -> Self {
        let e = e.without_url();
        Self::new(classify(&e), format!("{}: {}", shown(url), describe(&e)))
    }
}

fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_connect() {
        "connect"
    } else {
        "error"
    }
}

/// The full error chain in one line: reqwest's own message rarely names the cause.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The client of one stream; `None`, logged, when reqwest cannot build one (no TLS backend,
/// no resolver configuration). Only http and https are followed on redirects: an origin
/// redirecting to `file://` or another scheme gets a `redirect` failure.
pub fn client(stream_id: &str, timeout: Duration) -> Option<reqwest::Client> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if !matches!(attempt.url().scheme(), "http" | "https") {
            attempt.error("redirect to a scheme other than http(s)")
        } else {
            attempt.follow()
        }
    });
    match reqwest::Client::builder()
        .timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("streamwatch/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(stream = %stream_id, error = %e, "cannot create the HTTP client; this HLS stream is not fetched");
            None
        }
    }
}

/// Sends `request` and checks the status.
async fn send(
    url: &reqwest::Url,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Failure> {
    let response = request
        .send()
        .await
        .map_err(|e| Failure::from_reqwest(url, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Failure::new(
            status.as_str(),
            format!("{}: HTTP {status}", shown(url)),
        ));
    }
    Ok(response)
}

/// A whole small body (playlist, key, init segment), at most `limit` bytes; `head` only checks
/// that the resource answers.
pub async fn get(
    client: &reqwest::Client,
    url: &reqwest::Url,
    head: bool,
    limit: usize,
) -> Fetched {
    let request = if head {
        client.head(url.clone())
    } else {
        client.get(url.clone())
    };
    let mut response = match send(url, request).await {
        Ok(r) => r,
        Err(f) => return Fetched::Failed(f),
    };
    let mut body = Vec::new();
    if head {
        return Fetched::Ok(body);
    }
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Fetched::Failed(Failure::new(
                        "invalid",
                        format!(
                            "{}: over {limit} bytes, more than such a resource can be",
                            shown(url)
                        ),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Fetched::Ok(body),
            Err(e) => return Fetched::Failed(Failure::from_reqwest(url, e)),
        }
    }
}

/// A byte range of a resource: `length` bytes from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub offset: u64,
    pub length: u64,
}

/// A body read chunk by chunk, so a segment never has to fit in memory whole.
pub struct Download {
    response: reqwest::Response,
    url: reqwest::Url,
    received: usize,
    limit: usize,
}

impl Download {
    /// Starts a GET of `url` (of `range` when set) that may take `timeout` (the client's
    /// when `None`) and `limit` bytes.
    pub async fn start(
        client: &reqwest::Client,
        url: &reqwest::Url,
        range: Option<Range>,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<Self, Failure> {
        let mut request = client.get(url.clone());
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        if let Some(r) = range {
            let last = r.offset + r.length.saturating_sub(1);
            request = request.header(reqwest::header::RANGE, format!("bytes={}-{last}", r.offset));
        }
        let response = send(url, request).await?;
        if range.is_some() && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(Failure::new(
                "invalid",
                format!(
                    "{}: the origin ignored the byte range (EXT-X-BYTERANGE) and sent the whole resource",
                    shown(url)
                ),
            ));
        }
        Ok(Self {
            response,
            url: url.clone(),
            received: 0,
            limit,
        })
    }

    /// The next chunk, `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Failure> {
        match self.response.chunk().await {
            Ok(Some(chunk)) => {
                self.received += chunk.len();
                if self.received > self.limit {
                    return Err(Failure::new(
                        "invalid",
                        format!(
                            "{}: over {} bytes, more than such a resource can be",
                            shown(&self.url),
                            self.limit
                        ),
                    ));
                }
                Ok(Some(chunk))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(Failure::from_reqwest(&self.url, e)),
        }
    }

    pub fn received(&self) -> usize {
        self.received
    }
}
