//! Stream URLs: the UDP/RTP receive form with its options, SDP files, and the redacted form
//! under which a URL is shown (logs, metric labels, the API, generated stream ids).

use std::net::{IpAddr, Ipv4Addr};

use crate::error::SourceUrlError;

/// Query options a `udp://` or `rtp://` URL accepts.
pub const UDP_OPTIONS: &[&str] = &["iface", "buffer", "source"];

/// The kernel takes a receive buffer size as a C int.
pub const MAX_UDP_BUFFER: u32 = i32::MAX as u32;

/// A `udp://[@]HOST:PORT[?options]` or `rtp://...` receive URL, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpUrl {
    /// RTP (with MPEG-TS payload) rather than raw MPEG-TS datagrams.
    pub rtp: bool,
    /// A multicast group to join, or a local address to bind; None binds every address.
    pub host: Option<IpAddr>,
    pub port: u16,
    /// `iface=`: the interface on which the group is joined.
    pub iface: Option<String>,
    /// `buffer=`: the socket's receive buffer, bytes.
    pub buffer: Option<u32>,
    /// `source=`: source-specific multicast, only datagrams from this sender (IPv4 group).
    pub source: Option<Ipv4Addr>,
}

impl UdpUrl {
    /// Parses a `udp://` or `rtp://` URL; None for any other scheme.
    pub fn parse(url: &str) -> Option<Result<Self, SourceUrlError>> {
        let (scheme, rest) = url.split_once("://")?;
        let rtp = match scheme.to_ascii_lowercase().as_str() {
            "udp" => false,
            "rtp" => true,
            _ => return None,
        };
        Some(Self::parse_rest(rtp, rest).map_err(|problem| problem.for_url(url)))
    }

    fn parse_rest(rtp: bool, rest: &str) -> Result<Self, Problem> {
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        if authority.contains('/') {
            return Err(Problem::Malformed(
                "a UDP/RTP URL has no path: use udp://[@]HOST:PORT".into(),
            ));
        }
        let (host, port) = split_host_port(authority.strip_prefix('@').unwrap_or(authority))?;
        let mut parsed = UdpUrl {
            rtp,
            host,
            port,
            iface: None,
            buffer: None,
            source: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            parsed.set_option(key, value)?;
        }
        if parsed.iface.is_some() && !parsed.multicast() {
            return Err(Problem::option(
                "iface",
                "applies only to a multicast group (224.0.0.0/4, ff00::/8); this URL binds a local address",
            ));
        }
        if parsed.source.is_some() {
            match parsed.host {
                Some(IpAddr::V4(group)) if group.is_multicast() => {}
                Some(IpAddr::V6(group)) if group.is_multicast() => {
                    return Err(Problem::option(
                        "source",
                        "(source-specific multicast) is supported for IPv4 groups only; this URL \
                         joins an IPv6 group",
                    ));
                }
                _ => {
                    return Err(Problem::option(
                        "source",
                        "applies only to a multicast group (224.0.0.0/4, SSM usually \
                         232.0.0.0/8); this URL binds a local address",
                    ));
                }
            }
        }
        Ok(parsed)
    }

    fn set_option(&mut self, key: &str, value: &str) -> Result<(), Problem> {
        if value.is_empty() {
            return Err(Problem::option(key, "has no value (write key=value)"));
        }
        match key {
            "iface" => {
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ','))
                {
                    return Err(Problem::option(
                        key,
                        &format!("`{value}` is not an interface name like eth0"),
                    ));
                }
                self.iface = Some(value.to_owned());
            }
            "source" => self.source = Some(parse_source(value)?),
            "buffer" => {
                let bytes = value
                    .parse::<u32>()
                    .ok()
                    .filter(|b| (1..=MAX_UDP_BUFFER).contains(b))
                    .ok_or_else(|| {
                        Problem::option(
                            key,
                            &format!(
                                "`{value}` is not a receive buffer size in bytes from 1 to {MAX_UDP_BUFFER}"
                            ),
                        )
                    })?;
                self.buffer = Some(bytes);
            }
            _ => {
                return Err(Problem::option(
                    key,
                    &format!(
                        "not an option of UDP/RTP URLs (known: {})",
                        UDP_OPTIONS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether HOST is a group to join rather than an address to bind.
    pub fn multicast(&self) -> bool {
        self.host.is_some_and(|h| h.is_multicast())
    }

    /// The address udpsrc binds (and, for a group, joins).
    pub fn address(&self) -> String {
        match self.host {
            Some(host) => host.to_string(),
            None => "0.0.0.0".into(),
        }
    }
}

/// The sender of `source=`: one IPv4 unicast address.
fn parse_source(value: &str) -> Result<Ipv4Addr, Problem> {
    let problem = |why: &str| Problem::option("source", &format!("`{value}` {why}"));
    let source = match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4,
        Ok(IpAddr::V6(_)) => {
            return Err(problem(
                "is an IPv6 address; source-specific multicast is supported for IPv4 senders only",
            ));
        }
        Err(_) => {
            return Err(problem(
                "is not an IPv4 address (the sender whose datagrams are received)",
            ));
        }
    };
    if source.is_multicast() || source.is_unspecified() || source.is_broadcast() {
        return Err(problem(
            "is not a unicast address: give the sender's own address",
        ));
    }
    Ok(source)
}

/// `HOST:PORT`, `[V6]:PORT` or `:PORT`.
fn split_host_port(authority: &str) -> Result<(Option<IpAddr>, u16), Problem> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, port) = v6
            .split_once("]:")
            .ok_or_else(|| Problem::Malformed("expected [IPv6]:PORT".into()))?;
        (host, port)
    } else {
        authority
            .rsplit_once(':')
            .ok_or_else(|| Problem::Malformed("no port: use udp://[@]HOST:PORT".into()))?
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Problem::Malformed(format!("`{port}` is not a port from 1 to 65535")))?;
    if host.is_empty() {
        return Ok((None, port));
    }
    let host = host.parse::<IpAddr>().map_err(|_| {
        Problem::Malformed(format!(
            "`{host}` is not an IP address (a multicast group to join, a local address to bind, or nothing to bind all)"
        ))
    })?;
    Ok((Some(host), port))
}

/// What is wrong with a URL, before the URL is attached.
enum Problem {
    Malformed(String),
    Option { option: String, message: String },
}

impl Problem {
    fn option(option: &str, message: &str) -> Self {
        Problem::Option {
            option: option.to_owned(),
            message: message.to_owned(),
        }
    }

    fn for_url(self, url: &str) -> SourceUrlError {
        let url = redact_url(url);
        match self {
            Problem::Malformed(message) => SourceUrlError::Malformed { url, message },
            Problem::Option { option, message } => SourceUrlError::BadOption {
                url,
                option,
                message,
            },
        }
    }
}

/// A session description to receive RTP by: `file:///path.sdp` or a path ending in `.sdp`.
pub fn sdp_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    let is_sdp = !path.contains("://")
        && path
            .rsplit('.')
            .next()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("sdp"));
    is_sdp.then_some(path)
}

/// Query parameters that carry credentials: SRT's passphrase and stream id, tokens and
/// signatures of signed URLs (CloudFront's `Policy`/`Key-Pair-Id`, S3's `X-Amz-*`).
const SECRET_PARAMS: &[&str] = &[
    "passphrase",
    "streamid",
    "token",
    "key",
    "sig",
    "signature",
    "auth",
    "policy",
    "key-pair-id",
];

/// Parameter names the config adds to `SECRET_PARAMS` (`redact_query_params`), lowercase.
/// Process-wide, as `redact_url` is called from everywhere a URL is shown; names are only
/// ever added (a reload that drops one keeps hiding it until restart: hiding too much is safe).
static EXTRA_SECRET_PARAMS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// URLs (without query or fragment) of streams configured with `secret_path = true`: the
/// last segment of their path is a key (an RTMP stream key, a tokenised path).
static SECRET_PATHS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Adds query parameter names whose values `redact_url` hides (case-insensitive).
pub fn add_secret_query_params(names: &[String]) {
    let mut extra = EXTRA_SECRET_PARAMS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for name in names {
        let name = name.to_ascii_lowercase();
        if !extra.contains(&name) {
            extra.push(name);
        }
    }
}

/// Marks the last path segment of `url` as a secret wherever the URL is shown.
pub fn mark_secret_path(url: &str) {
    let base = without_query(url).to_owned();
    let mut paths = SECRET_PATHS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !paths.contains(&base) {
        paths.push(base);
    }
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str())
        || name.starts_with("x-amz-")
        || EXTRA_SECRET_PARAMS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&name)
}

fn has_secret_path(base: &str) -> bool {
    SECRET_PATHS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|p| p == base)
}

/// `scheme://host/app/key` → `scheme://host/app/***` (trailing slashes kept).
fn redact_last_segment(base: &str) -> String {
    let trimmed = base.trim_end_matches('/');
    let authority_start = trimmed.find("://").map_or(0, |i| i + 3);
    match trimmed.rfind('/') {
        Some(slash) if slash >= authority_start => {
            format!("{}***{}", &trimmed[..=slash], &base[trimmed.len()..])
        }
        _ => base.to_owned(),
    }
}

/// The secret values inside `url` (password, secret parameter values, a secret last path
/// segment), for scrubbing text that quotes them without the URL around them (a GStreamer
/// message naming the stream key). Values shorter than 4 characters are left out: replacing
/// them would mangle ordinary words, and they are not credentials worth the name.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let base = without_query(url);
    if let Some((_, rest)) = base.split_once("://") {
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password.to_owned());
        }
        if has_secret_path(base)
            && let Some(last) = base.trim_end_matches('/').rsplit('/').next()
        {
            found.push(last.to_owned());
        }
    }
    if let Some(query) = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .map(|(_, q)| q)
    {
        for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
            if is_secret_param(k) {
                found.push(v.to_owned());
            }
        }
    }
    found.retain(|v| v.len() >= 4);
    found
}

/// The URL as it may be shown: the userinfo password and the values of credential query
/// parameters replaced with `***`. Everything a person or a dashboard sees of a stream URL
/// (logs, `streamwatch_stream_info`, `/api/streams`, generated ids) goes through this.
pub fn redact_url(url: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let mut out = if has_secret_path(base) {
        redact_userinfo(&redact_last_segment(base))
    } else {
        redact_userinfo(base)
    };
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`.
fn redact_userinfo(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(url: &str) -> UdpUrl {
        UdpUrl::parse(url).expect("udp scheme").expect("valid")
    }

    fn problem(url: &str) -> String {
        UdpUrl::parse(url)
            .expect("udp scheme")
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn multicast_hosts_are_joined_and_others_bound() {
        let u = udp("udp://239.255.1.1:5000");
        assert!(u.multicast() && !u.rtp);
        assert_eq!((u.address(), u.port), ("239.255.1.1".into(), 5000));
        assert!(udp("udp://@239.255.1.1:5000").multicast());
        let bound = udp("udp://@127.0.0.1:5000");
        assert!(!bound.multicast());
        assert_eq!(bound.address(), "127.0.0.1");
        let any = udp("udp://:5000");
        assert_eq!((any.host, any.address()), (None, "0.0.0.0".into()));
        assert_eq!(udp("udp://@:5000/").port, 5000);
        assert!(udp("rtp://[ff15::1]:5004").multicast());
        assert!(udp("RTP://239.1.1.1:5004").rtp);
        assert!(UdpUrl::parse("srt://h:1").is_none());
    }

    #[test]
    fn options_are_checked_and_named() {
        let u = udp("udp://239.255.1.1:5000?iface=eth0&buffer=4194304");
        assert_eq!(u.iface.as_deref(), Some("eth0"));
        assert_eq!(u.buffer, Some(4_194_304));
        assert_eq!(udp("udp://:5000?buffer=65536").buffer, Some(65536));
        for (url, option) in [
            ("udp://239.1.1.1:5000?buffer=big", "buffer"),
            ("udp://239.1.1.1:5000?buffer=0", "buffer"),
            ("udp://239.1.1.1:5000?buffer=4294967295", "buffer"),
            ("udp://239.1.1.1:5000?buffer=", "buffer"),
            ("udp://239.1.1.1:5000?ttl=1", "ttl"),
            ("udp://239.1.1.1:5000?source=", "source"),
            ("udp://239.1.1.1:5000?source=sender", "source"),
            ("udp://239.1.1.1:5000?source=239.1.1.2", "source"),
            ("udp://239.1.1.1:5000?source=0.0.0.0", "source"),
            ("udp://239.1.1.1:5000?source=::1", "source"),
            ("udp://127.0.0.1:5000?source=10.0.0.7", "source"),
            ("udp://:5000?source=10.0.0.7", "source"),
            ("rtp://[ff3e::1]:5000?source=10.0.0.7", "source"),
            ("udp://239.1.1.1:5000?iface=eth0;rm", "iface"),
            ("rtp://127.0.0.1:5000?iface=lo", "iface"),
        ] {
            let e = problem(url);
            assert!(e.contains(&format!("option `{option}`")), "{url}: {e}");
        }
        assert!(problem("udp://239.1.1.1:5000?ttl=1").contains("known: iface, buffer, source"));
        assert!(problem("udp://239.1.1.1:5000?source=239.1.1.2").contains("not a unicast"));
        assert!(problem("udp://127.0.0.1:5000?source=10.0.0.7").contains("multicast group"));
        assert!(problem("udp://239.1.1.1:5000?source=::1").contains("IPv4 senders only"));
        assert!(problem("rtp://[ff3e::1]:5000?source=10.0.0.7").contains("IPv4 groups only"));
    }

    #[test]
    fn a_source_selects_one_sender_of_a_group() {
        let u = udp("rtp://@232.1.2.3:5004?source=10.0.0.7&iface=eth0&buffer=65536");
        assert_eq!(u.source, Some(Ipv4Addr::new(10, 0, 0, 7)));
        assert!(u.rtp && u.multicast());
        assert_eq!(udp("udp://232.1.2.3:5004").source, None);
    }

    #[test]
    fn malformed_addresses_say_what_is_expected() {
        assert!(problem("udp://239.1.1.1").contains("no port"));
        assert!(problem("udp://239.1.1.1:0").contains("port from 1 to 65535"));
        assert!(problem("udp://239.1.1.1:70000").contains("70000"));
        assert!(problem("udp://mcast.example:5000").contains("not an IP address"));
        assert!(problem("udp://239.1.1.1:5000/x").contains("no path"));
    }

    #[test]
    fn sdp_files_are_recognised() {
        assert_eq!(sdp_path("file:///tmp/a.sdp"), Some("/tmp/a.sdp"));
        assert_eq!(sdp_path("/tmp/A.SDP"), Some("/tmp/A.SDP"));
        assert_eq!(sdp_path("file:///tmp/a.mp4"), None);
        assert_eq!(sdp_path("http://h/a.sdp"), None);
    }

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url("srt://:9000?mode=listener&passphrase=s3cret-pass&pbkeylen=16"),
            "srt://:9000?mode=listener&passphrase=***&pbkeylen=16"
        );
        assert_eq!(
            redact_url("rtsp://admin:hunter2@cam.local:554/stream?x=1#f"),
            "rtsp://admin:***@cam.local:554/stream?x=1#f"
        );
        assert_eq!(
            redact_url(
                "https://cdn/x.m3u8?Policy=p&Signature=s&Key-Pair-Id=k&X-Amz-Credential=c&X-Amz-Signature=z&token=t&sig=g&auth=a&key=k2&streamid=id"
            ),
            "https://cdn/x.m3u8?Policy=***&Signature=***&Key-Pair-Id=***&X-Amz-Credential=***&X-Amz-Signature=***&token=***&sig=***&auth=***&key=***&streamid=***"
        );
        for plain in [
            "udp://@239.1.1.1:5000?buffer=1000",
            "rtmp://user@h/live/x",
            "file:///tmp/a@b:c.mp4",
            "demo://",
        ] {
            assert_eq!(redact_url(plain), plain);
        }
    }

    #[test]
    fn configured_params_and_secret_paths_are_redacted() {
        add_secret_query_params(&["Hdnts".to_owned()]);
        assert_eq!(
            redact_url("https://cdn/a.m3u8?hdnts=exp~hmac&x=1"),
            "https://cdn/a.m3u8?hdnts=***&x=1"
        );
        // Marked with its query: the mark is on the URL without it.
        mark_secret_path("rtmp://origin/live/sk-9f8e7d6c?vhost=a");
        assert_eq!(
            redact_url("rtmp://origin/live/sk-9f8e7d6c?vhost=a"),
            "rtmp://origin/live/***?vhost=a"
        );
        assert_eq!(
            redact_url("rtmp://u:pw@origin/live/sk-9f8e7d6c"),
            "rtmp://u:***@origin/live/sk-9f8e7d6c",
            "another URL (other userinfo) is not marked"
        );
        assert_eq!(
            redact_url("rtmp://origin/live/other"),
            "rtmp://origin/live/other"
        );
        assert_eq!(
            redact_last_segment("rtmp://h/app/key/"),
            "rtmp://h/app/***/"
        );
        assert_eq!(redact_last_segment("rtmp://h"), "rtmp://h");
    }

    #[test]
    fn secrets_inside_a_url_are_listed_for_scrubbing() {
        mark_secret_path("rtmp://h2/live/streamkey123");
        let found = url_secrets("rtmp://h2/live/streamkey123");
        assert_eq!(found, vec!["streamkey123".to_owned()]);
        let found = url_secrets("srt://:9000?mode=listener&passphrase=hunter2hunter2&streamid=ab");
        assert_eq!(
            found,
            vec!["hunter2hunter2".to_owned()],
            "short values are left out"
        );
        let found = url_secrets("rtsp://admin:s3cr3t@cam/x?token=tok-123");
        assert_eq!(found, vec!["s3cr3t".to_owned(), "tok-123".to_owned()]);
    }

    #[test]
    fn errors_never_show_the_secret() {
        let e = problem("udp://239.1.1.1:5000?passphrase=topsecret&zzz=1");
        assert!(!e.contains("topsecret") && e.contains("passphrase"), "{e}");
    }
}
