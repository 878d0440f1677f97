//! Update groups against the oracle of one private Adj-RIB-Out per peer:
//! whatever the members were written, decoded and applied in order, must
//! leave each peer holding what a fresh session of its own would send it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use proptest::prelude::*;

use super::*;
use crate::speaker::export::RouteAttrs;
use crate::speaker::table::Paths;
use crate::wire::{frame_len, AttrValue, Message};

const V4: &[Family] = &[Family::IPV4_UNICAST];
const BOTH: &[Family] = &[Family::IPV4_UNICAST, Family::IPV6_UNICAST];

fn ctx(peer: &str) -> ExportCtx {
    ExportCtx {
        peer: peer.parse().unwrap(),
        next_hop_v6: Some("2001:db8:ffff::11".parse().unwrap()),
        ..ExportCtx::new(64513, false, "198.18.0.11:40000".parse().unwrap())
    }
}

fn tx() -> Negotiated {
    Negotiated { four_octet_as: true, ..Negotiated::default() }
}

fn p(i: u32) -> IpNetwork {
    IpNetwork::new(std::net::Ipv4Addr::from(0xCB00_7100 + i).into(), 32).unwrap()
}

fn p6(i: u32) -> IpNetwork {
    IpNetwork::new(std::net::Ipv6Addr::from(0x2001_0db8_ffff_0000_0000_0000_0000_0000u128 + i as u128).into(), 128)
        .unwrap()
}

fn attrs(med: u32) -> Paths {
    Arc::from([RouteAttrs { med: Some(med), ..RouteAttrs::default() }])
}

fn for_peers(med: u32, to: &[&str]) -> RouteAttrs {
    let to: Vec<IpAddr> = to.iter().map(|a| a.parse().unwrap()).collect();
    RouteAttrs { med: Some(med), to: Some(to.into()), ..RouteAttrs::default() }
}

/// What a peer holds: (prefix, path id) → its attributes as decoded.
type View = BTreeMap<(IpNetwork, Option<u32>), String>;

/// Apply the UPDATEs in `bytes` (encoded with `tx`) to `view`.
fn apply(view: &mut View, tx: &Negotiated, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = frame_len(rest, tx.max_message_len()).unwrap().unwrap();
        let Message::Update(u) = Message::decode(&rest[..len], tx).unwrap() else { panic!("not an UPDATE") };
        rest = &rest[len..];
        let unreach = u.mp_unreach().map(|m| m.withdrawn.prefixes().to_vec()).unwrap_or_default();
        for n in u.withdrawn.iter().chain(&unreach) {
            assert!(view.remove(&(n.prefix, n.path_id)).is_some(), "{n:?} withdrawn but not held");
        }
        let reach = u.mp_reach();
        let plain: Vec<String> = u
            .attrs
            .iter()
            .filter(|a| !matches!(a.value, AttrValue::MpReach(_) | AttrValue::MpUnreach(_)))
            .map(|a| format!("{:?}", a.value))
            .collect();
        let value = format!("{plain:?} via {:?}", reach.map(|m| &m.next_hop));
        for n in u.nlri.iter().chain(reach.map_or(&[][..], |m| m.nlri.prefixes())) {
            view.insert((n.prefix, n.path_id), value.clone());
        }
    }
}

/// The oracle: what a session of its own would have sent this peer.
fn expected(table: &RouteTable, x: &ExportCtx, families: &[Family], tx: &Negotiated) -> View {
    let mut rib = AdjRibOut::new();
    let diff = rib.diff(table, families, x);
    let mut out = BytesMut::new();
    encode(tx, &diff, None, &mut out, &mut Taken::default());
    let mut v = View::new();
    apply(&mut v, tx, &out);
    v
}

/// One peer of the tests: its session's view of what it was sent.
struct TestPeer {
    x: ExportCtx,
    families: &'static [Family],
    tx: Negotiated,
    m: Option<Membership>,
    view: View,
    /// Every octet written to it since it last joined.
    written: Vec<u8>,
}

impl TestPeer {
    fn new(x: ExportCtx, families: &'static [Family], tx: Negotiated) -> TestPeer {
        TestPeer { x, families, tx, m: None, view: View::new(), written: vec![] }
    }

    fn got(&mut self, out: BytesMut) -> BytesMut {
        apply(&mut self.view, &self.tx, &out);
        self.written.extend_from_slice(&out);
        out
    }

    fn join(&mut self, gs: &Groups, t: &RouteTable) -> BytesMut {
        let mut out = BytesMut::new();
        let (m, _) = gs.join(&self.x, self.families, self.tx, t, &mut out);
        self.m = Some(m);
        self.view.clear();
        self.written.clear();
        self.got(out)
    }

    fn sync(&mut self, gs: &Groups, t: &RouteTable) -> BytesMut {
        let mut out = BytesMut::new();
        gs.sync(self.m.as_mut().unwrap(), t, &mut out);
        self.got(out)
    }

    fn refresh(&mut self, gs: &Groups, t: &RouteTable, family: Family) -> BytesMut {
        let mut out = BytesMut::new();
        gs.refresh(self.m.as_mut().unwrap(), family, t, &mut out);
        self.got(out)
    }

    fn leave(&mut self) {
        drop(self.m.take().unwrap());
        self.view.clear();
    }

    fn check(&self, t: &RouteTable) {
        assert_eq!(self.view, expected(t, &self.x, self.families, &self.tx), "peer {}", self.x.peer);
        let (sent, _) = self.m.as_ref().unwrap().counts();
        assert_eq!(sent, self.view.keys().map(|(p, _)| p).collect::<std::collections::BTreeSet<_>>().len());
    }

    fn shares(&self, other: &TestPeer) -> bool {
        self.m.as_ref().unwrap().same_group(other.m.as_ref().unwrap())
    }
}

fn table(n: u32) -> RouteTable {
    let mut t = RouteTable::new();
    for i in 0..n {
        t.insert(p(i), attrs(i % 3));
    }
    t
}

#[test]
fn equal_peers_share_one_group_and_each_change_is_encoded_once() {
    let gs = Groups::new();
    let mut t = table(100);
    let mut a = TestPeer::new(ctx("198.18.42.101"), V4, tx());
    let mut b = TestPeer::new(ctx("198.18.42.102"), V4, tx());
    a.join(&gs, &t);
    b.join(&gs, &t);
    assert!(a.shares(&b), "same export, families and wire format: one group");
    assert_eq!(a.m.as_ref().unwrap().group().members(), 2);
    a.check(&t);
    b.check(&t);
    t.insert(p(5), attrs(7));
    t.remove(&p(6));
    t.insert(p(500), attrs(1));
    let from_a = a.sync(&gs, &t);
    // Encoded once, when `a` synced: queued for `b` already.
    assert!(a.m.as_ref().unwrap().group().members.iter().any(|m| m.queued_len == from_a.len()));
    let from_b = b.sync(&gs, &t);
    assert!(!from_a.is_empty());
    assert_eq!(from_a, from_b, "the same octets for both");
    a.check(&t);
    b.check(&t);
    assert!(a.sync(&gs, &t).is_empty() && b.sync(&gs, &t).is_empty(), "nothing more");
}

#[test]
fn a_peer_whose_capabilities_or_export_differ_gets_a_group_of_its_own() {
    let gs = Groups::new();
    let t = table(20);
    let mut a = TestPeer::new(ctx("198.18.42.101"), V4, tx());
    a.join(&gs, &t);
    let two_octet = Negotiated { four_octet_as: false, ..tx() };
    let add_path = Negotiated { add_path_ipv4: true, ..tx() };
    let others = [
        TestPeer::new(ctx("198.18.42.102"), V4, two_octet),
        TestPeer::new(ExportCtx { add_path: vec![Family::IPV4_UNICAST], ..ctx("198.18.42.103") }, V4, add_path),
        TestPeer::new(ExportCtx { local: "198.18.42.9:179".parse().unwrap(), ..ctx("198.18.42.104") }, V4, tx()),
        TestPeer::new(
            ExportCtx { communities: vec![crate::wire::Community::new(1, 2)], ..ctx("198.18.42.105") },
            V4,
            tx(),
        ),
        TestPeer::new(ExportCtx { ibgp: true, ..ctx("198.18.42.106") }, V4, tx()),
        TestPeer::new(ctx("198.18.42.107"), BOTH, tx()),
    ];
    for mut o in others {
        o.join(&gs, &t);
        assert!(!a.shares(&o), "{} must not share", o.x.peer);
        o.check(&t);
    }
    // Only the local port differs: shared.
    let mut c =
        TestPeer::new(ExportCtx { local: "198.18.0.11:179".parse().unwrap(), ..ctx("198.18.42.108") }, V4, tx());
    c.join(&gs, &t);
    assert!(a.shares(&c));
}

#[test]
fn a_peer_joining_mid_session_is_sent_the_whole_table_and_then_the_changes() {
    let gs = Groups::new();
    let mut t = table(50);
    let mut a = TestPeer::new(ctx("198.18.42.101"), V4, tx());
    a.join(&gs, &t);
    t.insert(p(1), attrs(9));
    t.remove(&p(2));
    // `b` joins before `a` took the change: the group is brought up to
    // date first, `a` gets the change queued, `b` the whole table.
    let mut b = TestPeer::new(ctx("198.18.42.102"), V4, tx());
    b.join(&gs, &t);
    b.check(&t);
    a.sync(&gs, &t);
    a.check(&t);
    t.remove(&p(3));
    assert_eq!(a.sync(&gs, &t), b.sync(&gs, &t));
    a.check(&t);
    b.check(&t);
    // One leaves; the other goes on; the group goes with its last member.
    b.leave();
    t.remove(&p(4));
    a.sync(&gs, &t);
    a.check(&t);
    let weak = Arc::downgrade(&a.m.as_ref().unwrap().group);
    a.leave();
    assert!(weak.upgrade().is_none(), "an empty group is dropped");
    // A new session starts from scratch.
    a.join(&gs, &t);
    a.check(&t);
}

#[test]
fn withdrawals_reach_every_member() {
    let gs = Groups::new();
    let mut t = table(10);
    let mut peers: Vec<TestPeer> =
        (0..4).map(|i| TestPeer::new(ctx(&format!("198.18.42.{}", 101 + i)), V4, tx())).collect();
    for q in &mut peers {
        q.join(&gs, &t);
    }
    for i in 0..10 {
        t.remove(&p(i));
    }
    for q in &mut peers {
        q.sync(&gs, &t);
        assert!(q.view.is_empty(), "{} still holds {:?}", q.x.peer, q.view);
    }
}

#[test]
fn paths_for_some_peers_only_split_the_group_and_it_joins_up_again_without_them() {
    let gs = Groups::new();
    let mut t = table(10);
    let mut a = TestPeer::new(ctx("198.18.42.101"), V4, tx());
    let mut b = TestPeer::new(ctx("198.18.42.102"), V4, tx());
    a.join(&gs, &t);
    b.join(&gs, &t);
    assert!(a.shares(&b));
    // A prefix with a path for `a` first and one for everyone after it.
    t.insert(
        p(100),
        Arc::from([for_peers(1, &["198.18.42.101"]), RouteAttrs { med: Some(2), ..RouteAttrs::default() }]),
    );
    t.insert(p(101), Arc::from([for_peers(3, &["198.18.42.102"])]));
    a.sync(&gs, &t);
    b.sync(&gs, &t);
    assert!(!a.shares(&b), "the table has paths for some peers only");
    a.check(&t);
    b.check(&t);
    assert!(a.view.get(&(p(100), None)).unwrap().contains("Med(1)"));
    assert!(b.view.get(&(p(100), None)).unwrap().contains("Med(2)"));
    assert!(!a.view.contains_key(&(p(101), None)) && b.view.contains_key(&(p(101), None)));
    // A peer connecting now gets a group of its own too.
    let mut c = TestPeer::new(ctx("198.18.42.103"), V4, tx());
    c.join(&gs, &t);
    assert!(!c.shares(&a) && !c.shares(&b));
    c.check(&t);
    // The restricted paths go: the peers join up again, one by one.
    t.insert(p(100), attrs(2));
    t.remove(&p(101));
    a.sync(&gs, &t);
    b.sync(&gs, &t);
    c.sync(&gs, &t);
    assert!(a.shares(&b) && b.shares(&c));
    for q in [&a, &b, &c] {
        q.check(&t);
    }
    t.insert(p(7), attrs(8));
    let (x, y, z) = (a.sync(&gs, &t), b.sync(&gs, &t), c.sync(&gs, &t));
    assert!(x == y && y == z && !x.is_empty());
    // A newcomer joins the shared group.
    let mut d = TestPeer::new(ctx("198.18.42.104"), V4, tx());
    d.join(&gs, &t);
    assert!(d.shares(&a));
    d.check(&t);
}

#[test]
fn a_member_that_does_not_take_its_output_is_detached_with_what_it_was_sent() {
    let gs = Groups::with_max_queued(1);
    let mut t = table(10);
    let mut a = TestPeer::new(ctx("198.18.42.101"), V4, tx());
    let mut b = TestPeer::new(ctx("198.18.42.102"), V4, tx());
    a.join(&gs, &t);
    b.join(&gs, &t);
    for i in 0..3 {
        t.insert(p(i), attrs(10 + i));
        a.sync(&gs, &t);
    }
    // `b` took nothing: detached after the first change was queued for it.
    let queued =
        a.m.as_ref().unwrap().group().members.iter().find(|m| m.id == b.m.as_ref().unwrap().id).map(|m| m.queued_len);
    assert!(queued.is_some_and(|q| q > 0));
    assert!(a.m.as_ref().unwrap().group().members.iter().any(|m| m.detached.is_some()));
    b.sync(&gs, &t);
    b.check(&t);
    a.check(&t);
    // In step again, it is back in the shared group.
    assert!(a.shares(&b));
    t.remove(&p(0));
    assert_eq!(a.sync(&gs, &t), b.sync(&gs, &t));
}

#[test]
fn route_refresh_resends_one_family_to_one_member() {
    let gs = Groups::new();
    let mut t = table(10);
    t.insert(p6(1), attrs(1));
    let mut a = TestPeer::new(ctx("198.18.42.101"), BOTH, tx());
    let mut b = TestPeer::new(ctx("198.18.42.102"), BOTH, tx());
    a.join(&gs, &t);
    b.join(&gs, &t);
    let out = a.refresh(&gs, &t, Family::IPV4_UNICAST);
    let mut v = View::new();
    apply(&mut v, &a.tx, &out);
    assert_eq!(v.len(), 10, "the IPv4 routes again, not the IPv6 one");
    assert!(b.sync(&gs, &t).is_empty(), "nothing for the other member");
    a.check(&t);
}

/// One step of the random test.
#[derive(Debug, Clone)]
enum Step {
    /// Prefix i gets paths (med, for peers: bit j = peer j; 0 = all).
    Set(u32, Vec<(u32, u8)>),
    Remove(u32),
    /// Peer j syncs.
    Sync(usize),
    /// Peer j's session goes down and comes back.
    Restart(usize),
    Refresh(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u32..24, prop::collection::vec((0u32..3, prop_oneof![4 => Just(0u8), 1 => 1u8..16]), 1..3))
            .prop_map(|(i, v)| Step::Set(i, v)),
        2 => (0u32..24).prop_map(Step::Remove),
        4 => (0usize..4).prop_map(Step::Sync),
        1 => (0usize..4).prop_map(Step::Restart),
        1 => (0usize..4).prop_map(Step::Refresh),
    ]
}

const ADDRS: [&str; 4] = ["198.18.42.101", "198.18.42.102", "198.18.42.103", "198.18.42.104"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random changes, syncs, restarts and refreshes of four peers (three
    /// alike, one with ADD-PATH send): after every peer's final sync each
    /// holds what a session of its own would send it.
    #[test]
    fn members_hold_what_a_session_of_their_own_would_send(steps in prop::collection::vec(step(), 1..60)) {
        let gs = Groups::with_max_queued(600);
        let mut t = RouteTable::new();
        let ap = Negotiated { add_path_ipv4: true, ..tx() };
        let mut peers: Vec<TestPeer> = ADDRS.iter().enumerate().map(|(i, a)| {
            if i == 3 {
                TestPeer::new(ExportCtx { add_path: vec![Family::IPV4_UNICAST], ..ctx(a) }, V4, ap)
            } else {
                TestPeer::new(ctx(a), V4, tx())
            }
        }).collect();
        for q in &mut peers {
            q.join(&gs, &t);
        }
        for s in steps {
            match s {
                Step::Set(i, paths) => {
                    let v: Vec<RouteAttrs> = paths.iter().map(|(med, to)| {
                        if *to == 0 {
                            RouteAttrs { med: Some(*med), next_hop: Some(format!("198.18.0.{}", 1 + med).parse().unwrap()), ..RouteAttrs::default() }
                        } else {
                            let to: Vec<&str> = (0..4).filter(|j| to & (1 << j) != 0).map(|j| ADDRS[j]).collect();
                            for_peers(*med, &to)
                        }
                    }).collect();
                    t.insert(p(i), Arc::from(v));
                }
                Step::Remove(i) => t.remove(&p(i)),
                Step::Sync(j) => {
                    peers[j].sync(&gs, &t);
                    peers[j].check(&t);
                }
                Step::Restart(j) => {
                    peers[j].leave();
                    peers[j].join(&gs, &t);
                    peers[j].check(&t);
                }
                Step::Refresh(j) => {
                    peers[j].refresh(&gs, &t, Family::IPV4_UNICAST);
                    peers[j].check(&t);
                }
            }
        }
        for q in &mut peers {
            q.sync(&gs, &t);
            q.check(&t);
        }
        if !t.restricted() {
            prop_assert!(peers[0].shares(&peers[1]) && peers[1].shares(&peers[2]), "alike peers in one group");
        }
        prop_assert!(!peers[3].shares(&peers[0]));
    }
}
