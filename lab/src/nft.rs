//! nftables in a lab namespace: dropping traffic (a silent peer, a node
//! off the network) and undoing it. One table, `inet mit`, per namespace.

use crate::cmd::run_ok;
use crate::lab::{Lab, Node};

impl Lab {
    /// Drop packets in namespace `ns` with nftables: `rules` are rule bodies
    /// for the chains `in` (input hook) and `out` (output hook) of table
    /// `inet mit`, e.g. `in ip saddr 198.18.1.1 drop`. Undo with [`Lab::nft_clear`].
    pub fn nft_drop(&self, ns: &str, rules: &[&str]) {
        let mut text = "add table inet mit\n\
                        add chain inet mit in { type filter hook input priority 0; }\n\
                        add chain inet mit out { type filter hook output priority 0; }\n"
            .to_string();
        for r in rules {
            text.push_str(&format!("add rule inet mit {r}\n"));
        }
        let file = self.write(&format!("{ns}.nft"), &text);
        run_ok(&["ip", "netns", "exec", ns, "nft", "-f", file.to_str().unwrap()]);
    }

    /// Remove what [`Lab::nft_drop`] installed in `ns`.
    pub fn nft_clear(&self, ns: &str) {
        run_ok(&["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "mit"]);
    }

    /// Silence everything between `node` and `peer` (an IPv4 address), both ways.
    pub fn silence(&self, node: &Node, peer: &str) {
        self.nft_drop(&node.ns, &[&format!("in ip saddr {peer} drop"), &format!("out ip daddr {peer} drop")]);
    }

    /// Take `node` off the network: everything on its `eth0` dropped, both ways.
    pub fn unplug(&self, node: &Node) {
        self.nft_drop(&node.ns, &["in iifname \"eth0\" drop", "out oifname \"eth0\" drop"]);
    }
}
