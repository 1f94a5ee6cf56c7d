#!/usr/bin/env python3
"""Helper of benches/load.sh: generates the scaled config and the pod reviews, reads
h2load output, and prints the result table.

  loadgen.py config OUT.yaml            the BENCHMARKS.md world (10,000 namespaces, 1,000
                                        spaces, 500 workspaces), as index::testing::mk_scaled
  loadgen.py review KIB OUT.json        a pod AdmissionReview of about KIB KiB
  loadgen.py peak H2LOAD_OUTPUT         prints requests/s (and fails on failed requests)
  loadgen.py latency LOG_FILE           prints p50 p99 (ms) of an h2load --log-file
  loadgen.py table RESULTS.tsv          prints the Markdown tables
"""

import json
import re
import statistics
import sys

NAMESPACES, SPACES, WORKSPACES = 10_000, 1_000, 500

# The review's namespace and images: ns-42-3 is listed in workspace ws-42, to which the
# spaces project-42, project-542 (Harbor) and teams/group-0/space-77,
# teams/group-3/space-577 (Docker Registry) are bound; all four are Private.
NAMESPACE = "ns-42-3"
IMAGES = [
    "harbor.example.com/project-42/web:1.4.2",
    "harbor.example.com/project-542/sidecar@sha256:"
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "registry.example.com:5000/teams/group-0/space-77/worker:3.1",
    "harbor.internal:8443/project-42/tools/migrate:2024.10",
]
INIT_IMAGE = "registry.example.com:5000/teams/group-3/space-577/init:1.0"


def config(out):
    per_ws = NAMESPACES // WORKSPACES
    docs = []
    for name, ty, url, aliases in [
        ("harbor", "Harbor", "https://harbor.example.com", ["harbor.internal:8443"]),
        ("local", "DockerRegistry", "http://registry.example.com:5000", []),
        ("hub", "DockerRegistry", "https://docker.io", []),
    ]:
        docs.append(
            "apiVersion: pullgate.io/v1alpha1\nkind: Registry\n"
            f"metadata: {{name: {name}}}\nspec: {{type: {ty}, url: '{url}', aliases: {json.dumps(aliases)}}}\n"
        )
    docs.append(
        "apiVersion: pullgate.io/v1alpha1\nkind: RegistrySpace\nmetadata: {name: hub.library}\n"
        "spec: {registry: hub, space: library, visibility: Public}\n"
    )
    for w in range(WORKSPACES):
        listed = [f"ns-{w}-{i}" for i in range(per_ws // 2)]
        docs.append(
            "apiVersion: pullgate.io/v1alpha1\nkind: Workspace\n"
            f"metadata: {{name: ws-{w}}}\nspec:\n  namespaces: {json.dumps(listed)}\n"
            f"  namespaceSelector:\n    matchLabels: {{team: team-{w}}}\n"
        )
        for i in range(per_ws):
            labels = f"{{team: team-{w}}}" if i >= per_ws // 2 else "{}"
            docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{w}-{i}, labels: {labels}}}\n")
    for s in range(SPACES):
        if s % 2 == 0:
            registry, space = "harbor", f"project-{s}"
        else:
            registry, space = "local", f"teams/group-{s % 7}/space-{s}"
        vis = "Public" if s % 10 == 0 else "Private"
        a, b = f"ws-{s % WORKSPACES}", f"ws-{(s * 7 + 3) % WORKSPACES}"
        docs.append(
            "apiVersion: pullgate.io/v1alpha1\nkind: RegistrySpace\n"
            f"metadata: {{name: {registry}.{s}}}\n"
            f"spec: {{registry: {registry}, space: {space}, visibility: {vis}, workspaces: [{a}, {b}]}}\n"
        )
    with open(out, "w") as f:
        f.write("---\n".join(docs))


def container(i, image, env_count):
    name = ["web", "sidecar", "worker", "migrate"][i % 4]
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/local/bin/" + name],
        "args": ["--listen=:8080", "--log-format=json", f"--config=/etc/{name}/config.yaml"],
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        ],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
        ]
        + [{"name": f"{name.upper()}_SETTING_{k}", "value": f"value-{k}-{'x' * 24}"} for k in range(env_count)],
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
            "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": 8080, "scheme": "HTTP"},
            "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3,
        },
        "volumeMounts": [
            {"name": "config", "mountPath": f"/etc/{name}", "readOnly": True},
            {"name": "cache", "mountPath": "/var/cache/app"},
            {"name": "kube-api-access-7xk2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def review(kib, env_count):
    containers = {2: 1, 10: 3, 25: 4}.get(kib, 4)
    spec = {
        "containers": [container(i, IMAGES[i], env_count) for i in range(containers)],
        "volumes": [
            {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
            {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "kube-api-access-7xk2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}},
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "web",
        "securityContext": {"runAsUser": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    if kib <= 2:
        # A small pod: one container with the fields most pods set, and the token volume.
        c = spec["containers"][0]
        for field in ["command", "args", "livenessProbe", "readinessProbe", "securityContext",
                      "terminationMessagePath", "terminationMessagePolicy"]:
            del c[field]
        c["volumeMounts"] = c["volumeMounts"][2:]
        c["ports"] = c["ports"][:1]
        c["env"] = c["env"][2:]
        spec["volumes"] = spec["volumes"][2:]
        for field in ["tolerations", "securityContext", "preemptionPolicy", "enableServiceLinks"]:
            del spec[field]
    if kib >= 10:
        spec["initContainers"] = [container(2, INIT_IMAGE, 0)]
        spec["initContainers"][0]["name"] = "init-schema"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d9f8c6b5-",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8c6b5"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-10-30T09:12:44Z", "prometheus.io/scrape": "true"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c6b5",
                "uid": "0c2f7e8a-3b1d-4f55-9e2a-6d7c1b9a4e10", "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": spec,
        "status": {},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "a7c3e1d2-5b4f-4e8a-9c6d-1f2e3d4c5b6a",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def review_file(kib, out):
    target = kib * 1024
    env_count = 0
    while True:
        body = json.dumps(review(kib, env_count + 1), separators=(",", ":")).encode()
        if len(body) > target:
            break
        env_count += 1
    body = json.dumps(review(kib, env_count), separators=(",", ":")).encode()
    with open(out, "wb") as f:
        f.write(body)
    print(len(body))


def peak(path):
    text = open(path).read()
    m = re.search(r"finished in [^,]+, ([0-9.]+) req/s", text)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", text)
    s = re.search(r"status codes: (\d+) 2xx", text)
    if not m or not r or not s:
        sys.exit(f"cannot read h2load output {path}:\n{text}")
    if int(r.group(5)) or int(s.group(1)) != int(r.group(3)):
        sys.exit(f"failed or non-2xx requests in {path}:\n{text}")
    print(m.group(1))


def latency(path):
    values = []
    for line in open(path):
        cols = line.split("\t")
        if len(cols) >= 3:
            if not cols[1].startswith("2"):
                sys.exit(f"non-2xx status {cols[1]} in {path}")
            values.append(int(cols[2]))
    if not values:
        sys.exit(f"no requests in {path}")
    values.sort()

    def pct(p):
        return values[min(len(values) - 1, int(p / 100 * len(values)))] / 1000.0

    print(f"{pct(50):.3f} {pct(99):.3f} {len(values)}")


def table(path):
    # rows: round server metric value
    rows = [line.split() for line in open(path) if line.strip() and not line.startswith("#")]
    data = {}
    for rnd, server, metric, value in rows:
        data.setdefault(metric, {}).setdefault(server, []).append(float(value))

    def med(metric, server):
        v = data.get(metric, {}).get(server)
        return statistics.median(v) if v else float("nan")

    def per_round(metric, server, op):
        b, s = data.get(metric, {}).get("baseline", []), data.get(metric, {}).get(server, [])
        return [op(x, y) for x, y in zip(b, s) if x]

    print("| measurement | baseline (median) | pullgate (median) | pullgate/baseline | rounds (baseline; pullgate) |")
    print("|---|---|---|---|---|")
    for metric in sorted(data):
        if metric.startswith("rss") or metric.startswith("hwm"):
            continue
        b, p = med(metric, "baseline"), med(metric, "pullgate")
        ratio = p / b if b else float("nan")
        rb = ", ".join(f"{x:g}" for x in data[metric].get("baseline", []))
        rp = ", ".join(f"{x:g}" for x in data[metric].get("pullgate", []))
        unit = "req/s" if metric.startswith("rps") else "µs" if metric.startswith("cpu") else "ms"
        print(f"| {metric} ({unit}) | {b:,.3f} | {p:,.3f} | {ratio:.3f} | {rb}; {rp} |")
    print()
    # Per-round ratios of the throughput, the figure BENCHMARKS.md's targets name (at 10 KiB).
    for metric in sorted(m for m in data if m.startswith("rps")):
        ratios = per_round(metric, "pullgate", lambda x, y: y / x)
        if ratios:
            print(f"- {metric}: per-round ratios {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
    print()
    for metric in sorted(m for m in data if m.startswith("rss") or m.startswith("hwm")):
        v = data[metric].get("pullgate", [])
        if v:
            print(f"- pullgate {metric}: {max(v) / 1024:.1f} MiB (max over rounds)")

    # The yardsticks (the baseline doing N µs more work per request) and any other
    # build, beside pullgate.
    others = sorted(
        {s for m in data.values() for s in m if s not in ("baseline", "pullgate")},
        key=lambda s: (0, float(s[len("work-"):-len("us")])) if s.startswith("work-") else (1, 0),
    )
    if not others:
        return
    print()
    print("| server (10 KiB) | CPU per request (µs, median) | more than the baseline (µs) | throughput / baseline (median of rounds) | p99 at half peak − baseline's (ms, median of rounds) |")
    print("|---|---|---|---|---|")
    cpu = "cpu-us-per-request-10KiB"
    for server in ["baseline"] + others + ["pullgate"]:
        ratios = per_round("rps-10KiB", server, lambda x, y: y / x)
        deltas = per_round("p99-10KiB-at-half-peak", server, lambda x, y: y - x)
        more = med(cpu, server) - med(cpu, "baseline")
        print(
            f"| {server} | {med(cpu, server):.1f} | {more:+.1f} | "
            f"{statistics.median(ratios):.3f} | {statistics.median(deltas):+.3f} |"
        )


def main():
    cmd = sys.argv[1]
    if cmd == "config":
        config(sys.argv[2])
    elif cmd == "review":
        review_file(int(sys.argv[2]), sys.argv[3])
    elif cmd == "peak":
        peak(sys.argv[2])
    elif cmd == "latency":
        latency(sys.argv[2])
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
