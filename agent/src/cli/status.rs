//! `mooring status`: asks a running node (`standalone` or `speaker`) on its admin address for
//! its sessions and VIPs (`/status`, [`crate::status::Status`]) and prints them as tables or
//! as the JSON it got. Only reads; [`table`] is pure.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::cli::plan::{columns, Output};
use crate::status::Status;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The node's admin address (its --metrics-addr).
    #[arg(long, default_value = "127.0.0.1:9473")]
    pub addr: SocketAddr,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// How long the node may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// GET `/status` from `addr`.
pub async fn fetch(addr: SocketAddr) -> Result<Status> {
    let body = tokio::time::timeout(TIMEOUT, get(addr, "/status"))
        .await
        .with_context(|| format!("{addr} did not answer within {TIMEOUT:?}"))??;
    serde_json::from_slice(&body).with_context(|| format!("{addr}/status did not answer a Mooring status"))
}

async fn get(addr: SocketAddr, path: &str) -> Result<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr} (is a Mooring node serving --metrics-addr {addr}?)"))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path).header(hyper::header::HOST, addr.to_string()).body(Empty::<Bytes>::new())?;
    let resp = send.send_request(req).await.with_context(|| format!("GET {path} from {addr}"))?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{addr}{path}: {status}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(body)
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// Seconds as routers print uptimes: `45s`, `3m12s`, `2h5m`, `3d4h`.
fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// The status as two tables (sessions, VIPs) and each session's last error.
pub fn table(s: &Status) -> String {
    let mut out = format!("local AS {}, router id {}\n\n", s.local_as, s.router_id);
    let mut rows = vec![["PEER", "AS", "STATE", "UP", "SENT", "RCVD", "BFD", "GR", "DRAIN", "CAPABILITIES"]
        .map(String::from)
        .to_vec()];
    for p in &s.peers {
        let rcvd = match p.max_prefixes {
            Some(max) => format!("{}/{max}", p.prefixes_received),
            None => p.prefixes_received.to_string(),
        };
        let state = match &p.held_down {
            Some(why) => format!("{} (held down: {why})", p.state),
            None => p.state.clone(),
        };
        rows.push(vec![
            p.address.clone(),
            p.remote_as.to_string(),
            state,
            or_dash(p.uptime_seconds.map(uptime)),
            p.prefixes_sent.to_string(),
            rcvd,
            or_dash(p.bfd.as_ref()),
            if p.graceful_restart { "yes" } else { "no" }.into(),
            if p.graceful_shutdown { "yes" } else { "no" }.into(),
            if p.capabilities.is_empty() { "-".into() } else { p.capabilities.join(", ") },
        ]);
    }
    out.push_str(&columns(&rows));
    for p in s.peers.iter().filter(|p| p.last_error.is_some()) {
        out.push_str(&format!("  {} last error: {}\n", p.address, or_dash(p.last_error.as_ref())));
    }
    for p in s.peers.iter().filter(|p| p.paths_not_sent > 0) {
        out.push_str(&format!(
            "  {} paths not sent: {} (the peer does not receive ADD-PATH; one path per prefix goes)\n",
            p.address, p.paths_not_sent
        ));
    }
    out.push('\n');
    let mut rows = vec![["VIP", "PEERS", "NEXT HOP", "ATTRIBUTES"].map(String::from).to_vec()];
    for v in &s.vips {
        let mut attrs: Vec<String> = vec![];
        attrs.extend(v.communities.iter().map(|c| format!("community {c}")));
        attrs.extend(v.large_communities.iter().map(|c| format!("large-community {c}")));
        attrs.extend(v.ext_communities.iter().map(|c| format!("ext-community {c}")));
        attrs.extend(v.med.map(|m| format!("med {m}")));
        attrs.extend(v.local_pref.map(|l| format!("local-pref {l}")));
        if v.as_path_prepend > 0 {
            attrs.push(format!("prepend {}", v.as_path_prepend));
        }
        rows.push(vec![
            v.prefix.clone(),
            if v.peers.is_empty() { "(none)".into() } else { v.peers.join(", ") },
            v.next_hop.clone(),
            if attrs.is_empty() { "-".into() } else { attrs.join(", ") },
        ]);
    }
    if s.vips.is_empty() {
        out.push_str("no VIPs announced\n");
    } else {
        out.push_str(&columns(&rows));
    }
    out
}

/// Print the node's status.
pub async fn run(args: StatusArgs) -> Result<()> {
    let s = fetch(args.addr).await?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&s)?),
        Output::Table => print!("{}", table(&s)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{PeerReport, VipReport};

    #[test]
    fn the_table_shows_sessions_errors_and_vips() {
        let s = Status {
            local_as: 64513,
            router_id: "198.18.0.11".into(),
            peers: vec![
                PeerReport {
                    address: "198.18.0.1".into(),
                    remote_as: 64512,
                    state: "Established".into(),
                    uptime_seconds: Some(192),
                    prefixes_sent: 2,
                    max_prefixes: Some(100),
                    capabilities: vec!["ipv4-unicast".into()],
                    bfd: Some("Up".into()),
                    paths_not_sent: 4,
                    ..PeerReport::default()
                },
                PeerReport {
                    address: "198.18.0.2".into(),
                    remote_as: 64514,
                    state: "Active".into(),
                    last_error: Some("connection refused".into()),
                    ..PeerReport::default()
                },
            ],
            vips: vec![VipReport {
                prefix: "203.0.113.10/32".into(),
                peers: vec!["198.18.0.1".into()],
                next_hop: "self".into(),
                communities: vec!["64513:100".into()],
                ..VipReport::default()
            }],
        };
        let t = table(&s);
        assert!(t.contains("198.18.0.1  64512  Established  3m12s  2     0/100  Up"), "{t}");
        assert!(t.contains("198.18.0.2 last error: connection refused"), "{t}");
        assert!(t.contains("198.18.0.1 paths not sent: 4 (the peer does not receive ADD-PATH"), "{t}");
        assert!(!t.contains("198.18.0.2 paths not sent"), "{t}");
        assert!(t.contains("203.0.113.10/32  198.18.0.1  self      community 64513:100"), "{t}");
    }
}
