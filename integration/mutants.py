#!/usr/bin/env python3
"""The suite's teeth: plant known bugs, one at a time, and show the tests
that should catch each one fail.

Each mutant is a list of exact-text edits (a mutant whose text is no longer
in the code fails loudly: the code moved, update the mutant) and the test
command that must fail with it. The edits are made in a scratch copy of
HEAD (`git worktree add --detach`), never in your checkout; one target
directory is shared by all mutants so only the mutated crate is rebuilt.

    integration/mutants.py            # every mutant
    integration/mutants.py NAME...    # some
    integration/mutants.py --list

Exit status 0 when every mutant was caught. The last run's table is in
integration/MUTANTS.md (written by this script).
"""

import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MUTANTS = [
    {
        "name": "never-withdraw",
        "what": "the Adj-RIB-Out never withdraws a prefix that is gone",
        "edits": [
            ("bgp/src/speaker/adj_rib_out.rs",
             "                    diff.withdrawn = gone.copied().collect();",
             "                    diff.withdrawn = Vec::new();\n                    let _ = gone;"),
            ("bgp/src/speaker/adj_rib_out.rs",
             "            if !fresh && self.sent.remove(prefix).is_some() {\n                diff.withdrawn.push(*prefix);",
             "            if !fresh && self.sent.remove(prefix).is_some() {\n                let _ = prefix;"),
        ],
        "test": ["cargo", "test", "-p", "mooring-bgp", "--lib", "adj_rib_out"],
    },
    {
        "name": "ignore-requested-address",
        "what": "the allocator ignores spec.loadBalancerIP and the address annotations",
        "edits": [
            ("agent/src/model/ipam.rs",
             "            let Some(addr) = w.r.wanted(family) else { continue };",
             "            let Some(addr) = None::<IpAddr> else { continue };"),
        ],
        "test": ["cargo", "test", "-p", "mooring-agent", "--lib", "model::ipam"],
    },
    {
        "name": "drop-last-good",
        "what": "an invalid edit drops the object instead of keeping its last good version",
        "edits": [
            ("agent/src/model/last_good.rs",
             "                    if let Some(prev) = kept {",
             "                    if let Some(prev) = kept.filter(|_| false) {"),
        ],
        "test": ["cargo", "test", "-p", "mooring-agent", "--lib", "last_good"],
    },
    {
        "name": "swap-attribute-codes",
        "what": "ORIGIN and AS_PATH swap their attribute type codes",
        "edits": [
            ("bgp/src/wire/attr.rs",
             "    pub const ORIGIN: u8 = 1;\n    pub const AS_PATH: u8 = 2;",
             "    pub const ORIGIN: u8 = 2;\n    pub const AS_PATH: u8 = 1;"),
        ],
        "test": ["cargo", "test", "-p", "mooring-bgp", "--test", "golden"],
    },
    {
        "name": "always-ready",
        "what": "/readyz answers 200 whatever the node's state",
        "edits": [
            ("agent/src/admin.rs",
             "    match m.not_ready() {",
             "    let _ = &m;\n    match None::<String> {"),
        ],
        "test": ["cargo", "test", "-p", "mooring-agent", "--lib", "admin"],
    },
    {
        "name": "corrupt-state-is-fatal",
        "what": "a state file that cannot be read stops the daemon",
        "edits": [
            ("agent/src/node/state.rs",
             "            Err(e) => {\n                let aside = move_aside(&path);\n                error!(\"state file {}: {e:#}; moved aside to {}\", path.display(), aside.display());\n                true",
             "            Err(e) => {\n                panic!(\"state file {}: {e:#}\", path.display());"),
        ],
        "test": ["cargo", "test", "-p", "mooring-agent", "--lib", "node::state"],
    },
    {
        "name": "skip-max-prefix",
        "what": "the receive side never enforces a peer's max-prefix limit",
        "edits": [
            ("bgp/src/speaker/peer.rs",
             ".find(|(_, c)| *c > m.limit)?;",
             ".find(|(_, c)| *c > m.limit && false)?;"),
        ],
        "test": ["cargo", "test", "-p", "mooring-bgp", "--test", "speaker_faults"],
    },
]


def run(cmd, cwd, env=None, quiet=True):
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL if quiet else None,
                          stderr=subprocess.DEVNULL if quiet else None).returncode


def main(argv):
    if "--list" in argv:
        for m in MUTANTS:
            print(f"{m['name']:28} {m['what']}")
        return 0
    chosen = [m for m in MUTANTS if not argv or m["name"] in argv]
    unknown = set(argv) - {m["name"] for m in MUTANTS}
    if unknown:
        print(f"unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    scratch = tempfile.mkdtemp(prefix="mooring-mutants-")
    tree = os.path.join(scratch, "tree")
    subprocess.run(["git", "worktree", "add", "--detach", "-q", tree, "HEAD"], cwd=REPO, check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(REPO, "target", "mutants"), CARGO_INCREMENTAL="0")
    rows = []
    try:
        # The unmutated tree must pass the same tests, or a "caught" means nothing.
        for m in chosen:
            t0 = time.time()
            originals = {}
            try:
                for path, find, replace in m["edits"]:
                    full = os.path.join(tree, path)
                    text = originals.get(path) or open(full).read()
                    originals.setdefault(path, text)
                    current = open(full).read()
                    if current.count(find) != 1:
                        raise SystemExit(f"mutant {m['name']}: the text to change is not (once) in {path}; update it")
                    open(full, "w").write(current.replace(find, replace))
                caught = run(m["test"], tree, env) != 0
            finally:
                for path, text in originals.items():
                    open(os.path.join(tree, path), "w").write(text)
            clean = run(m["test"], tree, env) == 0
            secs = time.time() - t0
            verdict = "caught" if caught and clean else ("NOT CAUGHT" if clean else "TEST FAILS UNMUTATED")
            print(f"{m['name']:28} {verdict:22} {secs:6.0f} s  {' '.join(m['test'])}", flush=True)
            rows.append((m, verdict))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=REPO)
    if not argv:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        with open(os.path.join(REPO, "integration", "MUTANTS.md"), "w") as f:
            f.write("# Planted bugs and the tests that catch them\n\n")
            f.write(f"Written by `integration/mutants.py` at commit {head}, {time.strftime('%Y-%m-%d')}.\n\n")
            f.write("| mutant | the bug | tests | result |\n| --- | --- | --- | --- |\n")
            for m, verdict in rows:
                f.write(f"| `{m['name']}` | {m['what']} | `{' '.join(m['test'])}` | {verdict} |\n")
    return 0 if all(v == "caught" for _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
