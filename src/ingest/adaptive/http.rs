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
    let encoding = content_encoding(&response);
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
            Ok(None) => {
                return match decode(url, encoding.as_deref(), body, limit) {
                    Ok(body) => Fetched::Ok(body),
                    Err(f) => Fetched::Failed(f),
                };
            }
            Err(e) => return Fetched::Failed(Failure::from_reqwest(url, e)),
        }
    }
}

fn content_encoding(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// A small body in its content coding, decoded into at most `limit` bytes. streamwatch asks
/// for no coding, but some origins compress manifests anyway; a gzip bomb stops at the limit.
pub fn decode(
    url: &reqwest::Url,
    encoding: Option<&str>,
    body: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    match encoding {
        None | Some("" | "identity") => Ok(body),
        Some("gzip" | "x-gzip") => inflate(url, flate2::read::GzDecoder::new(&body[..]), limit),
        Some("deflate") => inflate(url, flate2::read::ZlibDecoder::new(&body[..]), limit),
        Some(other) => Err(Failure::new(
            "invalid",
            format!("{}: content coding `{other}` is not supported", shown(url)),
        )),
    }
}

fn inflate(
    url: &reqwest::Url,
    reader: impl std::io::Read,
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::new("invalid", format!("{}: cannot decompress: {e}", shown(url))))?;
    if out.len() > limit {
        return Err(Failure::new(
            "invalid",
            format!("{}: over {limit} bytes once decompressed", shown(url)),
        ));
    }
    Ok(out)
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
    encoding: Option<String>,
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
            encoding: content_encoding(&response),
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

    /// The body's content coding (`gzip`...), lower case, when it has one.
    pub fn encoding(&self) -> Option<&str> {
        self.encoding.as_deref()
    }

    pub fn received(&self) -> usize {
        self.received
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn compressed_manifests_are_decoded_within_the_limit() {
        let url = reqwest::Url::parse("http://o/live.m3u8?token=secret").unwrap();
        let playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n".to_vec();
        assert_eq!(
            decode(&url, Some("gzip"), gzip(&playlist), 1024).unwrap(),
            playlist
        );
        assert_eq!(
            decode(&url, None, playlist.clone(), 1024).unwrap(),
            playlist
        );
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100_000);
        let err = decode(&url, Some("gzip"), bomb, 4 << 20).unwrap_err();
        assert!(err.reason.contains("once decompressed"), "{}", err.reason);
        assert!(!err.reason.contains("secret"), "{}", err.reason);
        let err = decode(&url, Some("br"), playlist, 1024).unwrap_err();
        assert!(err.reason.contains("`br`"), "{}", err.reason);
    }
}
