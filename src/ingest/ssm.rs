//! Source-specific multicast on GStreamer 1.22: `udpsrc` there cannot join a group for one
//! sender (its `multicast-source` property came with 1.24), so the socket is opened, bound and
//! joined here (IGMPv3 `IP_ADD_SOURCE_MEMBERSHIP`) and handed to `udpsrc` through its `socket`
//! property.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::{UdpUrl, redact_url};
use crate::error::IngestError;
use crate::stream::Stream;

/// A UDP socket bound to `group:port` that receives only what `source` sends to the group,
/// on each interface of `iface=` (comma-separated, as udpsrc takes it) or on the one the
/// kernel routes the group to. The caller hands it to `udpsrc`, which closes it.
pub fn socket(
    stream: &Stream,
    udp: &UdpUrl,
    group: Ipv4Addr,
    source: Ipv4Addr,
) -> Result<gio::Socket, IngestError> {
    let fail = |option: &str, reason: String| IngestError::UdpSocket {
        stream: stream.id.clone(),
        url: redact_url(&stream.url),
        option: option.to_owned(),
        reason,
    };
    let interfaces = match &udp.iface {
        Some(names) => names
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|name| {
                interface_ipv4(name)
                    .map_err(|e| fail("iface", format!("cannot list interface addresses: {e}")))?
                    .ok_or_else(|| {
                        fail(
                            "iface",
                            format!(
                                "interface `{name}` does not exist or has no IPv4 address \
                                 (source-specific multicast joins on an interface by its address)"
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![Ipv4Addr::UNSPECIFIED],
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail("source", format!("cannot open a UDP socket: {e}")))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail("source", format!("cannot set SO_REUSEADDR: {e}")))?;
    // Only the groups this socket joined itself, not every group joined on the host that
    // shares the port (Linux's default).
    socket
        .set_multicast_all_v4(false)
        .map_err(|e| fail("source", format!("cannot clear IP_MULTICAST_ALL: {e}")))?;
    if let Some(bytes) = udp.buffer {
        let wanted = bytes as usize;
        socket
            .set_recv_buffer_size(wanted)
            .map_err(|e| fail("buffer", format!("cannot set the receive buffer: {e}")))?;
        // Linux doubles the request and caps it at twice net.core.rmem_max.
        if let Ok(got) = socket.recv_buffer_size()
            && got < wanted
        {
            tracing::warn!(stream = %stream.id, wanted, got,
                "receive buffer smaller than buffer= asked (raise net.core.rmem_max)");
        }
    }
    // Bound to the group, so datagrams sent to other groups on the port are not received.
    let bind = SocketAddrV4::new(group, udp.port);
    socket
        .bind(&SockAddr::from(bind))
        .map_err(|e| fail("source", format!("cannot bind {bind}: {e}")))?;
    for interface in &interfaces {
        socket
            .join_ssm_v4(&source, &group, interface)
            .map_err(|e| {
                let on = if interface.is_unspecified() {
                    "the default interface".to_owned()
                } else {
                    format!("the interface of {interface}")
                };
                fail(
                    "source",
                    format!("cannot join {group} for sender {source} on {on}: {e}"),
                )
            })?;
    }
    tracing::info!(stream = %stream.id, %group, %source, port = udp.port,
        interfaces = ?interfaces, "joined source-specific multicast");
    gio::Socket::from_fd(socket.into())
        .map_err(|e| fail("source", format!("GIO cannot take the socket: {e}")))
}

/// The first IPv4 address of the interface `name`, None if it has none or does not exist.
fn interface_ipv4(name: &str) -> io::Result<Option<Ipv4Addr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*entry };
        entry = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type; ifa_name
        // is a NUL-terminated string.
        unsafe {
            if i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET
                || CStr::from_ptr(ifa.ifa_name).to_bytes() != name.as_bytes()
            {
                continue;
            }
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
        }
        break;
    }
    // SAFETY: the list getifaddrs allocated, freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_ipv4_address_and_unknown_interfaces_none() {
        assert_eq!(
            interface_ipv4("lo").expect("getifaddrs"),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(interface_ipv4("no-such-if0").expect("getifaddrs"), None);
    }
}
