//! The tokio driver: UDP sockets for single-hop BFD (RFC 5881).
//!
//! One [`Mux`] per speaker owns the receive sockets (port 3784, one per
//! address family, created when a session of that family first needs
//! it) and hands each packet to the session of its source address. GTSM
//! (RFC 5881 section 5): packets must arrive with TTL / hop limit 255,
//! read from `IP_RECVTTL` / `IPV6_RECVHOPLIMIT` control messages; others
//! are dropped. Each session sends from its own socket, bound to the
//! local address and a source port in 49152-65535, with TTL 255.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::packet::ControlPacket;
use super::session::{BfdConfig, Session, StateChange};

/// UDP port of single-hop BFD Control packets (RFC 5881).
pub const CONTROL_PORT: u16 = 3784;
/// Source ports a session may use (RFC 5881 section 4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

type Inbox = mpsc::UnboundedSender<ControlPacket>;

/// The receive side shared by the sessions of one speaker.
#[derive(Debug)]
pub struct Mux {
    port: u16,
    sessions: Mutex<HashMap<IpAddr, Inbox>>,
    v4: Mutex<Option<tokio::task::JoinHandle<()>>>,
    v6: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Mux {
    fn drop(&mut self) {
        for t in [&self.v4, &self.v6] {
            if let Some(t) = t.lock().expect("mux lock").take() {
                t.abort();
            }
        }
    }
}

impl Mux {
    /// Receive on `port` (3784; another one for tests).
    pub fn new(port: u16) -> Arc<Mux> {
        Arc::new(Mux { port, sessions: Mutex::new(HashMap::new()), v4: Mutex::new(None), v6: Mutex::new(None) })
    }

    /// Packets from `peer` go to the returned receiver until the guard is dropped.
    fn register(self: &Arc<Self>, peer: IpAddr) -> io::Result<(mpsc::UnboundedReceiver<ControlPacket>, Registration)> {
        let peer = peer.to_canonical();
        let slot = if peer.is_ipv4() { &self.v4 } else { &self.v6 };
        {
            let mut task = slot.lock().expect("mux lock");
            if task.is_none() {
                let sock = rx_socket(peer.is_ipv6(), self.port)?;
                *task = Some(tokio::spawn(rx_loop(sock, Arc::downgrade(self))));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.sessions.lock().expect("mux lock").insert(peer, tx);
        Ok((rx, Registration { mux: Arc::downgrade(self), peer }))
    }
}

struct Registration {
    mux: Weak<Mux>,
    peer: IpAddr,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(m) = self.mux.upgrade() {
            m.sessions.lock().expect("mux lock").remove(&self.peer);
        }
    }
}

fn rx_socket(v6: bool, port: u16) -> io::Result<UdpSocket> {
    let s = Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    let on: libc::c_int = 1;
    let (level, name) =
        if v6 { (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT) } else { (libc::IPPROTO_IP, libc::IP_RECVTTL) };
    // SAFETY: a valid fd and a pointer to an int.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let addr: SocketAddr = if v6 {
        s.set_only_v6(true)?;
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    };
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// `recvmsg` with the TTL / hop limit of the datagram.
fn recv_with_ttl(fd: libc::c_int, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = storage.as_mut_ptr() as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in msg refers to a live buffer of the stated size.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ttl = None;
    // SAFETY: the kernel filled msg_control with msg_controllen octets of cmsgs.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            let is_ttl = (h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL)
                || (h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT);
            if is_ttl {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                ttl = u8::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // SAFETY: the kernel wrote a socket address of msg_namelen octets.
    let from = unsafe { SockAddr::new(storage.assume_init(), msg.msg_namelen) }
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP source address"))?;
    Ok((n as usize, from, ttl))
}

async fn rx_loop(sock: UdpSocket, mux: Weak<Mux>) {
    let mut buf = [0u8; 512];
    loop {
        let r = sock.async_io(Interest::READABLE, || recv_with_ttl(sock.as_raw_fd(), &mut buf)).await;
        let (n, from, ttl) = match r {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "BFD receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(mux) = mux.upgrade() else { return };
        let peer = from.ip().to_canonical();
        if ttl != Some(255) {
            debug!(%peer, ?ttl, "BFD packet dropped: TTL is not 255 (GTSM, RFC 5881)");
            continue;
        }
        let p = match ControlPacket::decode(&buf[..n]) {
            Ok(p) => p,
            Err(e) => {
                debug!(%peer, error = %e, "BFD packet discarded");
                continue;
            }
        };
        let inbox = mux.sessions.lock().expect("mux lock").get(&peer).cloned();
        match inbox {
            Some(tx) => {
                let _ = tx.send(p);
            }
            None => debug!(%peer, "BFD packet from an unknown peer"),
        }
    }
}

/// A socket bound to `local` and a free port in 49152-65535, TTL 255,
/// connected to the peer's port 3784.
fn tx_socket(local: IpAddr, peer: SocketAddr, seed: u64) -> io::Result<UdpSocket> {
    let v6 = peer.is_ipv6();
    let s = Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        s.set_unicast_hops_v6(255)?;
    } else {
        s.set_ttl(255)?;
    }
    s.set_nonblocking(true)?;
    let span = (SOURCE_PORTS.end() - SOURCE_PORTS.start()) as u64 + 1;
    let mut last = None;
    for i in 0..64u64 {
        let port = SOURCE_PORTS.start() + ((seed.wrapping_add(i.wrapping_mul(7919))) % span) as u16;
        match s.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => {
                s.connect(&peer.into())?;
                return UdpSocket::from_std(s.into());
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()))
}

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub peer: IpAddr,
    /// The peer's port (3784; another one for tests).
    pub peer_port: u16,
}

/// Run one session towards `ep.peer` until `local` closes. It starts
/// once `local` holds an address (the BGP session's local address) and
/// restarts in Down when that address changes. `on_change` sees every
/// state change.
pub async fn run(
    cfg: BfdConfig,
    ep: Endpoint,
    mut local: watch::Receiver<Option<IpAddr>>,
    mux: Arc<Mux>,
    seed: u64,
    mut on_change: impl FnMut(StateChange) + Send,
) {
    let peer = ep.peer.to_canonical();
    let mut seed = seed | 1;
    'outer: loop {
        let addr = loop {
            if let Some(a) = *local.borrow_and_update() {
                break a.to_canonical();
            }
            if local.changed().await.is_err() {
                return;
            }
        };
        let sock = match tx_socket(addr, SocketAddr::new(peer, ep.peer_port), seed) {
            Ok(s) => s,
            Err(e) => {
                warn!(%peer, local = %addr, error = %e, "cannot open the BFD socket; retrying in 5 s");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
                    r = local.changed() => if r.is_err() { return } else { continue },
                }
            }
        };
        let (mut inbox, _reg) = match mux.register(peer) {
            Ok(x) => x,
            Err(e) => {
                warn!(%peer, error = %e, "cannot receive BFD on port {}; retrying in 5 s", mux.port);
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
                    r = local.changed() => if r.is_err() { return } else { continue },
                }
            }
        };
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let discr = ((seed >> 32) as u32).max(1);
        let mut s = Session::new(cfg, discr, seed, Instant::now());
        debug!(%peer, local = %addr, discr, "BFD session started");
        let mut out = bytes::BytesMut::new();
        loop {
            // Send what is due, then sleep until the next deadline.
            while let Some(p) = s.poll_transmit(Instant::now()) {
                out.clear();
                p.encode(&mut out);
                if let Err(e) = sock.try_send(&out) {
                    debug!(%peer, error = %e, "BFD send failed");
                }
            }
            let deadline = s.next_deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                p = inbox.recv() => {
                    let Some(p) = p else { return };
                    if let Some(changes) = s.receive(&p, Instant::now()) {
                        changes.into_iter().for_each(&mut on_change);
                    }
                }
                _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                    s.timeout(Instant::now()).into_iter().for_each(&mut on_change);
                }
                r = local.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let new = local.borrow().map(|a| a.to_canonical());
                    if new.is_some() && new != Some(addr) {
                        // The BGP session moved to another local address.
                        if s.state() != super::BfdState::Down {
                            on_change(StateChange { from: s.state(), to: super::BfdState::Down, diag: super::diag::PATH_DOWN });
                        }
                        continue 'outer;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfd::BfdState;
    use std::time::Duration;

    async fn wait_for(ev: &mut mpsc::UnboundedReceiver<StateChange>, to: BfdState) -> StateChange {
        loop {
            let c = ev.recv().await.expect("session running");
            if c.to == to {
                return c;
            }
        }
    }

    /// Two sessions over loopback (127.0.0.1 and 127.0.0.2, receive ports
    /// of their own) come Up; when one stops, the other detects it.
    #[tokio::test]
    async fn loopback_up_and_detect() {
        let (pa, pb) = (23784u16, 23785u16);
        let (ma, mb) = (Mux::new(pa), Mux::new(pb));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let cfg = BfdConfig { min_tx: Duration::from_millis(50), min_rx: Duration::from_millis(50), multiplier: 3 };
        let (la, ra) = watch::channel(Some(a));
        let (lb, rb) = watch::channel(Some(b));
        let (ea, mut eva) = mpsc::unbounded_channel();
        let (eb, mut evb) = mpsc::unbounded_channel();
        let ta = tokio::spawn(run(cfg, Endpoint { peer: b, peer_port: pb }, ra, ma.clone(), 1, move |c| {
            let _ = ea.send(c);
        }));
        let tb = tokio::spawn(run(cfg, Endpoint { peer: a, peer_port: pa }, rb, mb.clone(), 2, move |c| {
            let _ = eb.send(c);
        }));
        tokio::time::timeout(Duration::from_secs(5), async {
            wait_for(&mut eva, BfdState::Up).await;
            wait_for(&mut evb, BfdState::Up).await;
        })
        .await
        .expect("both sessions Up within 5 s");
        // Stop b: a detects it within 3 x 50 ms (plus slack).
        let t = Instant::now();
        tb.abort();
        drop(lb);
        let c = tokio::time::timeout(Duration::from_secs(2), wait_for(&mut eva, BfdState::Down))
            .await
            .expect("a sees b go away");
        assert_eq!(c.diag, crate::bfd::diag::DETECTION_TIME_EXPIRED);
        assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
        drop(la);
        tokio::time::timeout(Duration::from_secs(1), ta)
            .await
            .expect("a ends when its local address sender goes")
            .unwrap();
    }
}
