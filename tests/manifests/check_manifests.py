#!/usr/bin/env python3
"""Offline checks of pullgate's deployment manifests (README: "Decision rules" and "Deploying to a cluster").

Renders manifests/base, both overlays, the metrics-networkpolicy component on top of the
cert-manager overlay, and the README's warn and enforce steps (the components of
manifests/components) with kustomize, validates every rendered object
and every example against the Kubernetes schemas (kubernetes-validate) and the pullgate
CRDs (jsonschema), then checks the operational promises by reading the rendered objects:
the mode of each install step (audit by default: nothing denied, webhooks fail open),
webhook rules, failure policy, timeouts, namespace exclusions, Service and probe ports
against the server's flags, replicas, disruption budget, security context, RBAC, and the
certificate wiring of each overlay, and what the optional NetworkPolicy admits.

    python3 tests/manifests/check_manifests.py [-v] [--k8s-version 1.33]

Exit status: 0 when every check passes, 1 when any fails, 2 when the checks cannot run
(no kustomize, missing Python package). The last line is "N passed, N failed", followed
by ", N skipped" when a check could not apply (a placeholder CRD schema, no built binary).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

try:
    import yaml
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError
except ImportError as err:  # pragma: no cover - environment problem, reported plainly
    print(f"ERROR: missing Python package ({err.name}); run tests/manifests/run.sh, or "
          "pip install -r tests/manifests/requirements.txt")
    print("0 passed, 1 failed")
    sys.exit(2)

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
BASE = MANIFESTS / "base"
OVERLAYS = MANIFESTS / "overlays"
EXAMPLES = MANIFESTS / "examples"
README = MANIFESTS.parent / "README.md"

# The Kubernetes minor version whose schemas the objects are validated against; it is the
# API version the binary is built for (k8s-openapi feature v1_33).
DEFAULT_K8S_VERSION = "1.33"

NAMESPACE = "pullgate-system"
# The optional component that restricts the metrics/probe port (manifests/README.md).
NETPOL_COMPONENT = "metrics-networkpolicy"
# The optional component of pulls without Secrets (README, "Pulls without Secrets"), and the kubelet's config in it.
PROVIDER_COMPONENT = "credential-provider"
PROVIDER_CONFIG = OVERLAYS / PROVIDER_COMPONENT / "credential-provider-config.yaml"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
EXCLUDED_NAMESPACES = {"kube-system", NAMESPACE}
# The install steps of the README (README, "Install"): the global mode each renders, and whether the
# pod webhooks fail closed. Every other rendering is the default install: audit, open.
COMPONENTS = MANIFESTS / "components"
STEP_MODES = {"warn-mode": ("warn", "Ignore"), "enforce-mode": ("enforce", "Fail")}
DEFAULT_STEP = ("audit", "Ignore")
# The webhook of an admin's changes (README, "Background audit and reports"): pullgate's own kinds, never fail closed.
CHANGES_WEBHOOK = "changes.pullgate.io"
CHANGES_RESOURCES = {"registries", "registryspaces", "workspaces"}
# cert-manager renews pullgate's certificate: the cert-manager overlay exempts it.
CERT_MANAGER_NAMESPACE = "cert-manager"
TLS_SECRET = "pullgate-tls"
IMAGE_PLACEHOLDER = "pullgate"

CRDS = {  # plural -> (kind, short name)
    "registries": ("Registry", "preg"),
    "registryspaces": ("RegistrySpace", "rspace"),
    "workspaces": ("Workspace", "ws"),
}

# What the validating webhook must intercept (README, "Decision rules"): (group, version, resource).
VALIDATED = [
    ("", "v1", "pods"),
    ("", "v1", "pods/ephemeralcontainers"),
    ("", "v1", "replicationcontrollers"),
    ("", "v1", "podtemplates"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "replicasets"),
    ("batch", "v1", "jobs"),
    ("batch", "v1", "cronjobs"),
]

# Least privilege: exactly the API calls cluster mode makes, as documented (one row per
# use, with why) in manifests/rbac-cluster-mode.md; nothing more may be granted.
RBAC_DOC = REPO / "manifests" / "rbac-cluster-mode.md"


def documented_grants() -> tuple[dict, dict]:
    """(ClusterRole grants, Role grants) from the tables of rbac-cluster-mode.md."""
    grants: tuple[dict, dict] = ({}, {})
    section = None
    for line in RBAC_DOC.read_text().splitlines():
        if line.startswith("## "):
            section = 0 if "ClusterRole" in line else 1 if "Role" in line else None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if section is None or len(cells) < 3 or not cells[0].startswith("`"):
            continue
        group = re.findall(r"`([^`]*)`", cells[0])[0].strip('"')
        for resource in re.findall(r"`([^`]*)`", cells[1]):
            verbs = set(re.findall(r"`([^`]*)`", cells[2]))
            grants[section].setdefault((group, resource), set()).update(verbs)
    return grants


CLUSTER_GRANTS, NAMESPACED_GRANTS = documented_grants()

# Kinds that are cluster-scoped (everything else in these manifests is namespaced).
CLUSTER_SCOPED = {
    ("", "Namespace"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("cert-manager.io", "ClusterIssuer"),
    ("pullgate.io", "Registry"),
    ("pullgate.io", "RegistrySpace"),
    ("pullgate.io", "Workspace"),
}

# Objects every rendering must hold exactly once: (group, kind, name).
EXPECTED_OBJECTS = [
    ("", "Namespace", NAMESPACE),
    ("", "ServiceAccount", "pullgate"),
    ("rbac.authorization.k8s.io", "ClusterRole", "pullgate"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "pullgate"),
    ("rbac.authorization.k8s.io", "Role", None),
    ("rbac.authorization.k8s.io", "RoleBinding", None),
    ("apps", "Deployment", "pullgate"),
    ("policy", "PodDisruptionBudget", None),
    ("", "Service", "pullgate"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "pullgate"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "pullgate"),
] + [("apiextensions.k8s.io", "CustomResourceDefinition", f"{p}.pullgate.io") for p in CRDS]

# The API (README, "The API"): the spec fields of each kind, and the enumerations.
SPEC_FIELDS = {
    "Registry": {"type", "url", "aliases", "credentialsSecretRef", "caBundle",
                 "insecureSkipTLSVerify"},
    "RegistrySpace": {"registry", "space", "visibility", "workspaces", "pullSecretRef"},
    "Workspace": {"namespaces", "namespaceSelector", "enforcement"},
}

CERT_MANAGER_KINDS = {"Issuer", "ClusterIssuer", "Certificate"}


# --------------------------------------------------------------------------------------
# Bookkeeping


class Report:
    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.passed = 0
        self.failures: list[str] = []
        self.skipped: list[tuple[str, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"ok    {name}")
        else:
            self.failures.append(f"{name}: {detail}" if detail else name)
            print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
        return ok

    def skip(self, name: str, why: str) -> None:
        self.skipped.append((name, why))
        if self.verbose:
            print(f"skip  {name}: {why}")

    def summary(self) -> str:
        line = f"{self.passed} passed, {len(self.failures)} failed"
        if self.skipped:
            line += f", {len(self.skipped)} skipped"
        return line


def group_of(obj: dict) -> str:
    api = obj.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def ident(obj: dict) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{md.get('name')}"


def find(objs, kind, name=None, group=None, namespace=None):
    out = []
    for o in objs:
        md = o.get("metadata") or {}
        if o.get("kind") != kind:
            continue
        if group is not None and group_of(o) != group:
            continue
        if name is not None and md.get("name") != name:
            continue
        if namespace is not None and md.get("namespace") != namespace:
            continue
        out.append(o)
    return out


def one(objs, kind, name=None, group=None, namespace=None):
    found = find(objs, kind, name, group, namespace)
    return found[0] if len(found) == 1 else None


def dig(obj, *path, default=None):
    cur = obj
    for p in path:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur):
            cur = cur[p]
        else:
            return default
    return cur


def load_yaml_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


# --------------------------------------------------------------------------------------
# Rendering


def kustomize_command() -> list[str]:
    """A kustomize that understands these kustomizations (v4 or newer), or SystemExit."""
    tried = []
    explicit = os.environ.get("KUSTOMIZE")
    candidates = [explicit] if explicit else ["kustomize", "kubectl"]
    for cand in candidates:
        exe = shutil.which(cand)
        if not exe:
            tried.append(f"{cand}: not found")
            continue
        is_kubectl = Path(exe).name.startswith("kubectl")
        try:
            if is_kubectl:
                out = subprocess.run([exe, "version", "--client", "-o", "json"],
                                     capture_output=True, text=True, timeout=60).stdout
                version = json.loads(out or "{}").get("kustomizeVersion", "")
            else:
                version = subprocess.run([exe, "version"], capture_output=True, text=True,
                                         timeout=60).stdout
        except (OSError, subprocess.SubprocessError, ValueError) as err:
            tried.append(f"{exe}: {err}")
            continue
        m = re.search(r"v(\d+)\.(\d+)", version)
        if not m or int(m.group(1)) < 4:
            tried.append(f"{exe}: kustomize {version.strip() or 'unknown'} is older than v4")
            continue
        return [exe, "kustomize"] if is_kubectl else [exe, "build"]
    raise SystemExit(
        "ERROR: no usable kustomize. Tried: " + "; ".join(tried) + ".\n"
        "Install one of:\n"
        "  - kubectl 1.21 or newer (it embeds kustomize v4+), e.g. the 'kubectl' package from\n"
        "    the Kubernetes or Google Cloud apt repository. Debian's own 'kubernetes-client'\n"
        "    package is kubectl 1.20 with kustomize v2, too old for these kustomizations;\n"
        "  - a standalone kustomize v4+ binary on PATH.\n"
        "Or point KUSTOMIZE at one (KUSTOMIZE=/path/to/kustomize).\n"
        "(PyPI's 'kustomize' package is an unrelated Python library; npm's 'kubectl' is empty.)")


def render(cmd: list[str], directory: Path) -> tuple[list[dict] | None, str]:
    proc = subprocess.run(cmd + [str(directory)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None, (proc.stderr or proc.stdout).strip()[-2000:]
    try:
        return load_yaml_docs(proc.stdout), ""
    except yaml.YAMLError as err:
        return None, f"output is not YAML: {err}"


def write_dummy_certs(directory: Path) -> str:
    """Throwaway ca.crt, tls.crt, tls.key (and ca.key) for rendering the overlay."""
    openssl = shutil.which("openssl")
    if openssl:
        try:
            run = lambda *a: subprocess.run([openssl, *a], cwd=directory, check=True,  # noqa: E731
                                            capture_output=True, timeout=60)
            run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
                "-subj", "/CN=pullgate-check-ca")
            run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
                "-subj", "/CN=pullgate.pullgate-system.svc")
            (directory / "san.ext").write_text(
                "subjectAltName=DNS:pullgate.pullgate-system.svc,"
                "DNS:pullgate.pullgate-system.svc.cluster.local\n")
            run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "tls.crt")
            for leftover in ("tls.csr", "san.ext", "ca.srl"):
                (directory / leftover).unlink(missing_ok=True)
            return "openssl"
        except (OSError, subprocess.SubprocessError):
            pass
    # kustomize does not parse PEM: placeholder text is enough to render.
    body = base64.b64encode(b"pullgate manifest check placeholder, not a certificate").decode()
    cert = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    (directory / "ca.crt").write_text(cert)
    (directory / "tls.crt").write_text(cert)
    key = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    (directory / "tls.key").write_text(key)
    (directory / "ca.key").write_text(key)
    return "placeholder PEM"


def readme_sed_line() -> str | None:
    """The documented one-line command that fills CA_BUNDLE, from the top-level README.md."""
    if not README.exists():
        return None
    for line in README.read_text().splitlines():
        line = line.strip()
        if line.startswith("sed ") and "CA_BUNDLE" in line and "cabundle-" in line:
            return line
    return None


def readme_block(marker: str) -> str | None:
    """The fenced block that follows an HTML comment `<!-- check:MARKER -->` in the README."""
    if not README.exists():
        return None
    text = README.read_text()
    m = re.search(r"<!--\s*check:" + re.escape(marker) + r"\s*-->\s*```[a-z]*\n(.*?)```",
                  text, re.S)
    return m.group(1) if m else None


# --------------------------------------------------------------------------------------
# Schema validation


def closed_jsonschema(schema, top=False, in_combinator=False):
    """An OpenAPI v3 (structural) CRD schema as a draft-4 JSON Schema.

    nullable and x-kubernetes-int-or-string become type unions; objects that list their
    properties reject unknown fields (the API server prunes them, and kubectl's default
    --validate=strict rejects them), unless x-kubernetes-preserve-unknown-fields says
    otherwise. Formats and CEL rules (x-kubernetes-validations) are not evaluated.
    """
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, val in schema.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: closed_jsonschema(v) for k, v in val.items()}
        elif key in ("items", "additionalProperties") and isinstance(val, dict):
            out[key] = closed_jsonschema(val)
        elif key == "not":
            out[key] = closed_jsonschema(val, in_combinator=True)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [closed_jsonschema(v, in_combinator=True) for v in val]
        elif key.startswith("x-kubernetes-") or key in (
                "nullable", "format", "default", "example", "externalDocs", "description",
                "title"):
            continue
        else:
            out[key] = val
    if (out.get("type") == "object" and "properties" in out and not in_combinator
            and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if top and "properties" in out:
        for implicit in ("apiVersion", "kind"):
            out["properties"].setdefault(implicit, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    if schema.get("x-kubernetes-int-or-string"):
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{
            k: v for k, v in out.items() if k != "type"}}
    if schema.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def crd_version_schema(crds: list[dict], group: str, kind: str, version: str):
    """(crd, openAPIV3Schema) for group/kind/version, or (None, None)."""
    for crd in crds:
        spec = crd.get("spec") or {}
        if spec.get("group") != group or dig(spec, "names", "kind") != kind:
            continue
        for v in spec.get("versions") or []:
            if v.get("name") == version and v.get("served"):
                return crd, dig(v, "schema", "openAPIV3Schema")
        return crd, None
    return None, None


def is_placeholder_schema(schema) -> bool:
    return (isinstance(schema, dict) and not schema.get("properties")
            and bool(schema.get("x-kubernetes-preserve-unknown-fields")))


def validate_object(rep: Report, where: str, obj: dict, crds: list[dict], k8s: str) -> None:
    name = f"schema {where} {ident(obj)}"
    group = group_of(obj)
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        rep.check(name, False, "no metadata.name")
        return
    if group == "pullgate.io":
        version = obj["apiVersion"].split("/", 1)[1]
        crd, schema = crd_version_schema(crds, group, obj.get("kind"), version)
        if crd is None or schema is None:
            rep.check(name, False, f"no served CRD version for {obj.get('apiVersion')} "
                                   f"{obj.get('kind')} in the rendered CRDs")
            return
        rep.check(f"{name} scope", dig(crd, "spec", "scope") != "Cluster"
                  or "namespace" not in obj["metadata"], "cluster-scoped kind has a namespace")
        if not isinstance(obj.get("spec"), dict):
            rep.check(name, False, "no spec")
            return
        if is_placeholder_schema(schema):
            rep.skip(name, "CRD schema is the preserve-unknown-fields placeholder")
            return
        validator = jsonschema.Draft4Validator(closed_jsonschema(schema, top=True))
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        rep.check(name, not errors, "; ".join(
            f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:5]))
        return
    if group == "cert-manager.io":
        # Not in the Kubernetes schemas: check the shape cert-manager needs.
        problems = []
        if obj.get("apiVersion") != "cert-manager.io/v1":
            problems.append(f"apiVersion {obj.get('apiVersion')} (want cert-manager.io/v1)")
        if obj.get("kind") not in CERT_MANAGER_KINDS:
            problems.append(f"unexpected kind {obj.get('kind')}")
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            problems.append("no spec")
        elif obj.get("kind") == "Certificate":
            if not spec.get("secretName"):
                problems.append("no spec.secretName")
            if not dig(spec, "issuerRef", "name"):
                problems.append("no spec.issuerRef.name")
        elif obj.get("kind") in ("Issuer", "ClusterIssuer"):
            types = [t for t in ("selfSigned", "ca", "acme", "vault", "venafi") if t in spec]
            if len(types) != 1:
                problems.append(f"needs exactly one issuer type, has {types or 'none'}")
        rep.check(name, not problems, "; ".join(problems))
        return
    try:
        kubernetes_validate.validate(obj, k8s, strict=True)
        rep.check(name, True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        rep.check(name, False, f"{path}: {err.message}")
    except SchemaNotFoundError as err:
        rep.check(name, False, err.message)


# --------------------------------------------------------------------------------------
# Helpers for the promises


def selector_matches(selector, labels: dict) -> bool:
    """metav1.LabelSelector semantics; a missing or empty selector matches everything."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def rule_covers(rules, group, version, resource, operation, scope="Namespaced") -> bool:
    def matches(pattern: str) -> bool:
        if pattern == resource or pattern == "*/*":
            return True
        main, _, sub = resource.partition("/")
        p_main, _, p_sub = pattern.partition("/")
        if not sub:
            return pattern == "*"
        return (p_main in (main, "*")) and (p_sub in (sub, "*")) and bool(p_sub)

    for rule in rules or []:
        if not ({group, "*"} & set(rule.get("apiGroups") or [])):
            continue
        if not ({version, "*"} & set(rule.get("apiVersions") or [])):
            continue
        if not ({operation, "*"} & set(rule.get("operations") or [])):
            continue
        if rule.get("scope", "*") not in ("*", scope):
            continue
        if any(matches(p) for p in rule.get("resources") or []):
            return True
    return False


def parse_flags(args: list[str]) -> dict[str, str]:
    flags, i = {}, 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a[2:].split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                k, v = a[2:], args[i + 1]
                i += 1
            else:
                k, v = a[2:], "true"
            flags[k] = v
        i += 1
    return flags


def port_of(addr: str | None) -> int | None:
    if not addr or ":" not in addr:
        return None
    try:
        return int(addr.rsplit(":", 1)[1])
    except ValueError:
        return None


def container_port(container: dict, ref) -> int | None:
    """The container port number that a Service targetPort or probe port refers to."""
    if isinstance(ref, int):
        return ref if any(p.get("containerPort") == ref for p in container.get("ports") or []) \
            else None
    if isinstance(ref, str) and ref.isdigit():
        return container_port(container, int(ref))
    for p in container.get("ports") or []:
        if p.get("name") == ref:
            return p.get("containerPort")
    return None


def quantity(q) -> float | None:
    """A Kubernetes resource quantity as a number (bytes, or cores)."""
    if q is None:
        return None
    s = str(q)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6,
             "G": 1e9, "T": 1e12, "m": 1e-3}
    for suffix, mult in units.items():
        if s.endswith(suffix):
            try:
                return float(s[: -len(suffix)]) * mult
            except ValueError:
                return None
    try:
        return float(s)
    except ValueError:
        return None


def pullgate_container(deploy: dict) -> dict | None:
    containers = dig(deploy, "spec", "template", "spec", "containers", default=[]) or []
    for c in containers:
        if (c.get("args") or [None])[0] == "serve" or c.get("name") == "pullgate":
            return c
    return containers[0] if containers else None


def effective(container: dict, pod: dict, field: str):
    c = (container.get("securityContext") or {}).get(field)
    return c if c is not None else (pod.get("securityContext") or {}).get(field)


def grants(role: dict) -> tuple[dict, list[str]]:
    """{(group, resource): verbs} of a Role/ClusterRole, and any wildcard or odd rule."""
    out, odd = {}, []
    for rule in role.get("rules") or []:
        groups, resources, verbs = (rule.get("apiGroups") or [], rule.get("resources") or [],
                                    rule.get("verbs") or [])
        if "*" in groups + resources + verbs:
            odd.append(f"wildcard in {rule}")
        if rule.get("nonResourceURLs"):
            odd.append(f"nonResourceURLs {rule['nonResourceURLs']}")
        for verb in ("bind", "escalate", "impersonate"):
            if verb in verbs:
                odd.append(f"verb {verb}")
        for g in groups:
            for r in resources:
                out.setdefault((g, r), set()).update(verbs)
    return out, odd


# --------------------------------------------------------------------------------------
# The promises, per rendering


def check_rendering(rep: Report, where: str, objs: list[dict], base_kustomization: dict,
                    step: tuple[str, str] = DEFAULT_STEP):
    c = lambda name, ok, detail="": rep.check(f"{where}: {name}", ok, detail)  # noqa: E731
    mode, failure_policy = step

    # Every expected object, exactly once.
    for group, kind, name in EXPECTED_OBJECTS:
        n = len(find(objs, kind, name, group))
        c(f"has one {kind}{'/' + name if name else ''}", n == 1, f"found {n}")

    # Namespaces: pullgate-system where namespaced, none where cluster-scoped.
    wrong = []
    for o in objs:
        ns = (o.get("metadata") or {}).get("namespace")
        if (group_of(o), o.get("kind")) in CLUSTER_SCOPED:
            if ns:
                wrong.append(f"{ident(o)} is cluster-scoped but has namespace {ns}")
        elif ns != NAMESPACE:
            wrong.append(f"{ident(o)} has namespace {ns!r}")
    c(f"every namespaced object is in {NAMESPACE}", not wrong, "; ".join(wrong))

    # CRDs: names, scope, versions, status subresource (not their schemas).
    for plural, (kind, short) in CRDS.items():
        crd = one(objs, "CustomResourceDefinition", f"{plural}.pullgate.io")
        if crd is None:
            continue
        spec = crd.get("spec") or {}
        problems = []
        if spec.get("group") != "pullgate.io":
            problems.append(f"group {spec.get('group')}")
        names = spec.get("names") or {}
        if names.get("kind") != kind or names.get("plural") != plural:
            problems.append(f"names {names.get('kind')}/{names.get('plural')}")
        if short not in (names.get("shortNames") or []):
            problems.append(f"short name {short} missing")
        if spec.get("scope") != "Cluster":
            problems.append(f"scope {spec.get('scope')}")
        versions = spec.get("versions") or []
        v1a1 = [v for v in versions if v.get("name") == "v1alpha1"]
        if not v1a1 or not v1a1[0].get("served") or not v1a1[0].get("storage"):
            problems.append("v1alpha1 not served+storage")
        if sum(1 for v in versions if v.get("storage")) != 1:
            problems.append("not exactly one storage version")
        if v1a1 and dig(v1a1[0], "subresources", "status") is None:
            problems.append("no status subresource")
        c(f"CRD {plural}.pullgate.io: cluster-scoped, v1alpha1 served+storage, status",
          not problems, "; ".join(problems))

    deploy = one(objs, "Deployment", "pullgate", "apps")
    service = one(objs, "Service", "pullgate", "")
    vwc = one(objs, "ValidatingWebhookConfiguration", "pullgate")
    mwc = one(objs, "MutatingWebhookConfiguration", "pullgate")
    if not deploy:
        c("Deployment present for the remaining checks", False)
        return
    pod = dig(deploy, "spec", "template", "spec", default={}) or {}
    pod_labels = dig(deploy, "spec", "template", "metadata", "labels", default={}) or {}
    deploy_ns = dig(deploy, "metadata", "namespace")
    ctr = pullgate_container(deploy) or {}
    flags = parse_flags(list(ctr.get("command") or []) + list(ctr.get("args") or []))
    listen_port, probe_port = port_of(flags.get("listen")), port_of(flags.get("probe-listen"))

    # Arguments of the server (the facts of the binary).
    c("container runs `serve`", (ctr.get("args") or [None])[0] == "serve",
      f"args {ctr.get('args')}")
    c("--listen has a port", listen_port is not None, f"--listen={flags.get('listen')}")
    c("--probe-listen has a port", probe_port is not None,
      f"--probe-listen={flags.get('probe-listen')}")
    env = {e.get("name"): e for e in ctr.get("env") or []}
    c("--pullgate-namespace comes from the downward API (POD_NAMESPACE)",
      flags.get("pullgate-namespace") == "$(POD_NAMESPACE)"
      and dig(env.get("POD_NAMESPACE"), "valueFrom", "fieldRef", "fieldPath")
      == "metadata.namespace",
      f"--pullgate-namespace={flags.get('pullgate-namespace')}, env {env.get('POD_NAMESPACE')}")
    c("POD_NAME comes from the downward API (leader-election identity)",
      dig(env.get("POD_NAME"), "valueFrom", "fieldRef", "fieldPath") == "metadata.name",
      f"env {env.get('POD_NAME')}")
    c("--log-format=json", flags.get("log-format") == "json", f"{flags.get('log-format')}")
    # The install step's mode, set by name in the environment (README, "Install"): no --mode argument
    # may override it.
    c(f"runs in {mode} mode (PULLGATE_MODE={mode}, no --mode argument)",
      (env.get("PULLGATE_MODE") or {}).get("value") == mode and "mode" not in flags,
      f"env {env.get('PULLGATE_MODE')}, --mode={flags.get('mode')}")

    # Image: set in one place, the kustomization's images: field.
    want = None
    for img in base_kustomization.get("images") or []:
        if img.get("name") == IMAGE_PLACEHOLDER:
            want = f"{img.get('newName', IMAGE_PLACEHOLDER)}:{img.get('newTag')}" \
                if img.get("newTag") else img.get("newName")
            if img.get("digest"):
                want = f"{img.get('newName', IMAGE_PLACEHOLDER)}@{img['digest']}"
    image = ctr.get("image", "")
    c("image comes from the kustomization images: field, pinned (no :latest)",
      want is not None and image == want and not image.endswith(":latest"),
      f"image {image!r}, kustomization says {want!r}")

    # Replicas, disruption budget, anti-affinity.
    replicas = dig(deploy, "spec", "replicas")
    c("Deployment has 2 replicas", replicas == 2, f"replicas {replicas}")
    c("Deployment selector matches its pod template",
      selector_matches(dig(deploy, "spec", "selector"), pod_labels)
      and bool(dig(deploy, "spec", "selector", "matchLabels")),
      f"{dig(deploy, 'spec', 'selector')} vs {pod_labels}")
    pdbs = find(objs, "PodDisruptionBudget")
    pdb = pdbs[0] if len(pdbs) == 1 else {}
    c("PodDisruptionBudget selects the Deployment's pods, in its namespace",
      bool(pdb) and bool(dig(pdb, "spec", "selector"))
      and selector_matches(dig(pdb, "spec", "selector"), pod_labels)
      and dig(pdb, "metadata", "namespace") == deploy_ns,
      f"{dig(pdb, 'spec', 'selector')} vs {pod_labels}")
    min_avail = dig(pdb, "spec", "minAvailable")
    c("PodDisruptionBudget keeps 1 available and still lets drains proceed",
      min_avail == 1 and isinstance(replicas, int) and replicas > min_avail,
      f"minAvailable {min_avail}, replicas {replicas}")
    terms = dig(pod, "affinity", "podAntiAffinity",
                "preferredDuringSchedulingIgnoredDuringExecution", default=[]) or []
    terms = [t.get("podAffinityTerm") or {} for t in terms] + (dig(
        pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
        default=[]) or [])
    c("pod anti-affinity on kubernetes.io/hostname selects its own pods",
      any(t.get("topologyKey") == "kubernetes.io/hostname"
          and t.get("labelSelector") and selector_matches(t.get("labelSelector"), pod_labels)
          for t in terms), f"terms {terms}")

    # Security context.
    problems = []
    if effective(ctr, pod, "runAsNonRoot") is not True:
        problems.append("runAsNonRoot not true")
    uid = effective(ctr, pod, "runAsUser")
    if not isinstance(uid, int) or uid == 0:
        problems.append(f"runAsUser {uid}")
    sc = ctr.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation not false")
    if sc.get("privileged"):
        problems.append("privileged")
    if "ALL" not in (dig(sc, "capabilities", "drop", default=[]) or []):
        problems.append("capabilities not dropped (ALL)")
    if dig(sc, "capabilities", "add"):
        problems.append(f"capabilities added {dig(sc, 'capabilities', 'add')}")
    seccomp = (sc.get("seccompProfile") or dig(pod, "securityContext", "seccompProfile")
               or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"seccompProfile {seccomp}")
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            problems.append(host)
    c("non-root, read-only root filesystem, no privilege escalation, no capabilities, "
      "seccomp", not problems, "; ".join(problems))

    # Resources: requests and limits, sized for the memory target.
    res = ctr.get("resources") or {}
    req_mem, lim_mem = quantity(dig(res, "requests", "memory")), quantity(
        dig(res, "limits", "memory"))
    req_cpu, lim_cpu = quantity(dig(res, "requests", "cpu")), quantity(dig(res, "limits", "cpu"))
    c("resources: cpu and memory requests and limits, memory request >= 64Mi",
      None not in (req_mem, lim_mem, req_cpu, lim_cpu) and req_mem >= 64 * 2**20
      and lim_mem >= req_mem and lim_cpu >= req_cpu, f"{res}")

    # Shutdown: the drain fits in the grace period.
    grace = pod.get("terminationGracePeriodSeconds")
    c("terminationGracePeriodSeconds leaves room for the drain (>= 15s)",
      isinstance(grace, int) and grace >= 15, f"{grace}")

    # Probes on the probe port.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = dig(ctr, probe, "httpGet") or {}
        port = container_port(ctr, get.get("port"))
        c(f"{probe} is GET {path} on the --probe-listen port ({probe_port}) over HTTP",
          get.get("path") == path and port is not None and port == probe_port
          and get.get("scheme", "HTTP") == "HTTP",
          f"httpGet {get} -> container port {port}")

    # TLS files come from the certificate Secret, mounted as a directory.
    mounts = ctr.get("volumeMounts") or []
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    for flag in ("tls-cert", "tls-key"):
        path = flags.get(flag, "")
        mount = next((m for m in mounts if path.startswith(m.get("mountPath", "").rstrip("/")
                                                          + "/")), None)
        vol = volumes.get((mount or {}).get("name")) or {}
        secret = dig(vol, "secret", "secretName")
        c(f"--{flag} is read from a read-only Secret volume without subPath (hot reload)",
          bool(mount) and mount.get("readOnly") is True and not mount.get("subPath")
          and secret == TLS_SECRET,
          f"--{flag}={path}, mount {mount}, volume {vol}")

    # Service account and token.
    sa_name = pod.get("serviceAccountName")
    sa = one(objs, "ServiceAccount", sa_name, "", deploy_ns) if sa_name else None
    c("Deployment names its ServiceAccount, which exists in its namespace", sa is not None,
      f"serviceAccountName {sa_name!r}")
    c("service account token is mounted",
      pod.get("automountServiceAccountToken") is True
      or (pod.get("automountServiceAccountToken") is None
          and (sa or {}).get("automountServiceAccountToken") is not False),
      f"pod {pod.get('automountServiceAccountToken')}, "
      f"ServiceAccount {(sa or {}).get('automountServiceAccountToken')}")
    subject = {"kind": "ServiceAccount", "name": sa_name, "namespace": deploy_ns}

    def bound(binding, role_kind):
        subs = [{k: s.get(k) for k in ("kind", "name", "namespace")}
                for s in binding.get("subjects") or []]
        ref = binding.get("roleRef") or {}
        return subs == [subject] and ref.get("kind") == role_kind

    crb = one(objs, "ClusterRoleBinding", "pullgate")
    cr = one(objs, "ClusterRole", dig(crb, "roleRef", "name")) if crb else None
    c("ClusterRoleBinding binds the Deployment's ServiceAccount (only) to the ClusterRole",
      bool(crb) and bound(crb, "ClusterRole") and cr is not None,
      f"subjects {dig(crb, 'subjects')}, roleRef {dig(crb, 'roleRef')}")
    rbs = [rb for rb in find(objs, "RoleBinding", namespace=deploy_ns) if bound(rb, "Role")]
    role = one(objs, "Role", dig(rbs[0], "roleRef", "name"), namespace=deploy_ns) \
        if len(rbs) == 1 else None
    c("RoleBinding binds the Deployment's ServiceAccount (only) to a Role in its namespace",
      role is not None, f"{[dig(r, 'roleRef') for r in find(objs, 'RoleBinding')]}")

    # Least privilege: every needed grant, and nothing else.
    for label, rbac_obj, needed in (("ClusterRole", cr, CLUSTER_GRANTS),
                                    ("Role", role, NAMESPACED_GRANTS)):
        have, odd = grants(rbac_obj or {})
        for (g, r), verbs in needed.items():
            missing = verbs - have.get((g, r), set())
            c(f"{label} grants {g or 'core'} {r}: {','.join(sorted(verbs))}", not missing,
              f"missing {sorted(missing)}")
        extra = {k: sorted(v - needed.get(k, set())) for k, v in have.items()
                 if v - needed.get(k, set())}
        c(f"{label} grants nothing else (least privilege)", not extra and not odd,
          "; ".join([f"{g or 'core'} {r}: {v}" for (g, r), v in extra.items()] + odd))

    # Service selects the pods; the webhook port reaches --listen.
    svc_sel = dig(service, "spec", "selector") or {}
    c("Service selects the Deployment's pods", bool(svc_sel)
      and selector_matches({"matchLabels": svc_sel}, pod_labels),
      f"{svc_sel} vs {pod_labels}")

    # The webhooks.
    for conf, webhook_name, path in ((vwc, "validate.pullgate.io", "/validate"),
                                     (mwc, "mutate.pullgate.io", "/mutate")):
        if conf is None:
            continue
        kind = conf["kind"]
        hooks = conf.get("webhooks") or []
        names = [webhook_name]
        if kind == "ValidatingWebhookConfiguration":
            names.append(CHANGES_WEBHOOK)
        c(f"{kind} has the webhooks {names}",
          [h.get("name") for h in hooks] == names, f"{[h.get('name') for h in hooks]}")
        for hook in hooks:
            hn = f"{kind} {hook.get('name')}"
            changes = hook.get("name") == CHANGES_WEBHOOK
            want_policy = "Ignore" if changes else failure_policy
            c(f"{hn} failurePolicy {want_policy}", hook.get("failurePolicy") == want_policy,
              f"{hook.get('failurePolicy')}")
            c(f"{hn} sideEffects None", hook.get("sideEffects") == "None",
              f"{hook.get('sideEffects')}")
            c(f"{hn} timeoutSeconds 5", hook.get("timeoutSeconds") == 5,
              f"{hook.get('timeoutSeconds')}")
            c(f"{hn} admissionReviewVersions [v1]", hook.get("admissionReviewVersions") == ["v1"],
              f"{hook.get('admissionReviewVersions')}")
            c(f"{hn} matchPolicy Equivalent", hook.get("matchPolicy", "Equivalent")
              == "Equivalent", f"{hook.get('matchPolicy')}")

            if changes:
                check_changes_webhook(c, hn, hook, service, ctr, listen_port)
                continue
            sel = hook.get("namespaceSelector") or {}
            uses_name = any(e.get("key") == "kubernetes.io/metadata.name"
                            and e.get("operator") == "NotIn"
                            for e in sel.get("matchExpressions") or [])
            own = EXCLUDED_NAMESPACES | {deploy_ns}
            excluded = sorted(n for n in own
                              if selector_matches(sel, {"kubernetes.io/metadata.name": n}))
            others = ["default", "app-1", "team-b-prod"]
            missed = [n for n in others
                      if not selector_matches(sel, {"kubernetes.io/metadata.name": n,
                                                    "team": "x"})]
            c(f"{hn} namespaceSelector on kubernetes.io/metadata.name excludes kube-system "
              f"and {deploy_ns}, and nothing else",
              uses_name and not excluded and not missed,
              f"selector {sel}; still matches {excluded}; does not match {missed}")
            c(f"{hn} has no objectSelector (object labels are the tenant's to set)",
              not hook.get("objectSelector"), f"{hook.get('objectSelector')}")

            # clientConfig -> Service -> container port == --listen.
            cc = hook.get("clientConfig") or {}
            svc_ref = cc.get("service") or {}
            c(f"{hn} calls the Service at {path} (no url)",
              not cc.get("url") and svc_ref.get("path") == path
              and svc_ref.get("name") == dig(service, "metadata", "name")
              and svc_ref.get("namespace") == dig(service, "metadata", "namespace")
              and service is not None, f"clientConfig {cc}")
            want_port = svc_ref.get("port", 443)
            sp = next((p for p in dig(service, "spec", "ports", default=[]) or []
                       if p.get("port") == want_port), None)
            target = container_port(ctr, (sp or {}).get("targetPort", want_port))
            c(f"{hn} Service port {want_port} targets the --listen port ({listen_port})",
              sp is not None and target is not None and target == listen_port,
              f"service port {sp} -> container port {target}")

            rules = hook.get("rules") or []
            ops = {o for r in rules for o in r.get("operations") or []}
            if kind == "ValidatingWebhookConfiguration":
                for group, version, resource in VALIDATED:
                    c(f"{hn} covers {group or 'core'}/{version} {resource} CREATE+UPDATE",
                      all(rule_covers(rules, group, version, resource, op)
                          for op in ("CREATE", "UPDATE")), f"rules {rules}")
                allowed = {(g, r) for g, _, r in VALIDATED}
                extra = sorted({(g, r) for rule in rules for g in rule.get("apiGroups") or []
                                for r in rule.get("resources") or []} - allowed)
                c(f"{hn} intercepts only CREATE/UPDATE of the listed kinds (DELETE, CONNECT "
                  "and other kinds pass)", ops <= {"CREATE", "UPDATE"} and not extra,
                  f"operations {sorted(ops)}, other resources {extra}")
            else:
                only_pods = all(r.get("apiGroups") == [""] and r.get("resources") == ["pods"]
                                and r.get("operations") == ["CREATE"] for r in rules)
                c(f"{hn} is Pods CREATE only",
                  bool(rules) and only_pods and rule_covers(rules, "", "v1", "pods", "CREATE"),
                  f"rules {rules}")
                c(f"{hn} reinvocationPolicy IfNeeded",
                  hook.get("reinvocationPolicy") == "IfNeeded",
                  f"{hook.get('reinvocationPolicy')}")


def check_changes_webhook(c, hn: str, hook: dict, service: dict | None, ctr: dict,
                          listen_port: int | None) -> None:
    """The webhook of an admin's changes: pullgate's own kinds, every operation, /validate."""
    rules = hook.get("rules") or []
    covered = all(rule_covers(rules, "pullgate.io", "v1alpha1", r, op, scope="Cluster")
                  for r in CHANGES_RESOURCES for op in ("CREATE", "UPDATE", "DELETE"))
    extra = sorted({(g, r) for rule in rules for g in rule.get("apiGroups") or []
                    for r in rule.get("resources") or []}
                   - {("pullgate.io", r) for r in CHANGES_RESOURCES})
    c(f"{hn} covers CREATE, UPDATE and DELETE of {sorted(CHANGES_RESOURCES)} and nothing else",
      covered and not extra, f"rules {rules}")
    cc = hook.get("clientConfig") or {}
    svc_ref = cc.get("service") or {}
    c(f"{hn} calls the Service at /validate (no url)",
      not cc.get("url") and svc_ref.get("path") == "/validate" and service is not None
      and svc_ref.get("name") == dig(service, "metadata", "name")
      and svc_ref.get("namespace") == dig(service, "metadata", "namespace")
      and svc_ref.get("port", 443) in [p.get("port") for p in
                                       dig(service, "spec", "ports", default=[]) or []],
      f"clientConfig {cc}")


def webhook_confs(objs):
    return [o for o in objs if o.get("kind") in ("ValidatingWebhookConfiguration",
                                                  "MutatingWebhookConfiguration")]


def check_base(rep: Report, objs: list[dict]) -> None:
    for conf in webhook_confs(objs):
        bundles = [dig(h, "clientConfig", "caBundle") for h in conf.get("webhooks") or []]
        c_ok = all(not b for b in bundles)
        rep.check(f"base: {conf['kind']} leaves caBundle to the overlays", c_ok, f"{bundles}")
    policies = find(objs, "NetworkPolicy", group="networking.k8s.io")
    rep.check("base: no NetworkPolicy (where the apiserver's calls come from differs per "
              "cluster; the metrics one is an optional component)", not policies,
              ", ".join(ident(o) for o in policies))


def rule_ports(rule: dict, container: dict) -> set[int] | None:
    """Container port numbers an ingress rule admits; None for every port."""
    ports = rule.get("ports")
    if not ports:
        return None
    out = set()
    for p in ports:
        if (p.get("protocol") or "TCP") != "TCP":
            continue
        if p.get("port") is None:
            return None
        n = container_port(container, p.get("port"))
        if n is not None:
            out.add(n)
            if p.get("endPort") is not None:
                out.update(range(n, int(p["endPort"]) + 1))
    return out


def check_metrics_networkpolicy(rep: Report, objs: list[dict]) -> None:
    """The optional NetworkPolicy: the webhook port open to all, the metrics/probe port only
    to one namespace named by `kubernetes.io/metadata.name`."""
    where = NETPOL_COMPONENT
    c = lambda name, ok, detail="": rep.check(f"{where}: {name}", ok, detail)  # noqa: E731
    policies = find(objs, "NetworkPolicy", group="networking.k8s.io")
    if not c("adds exactly one NetworkPolicy", len(policies) == 1, f"found {len(policies)}"):
        return
    pol = policies[0]
    deploy = one(objs, "Deployment", "pullgate", "apps") or {}
    ctr = pullgate_container(deploy) or {}
    flags = parse_flags(list(ctr.get("command") or []) + list(ctr.get("args") or []))
    listen_port, probe_port = port_of(flags.get("listen")), port_of(flags.get("probe-listen"))
    pod_labels = dig(deploy, "spec", "template", "metadata", "labels", default={}) or {}
    spec = pol.get("spec") or {}
    c("is in the Deployment's namespace",
      dig(pol, "metadata", "namespace") == dig(deploy, "metadata", "namespace"),
      f"{dig(pol, 'metadata', 'namespace')}")
    c("selects the Deployment's pods", bool(dig(spec, "podSelector", "matchLabels"))
      and selector_matches(spec.get("podSelector"), pod_labels),
      f"{spec.get('podSelector')} vs {pod_labels}")
    c("restricts Ingress only (egress to the apiserver and registries untouched)",
      spec.get("policyTypes") == ["Ingress"], f"policyTypes {spec.get('policyTypes')}")
    rules = spec.get("ingress") or []
    open_rules = [r for r in rules if not r.get("from")]
    c(f"the webhook port (--listen, {listen_port}) is open to every source",
      listen_port is not None
      and any((ports := rule_ports(r, ctr)) is None or listen_port in ports
              for r in open_rules),
      f"ingress {rules}")
    probe_rules = [r for r in rules
                   if (ports := rule_ports(r, ctr)) is None or probe_port in ports]
    c(f"the probe port (--probe-listen, {probe_port}) is admitted by exactly one rule",
      probe_port is not None and len(probe_rules) == 1, f"{len(probe_rules)} rules")
    if len(probe_rules) != 1:
        return
    peers = probe_rules[0].get("from") or []
    names = [dig(p, "namespaceSelector", "matchLabels", NAMESPACE_NAME_LABEL) for p in peers]
    only_by_name = bool(peers) and all(
        set(p) == {"namespaceSelector"}
        and set(p["namespaceSelector"]) == {"matchLabels"}
        and set(p["namespaceSelector"]["matchLabels"]) == {NAMESPACE_NAME_LABEL}
        for p in peers)
    c(f"the probe port admits only namespaces selected by {NAMESPACE_NAME_LABEL}",
      only_by_name, f"from {peers}")
    c("the monitoring namespace is a valid namespace name",
      all(isinstance(n, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", n)
          for n in names), f"{names}")
    documented = (MANIFESTS / "README.md").read_text()
    c("manifests/README.md documents the component and the namespace to edit",
      f"overlays/{NETPOL_COMPONENT}" in documented
      and all(n in documented for n in names if isinstance(n, str)),
      f"names {names}")


def check_credential_provider(rep: Report, objs: list[dict], cert_names: list[str]) -> None:
    """Pulls without Secrets: the server reviews tokens for one audience, the nodes may
    request tokens for that audience (nothing more), and the kubelet's example config asks
    for that audience and verifies the serving certificate by a name it holds."""
    where = PROVIDER_COMPONENT
    c = lambda name, ok, detail="": rep.check(f"{where}: {name}", ok, detail)  # noqa: E731
    deploy = one(objs, "Deployment", "pullgate", "apps") or {}
    deploy_ns = dig(deploy, "metadata", "namespace")
    flags = parse_flags(list((pullgate_container(deploy) or {}).get("args") or []))
    audience = flags.get("token-audience", "pullgate")
    c("serves POST /credentials and keeps pull Secrets during the rollout "
      "(--pull-credentials=both)", flags.get("pull-credentials") == "both", f"{flags}")

    def bound_to(binding_name, subjects):
        crb = one(objs, "ClusterRoleBinding", binding_name) or {}
        role = one(objs, "ClusterRole", dig(crb, "roleRef", "name")) if crb else None
        subs = [{k: v for k, v in s.items() if k in ("kind", "name", "namespace")}
                for s in crb.get("subjects") or []]
        return (grants(role)[0] if role else None), grants(role or {})[1], subs == subjects

    have, odd, ok = bound_to("pullgate-token-review",
                             [{"kind": "ServiceAccount", "name": "pullgate",
                               "namespace": deploy_ns}])
    c("pullgate's ServiceAccount (only) may create TokenReviews, and nothing else",
      ok and have == {("authentication.k8s.io", "tokenreviews"): {"create"}} and not odd,
      f"{have} {odd}")
    have, odd, ok = bound_to("pullgate-node-token-audience",
                             [{"kind": "Group", "name": "system:nodes"}])
    c(f"the nodes (only) may request tokens for the audience {audience!r}, and nothing else",
      ok and have == {("", audience): {"request-serviceaccounts-token-audience"}}
      and not odd, f"{have} {odd}")
    try:
        config = yaml.safe_load(PROVIDER_CONFIG.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        c("the kubelet's CredentialProviderConfig parses", False, str(err))
        return
    providers = config.get("providers") or []
    provider = providers[0] if len(providers) == 1 else {}
    c("the kubelet's CredentialProviderConfig has one provider, kubelet.config.k8s.io/v1",
      config.get("apiVersion") == "kubelet.config.k8s.io/v1"
      and config.get("kind") == "CredentialProviderConfig" and bool(provider),
      f"{config.get('apiVersion')} {config.get('kind')}")
    c(f"the kubelet asks for tokens of the audience {audience!r}",
      dig(provider, "tokenAttributes", "serviceAccountTokenAudience") == audience,
      f"{provider.get('tokenAttributes')}")
    pflags = parse_flags(list(provider.get("args") or []))
    c("the provider verifies the serving certificate by a name the certificate holds",
      pflags.get("tls-server-name") in cert_names, f"{pflags} vs {cert_names}")
    c("manifests/README.md documents the component",
      f"overlays/{PROVIDER_COMPONENT}" in (MANIFESTS / "README.md").read_text())


def check_cert_manager(rep: Report, objs: list[dict]) -> None:
    where = "cert-manager"
    deploy = one(objs, "Deployment", "pullgate", "apps") or {}
    ns = dig(deploy, "metadata", "namespace")
    service = one(objs, "Service", "pullgate", "") or {}
    vol_secret = next((dig(v, "secret", "secretName") for v in
                       dig(deploy, "spec", "template", "spec", "volumes", default=[]) or []
                       if dig(v, "secret", "secretName")), None)
    certs = find(objs, "Certificate", group="cert-manager.io")
    injected = {}
    for conf in webhook_confs(objs):
        ref = dig(conf, "metadata", "annotations", "cert-manager.io/inject-ca-from") or ""
        cns, _, cname = ref.partition("/")
        cert = one(objs, "Certificate", cname, "cert-manager.io", cns) if cname else None
        if rep.check(f"{where}: {conf['kind']} has cert-manager.io/inject-ca-from naming an "
                     f"existing Certificate", cert is not None, f"annotation {ref!r}"):
            injected[ref] = cert
    for ref, cert in sorted(injected.items()):
        cns, _, cname = ref.partition("/")
        spec = cert.get("spec") or {}
        rep.check(f"{where}: Certificate {cname} writes the Secret the Deployment mounts",
                  spec.get("secretName") == vol_secret == TLS_SECRET,
                  f"secretName {spec.get('secretName')}, volume {vol_secret}")
        svc, svc_ns = dig(service, "metadata", "name"), dig(service, "metadata", "namespace")
        need = {f"{svc}.{svc_ns}.svc", f"{svc}.{svc_ns}.svc.cluster.local"}
        rep.check(f"{where}: Certificate {cname} names the Service's DNS names",
                  need <= set(spec.get("dnsNames") or []),
                  f"dnsNames {spec.get('dnsNames')}, want {sorted(need)}")
        pk = spec.get("privateKey") or {}
        rep.check(f"{where}: Certificate {cname} is ECDSA P-256",
                  pk.get("algorithm") == "ECDSA" and pk.get("size") == 256, f"{pk}")
        usages = spec.get("usages")
        rep.check(f"{where}: Certificate {cname} may serve TLS",
                  usages is None or "server auth" in usages, f"usages {usages}")
        # The chain: serving cert <- CA Issuer <- CA Certificate <- self-signed Issuer.
        iref = spec.get("issuerRef") or {}
        issuer = one(objs, iref.get("kind", "Issuer"), iref.get("name"), "cert-manager.io",
                     cns if iref.get("kind", "Issuer") == "Issuer" else None)
        ca_secret = dig(issuer, "spec", "ca", "secretName")
        ca_cert = next((x for x in certs if dig(x, "spec", "secretName") == ca_secret
                        and dig(x, "metadata", "namespace") == cns), None)
        root_ref = dig(ca_cert, "spec", "issuerRef") or {}
        root_kind = root_ref.get("kind", "Issuer")
        root = one(objs, root_kind, root_ref.get("name"), "cert-manager.io",
                   cns if root_kind == "Issuer" else None) if ca_cert else None
        rep.check(f"{where}: Certificate {cname} is signed by a CA Issuer whose CA comes "
                  "from a self-signed Issuer",
                  issuer is not None and ca_cert is not None
                  and dig(ca_cert, "spec", "isCA") is True
                  and root is not None and dig(root, "spec", "selfSigned") is not None,
                  f"issuerRef {iref}, CA secret {ca_secret}, CA issuerRef {root_ref}")
    # cert-manager must start while pullgate is down or enforcing: exempt in both places.
    ctr = pullgate_container(deploy) or {}
    env = {e.get("name"): e.get("value") for e in ctr.get("env") or []}
    exempt = set((env.get("PULLGATE_EXEMPT_NAMESPACE") or "").split(","))
    pod_hooks = [h for conf in webhook_confs(objs) for h in conf.get("webhooks") or []
                 if h.get("name") != CHANGES_WEBHOOK]
    skipped = [h.get("name") for h in pod_hooks
               if not selector_matches(h.get("namespaceSelector"),
                                       {NAMESPACE_NAME_LABEL: CERT_MANAGER_NAMESPACE})]
    rep.check(f"{where}: namespace {CERT_MANAGER_NAMESPACE} is exempt in both webhooks and in "
              "pullgate (which keeps kube-system)",
              sorted(skipped) == ["mutate.pullgate.io", "validate.pullgate.io"]
              and {CERT_MANAGER_NAMESPACE, "kube-system"} <= exempt,
              f"webhooks skipping it {skipped}, PULLGATE_EXEMPT_NAMESPACE {exempt}")
    rep.check(f"{where}: every cert-manager object is in {ns}",
              all(dig(x, "metadata", "namespace") == ns
                  for x in objs if group_of(x) == "cert-manager.io"
                  and x.get("kind") != "ClusterIssuer"), "")


def check_pullgate_certs(rep: Report, objs: list[dict]) -> None:
    where = "pullgate-certs"
    deploy = one(objs, "Deployment", "pullgate", "apps") or {}
    ns = dig(deploy, "metadata", "namespace")
    secret = one(objs, "Secret", TLS_SECRET, "", ns)
    rep.check(f"{where}: Secret {TLS_SECRET} (exact name, no hash suffix) in {ns}",
              secret is not None, f"secrets {[ident(s) for s in find(objs, 'Secret')]}")
    data = (secret or {}).get("data") or {}
    rep.check(f"{where}: Secret {TLS_SECRET} is kubernetes.io/tls with tls.crt, tls.key, ca.crt",
              (secret or {}).get("type") == "kubernetes.io/tls"
              and {"tls.crt", "tls.key", "ca.crt"} <= set(data),
              f"type {(secret or {}).get('type')}, keys {sorted(data)}")
    ca_pem = b64bytes(data.get("ca.crt"))
    for conf in webhook_confs(objs):
        for hook in conf.get("webhooks") or []:
            bundle = dig(hook, "clientConfig", "caBundle")
            pem = b64bytes(bundle)
            rep.check(f"{where}: {conf['kind']} {hook.get('name')} caBundle is the overlay's "
                      "ca.crt", pem is not None and pem == ca_pem
                      and b"-----BEGIN CERTIFICATE-----" in pem,
                      f"caBundle {str(bundle)[:40]!r}...")


def b64bytes(value) -> bytes | None:
    """Base64 as the API server reads []byte fields (line breaks ignored), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_examples(rep: Report, crds: list[dict], k8s: str) -> None:
    files = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    rep.check("examples: manifests/examples has example files", bool(files), str(EXAMPLES))
    objs = []
    for path in files:
        rel = path.relative_to(REPO)
        try:
            docs = load_yaml_docs(path.read_text())
        except yaml.YAMLError as err:
            rep.check(f"examples: {rel} parses", False, str(err))
            continue
        for doc in docs:
            validate_object(rep, f"examples {rel}", doc, crds, k8s)
            objs.append(doc)

    regs = {dig(o, "metadata", "name"): o for o in objs if o.get("kind") == "Registry"}
    wss = {dig(o, "metadata", "name"): o for o in objs if o.get("kind") == "Workspace"}
    seen_spaces = {}
    for o in objs:
        if group_of(o) != "pullgate.io":
            continue
        kind, spec = o.get("kind"), o.get("spec") or {}
        problems = []
        unknown = sorted(set(spec) - SPEC_FIELDS.get(kind, set()))
        if unknown:
            problems.append(f"fields not in the API: {unknown}")
        if kind == "Registry":
            if spec.get("type") not in ("Harbor", "DockerRegistry"):
                problems.append(f"type {spec.get('type')}")
            url = urlsplit(str(spec.get("url", "")))
            if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("",) \
                    or url.query or url.fragment:
                problems.append(f"url {spec.get('url')!r} (scheme http|https, host, port; no path)")
            for alias in spec.get("aliases") or []:
                if "/" in str(alias) or "://" in str(alias):
                    problems.append(f"alias {alias!r} is not host[:port]")
            ref = spec.get("credentialsSecretRef")
            if ref is not None and set(ref) != {"namespace", "name"}:
                problems.append(f"credentialsSecretRef {ref}")
        elif kind == "RegistrySpace":
            if spec.get("registry") not in regs:
                problems.append(f"registry {spec.get('registry')!r} is not an example Registry")
            if spec.get("visibility", "Private") not in ("Public", "Private"):
                problems.append(f"visibility {spec.get('visibility')}")
            for ws in spec.get("workspaces") or []:
                if ws not in wss:
                    problems.append(f"workspace {ws!r} is not an example Workspace")
            key = (spec.get("registry"), spec.get("space"))
            if not spec.get("space"):
                problems.append("no space")
            elif key in seen_spaces:
                problems.append(f"same (registry, space) as {seen_spaces[key]} (a Conflict)")
            seen_spaces[key] = dig(o, "metadata", "name")
        elif kind == "Workspace":
            if spec.get("enforcement") not in (None, "Enforce", "Warn", "Audit"):
                problems.append(f"enforcement {spec.get('enforcement')}")
            sel = spec.get("namespaceSelector")
            if sel is not None and not set(sel) <= {"matchLabels", "matchExpressions"}:
                problems.append(f"namespaceSelector {sel}")
            if not spec.get("namespaces") and not sel:
                problems.append("no members")
        rep.check(f"examples: {kind}/{dig(o, 'metadata', 'name')} follows the API",
                  not problems, "; ".join(problems))
    want = {("Registry", "harbor-prod"), ("Registry", "registry-local"),
            ("Registry", "dockerhub"), ("RegistrySpace", "dockerhub.library"),
            ("RegistrySpace", "harbor-prod.team-a"), ("RegistrySpace", "harbor-prod.team-b"),
            ("RegistrySpace", "harbor-prod.shared"), ("Workspace", "ws-a"),
            ("Workspace", "ws-b")}
    have = {(o.get("kind"), dig(o, "metadata", "name")) for o in objs}
    rep.check("examples: the documented example objects are all there", want <= have,
              f"missing {sorted(want - have)}")


def check_repository(rep: Report) -> None:
    """Nothing secret committed; generated certificate files ignored."""
    try:
        # Tracked files, and untracked ones that are not ignored: what a commit could take.
        listed = subprocess.run(["git", "ls-files", "--cached", "--others",
                                 "--exclude-standard", "manifests", "certs"], cwd=REPO,
                                capture_output=True, text=True, timeout=60, check=True)
        files = [REPO / f for f in listed.stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        files = [p for d in (MANIFESTS, REPO / "certs") if d.exists() for p in d.rglob("*")
                 if p.is_file() and p.name not in ("ca.key", "tls.key", "ca.crt", "tls.crt")]
    keys = [str(f.relative_to(REPO)) for f in files
            if f.is_file() and "PRIVATE KEY-----" in f.read_text(errors="replace")]
    rep.check("repository: no private key under manifests/ or certs/", not keys, f"{keys}")
    ignore = OVERLAYS / "pullgate-certs" / ".gitignore"
    lines = set(ignore.read_text().split()) if ignore.exists() else set()
    rep.check("repository: overlays/pullgate-certs/.gitignore ignores the certificate files",
              {"ca.crt", "ca.key", "tls.crt", "tls.key"} <= lines, f"{sorted(lines)}")
    cignore = REPO / "certs" / ".gitignore"
    lines = set(cignore.read_text().split()) if cignore.exists() else set()
    rep.check("repository: certs/.gitignore ignores dev/ and *.key",
              {"*.key"} <= lines and bool({"dev/", "/dev/", "dev"} & lines), f"{sorted(lines)}")
    for name in ("cabundle-patch.yaml", "cabundle-changes-patch.yaml"):
        patch = OVERLAYS / "pullgate-certs" / name
        text = patch.read_text() if patch.exists() else ""
        rep.check(f"repository: {name} holds the CA_BUNDLE placeholder to fill",
                  "value: CA_BUNDLE" in text, str(patch.relative_to(REPO)))
    docker = REPO / "Dockerfile"
    text = docker.read_text() if docker.exists() else ""
    problems = [what for what, ok in (
        ("cargo build --release --locked", "cargo build --release --locked" in text),
        ("distroless nonroot runtime", re.search(r"FROM\s+gcr\.io/distroless/\S+:nonroot",
                                                 text) is not None),
        ("USER 65532:65532", re.search(r"^USER\s+65532:65532\s*$", text, re.M) is not None),
        ('ENTRYPOINT ["/pullgate"]', 'ENTRYPOINT ["/pullgate"]' in text)) if not ok]
    rep.check("repository: Dockerfile builds --locked into a non-root distroless image",
              not problems, f"missing {problems}")


def pullgate_binary() -> Path | None:
    explicit = os.environ.get("PULLGATE_BIN")
    if explicit:
        return Path(explicit)
    built = [p for p in (REPO / "target" / "release" / "pullgate",
                         REPO / "target" / "debug" / "pullgate") if p.is_file()]
    return max(built, key=lambda p: p.stat().st_mtime) if built else None


def check_binary(rep: Report, base: list[dict], others: dict[str, list[dict]]) -> None:
    """With a built binary: the Deployment's flags exist (in the base and in the
    renderings `others`), and base/crds.yaml is current."""
    binary = pullgate_binary()
    if binary is None:
        rep.skip("binary: serve accepts the Deployment's flags",
                 "no built pullgate binary (cargo build, or set PULLGATE_BIN)")
        rep.skip("binary: base/crds.yaml is `pullgate crds`",
                 "no built pullgate binary (cargo build, or set PULLGATE_BIN)")
        return
    try:
        help_text = subprocess.run([str(binary), "serve", "--help"], capture_output=True,
                                   text=True, timeout=60).stdout
    except OSError as err:
        rep.check(f"binary: {binary} runs", False, str(err))
        return
    if "--listen" not in help_text:
        rep.skip("binary: serve accepts the Deployment's flags",
                 f"{binary} serve --help does not describe --listen yet")
    else:
        deploy = one(base, "Deployment", "pullgate", "apps") or {}
        args = (pullgate_container(deploy) or {}).get("args") or []
        unknown = sorted({f"--{k}" for k in parse_flags(args)}
                         - set(re.findall(r"--[a-z][a-z0-9-]*", help_text)))
        rep.check("binary: `pullgate serve` accepts every flag the Deployment passes",
                  not unknown, f"unknown to {binary}: {unknown}")
        env = {e.get("name") for e in (pullgate_container(deploy) or {}).get("env") or []
               if str(e.get("name", "")).startswith("PULLGATE_")}
        unread = sorted(env - set(re.findall(r"env: (PULLGATE_[A-Z0-9_]+)", help_text)))
        rep.check("binary: `pullgate serve` reads every PULLGATE_ variable the Deployment sets",
                  bool(env) and not unread, f"not read by {binary}: {unread}")
        known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
        for name, objs in others.items():
            deploy = one(objs, "Deployment", "pullgate", "apps") or {}
            args = (pullgate_container(deploy) or {}).get("args") or []
            unknown = sorted({f"--{k}" for k in parse_flags(args)} - known)
            rep.check(f"binary: `pullgate serve` accepts every flag {name}'s Deployment passes",
                      not unknown, f"unknown to {binary}: {unknown}")
    proc = subprocess.run([str(binary), "crds"], capture_output=True, text=True, timeout=60)
    try:
        generated = load_yaml_docs(proc.stdout) if proc.returncode == 0 else []
    except yaml.YAMLError:
        generated = []
    if not any(d.get("kind") == "CustomResourceDefinition" for d in generated):
        rep.skip("binary: base/crds.yaml is `pullgate crds`",
                 f"{binary} crds prints no CRDs yet")
        return
    committed = load_yaml_docs((BASE / "crds.yaml").read_text())
    rep.check("binary: manifests/base/crds.yaml is the output of `pullgate crds`",
              generated == committed,
              "regenerate with `pullgate crds > manifests/base/crds.yaml`")


# --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing checks too")
    ap.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION,
                    help=f"Kubernetes schema version (default {DEFAULT_K8S_VERSION})")
    opts = ap.parse_args()
    rep = Report(opts.verbose)

    try:
        cmd = kustomize_command()
    except SystemExit as err:
        print(err)
        print("0 passed, 1 failed")
        return 2
    try:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "x"}}, opts.k8s_version)
    except kubernetes_validate.utils.VersionNotSupportedError:
        print(f"ERROR: kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
              f"Kubernetes {opts.k8s_version}")
        print("0 passed, 1 failed")
        return 2
    print(f"kustomize: {' '.join(cmd)}; kubernetes-validate "
          f"{getattr(kubernetes_validate, '__version__', '?')}, Kubernetes {opts.k8s_version} "
          "schemas (strict)")

    base_kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text()) or {}
    renderings: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="pullgate-manifests-") as tmp:
        # A throwaway copy of manifests/ (and its README) for the overlays that need files
        # an admin would create: nothing is written into the work tree.
        copy_root = Path(tmp)
        shutil.copytree(MANIFESTS, copy_root / "manifests",
                        ignore=shutil.ignore_patterns("ca.crt", "ca.key", "tls.crt", "tls.key"))
        certs_dir = copy_root / "manifests" / "overlays" / "pullgate-certs"
        how = write_dummy_certs(certs_dir)
        sed = readme_sed_line()
        filled = False
        if rep.check("README.md documents the sed line that fills CA_BUNDLE",
                     sed is not None, "no line starting with `sed` naming CA_BUNDLE"):
            patch_files = sorted(certs_dir.glob("cabundle-*.yaml"))
            before = [f.read_text() for f in patch_files]
            proc = subprocess.run(["bash", "-c", sed], cwd=copy_root, capture_output=True,
                                  text=True, timeout=60)
            after = [f.read_text() for f in patch_files]
            try:
                values = [op.get("value") for a in after for op in yaml.safe_load(a) or []]
            except (yaml.YAMLError, AttributeError):
                values = []
            ca = (certs_dir / "ca.crt").read_bytes()
            filled = (len(patch_files) == 2 and all(a != b for a, b in zip(after, before))
                      and bool(values) and all(b64bytes(v) == ca for v in values))
            rep.check("the README's sed line fills every cabundle-*.yaml patch (both webhook "
                      "configurations, and the changes webhook) with base64 of ca.crt",
                      proc.returncode == 0 and filled,
                      proc.stderr.strip() or f"{[f.name for f in patch_files]}: {values}")
        print(f"pullgate-certs overlay rendered from a temporary copy with {how} files")

        # The README's install steps after the default one (warn, enforce): each fenced
        # block, written where the README says, rendered as the admin would.
        steps = {}
        for marker in STEP_MODES:
            block = readme_block(marker)
            if rep.check(f"README.md shows the {marker} overlay", block is not None,
                         f"no fenced block after <!-- check:{marker} -->"):
                step_dir = copy_root / "manifests" / "overlays" / f"{marker}-check"
                step_dir.mkdir()
                (step_dir / "kustomization.yaml").write_text(block)
                steps[marker] = step_dir

        # The optional component, as the README adds it: on top of a certificate overlay.
        netpol_dir = copy_root / "manifests" / "overlays" / f"{NETPOL_COMPONENT}-check"
        netpol_dir.mkdir()
        (netpol_dir / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../cert-manager\ncomponents:\n  - ../{NETPOL_COMPONENT}\n")

        provider_dir = copy_root / "manifests" / "overlays" / f"{PROVIDER_COMPONENT}-check"
        provider_dir.mkdir()
        (provider_dir / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - ../cert-manager\ncomponents:\n  - ../{PROVIDER_COMPONENT}\n")

        targets = [("base", BASE), ("cert-manager", OVERLAYS / "cert-manager"),
                   ("pullgate-certs", certs_dir), (NETPOL_COMPONENT, netpol_dir),
                   (PROVIDER_COMPONENT, provider_dir)]
        targets.extend(steps.items())
        for name, directory in targets:
            objs, err = render(cmd, directory)
            shown = (directory.relative_to(copy_root) if directory.is_relative_to(copy_root)
                     else directory.relative_to(REPO))
            if rep.check(f"{name}: kustomize renders {shown}", objs is not None, err):
                renderings[name] = objs

    crds = find(renderings.get("base", []), "CustomResourceDefinition")
    for name, objs in renderings.items():
        for obj in objs:
            validate_object(rep, name, obj, crds, opts.k8s_version)
        check_rendering(rep, name, objs, base_kustomization, STEP_MODES.get(name, DEFAULT_STEP))
    if "base" in renderings:
        check_base(rep, renderings["base"])
    if "cert-manager" in renderings:
        check_cert_manager(rep, renderings["cert-manager"])
    if "pullgate-certs" in renderings and filled:
        check_pullgate_certs(rep, renderings["pullgate-certs"])
    if NETPOL_COMPONENT in renderings:
        check_metrics_networkpolicy(rep, renderings[NETPOL_COMPONENT])
    if PROVIDER_COMPONENT in renderings:
        cert_names = [n for cert in find(renderings.get("cert-manager", []), "Certificate")
                      for n in dig(cert, "spec", "dnsNames", default=[]) or []]
        check_credential_provider(rep, renderings[PROVIDER_COMPONENT], cert_names)
    base_args = (pullgate_container(one(renderings.get("base", []), "Deployment", "pullgate",
                                        "apps") or {}) or {}).get("args") or []
    for marker in STEP_MODES:
        if marker not in renderings:
            continue
        objs = renderings[marker]
        deploy = one(objs, "Deployment", "pullgate", "apps") or {}
        args = (pullgate_container(deploy) or {}).get("args") or []
        rep.check(f"{marker}: the README's overlay keeps the server's arguments",
                  args == base_args, f"args {args}")
        text = readme_block(marker) or ""
        rep.check(f"{marker}: the README's overlay uses the component "
                  f"components/{STEP_MODES[marker][0]}",
                  f"../../components/{STEP_MODES[marker][0]}" in text, text)
    check_examples(rep, crds, opts.k8s_version)
    check_repository(rep)
    check_binary(rep, renderings.get("base", []),
                 {k: v for k, v in renderings.items() if k == PROVIDER_COMPONENT})

    if rep.failures:
        print(f"\n{len(rep.failures)} check(s) failed:")
        for f in rep.failures:
            print(f"  - {f}")
    if rep.skipped and not rep.verbose:
        reasons = sorted({why for _, why in rep.skipped})
        print(f"{len(rep.skipped)} skipped ({'; '.join(reasons)})")
    print(rep.summary())
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
