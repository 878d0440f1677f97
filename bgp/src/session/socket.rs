//! Transport options on TCP sockets: TTL for eBGP, GTSM (RFC 5082),
//! TCP MD5 signatures (RFC 2385, Linux `TCP_MD5SIG`) and the device a
//! socket is bound to (`SO_BINDTODEVICE`: a VRF's sessions).
#![allow(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Longest key Linux accepts (TCP_MD5SIG_MAXKEYLEN).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// Install (or, with `None`, remove) the MD5 key used with `peer` on
/// `socket` — a listening socket or one about to connect.
pub fn set_md5(socket: &impl AsRawFd, peer: IpAddr, key: Option<&str>) -> io::Result<()> {
    let key = key.unwrap_or("").as_bytes();
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "TCP MD5 password longer than 80 octets"));
    }
    // SAFETY: sockaddr_storage and the rest are plain data; all-zero is valid.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sa = SockAddr::from(SocketAddr::new(peer, 0));
    // SAFETY: `sa` holds at most a sockaddr_storage worth of octets.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            &mut sig.addr as *mut libc::sockaddr_storage as *mut u8,
            sa.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: a valid fd and a pointer to a properly sized, initialised struct.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            &sig as *const TcpMd5Sig as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn setsockopt_int(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to an int.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Set the outgoing TTL / hop limit.
pub fn set_ttl(socket: &impl AsRawFd, v6: bool, ttl: u8) -> io::Result<()> {
    if v6 {
        setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, ttl as libc::c_int)
    } else {
        setsockopt_int(socket, libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }
}

/// GTSM (RFC 5082): send with TTL 255 and drop anything that arrives
/// with less than `255 - (hops - 1)`.
pub fn set_gtsm(socket: &impl AsRawFd, v6: bool, hops: u8) -> io::Result<()> {
    set_ttl(socket, v6, 255)?;
    let min = 256 - hops.max(1) as libc::c_int;
    if v6 {
        setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, min)
    } else {
        setsockopt_int(socket, libc::IPPROTO_IP, libc::IP_MINTTL, min)
    }
}

/// Transport settings for one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub remote: SocketAddr,
    /// Source address to bind before connecting.
    pub source: Option<IpAddr>,
    /// TTL for outgoing packets (1 for directly connected eBGP).
    pub ttl: Option<u8>,
    /// GTSM with this many hops (1 = directly connected).
    pub gtsm_hops: Option<u8>,
    pub md5_password: Option<String>,
    /// The device (a Linux VRF) the socket is bound to: routes and the
    /// source address come from that VRF's table.
    pub device: Option<String>,
}

impl Transport {
    pub fn new(remote: SocketAddr) -> Self {
        Transport { remote, source: None, ttl: None, gtsm_hops: None, md5_password: None, device: None }
    }
}

/// Bind `socket` to the device `name` (`SO_BINDTODEVICE`): in a VRF, it
/// then sees only that VRF's routes and addresses. Needs CAP_NET_RAW.
pub fn bind_device(socket: &Socket, name: &str) -> io::Result<()> {
    socket
        .bind_device(Some(name.as_bytes()))
        .map_err(|e| io::Error::new(e.kind(), format!("binding to device {name:?}: {e}")))
}

/// A socket for an outbound connection with every option applied.
pub fn outbound_socket(t: &Transport) -> io::Result<tokio::net::TcpSocket> {
    let v6 = t.remote.is_ipv6();
    let s = Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    if let Some(dev) = &t.device {
        // Before bind and connect: the source address and route are looked up in the VRF.
        bind_device(&s, dev)?;
    }
    if let Some(src) = t.source {
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::new(src, 0).into())?;
    }
    if let Some(p) = &t.md5_password {
        set_md5(&s, t.remote.ip(), Some(p))?;
    }
    match (t.gtsm_hops, t.ttl) {
        (Some(h), _) => set_gtsm(&s, v6, h)?,
        (None, Some(ttl)) => set_ttl(&s, v6, ttl)?,
        (None, None) => {}
    }
    Ok(tokio::net::TcpSocket::from_std_stream(s.into()))
}

/// Options that apply to an accepted connection (TTL, GTSM; MD5 is set
/// on the listener before the handshake).
pub fn apply_inbound(stream: &tokio::net::TcpStream, t: &Transport) -> io::Result<()> {
    let v6 = t.remote.is_ipv6();
    stream.set_nodelay(true)?;
    match (t.gtsm_hops, t.ttl) {
        (Some(h), _) => set_gtsm(stream, v6, h),
        (None, Some(ttl)) => set_ttl(stream, v6, ttl),
        (None, None) => Ok(()),
    }
}

/// Install the MD5 key for `peer` on a listening socket bound to
/// `listen` (a dual-stack IPv6 listener needs IPv4 peers in mapped form).
pub fn set_listener_md5(
    listener: &tokio::net::TcpListener,
    listen: SocketAddr,
    peer: IpAddr,
    key: Option<&str>,
) -> io::Result<()> {
    let peer = match (listen, peer) {
        (SocketAddr::V6(_), IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
        _ => peer,
    };
    set_md5(listener, peer, key)
}

/// A listening socket (dual-stack when bound to `[::]`), bound to
/// `device` when given (a VRF's listener: without
/// `net.ipv4.tcp_l3mdev_accept=1` a listener outside the VRF does not see
/// connections arriving in it).
///
/// Every listener sets `SO_REUSEPORT`: Linux lets a socket bound to a
/// device share a port with an unbound one only when both set it (the
/// kernel then hands each connection to the listener of its VRF; a
/// reuseport group also needs the same user, so another user's process
/// still cannot bind the port).
pub fn listener(addr: SocketAddr, device: Option<&str>) -> io::Result<tokio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    if let Some(dev) = device {
        bind_device(&s, dev)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    tokio::net::TcpListener::from_std(s.into())
}
