//! Update groups: peers that would be sent byte for byte the same UPDATEs
//! share one Adj-RIB-Out, and every change is diffed and encoded once for
//! all of them (FRR's update groups, BIRD's shared export tables). Holds
//! the group key (everything that changes the encoded UPDATEs), the group
//! with its shared [`AdjRibOut`] and the encoded output each member has
//! not taken yet, and the registry of groups. Not here: sockets, logging,
//! status (peer.rs), what a peer is exported (export.rs).
//!
//! A member's session takes its queued output when it next wakes (every
//! member wakes on a change of the route table), so what a member's peer
//! has been sent is always the group's Adj-RIB-Out: a member can leave
//! with a copy of it at any time. That is how the group stays correct
//! when peers would stop being sent the same:
//! - paths meant for some peers only ([`RouteAttrs::to`](super::RouteAttrs)):
//!   while the table has any, the peer's address is part of the key, so
//!   members of a shared group leave it for one of their own on their next
//!   sync; once the table has none, a group of one that is in step with
//!   the table joins (or becomes) the shared group again;
//! - a member that does not take its output (its peer reads slowly) is
//!   detached once more than [`MAX_QUEUED`] octets wait for it: it keeps a
//!   copy of the Adj-RIB-Out as it was before the output it has not been
//!   queued, and goes on alone.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;

use super::adj_rib_out::{AdjRibOut, Diff};
use super::export::ExportCtx;
use super::table::RouteTable;
use crate::wire::{pack_announcements, pack_withdrawals, Family, Negotiated};

/// Octets queued for one member beyond which it is detached.
pub const MAX_QUEUED: usize = 16 << 20;

/// What the encoded UPDATEs of a session depend on: the export (without
/// the local port, and without the peer's address unless the table has
/// paths meant for some peers only), the families and the negotiated
/// wire format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    ctx: ExportCtx,
    families: Vec<Family>,
    tx: Negotiated,
}

const ANY_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl GroupKey {
    /// The key of a session exported with `ctx`; `restricted`: the route
    /// table has paths meant for some peers only.
    pub fn new(ctx: &ExportCtx, families: &[Family], tx: Negotiated, restricted: bool) -> GroupKey {
        let mut ctx = ctx.clone();
        ctx.local.set_port(0);
        if !restricted {
            ctx.peer = ANY_PEER;
        }
        GroupKey { ctx, families: families.to_vec(), tx }
    }

    /// Whether peers of other addresses can be members.
    pub fn is_shared(&self) -> bool {
        self.ctx.peer == ANY_PEER
    }

    fn with_peer(&self, peer: Option<IpAddr>) -> GroupKey {
        let mut k = self.clone();
        k.ctx.peer = peer.unwrap_or(ANY_PEER);
        k
    }
}

/// What a member was handed by one call: how many messages its output
/// gained, and what its log should say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    pub messages: usize,
    /// Families seen without a next hop on the session (not announced).
    pub no_next_hop: Vec<Family>,
    /// Families in which only the first of several paths goes out.
    pub paths_held_back: Vec<Family>,
    /// Announcements that could not be encoded (left out, tried again later).
    pub encode_errors: Vec<String>,
}

impl Taken {
    fn add(&mut self, o: Taken) {
        self.messages += o.messages;
        self.no_next_hop.extend(o.no_next_hop);
        self.paths_held_back.extend(o.paths_held_back);
        self.encode_errors.extend(o.encode_errors);
    }
}

type MemberId = u64;

#[derive(Debug)]
struct Member {
    id: MemberId,
    /// Encoded output not taken yet, shared with the other members.
    queued: Vec<Bytes>,
    queued_len: usize,
    /// What the member is handed with the output.
    notes: Taken,
    /// Set when the member was detached: the Adj-RIB-Out its peer has
    /// once it has written `queued`.
    detached: Option<AdjRibOut>,
}

impl Member {
    fn new(id: MemberId) -> Member {
        Member { id, queued: vec![], queued_len: 0, notes: Taken::default(), detached: None }
    }
}

/// Peers sent the same UPDATEs: one Adj-RIB-Out, each change encoded once.
#[derive(Debug)]
pub struct UpdateGroup {
    key: GroupKey,
    rib: AdjRibOut,
    members: Vec<Member>,
    max_queued: usize,
}

/// Encode `diff` (withdrawals first, then the announcements by attribute
/// set); announcements that cannot be encoded are taken out of `rib`.
fn encode(tx: &Negotiated, diff: &Diff, rib: Option<&mut AdjRibOut>, out: &mut BytesMut, t: &mut Taken) {
    for fam in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let w: Vec<_> = diff.withdrawn.iter().filter(|n| n.family() == fam).copied().collect();
        match pack_withdrawals(tx, &w, out) {
            Ok(n) => t.messages += n,
            Err(e) => t.encode_errors.push(format!("cannot encode withdrawals: {e}")),
        }
    }
    let mut rib = rib;
    for (exported, nlri) in &diff.announced {
        match pack_announcements(tx, &exported.attrs, nlri, exported.mp_next_hop, out) {
            Ok(n) => t.messages += n,
            Err(e) => {
                t.encode_errors.push(format!("cannot encode announcements: {e}"));
                if let Some(r) = rib.as_deref_mut() {
                    r.unsent(nlri);
                }
            }
        }
    }
}

impl UpdateGroup {
    pub fn new(key: GroupKey) -> UpdateGroup {
        UpdateGroup { key, rib: AdjRibOut::new(), members: vec![], max_queued: MAX_QUEUED }
    }

    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Bring the Adj-RIB-Out up to date with `table`, encode the
    /// difference once and queue it for every member.
    pub fn update(&mut self, table: &RouteTable) {
        for m in &mut self.members {
            if m.queued_len > self.max_queued && m.detached.is_none() {
                m.detached = Some(self.rib.clone());
            }
        }
        if self.rib.synced() == Some(table.version()) {
            return;
        }
        let diff = self.rib.diff(table, &self.key.families, &self.key.ctx);
        let mut t = Taken::default();
        let mut out = BytesMut::new();
        encode(&self.key.tx, &diff, Some(&mut self.rib), &mut out, &mut t);
        let out = out.freeze();
        for m in self.members.iter_mut().filter(|m| m.detached.is_none()) {
            if !out.is_empty() {
                m.queued_len += out.len();
                m.queued.push(out.clone());
            }
            m.notes.messages += t.messages;
            m.notes.no_next_hop.extend(&diff.no_next_hop);
            m.notes.paths_held_back.extend(&diff.paths_held_back);
            m.notes.encode_errors.extend(t.encode_errors.iter().cloned());
        }
    }

    /// Everything the Adj-RIB-Out holds (of `family`, or of every family)
    /// encoded into `out`, with the warnings a peer new to it should see.
    fn dump(&self, family: Option<Family>, out: &mut BytesMut) -> Taken {
        let mut t = Taken::default();
        encode(&self.key.tx, &self.rib.dump(family), None, out, &mut t);
        let (no_next_hop, held_back) = self.rib.warned();
        t.no_next_hop = no_next_hop.filter(|f| family.is_none_or(|x| x == *f)).collect();
        t.paths_held_back = held_back.filter(|f| family.is_none_or(|x| x == *f)).collect();
        t
    }

    /// A new member: the group brought up to date, then all of it written
    /// to `out`.
    fn join(&mut self, id: MemberId, table: &RouteTable, out: &mut BytesMut) -> Taken {
        let t = if self.members.is_empty() {
            // No one to queue for (a new group, or one whose last member
            // left just now): all of the table for this one.
            self.rib.clear();
            let diff = self.rib.diff(table, &self.key.families, &self.key.ctx);
            let mut t = Taken { no_next_hop: diff.no_next_hop.clone(), ..Taken::default() };
            t.paths_held_back = diff.paths_held_back.clone();
            encode(&self.key.tx, &diff, Some(&mut self.rib), out, &mut t);
            t
        } else {
            self.update(table);
            self.dump(None, out)
        };
        self.members.push(Member::new(id));
        t
    }

    fn member(&mut self, id: MemberId) -> &mut Member {
        self.members.iter_mut().find(|m| m.id == id).expect("a member of its group")
    }

    /// Move what is queued for member `id` to `out`.
    fn take(&mut self, id: MemberId, out: &mut BytesMut) -> Taken {
        let m = self.member(id);
        for b in m.queued.drain(..) {
            out.extend_from_slice(&b);
        }
        m.queued_len = 0;
        std::mem::take(&mut m.notes)
    }

    fn leave(&mut self, id: MemberId) {
        self.members.retain(|m| m.id != id);
    }

    /// Member `id` leaves (its queued output moved to `out`) for a group
    /// of its own under `key`, holding what its peer was sent.
    fn split(&mut self, id: MemberId, key: GroupKey, out: &mut BytesMut) -> (UpdateGroup, Taken) {
        let t = self.take(id, out);
        let rib = self.member(id).detached.take().unwrap_or_else(|| self.rib.clone());
        self.leave(id);
        let g = UpdateGroup { key, rib, members: vec![Member::new(id)], max_queued: self.max_queued };
        (g, t)
    }
}

fn lock(g: &Mutex<UpdateGroup>) -> std::sync::MutexGuard<'_, UpdateGroup> {
    g.lock().expect("update group lock")
}

/// One session's place in a group; dropping it leaves the group.
#[derive(Debug)]
pub struct Membership {
    group: Arc<Mutex<UpdateGroup>>,
    id: MemberId,
    peer: IpAddr,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Ok(mut g) = self.group.lock() {
            g.leave(self.id);
        }
    }
}

impl Membership {
    /// (prefixes sent, paths not sent) of the member's Adj-RIB-Out.
    pub fn counts(&self) -> (usize, u64) {
        let g = lock(&self.group);
        (g.rib.len(), g.rib.paths_not_sent())
    }

    /// Whether `other` shares this member's Adj-RIB-Out.
    #[cfg(test)]
    pub fn same_group(&self, other: &Membership) -> bool {
        Arc::ptr_eq(&self.group, &other.group)
    }

    #[cfg(test)]
    pub fn group(&self) -> std::sync::MutexGuard<'_, UpdateGroup> {
        lock(&self.group)
    }
}

/// The speaker's shared update groups, by key.
#[derive(Debug, Default)]
pub struct Groups {
    by_key: Mutex<FxHashMap<GroupKey, Weak<Mutex<UpdateGroup>>>>,
    next_id: AtomicU64,
    /// Tests: the queue limit of new groups (0: [`MAX_QUEUED`]).
    max_queued: usize,
}

impl Groups {
    pub fn new() -> Groups {
        Groups::default()
    }

    #[cfg(test)]
    fn with_max_queued(max_queued: usize) -> Groups {
        Groups { max_queued, ..Groups::default() }
    }

    fn new_group(&self, key: GroupKey) -> UpdateGroup {
        let mut g = UpdateGroup::new(key);
        if self.max_queued > 0 {
            g.max_queued = self.max_queued;
        }
        g
    }

    /// The shared group of `key`, made when there is none.
    fn shared(&self, key: GroupKey) -> Arc<Mutex<UpdateGroup>> {
        let mut by_key = self.by_key.lock().expect("groups lock");
        if let Some(g) = by_key.get(&key).and_then(Weak::upgrade) {
            return g;
        }
        by_key.retain(|_, w| w.strong_count() > 0);
        let g = Arc::new(Mutex::new(self.new_group(key.clone())));
        by_key.insert(key, Arc::downgrade(&g));
        g
    }

    /// A session to `peer` is Established, exported with `ctx`: it joins
    /// the group of its key (a group of its own while the table has paths
    /// meant for some peers only) and is written all of it into `out`.
    pub fn join(
        &self,
        ctx: &ExportCtx,
        families: &[Family],
        tx: Negotiated,
        table: &RouteTable,
        out: &mut BytesMut,
    ) -> (Membership, Taken) {
        let key = GroupKey::new(ctx, families, tx, table.restricted());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let group = if key.is_shared() { self.shared(key) } else { Arc::new(Mutex::new(self.new_group(key))) };
        let t = lock(&group).join(id, table, out);
        (Membership { group, id, peer: ctx.peer }, t)
    }

    /// Bring member `m` up to date with `table` into `out`: first moving
    /// it to a group of its own or back into the shared one when that is
    /// due (see the module's comment).
    pub fn sync(&self, m: &mut Membership, table: &RouteTable, out: &mut BytesMut) -> Taken {
        let mut t = Taken::default();
        let restricted = table.restricted();
        {
            let mut g = lock(&m.group);
            let detached = g.member(m.id).detached.is_some();
            if detached || (g.key.is_shared() && restricted) {
                let key = g.key.with_peer(Some(m.peer));
                let (solo, taken) = g.split(m.id, key, out);
                t.add(taken);
                drop(g);
                m.group = Arc::new(Mutex::new(solo));
            }
        }
        let mut g = lock(&m.group);
        g.update(table);
        t.add(g.take(m.id, out));
        let back = !g.key.is_shared() && !restricted && g.members() == 1 && g.rib.synced() == Some(table.version());
        if back {
            // In step with the table, which has no path for some peers only:
            // what this peer was sent is what the shared group sent.
            let key = g.key.with_peer(None);
            let mut by_key = self.by_key.lock().expect("groups lock");
            match by_key.get(&key).and_then(Weak::upgrade) {
                Some(shared) => {
                    drop(by_key);
                    let mut s = lock(&shared);
                    s.update(table);
                    if s.rib.synced() == Some(table.version()) {
                        s.members.push(Member::new(m.id));
                        drop((s, g));
                        m.group = shared;
                    }
                }
                None => {
                    g.key = key.clone();
                    by_key.insert(key, Arc::downgrade(&m.group));
                }
            }
        }
        t
    }

    /// The peer of member `m` asked for `family` again: its queued output,
    /// then every route of the family the group holds.
    pub fn refresh(&self, m: &mut Membership, family: Family, table: &RouteTable, out: &mut BytesMut) -> Taken {
        let mut t = self.sync(m, table, out);
        t.add(lock(&m.group).dump(Some(family), out));
        t
    }
}

#[cfg(test)]
#[path = "update_group_tests.rs"]
mod tests;
