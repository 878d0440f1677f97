//! tshark in a lab namespace for the benchmarks' timestamps: the command
//! line, waiting until it really captures, and the moment a session came
//! up (the later of the first KEEPALIVE each way).

use std::time::Duration;

use mooring_lab::{poll_every, run, Lab, Node, Proc};

/// The command line of a tshark that prints `fields` (tab-separated, a
/// line per packet, flushed at once) of the packets on `iface` that the
/// kernel filter `filter` keeps.
pub fn tshark_args<'a>(iface: &'a str, filter: &'a str, fields: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["tshark", "-i", iface, "-n", "-l", "-f", filter, "-T", "fields"];
    for f in fields {
        a.extend_from_slice(&["-e", f]);
    }
    a
}

/// Wait until `capture` (a [`tshark_args`] tshark whose filter keeps ICMP
/// and whose first field is the time) prints packets: pings from `ns` to
/// `target` until one shows up.
pub fn wait_capturing(capture: &Proc, ns: &str, target: &str) {
    poll_every("tshark capturing", Duration::from_secs(30), Duration::from_millis(10), || {
        run(&["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", target]);
        let pkt = |l: &str| l.split_whitespace().next().is_some_and(|t| t.parse::<f64>().is_ok());
        capture.output().lines().any(pkt).then_some(())
    });
}

/// tshark on the router's eth0 of a [`Lab::pair`] for the Established
/// moment: the kernel's BPF keeps only segments that start with a BGP OPEN
/// or KEEPALIVE (a KEEPALIVE may share its segment with the OPEN before it
/// or the UPDATEs after it), and ICMP: pings from `spk` tell when the
/// capture really runs, which this waits for.
pub fn start_established_capture(lab: &Lab, spk: &Node) -> Proc {
    let filter = "icmp or (tcp port 179 and tcp[((tcp[12]&0xf0)>>2):4] == 0xffffffff \
                  and (tcp[((tcp[12]&0xf0)>>2)+18] == 1 or tcp[((tcp[12]&0xf0)>>2)+18] == 4))";
    let args = tshark_args("eth0", filter, &["frame.time_epoch", "ip.src", "bgp.type"]);
    let capture = lab.spawn(&lab.router, "tshark", &args);
    wait_capturing(&capture, &spk.ns, &lab.router_v4);
    capture
}

/// When the session between `a` and `b` came up, from a
/// [`start_established_capture`] capture: the later of the first KEEPALIVE
/// each way (tshark prints with a lag of up to a second or so, hence the wait).
pub fn established_at(capture: &Proc, a: &str, b: &str) -> f64 {
    let first = |out: &str, src: &str| {
        out.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let t = it.next()?.parse::<f64>().ok()?;
            let keepalive = it.next()? == src && it.next()?.split(',').any(|t| t == "4");
            keepalive.then_some(t)
        })
    };
    let (x, y) =
        poll_every("the KEEPALIVEs in the capture", Duration::from_secs(15), Duration::from_millis(20), || {
            let out = capture.output();
            first(&out, a).zip(first(&out, b))
        });
    x.max(y)
}
