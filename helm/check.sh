#!/usr/bin/env bash
# Validates the Helm chart helm/mooring offline (no cluster, no helm binary):
#
#  1. Helm's own engine, through the PyPI package helm-python-sdk (Helm v4's
#     Go SDK behind a C ABI, called with ctypes): `lint --strict`, rendering
#     with several sets of values, and values.schema.json enforcement (bad
#     values must make lint and render fail).
#  2. Every rendered built-in object against the Kubernetes OpenAPI schemas
#     shipped by kubernetes-validate (strict: unknown fields are errors), for
#     Kubernetes 1.31 (the oldest the CRDs' CEL rules support) and 1.33 (what
#     the Rust types are built against); the CRDs themselves too.
#  3. Our custom resources (quick-start objects, the example in NOTES.txt and
#     the YAML in docs/install.md) against the openAPIV3Schema of
#     helm/mooring/crds/mooring.io_crds.yaml with jsonschema (unknown fields
#     rejected, as the apiserver's strict field validation would), plus a
#     few of the CRDs' CEL rules re-implemented in Python.
#  4. Chart-specific assertions: RBAC rules exactly as in the table below,
#     speaker hostNetwork / capabilities (no NET_ADMIN, NET_RAW; NET_BIND_SERVICE
#     only for 0 < listenPort < 1024), non-root, selectors, PDB, ServiceMonitor.
#
# Usage: bash helm/check.sh
# Needs python3 (with venv) and PyPI. It makes a virtualenv in a temp dir;
# MOORING_HELM_VENV=/some/dir reuses (or creates) a venv there instead.
#
# Fallback: when helm-python-sdk cannot be installed or loaded (e.g. no wheel
# for this platform), the Helm CLI (`helm lint --strict`, `helm template`,
# Helm >= 3.13) is used if it is on PATH, and the script says so; NOTES.txt is
# then not checked (`helm template` does not render it). With neither, the
# script prints SKIPPED and exits 0 -- unless CI=true, where any failure to
# install or load is an error.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
chart="$here/mooring"

HELM_PYTHON_SDK_VERSION=0.2.2
KUBERNETES_VALIDATE_VERSION=1.37.0

# CI is on unless CI is unset, empty, false, 0, no or off (any case): the
# project's one rule, mooring_lab::ci() in lab/src/require.rs.
ci=true
case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]' | tr -d '[:space:]')" in "" | false | 0 | no | off) ci=false ;; esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

die_or_skip() {
  if [ "$ci" = true ]; then
    echo "FAIL (CI=true): $*" >&2
    exit 1
  fi
  echo "SKIPPED: $* (set CI=true to make this an error)"
  exit 0
}

venv="${MOORING_HELM_VENV:-$tmp/venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "== helm/check.sh: creating a Python venv in $venv"
  if ! python3 -m venv "$venv" 2>"$tmp/venv.err"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "   python3 -m venv failed; installing python3-venv (apt)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    else
      cat "$tmp/venv.err" >&2
      die_or_skip "python3 -m venv does not work here"
    fi
  fi
fi
py="$venv/bin/python"
pipi() { "$py" -m pip install --disable-pip-version-check --quiet "$@"; }

echo "== installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION, jsonschema, PyYAML (PyPI)"
if ! pipi "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "jsonschema>=4.18" "PyYAML>=6"; then
  die_or_skip "cannot install kubernetes-validate/jsonschema/PyYAML from PyPI"
fi

renderer=sdk
echo "== installing helm-python-sdk $HELM_PYTHON_SDK_VERSION (PyPI, prebuilt wheel with Helm's Go SDK)"
if pipi --only-binary=:all: "helm-python-sdk==$HELM_PYTHON_SDK_VERSION" &&
  "$py" -c 'import helm_python as h; print("   helm-c", h.helm_c_version(), "/ Helm SDK", h.helm_sdk_version())'; then
  :
elif [ "$ci" = true ]; then
  echo "FAIL (CI=true): helm-python-sdk $HELM_PYTHON_SDK_VERSION cannot be installed or loaded" >&2
  exit 1
elif command -v helm >/dev/null; then
  renderer=cli
  echo "WARNING: helm-python-sdk is unavailable; falling back to the helm CLI ($(helm version --short 2>/dev/null || echo '?'))"
else
  die_or_skip "helm-python-sdk cannot be installed or loaded and no helm CLI is on PATH"
fi

rc=0
"$py" - "$chart" "$repo" "$renderer" <<'PY' || rc=$?
"""The checks proper. argv: chart dir, repo dir, renderer (sdk | cli)."""
import atexit
import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

CHART, REPO, RENDERER = sys.argv[1:4]
REL, NS = "mooring", "mooring-system"
K8S_VERSIONS = ["1.31.0", "1.33.0"]
LINT_KUBE_VERSION = "v1.31.0"

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what}" + (f"\n      {detail}" if detail else ""))
    return ok


def section(title):
    print(f"\n== {title}")


# ---------------------------------------------------------------- renderers

class HelmError(Exception):
    pass


class SdkRenderer:
    """helm-python-sdk 0.2.2: helm_python.Chart.load(path).render(values, name=,
    namespace=, is_install=) -> {template path: text}; helm_python.lint(path,
    values, strict=, namespace=, kube_version=) -> {"messages": [{"severity",
    "path", "error"}], "errors": [...]}; Chart.validate_schema(values)."""

    name = "helm-python-sdk"
    renders_notes = True

    def __init__(self):
        import helm_python
        self.h = helm_python
        self.chart = helm_python.Chart.load(CHART)

    def lint(self, values):
        r = self.h.lint(CHART, values, strict=True, namespace=NS, kube_version=LINT_KUBE_VERSION)
        problems = [f"[{m['severity']}] {m['path']}: {m['error'].strip()}"
                    for m in r["messages"] if m["severity"] >= 2]
        problems += [e.strip() for e in r["errors"] if not any(e.strip() in p for p in problems)]
        return problems

    def render(self, values):
        try:
            return self.chart.render(values, name=REL, namespace=NS, is_install=True)
        except self.h.HelmError as e:
            raise HelmError(str(e)) from e

    def crd_files(self):
        return [os.path.basename(c["filename"]) for c in self.chart.crds]


class CliRenderer:
    """Fallback: the helm CLI (`helm lint --strict`, `helm template`)."""

    name = "helm CLI"
    renders_notes = False

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mooring-helm-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.n = 0

    def _values_file(self, values):
        self.n += 1
        path = os.path.join(self.dir, f"values-{self.n}.json")
        with open(path, "w") as f:
            json.dump(values or {}, f)
        return path

    def lint(self, values):
        p = subprocess.run(["helm", "lint", "--strict", "--namespace", NS, "--kube-version",
                            LINT_KUBE_VERSION, "-f", self._values_file(values), CHART],
                           capture_output=True, text=True)
        return [] if p.returncode == 0 else [p.stdout + p.stderr]

    def render(self, values):
        p = subprocess.run(["helm", "template", REL, CHART, "--namespace", NS, "--kube-version",
                            LINT_KUBE_VERSION, "-f", self._values_file(values)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise HelmError(p.stderr)
        out, current = {}, None
        for line in p.stdout.splitlines(keepends=True):
            m = re.match(r"^# Source: (\S+)", line)
            if m:  # each document comes as "---", "# Source: <template path>", the YAML
                current = m.group(1)
                out[current] = out.get(current, "") + "\n---\n"
            elif current:
                out[current] += line
        return out

    def crd_files(self):
        return sorted(os.listdir(os.path.join(CHART, "crds")))


renderer = SdkRenderer() if RENDERER == "sdk" else CliRenderer()

# ------------------------------------------------------------ CRD schemas

with open(os.path.join(CHART, "crds", "mooring.io_crds.yaml")) as f:
    CRDS = [d for d in yaml.safe_load_all(f) if d]


def structural_to_jsonschema(s):
    """An OpenAPI v3 structural schema as a JSON schema: nullable becomes a
    null type, x-kubernetes-* keys go, and an object with properties accepts
    no other field (what the apiserver's strict field validation does)."""
    if not isinstance(s, dict):
        return s
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    out = {}
    for k, v in s.items():
        if k.startswith("x-kubernetes-") or k == "nullable":
            continue
        if k == "properties":
            out[k] = {p: structural_to_jsonschema(ps) for p, ps in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = structural_to_jsonschema(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [structural_to_jsonschema(x) for x in v]
        else:
            out[k] = v
    if int_or_string:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out \
            and not preserve:
        out["additionalProperties"] = False
    return out


CR_SCHEMAS = {}
for crd in CRDS:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for v in crd["spec"]["versions"]:
        s = structural_to_jsonschema(v["schema"]["openAPIV3Schema"])
        s.setdefault("properties", {}).update({
            "apiVersion": {"const": f"{group}/{v['name']}"},
            "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name"],
                         "properties": {"name": {"type": "string", "maxLength": 253,
                                                 "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}}},
        })
        s["additionalProperties"] = False
        s["required"] = sorted(set(s.get("required", [])) | {"apiVersion", "kind", "metadata"})
        jsonschema.Draft202012Validator.check_schema(s)
        CR_SCHEMAS[(f"{group}/{v['name']}", kind)] = s


def ip(s):
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def dur_s(d):
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", d)
    return None if not m or not d else int(m[1] or 0) * 3600 + int(m[2] or 0) * 60 + int(m[3] or 0)


def eip_entry_ok(e):
    if "-" in e:
        a, _, b = e.partition("-")
        a, b = ip(a), ip(b)
        return a is not None and b is not None and a.version == b.version and a <= b
    if "/" in e:
        try:
            ipaddress.ip_network(e, strict=True)
            return True
        except ValueError:
            return False
    return ip(e) is not None


def cel_subset(obj):
    """A few of the CRDs' CEL rules (crds/src/rules.rs), re-implemented."""
    errs, spec, kind = [], obj.get("spec") or {}, obj["kind"]
    if kind == "BgpConf":
        if obj["metadata"]["name"] != "default":
            errs.append("BgpConf must be named default")
        rid = spec.get("routerId")
        if rid is not None and (ip(rid) is None or ip(rid).version != 4 or ip(rid).is_unspecified):
            errs.append(f"routerId {rid!r} is not a non-zero IPv4 address")
    elif kind == "BgpPeer":
        for f in ("peerAddress", "sourceAddress"):
            if f in spec and ip(spec[f]) is None:
                errs.append(f"{f} {spec[f]!r} is not an IP")
        ht = dur_s(spec.get("holdTime", "90s"))
        if ht is None or not (ht == 0 or 3 <= ht <= 65535):
            errs.append("holdTime must be 0s or 3s..65535s")
        if "password" in spec and "passwordSecretRef" in spec:
            errs.append("password and passwordSecretRef together")
    elif kind == "Eip":
        entries = ([spec["address"]] if spec.get("address") else []) + spec.get("addresses", [])
        if not entries:
            errs.append("an Eip needs at least one address")
        errs += [f"bad Eip entry {e!r}" for e in entries if not eip_entry_ok(e)]
    return errs


def validate_cr(obj, where):
    key = (obj.get("apiVersion"), obj.get("kind"))
    schema = CR_SCHEMAS.get(key)
    if not check(schema is not None, f"{where}: {key[1]} has a CRD in the chart"):
        return
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=str)
    check(not errors, f"{where}: {key[1]}/{obj['metadata']['name']} valid against the CRD schema",
          "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]))
    cel = cel_subset(obj)
    check(not cel, f"{where}: {key[1]}/{obj['metadata']['name']} passes the re-implemented CEL rules",
          "; ".join(cel))


# A ServiceMonitor has no schema in kubernetes-validate: the fields we use.
SERVICE_MONITOR_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}}}},
                "selector": {"type": "object", "additionalProperties": False, "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "matchExpressions": {"type": "array"}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["port"],
                    "properties": {
                        "port": {"type": "string"}, "path": {"type": "string"},
                        "scheme": {"enum": ["http", "https"]},
                        "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        "scrapeTimeout": {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        "relabelings": {"type": "array"}, "metricRelabelings": {"type": "array"}}}},
            }},
    },
}


# A PrometheusRule has no schema in kubernetes-validate either: the fields we use.
PROMETHEUS_RULE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {"type": "object", "additionalProperties": False, "required": ["groups"], "properties": {
            "groups": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                "properties": {"name": {"type": "string"}, "interval": {"type": "string"}, "rules": {
                    "type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False, "required": ["alert", "expr"],
                        "properties": {"alert": {"type": "string"}, "expr": {"type": "string"},
                                       "for": {"type": "string"},
                                       "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                       "annotations": {"type": "object",
                                                       "additionalProperties": {"type": "string"}}}}}}}}}},
    },
}


def validate_builtin(obj, where):
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    if obj["kind"] == "PrometheusRule":
        errors = list(jsonschema.Draft202012Validator(PROMETHEUS_RULE_SCHEMA).iter_errors(obj))
        check(not errors, f"{where}: {name} valid against the PrometheusRule fields schema",
              "; ".join(e.message for e in errors[:5]))
        return
    if obj["apiVersion"] == "monitoring.coreos.com/v1":
        errors = list(jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA).iter_errors(obj))
        check(not errors, f"{where}: {name} valid against the ServiceMonitor fields schema",
              "; ".join(e.message for e in errors[:5]))
        return
    for v in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, v, strict=True)
            check(True, f"{where}: {name} valid (Kubernetes {v[:4]} OpenAPI, strict)")
        except kubernetes_validate.ValidationError as e:
            check(False, f"{where}: {name} valid (Kubernetes {v[:4]} OpenAPI, strict)",
                  f"{'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            check(False, f"{where}: {name} has a Kubernetes {v[:4]} schema", e.message)


# --------------------------------------------------------------- RBAC table

# What the binaries do: the code's table of API calls (agent/src/kube/access.rs,
# `mooring rbac`), kept equal to helm/rbac.json by a Rust test.
with open(os.path.join(REPO, "helm", "rbac.json")) as f:
    ACCESS = json.load(f)


def access_table(component, scope):
    t = {}
    for r in ACCESS[component]:
        if r["scope"] in scope:
            t.setdefault((r["apiGroup"], r["resource"]), set()).update(r["verbs"])
    return t


EXPECTED_CLUSTER_RULES = {c: access_table(c, {"cluster"}) for c in ("controller", "speaker")}
EXPECTED_ROLE_RULES = {
    "controller-leader-election": access_table("controller", {"leaseByName", "lease"}),
    "speaker-secrets": access_table("speaker", {"secretsByName"}),
}


def rule_table(rules):
    t = {}
    for r in rules:
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                t.setdefault((g, res), set()).update(r.get("verbs", []))
    return t


# ----------------------------------------------------------- the scenarios

def deep_merge(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


with open(os.path.join(CHART, "values.yaml")) as f:
    DEFAULTS = yaml.safe_load(f)

SCENARIOS = [
    ("defaults", {}),
    ("quickstart+serviceMonitor+listenPort 179", {
        "speaker": {"listenPort": 179, "priorityClassName": "system-node-critical",
                    "secrets": {"namespaces": [NS, "network"]}},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"},
                                       "sessionDownFor": "2m"},
                    "grafanaDashboard": {"enabled": True, "folder": "Network"}},
        "quickstart": {"enabled": True,
                       "bgpConf": {"as": 4200000100, "routerId": "198.18.0.11",
                                   "gracefulRestart": {"enabled": True, "restartTime": 120}},
                       "peers": [{"name": "tor-a", "password": "s3cret",
                                  "spec": {"peerAddress": "192.0.2.1", "peerAs": 4200000001,
                                           "holdTime": "9s", "families": ["ipv4-unicast"],
                                           "nodeSelector": {"matchLabels": {"rack": "a"}},
                                           "communities": ["64512:100", "no-export"]}},
                                 {"name": "spine-v6", "spec": {"peerAddress": "2001:db8::1",
                                                               "peerAs": 65001, "ebgpMultihop": 2}}],
                       "eips": [{"name": "public", "spec": {"address": "203.0.113.0/27",
                                                            "addresses": ["198.51.100.10-198.51.100.20"],
                                                            "priority": 100}},
                                {"name": "v6", "spec": {"address": "2001:db8:200::/120",
                                                        "autoAssign": False}}]},
    }),
    ("listenPort 1790, named secrets, hard anti-affinity", {
        "controller": {"replicas": 3, "podAntiAffinity": "hard"},
        "speaker": {"listenPort": 1790, "secrets": {"resourceNames": ["bgp-edge"]}},
        "quickstart": {"enabled": True, "peers": [{"name": "edge", "password": "x",
                                                   "spec": {"peerAddress": "192.0.2.1", "peerAs": 64512}}]},
    }),
    ("central speakers", {
        "central": {"enabled": True, "replicas": 3, "drainSeconds": 5, "priorityClassName": "system-cluster-critical"},
        "quickstart": {"enabled": True, "peers": [{"name": "edge", "spec": {"peerAddress": "192.0.2.1", "peerAs": 64512,
                                                                             "mode": "Central"}}]},
    }),
    ("switches off", {
        "logJson": False,
        "controller": {"podDisruptionBudget": {"enabled": False}, "podAntiAffinity": "none",
                       "replicas": 1},
        "speaker": {"drainSeconds": 0, "tolerateControlPlane": False},
        "loadBalancerClass": {"name": "example.com/bgp", "classLess": False},
    }),
]

BAD_VALUES = [
    ("controller.replicas: \"two\"", {"controller": {"replicas": "two"}}),
    ("speaker.listenPort: 70000", {"speaker": {"listenPort": 70000}}),
    ("image.pullPolicy: Sometimes", {"image": {"pullPolicy": "Sometimes"}}),
    ("speaker.securityContext.capabilities (NET_ADMIN)",
     {"speaker": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}}),
    ("controller.podAntiAffinity: always", {"controller": {"podAntiAffinity": "always"}}),
    ("quickstart.bgpConf.as: 0", {"quickstart": {"bgpConf": {"as": 0}}}),
    ("unknown top-level key", {"speakr": {"listenPort": 179}}),
    ("loadBalancerClass.name without a prefix", {"loadBalancerClass": {"name": "bgp"}}),
    ("loadBalancerClass.classLess: \"no\"", {"loadBalancerClass": {"classLess": "no"}}),
    ("central.replicas: 0", {"central": {"enabled": True, "replicas": 0}}),
    ("central.unknown key", {"central": {"enabled": True, "routerId": "10.0.0.1"}}),
]

NAMESPACED = {"Deployment", "DaemonSet", "ServiceAccount", "Role", "RoleBinding", "Service",
              "PodDisruptionBudget", "Secret", "ServiceMonitor", "PrometheusRule", "ConfigMap"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "BgpConf", "BgpPeer", "Eip"}


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def containers(obj):
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec.get("containers", [])


def notes_example(notes):
    m = re.search(r"<<'YAML'\n(.*?)\nYAML\n", notes, re.S)
    return [d for d in yaml.safe_load_all(m.group(1)) if d] if m else None


def check_scenario(label, overrides):
    section(f"render: {label}")
    values = deep_merge(DEFAULTS, overrides)
    problems = renderer.lint(overrides)
    check(not problems, f"lint --strict ({renderer.name}, kube {LINT_KUBE_VERSION})", "\n      ".join(problems))
    try:
        rendered = renderer.render(overrides)
    except HelmError as e:
        check(False, "renders", str(e))
        return
    objs = []
    notes = None
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for d in yaml.safe_load_all(text):
            if d:
                objs.append((os.path.basename(path), d))
    check(bool(objs), f"renders {len(objs)} objects")
    by_kind = {}
    for _, o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for _, o in objs]
    check(len(names) == len(set(names)), "no two objects share kind/namespace/name")

    for src, o in objs:
        where = f"{src}"
        if o["apiVersion"].startswith("mooring.io/"):
            validate_cr(o, where)
        else:
            validate_builtin(o, where)
        md = o["metadata"]
        kind = o["kind"]
        if kind in NAMESPACED:
            expect_ns = {NS} | set(values["speaker"]["secrets"]["namespaces"])
            for k, v in (("ServiceMonitor", "serviceMonitor"), ("PrometheusRule", "prometheusRule"),
                         ("ConfigMap", "grafanaDashboard")):
                if kind == k and values["metrics"][v]["namespace"]:
                    expect_ns = {values["metrics"][v]["namespace"]}
            check(md.get("namespace") in expect_ns, f"{where}: {kind}/{md['name']} is namespaced ({md.get('namespace')})")
        else:
            check(kind in CLUSTER_SCOPED and "namespace" not in md,
                  f"{where}: {kind}/{md['name']} is a known cluster-scoped kind with no namespace")
        lbl = md.get("labels", {})
        check(lbl.get("app.kubernetes.io/instance") == REL and lbl.get("app.kubernetes.io/managed-by") == "Helm",
              f"{where}: {kind}/{md['name']} carries the release labels")

    # --- workloads
    def component(o):
        return o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
    deps, dss = by_kind.get("Deployment", []), by_kind.get("DaemonSet", [])
    cen = values["central"]
    centrals = [d for d in deps if component(d) == "central"]
    deps = [d for d in deps if component(d) != "central"]
    if not (check(len(deps) == 1 and component(deps[0]) == "controller", "one controller Deployment")
            and check(len(dss) == 1, "one DaemonSet (speaker)")
            and check(len(centrals) == (1 if cen["enabled"] else 0),
                      f"central speaker Deployment rendered: {cen['enabled']} (central.enabled)")):
        return
    dep, ds = deps[0], dss[0]
    c, s = values["controller"], values["speaker"]
    port = s["listenPort"]
    low = 0 < port < 1024

    check(dep["spec"]["replicas"] == c["replicas"], f"controller replicas = {c['replicas']}")
    ctr = dep["spec"]["template"]["spec"]["containers"][0]
    args = ctr["args"]
    check(args[0] == "controller" and args[args.index("--metrics-addr") + 1] == f"0.0.0.0:{c['metricsPort']}"
          and args[args.index("--lease-name") + 1] == c["leaderElection"]["leaseName"]
          and args[args.index("--lease-namespace") + 1] == NS
          and (("--log-json" in args) == values["logJson"]),
          "controller args: controller --metrics-addr 0.0.0.0:9472 --lease-name --lease-namespace <ns> [--log-json]", str(args))
    psc = dep["spec"]["template"]["spec"]["securityContext"]
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, "controller runs as non-root uid 65532")
    aff = dep["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
    want_aff = {"soft": "preferredDuringSchedulingIgnoredDuringExecution",
                "hard": "requiredDuringSchedulingIgnoredDuringExecution", "none": None}[c["podAntiAffinity"]]
    check(list(aff) == ([want_aff] if want_aff else []), f"controller podAntiAffinity {c['podAntiAffinity']}")

    dspec = ds["spec"]["template"]["spec"]
    check(dspec.get("hostNetwork") is True, "speaker DaemonSet: hostNetwork: true")
    check(dspec.get("dnsPolicy") == "ClusterFirstWithHostNet", "speaker DaemonSet: dnsPolicy ClusterFirstWithHostNet")
    spk = dspec["containers"][0]
    env = {e["name"]: e for e in spk.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "speaker NODE_NAME from the downward API (spec.nodeName)")
    sargs = spk["args"]
    check(sargs[:3] == ["speaker", "--node", "$(NODE_NAME)"]
          and sargs[sargs.index("--metrics-addr") + 1] == f"0.0.0.0:{s['metricsPort']}"
          and sargs[sargs.index("--drain-seconds") + 1] == str(s["drainSeconds"])
          and s["terminationGracePeriodSeconds"] >= s["drainSeconds"] + 10
          and ("--log-json" in sargs) == values["logJson"],
          "speaker args: speaker --node $(NODE_NAME) --metrics-addr 0.0.0.0:9473 [--log-json] --drain-seconds N (grace period covers it)", str(sargs))
    lbc = values["loadBalancerClass"]
    for who, a in (("controller", args), ("speaker", sargs)):
        check("--load-balancer-class" in a and a[a.index("--load-balancer-class") + 1] == lbc["name"]
              and ("--ignore-class-less" in a) == (not lbc["classLess"]),
              f"{who} args: --load-balancer-class {lbc['name']}" + ("" if lbc["classLess"] else " --ignore-class-less"), str(a))
    check(dspec.get("terminationGracePeriodSeconds") == s["terminationGracePeriodSeconds"],
          f"speaker terminationGracePeriodSeconds = {s['terminationGracePeriodSeconds']}")
    check(dspec.get("priorityClassName", "") == s["priorityClassName"],
          f"speaker priorityClassName = {s['priorityClassName']!r}")
    tol_keys = {t.get("key") for t in dspec.get("tolerations", [])}
    check(("node-role.kubernetes.io/control-plane" in tol_keys) == s["tolerateControlPlane"],
          f"speaker tolerates control-plane nodes: {s['tolerateControlPlane']}")
    bgp_ports = [p for p in spk.get("ports", []) if p.get("name") == "bgp"]
    check(bgp_ports == ([{"name": "bgp", "containerPort": port, "protocol": "TCP"}] if port else []),
          f"speaker bgp containerPort {port or 'absent'}")
    dpsc = dspec["securityContext"]
    if low:
        check(dpsc.get("runAsUser") == 0 and dpsc.get("runAsNonRoot") is False,
              f"speaker runs as uid 0 (needed for NET_BIND_SERVICE on port {port})")
    else:
        check(dpsc.get("runAsNonRoot") is True and dpsc.get("runAsUser") == 65532,
              f"speaker runs as non-root uid 65532 (listenPort {port})")

    if centrals:
        cd = centrals[0]
        cspec = cd["spec"]["template"]["spec"]
        check(cd["spec"]["replicas"] == cen["replicas"], f"central replicas = {cen['replicas']}")
        check(cspec.get("hostNetwork") is True and cspec.get("dnsPolicy") == "ClusterFirstWithHostNet",
              "central speaker: hostNetwork, dnsPolicy ClusterFirstWithHostNet")
        check(cspec["serviceAccountName"] == dspec["serviceAccountName"],
              "central speaker runs with the speaker's ServiceAccount (the same RBAC)")
        cct = cspec["containers"][0]
        cenv = {e["name"]: e for e in cct.get("env", [])}
        check(cenv.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP"
              and cenv.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
              "central POD_IP (status.podIP) and POD_NAME from the downward API")
        cargs = cct["args"]
        check(cargs[:6] == ["speaker", "--central", "--node", "$(POD_NAME)", "--router-id", "$(POD_IP)"]
              and cargs[cargs.index("--metrics-addr") + 1] == f"0.0.0.0:{cen['metricsPort']}"
              and cen["metricsPort"] != s["metricsPort"]
              and cargs[cargs.index("--drain-seconds") + 1] == str(cen["drainSeconds"])
              and cen["terminationGracePeriodSeconds"] >= cen["drainSeconds"] + 10
              and ("--log-json" in cargs) == values["logJson"]
              and cargs[cargs.index("--load-balancer-class") + 1] == lbc["name"],
              "central args: speaker --central --node $(POD_NAME) --router-id $(POD_IP) --metrics-addr 0.0.0.0:<central.metricsPort> ...", str(cargs))
        caff = cspec.get("affinity", {})
        if not cen["affinity"]:
            req = caff.get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
            check(len(req) == 1 and req[0]["topologyKey"] == "kubernetes.io/hostname"
                  and selects(req[0]["labelSelector"]["matchLabels"], cd["spec"]["template"]["metadata"]["labels"]),
                  "central replicas: hard anti-affinity by hostname (host ports)")
        check(cspec["securityContext"].get("runAsNonRoot") is True, "central speaker runs as non-root")
        check(selects(cd["spec"]["selector"]["matchLabels"], cd["spec"]["template"]["metadata"]["labels"])
              and not selects(cd["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"])
              and not selects(dep["spec"]["selector"]["matchLabels"], cd["spec"]["template"]["metadata"]["labels"]),
              "central selector matches its pods only (and no other selector matches them)")

    for wl in (dep, ds, *centrals):
        for ct in containers(wl):
            sc = ct.get("securityContext", {})
            caps = sc.get("capabilities", {})
            add = set(caps.get("add", []))
            who = f"{wl['kind']}/{wl['metadata']['name']} container {ct['name']}"
            check(caps.get("drop") == ["ALL"], f"{who}: drops ALL capabilities")
            check(not add & {"NET_ADMIN", "NET_RAW", "SYS_ADMIN", "ALL"}, f"{who}: no NET_ADMIN / NET_RAW / SYS_ADMIN", str(add))
            want = {"NET_BIND_SERVICE"} if (wl is ds and low) else set()
            check(add == want, f"{who}: adds {sorted(want) or 'no capability'} (listenPort {port})", str(sorted(add)))
            check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                  and not sc.get("privileged"), f"{who}: read-only root fs, no privilege escalation, not privileged")
            ports = {p["name"] for p in ct.get("ports", [])}
            probes = [ct.get("livenessProbe", {}), ct.get("readinessProbe", {})]
            check([p.get("httpGet", {}).get("path") for p in probes] == ["/healthz", "/readyz"]
                  and all(p["httpGet"]["port"] in ports for p in probes),
                  f"{who}: liveness /healthz, readiness /readyz on the metrics port")
        check(wl["spec"]["template"]["spec"]["serviceAccountName"] in
              {sa["metadata"]["name"] for sa in by_kind.get("ServiceAccount", [])},
              f"{wl['kind']}: its ServiceAccount is rendered")
        check(selects(wl["spec"]["selector"]["matchLabels"], wl["spec"]["template"]["metadata"]["labels"]),
              f"{wl['kind']}: selector matches its pod template")

    # --- Services, PDB
    pods = {"controller": dep, "speaker": ds}
    svcs = by_kind.get("Service", [])
    check(len(svcs) == 2, "two metrics Services")
    for svc in svcs:
        matched = [k for k, w in pods.items() if selects(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        ok = len(matched) == 1
        if ok:
            ct = pods[matched[0]]["spec"]["template"]["spec"]["containers"][0]
            ok = all(p["targetPort"] in {q["name"] for q in ct["ports"]} for p in svc["spec"]["ports"])
        check(ok, f"Service/{svc['metadata']['name']} selects exactly one component and targets its metrics port")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if c["podDisruptionBudget"]["enabled"]:
        check(len(pdbs) == 1 and pdbs[0]["spec"].get("minAvailable") == 1
              and selects(pdbs[0]["spec"]["selector"]["matchLabels"], dep["spec"]["template"]["metadata"]["labels"])
              and not selects(pdbs[0]["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"]),
              "PodDisruptionBudget minAvailable 1 on the controller pods only")
    else:
        check(not pdbs, "no PodDisruptionBudget when disabled")

    # --- RBAC
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]): r
             for r in by_kind.get("ClusterRole", []) + by_kind.get("Role", [])}
    fn = "mooring"
    for comp, table in EXPECTED_CLUSTER_RULES.items():
        r = roles.get(("ClusterRole", None, f"{fn}-{comp}"))
        got = rule_table(r["rules"]) if r else None
        check(got == table, f"ClusterRole {fn}-{comp}: exactly the expected resources and verbs",
              f"got {sorted((k, sorted(v)) for k, v in (got or {}).items())}")
    secret_ns = s["secrets"]["namespaces"] or [NS]
    pw_peers = [p for p in values["quickstart"]["peers"] if p.get("password")] if values["quickstart"]["enabled"] else []
    if pw_peers and NS not in secret_ns:
        secret_ns = secret_ns + [NS]
    want_names = set(s["secrets"]["resourceNames"]) | {f"{fn}-bgppeer-{p['name']}" for p in pw_peers}
    # No Secret names: no Secret access at all.
    expected_roles = {("Role", NS, f"{fn}-controller-leader-election")} | \
                     ({("Role", n, f"{fn}-speaker-secrets") for n in secret_ns} if want_names else set())
    check(set(k for k in roles if k[0] == "Role") == expected_roles,
          f"Roles: leader election in {NS}, Secret get in {secret_ns}", str(sorted(k for k in roles if k[0] == "Role")))
    for key, r in roles.items():
        if key[0] != "Role":
            continue
        suffix = key[2][len(fn) + 1:]
        check(rule_table(r["rules"]) == EXPECTED_ROLE_RULES.get(suffix),
              f"Role {key[1]}/{key[2]}: exactly the expected resources and verbs")
        if suffix == "speaker-secrets":
            got_names = set().union(*(set(x.get("resourceNames", [])) for x in r["rules"]))
            check(got_names == want_names and all(x.get("resourceNames") for x in r["rules"]),
                  f"Role {key[1]}/{key[2]}: resourceNames exactly {sorted(want_names)}")
        if suffix == "controller-leader-election":
            lease = values["controller"]["leaderElection"]["leaseName"]
            check(all(x.get("resourceNames") == [lease] for x in r["rules"] if set(x["verbs"]) != {"create"}),
                  f"Role {key[1]}/{key[2]}: get/update on Lease {lease} only")
    for r in roles.values():
        check(not any("*" in x.get(f, []) for x in r["rules"] for f in ("apiGroups", "resources", "verbs")),
              f"{r['kind']} {r['metadata']['name']}: no wildcards")
    sas = {(sa["metadata"]["namespace"], sa["metadata"]["name"]) for sa in by_kind.get("ServiceAccount", [])}
    for b in by_kind.get("ClusterRoleBinding", []) + by_kind.get("RoleBinding", []):
        ref = b["roleRef"]
        rk = (ref["kind"], b["metadata"].get("namespace") if ref["kind"] == "Role" else None, ref["name"])
        check(rk in roles and all((x["namespace"], x["name"]) in sas for x in b["subjects"]),
              f"{b['kind']} {b['metadata'].get('namespace', '')}/{b['metadata']['name']}: binds a rendered role to a rendered ServiceAccount")
    check(len(by_kind.get("ClusterRoleBinding", [])) == 2 and len(by_kind.get("RoleBinding", [])) == len(expected_roles),
          "one binding per role")

    # --- ServiceMonitor
    sms = by_kind.get("ServiceMonitor", [])
    if values["metrics"]["serviceMonitor"]["enabled"]:
        ok = len(sms) == 2
        for sm in sms:
            tgt = [x for x in svcs if selects(sm["spec"]["selector"]["matchLabels"], x["metadata"]["labels"])]
            ok = ok and len(tgt) == 1 and sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in tgt[0]["spec"]["ports"]}
            ok = ok and all(sm["metadata"]["labels"].get(k) == v for k, v in values["metrics"]["serviceMonitor"]["labels"].items())
        check(ok, "two ServiceMonitors (monitoring.coreos.com/v1), each selecting one metrics Service by its port name")
    else:
        check(not sms, "no ServiceMonitor (metrics.serviceMonitor.enabled is false)")

    # --- alerts and dashboard: the files as they are, behind their values
    rules = by_kind.get("PrometheusRule", [])
    pr = values["metrics"]["prometheusRule"]
    if pr["enabled"]:
        with open(os.path.join(CHART, "files", "alerts.yaml")) as f:
            want = yaml.safe_load(f.read().replace("for: 60s # sessionDownFor", f"for: {pr['sessionDownFor']}"))
        ok = len(rules) == 1 and rules[0]["spec"] == want
        ok = ok and all(rules[0]["metadata"]["labels"].get(k) == v for k, v in pr["labels"].items())
        down = [r for g in want["groups"] for r in g["rules"] if r["alert"] == "MooringBgpSessionDown"]
        check(ok and down and down[0]["for"] == pr["sessionDownFor"],
              f"one PrometheusRule: files/alerts.yaml with MooringBgpSessionDown for {pr['sessionDownFor']}")
    else:
        check(not rules, "no PrometheusRule (metrics.prometheusRule.enabled is false)")
    cms = by_kind.get("ConfigMap", [])
    gd = values["metrics"]["grafanaDashboard"]
    if gd["enabled"]:
        with open(os.path.join(CHART, "files", "dashboard.json")) as f:
            want = json.load(f)
        ok = len(cms) == 1 and cms[0]["metadata"]["labels"].get("grafana_dashboard") == "1"
        ok = ok and json.loads(cms[0]["data"]["mooring.json"]) == want
        ok = ok and (not gd["folder"] or cms[0]["metadata"].get("annotations", {}).get("grafana_folder") == gd["folder"])
        check(ok, "one dashboard ConfigMap labelled grafana_dashboard: \"1\" holding files/dashboard.json")
    else:
        check(not cms, "no dashboard ConfigMap (metrics.grafanaDashboard.enabled is false)")

    # --- quick-start objects
    crs = [o for _, o in objs if o["apiVersion"].startswith("mooring.io/")]
    q = values["quickstart"]
    if q["enabled"]:
        confs = [o for o in crs if o["kind"] == "BgpConf"]
        check(len(confs) == 1 and confs[0]["spec"].get("listenPort", 0) == port
              and confs[0]["spec"]["as"] == q["bgpConf"]["as"],
              f"quickstart BgpConf: as {q['bgpConf']['as']}, listenPort = speaker.listenPort ({port})")
        check(sorted(o["metadata"]["name"] for o in crs if o["kind"] == "BgpPeer") == sorted(p["name"] for p in q["peers"]),
              "quickstart BgpPeers rendered from values")
        check(sorted(o["metadata"]["name"] for o in crs if o["kind"] == "Eip") == sorted(e["name"] for e in q["eips"]),
              "quickstart Eips rendered from values")
        secrets = {(x["metadata"]["namespace"], x["metadata"]["name"]): x for x in by_kind.get("Secret", [])}
        for peer in (o for o in crs if o["kind"] == "BgpPeer"):
            ref = peer["spec"].get("passwordSecretRef")
            want_pw = any(p["name"] == peer["metadata"]["name"] for p in pw_peers)
            if want_pw:
                sec = secrets.get((ref["namespace"], ref["name"])) if ref else None
                check(sec is not None and ref["key"] in sec["data"] and ref["namespace"] in secret_ns,
                      f"BgpPeer/{peer['metadata']['name']}: password Secret rendered, speaker may get it")
            else:
                check(ref is None, f"BgpPeer/{peer['metadata']['name']}: no password")
    else:
        check(not crs and not by_kind.get("Secret"), "no quick-start objects (quickstart.enabled is false)")

    # --- NOTES.txt
    if renderer.renders_notes:
        check(notes is not None and all(k in notes for k in ("BgpConf", "BgpPeer", "Eip", "kubectl get bgppeers")),
              "NOTES.txt renders and names BgpConf, BgpPeer, Eip, kubectl get bgppeers")
        if not q["enabled"] and notes is not None:
            ex = notes_example(notes)
            if check(ex is not None and [d["kind"] for d in ex] == ["BgpConf", "BgpPeer", "Eip"],
                     "NOTES.txt has a copy-paste BgpConf + BgpPeer + Eip example"):
                for d in ex:
                    validate_cr(d, "NOTES.txt example")
                check(ex[0]["spec"].get("listenPort", 0) == port, "NOTES.txt example BgpConf listenPort = speaker.listenPort")


section("chart metadata")
with open(os.path.join(CHART, "Chart.yaml")) as f:
    meta = yaml.safe_load(f)
check(meta.get("apiVersion") == "v2" and meta.get("name") == "mooring"
      and meta.get("version") == "0.1.0" and str(meta.get("appVersion")) == "0.1.0",
      "Chart.yaml: apiVersion v2, name mooring, version 0.1.0, appVersion 0.1.0")
check(renderer.crd_files() == ["mooring.io_crds.yaml"], f"the chart ships crds/mooring.io_crds.yaml ({renderer.name} sees it)")
check([c["spec"]["names"]["kind"] for c in CRDS] == ["BgpConf", "BgpPeer", "Eip", "BgpAdvertisement"],
      "crds: BgpConf, BgpPeer, Eip, BgpAdvertisement")
for crd in CRDS:
    validate_builtin(crd, "crds/mooring.io_crds.yaml")
with open(os.path.join(CHART, "values.schema.json")) as f:
    vschema = json.load(f)
jsonschema.Draft7Validator.check_schema(vschema)
check(True, "values.schema.json is a valid draft-07 JSON schema")
check(not list(jsonschema.Draft7Validator(vschema).iter_errors(DEFAULTS)), "values.yaml passes values.schema.json")

for label, overrides in SCENARIOS:
    check_scenario(label, overrides)

section("values.schema.json rejects bad values (lint and render must fail)")
for label, bad in BAD_VALUES:
    lint_problems = renderer.lint(bad)
    try:
        renderer.render(bad)
        render_err = None
    except HelmError as e:
        render_err = str(e)
    check(bool(lint_problems) and render_err is not None, f"{label}: lint fails and render fails",
          f"lint: {lint_problems[:1]}, render error: {render_err!r}")

# Central speakers on the speakers' metrics port (both host network): refused.
try:
    renderer.render({"central": {"enabled": True, "metricsPort": 9473}})
    render_err = None
except HelmError as e:
    render_err = e
check(render_err is not None and "central.metricsPort must differ" in str(render_err),
      "central.metricsPort = speaker.metricsPort: render fails and says why", repr(render_err))

# A grace period that does not cover the drain: the template refuses to render.
try:
    renderer.render({"speaker": {"drainSeconds": 60, "terminationGracePeriodSeconds": 30}})
    render_err = None
except HelmError as e:
    render_err = str(e)
check(render_err is not None and "must be at least speaker.drainSeconds + 10" in render_err,
      "speaker.terminationGracePeriodSeconds shorter than the drain: render fails and says why", repr(render_err))

section("docs/install.md examples")
docs = os.path.join(REPO, "docs", "install.md")
if check(os.path.exists(docs), "docs/install.md exists"):
    with open(docs) as f:
        blocks = re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
    found = 0
    for b in blocks:
        for d in yaml.safe_load_all(b):
            if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("mooring.io/"):
                found += 1
                validate_cr(d, "docs/install.md")
    check(found >= 3, f"docs/install.md has a BgpConf, BgpPeer and Eip example ({found} objects)")

print(f"\nrenderer: {renderer.name}; Kubernetes schemas: {', '.join(v[:4] for v in K8S_VERSIONS)} "
      f"(kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else ''})")
if not renderer.renders_notes:
    print("note: NOTES.txt was not checked (the helm CLI fallback renders with `helm template`)")
print(f"helm-check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
exit "$rc"
