//! The `[server]` table: who may use the HTTP server, and how much of the process it may take.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::check::invalid;
use crate::error::ConfigError;

/// The environment variable that holds the API token when `server.token_file` is not set.
pub const TOKEN_ENV: &str = "STREAMWATCH_TOKEN";
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
pub const DEFAULT_HEADER_READ_TIMEOUT: f64 = 10.0;
pub const DEFAULT_REQUEST_TIMEOUT: f64 = 60.0;
/// Enough for any JSON the API takes; `POST /api/reload` needs no body at all.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4096;
/// Shorter tokens are accepted with a warning: they can be guessed.
const SHORT_TOKEN: usize = 16;

/// `[server]`: listeners, authentication and HTTP limits.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The main listener; the same as the top-level `listen` (set one of the two). Resolved
    /// into `Config::listen` while parsing, and `None` afterwards.
    pub listen: Option<SocketAddr>,
    /// A file holding the bearer token the API asks for (else `STREAMWATCH_TOKEN`).
    pub token_file: Option<PathBuf>,
    /// Lets reads (`/api/streams`, thumbnails, evidence, `/metrics`) through without the token;
    /// `POST /api/reload` still needs it.
    pub public_read: bool,
    /// A listener of its own for `/metrics` (Prometheus convention), e.g. `"0.0.0.0:9724"`.
    pub metrics_listen: Option<SocketAddr>,
    /// A file holding the bearer token `metrics_listen` asks for; none: it is open.
    pub metrics_token_file: Option<PathBuf>,
    /// The `Host` values the main listener answers to (`name` or `name:port`); empty: any.
    /// Also the origins, besides the `Host` itself, a browser may send requests from.
    pub allowed_hosts: Vec<String>,
    /// Open HTTP connections at most on the main listener; beyond it the oldest idle one is
    /// closed, or the new one refused. Capped at a quarter of the file descriptor limit.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept.
    pub header_read_timeout: f64,
    /// Seconds a request may take, body included, before it is answered 503.
    pub request_timeout: f64,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// The token read from `token_file` (never shown: `Secret` redacts it).
    #[serde(skip)]
    pub token: Option<Secret>,
    /// The token read from `metrics_token_file`.
    #[serde(skip)]
    pub metrics_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: None,
            token_file: None,
            public_read: false,
            metrics_listen: None,
            metrics_token_file: None,
            allowed_hosts: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            token: None,
            metrics_token: None,
        }
    }
}

impl ServerConfig {
    /// Reads the token files named by the table; errors name the key.
    pub fn load_tokens(&mut self, key: &str) -> Result<(), ConfigError> {
        if let Some(path) = &self.token_file {
            self.token = Some(read_secret(path, &format!("{key}.token_file"))?);
        }
        if let Some(path) = &self.metrics_token_file {
            self.metrics_token = Some(read_secret(path, &format!("{key}.metrics_token_file"))?);
        }
        Ok(())
    }

    pub fn validate(&self, key: &str, listen: SocketAddr) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid(
                &k("max_connections"),
                &format!("{} is not between 1 and 1000000", self.max_connections),
            ));
        }
        super::check::positive(&k("header_read_timeout"), self.header_read_timeout)?;
        super::check::positive(&k("request_timeout"), self.request_timeout)?;
        if !(1..=1 << 20).contains(&self.max_body_bytes) {
            return Err(invalid(
                &k("max_body_bytes"),
                &format!("{} is not between 1 and 1048576 bytes", self.max_body_bytes),
            ));
        }
        if let Some(m) = self.metrics_listen
            && m.port() == listen.port()
            && m.port() != 0
            && (m.ip() == listen.ip() || m.ip().is_unspecified() || listen.ip().is_unspecified())
        {
            return Err(invalid(
                &k("metrics_listen"),
                &format!("{m} is the main listener's address ({listen}): choose another port"),
            ));
        }
        if self.metrics_token_file.is_some() && self.metrics_listen.is_none() {
            return Err(invalid(
                &k("metrics_token_file"),
                "has no effect without server.metrics_listen (on the main listener /metrics \
                 takes the API token)",
            ));
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            validate_host(h).map_err(|m| invalid(&k(&format!("allowed_hosts[{i}]")), &m))?;
        }
        Ok(())
    }
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`: what a `Host` header holds, nothing more.
fn validate_host(h: &str) -> Result<(), String> {
    let ok = !h.is_empty()
        && h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{h}` is not a host name or host:port (no scheme or path), e.g. \"monitor.example.com\" or \"127.0.0.1:9723\""
        ))
    }
}

/// A token: compared in constant time and never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A token as given (surrounding whitespace removed); `None` when empty.
    pub fn new(text: &str) -> Option<Self> {
        let t = text.trim();
        (!t.is_empty()).then(|| Self(t.as_bytes().to_vec()))
    }

    /// Whether `candidate` is this token. The time taken depends on the lengths only.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        // Unequal lengths are answered at once: they give away the length, not the token.
        self.0.len() == candidate.len() && bool::from(self.0.as_slice().ct_eq(candidate))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

/// Reads a token file: it must exist, hold one token of visible ASCII characters (an HTTP
/// header can carry nothing else), and should not be readable by every user.
pub fn read_secret(path: &Path, key: &str) -> Result<Secret, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, &format!("cannot read the token file {shown}: {e}")))?;
    let secret = Secret::new(&text).ok_or_else(|| {
        invalid(
            key,
            &format!("the token file {shown} is empty: write a token into it, e.g. `openssl rand -hex 32 > {shown}`"),
        )
    })?;
    if !secret.0.iter().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            key,
            &format!(
                "the token in {shown} has spaces, several lines or non-ASCII characters: use one \
                 word of visible ASCII characters"
            ),
        ));
    }
    if secret.len() < SHORT_TOKEN {
        tracing::warn!(key = %key, "the token in {shown} is shorter than {SHORT_TOKEN} characters: it can be guessed");
    }
    warn_if_world_readable(path, key);
    Ok(secret)
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path, key: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            key = %key,
            "the token file {} is readable by every user: chmod o-r it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path, _key: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_themselves_and_never_print() {
        let s = Secret::new(" abc123\n").unwrap();
        assert!(s.matches(b"abc123"));
        assert!(!s.matches(b"abc124"));
        assert!(!s.matches(b"abc12"));
        assert!(!s.matches(b"abc1234"));
        assert!(!s.matches(b""));
        assert!(Secret::new(" \n").is_none());
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
    }

    #[test]
    fn token_file_problems_name_the_key() {
        let dir = std::env::temp_dir().join(format!("sw-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = read_secret(&dir.join("nope"), "server.token_file").unwrap_err();
        assert!(
            missing.to_string().contains("server.token_file"),
            "{missing}"
        );
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = read_secret(&empty, "server.metrics_token_file").unwrap_err();
        assert!(
            e.to_string().contains("server.metrics_token_file") && e.to_string().contains("empty"),
            "{e}"
        );
        let spaced = dir.join("spaced");
        std::fs::write(&spaced, "two words").unwrap();
        assert!(read_secret(&spaced, "k").is_err());
        let good = dir.join("good");
        std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
        let s = read_secret(&good, "k").unwrap();
        assert!(s.matches(b"0123456789abcdef0123"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hosts_are_plain_authorities() {
        assert!(validate_host("monitor.example.com").is_ok());
        assert!(validate_host("127.0.0.1:9723").is_ok());
        assert!(validate_host("[::1]:9723").is_ok());
        assert!(validate_host("http://monitor.example.com").is_err());
        assert!(validate_host("a/b").is_err());
        assert!(validate_host("").is_err());
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::Config;

    fn err(text: &str) -> String {
        Config::parse(text, "test").unwrap_err().to_string()
    }

    #[test]
    fn the_server_table_has_safe_defaults_and_takes_listen() {
        let c = Config::parse("", "test").unwrap();
        assert!(c.server.token.is_none() && !c.server.public_read);
        assert_eq!(c.server.max_connections, super::DEFAULT_MAX_CONNECTIONS);
        let c = Config::parse("[server]\nlisten = \"127.0.0.1:9000\"\n", "test").unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.server.listen, None, "resolved into Config::listen");
        let top = Config::parse("listen = \"127.0.0.1:9001\"\n", "test").unwrap();
        assert_eq!(top.listen, "127.0.0.1:9001".parse().unwrap());
    }

    #[test]
    fn server_problems_name_the_key() {
        let both = err("listen = \"127.0.0.1:1\"\n[server]\nlisten = \"127.0.0.1:2\"\n");
        assert!(both.contains("server.listen"), "{both}");
        assert!(err("[server]\ntoken = \"x\"\n").contains("token"));
        let missing = err("[server]\ntoken_file = \"/nonexistent/sw-token\"\n");
        assert!(
            missing.contains("server.token_file") && missing.contains("/nonexistent/sw-token"),
            "{missing}"
        );
        let clash =
            err("listen = \"0.0.0.0:9723\"\n[server]\nmetrics_listen = \"127.0.0.1:9723\"\n");
        assert!(clash.contains("server.metrics_listen"), "{clash}");
        let alone = err("[server]\nmetrics_token_file = \"/x\"\n");
        assert!(alone.contains("server.metrics_token_file"), "{alone}");
        assert!(err("[server]\nmax_connections = 0\n").contains("server.max_connections"));
        assert!(err("[server]\nheader_read_timeout = 0\n").contains("server.header_read_timeout"));
        let host = err("[server]\nallowed_hosts = [\"https://x.example\"]\n");
        assert!(host.contains("server.allowed_hosts[0]"), "{host}");
    }
}
