#!/usr/bin/env python3
"""Generate a realistic `kubectl get -o json` List dump of N objects (default 50,000), deterministic.

Namespaces with Deployments, their ReplicaSets and Pods (with status), Services, ServiceAccounts,
ConfigMaps, Roles/RoleBindings, NetworkPolicies in some namespaces, a few DaemonSets, CronJobs and
cluster-wide RBAC. Roughly the shape of a mid-size production cluster; about 10% of workloads carry
misconfigurations (privileged, hostPath, no limits, latest tags, ...).

    bench/gen_cluster_dump.py OUT.json [N]
"""
import json, random, sys

def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    rnd = random.Random(42)
    items = []
    def meta(name, ns=None, labels=None, owner=None):
        m = {"name": name, "uid": f"{rnd.getrandbits(64):016x}", "resourceVersion": str(rnd.randint(1, 10**7)),
             "creationTimestamp": "2026-01-01T00:00:00Z", "labels": labels or {}}
        if ns: m["namespace"] = ns
        if owner: m["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "x", "controller": True}]
        return m
    def container(app, bad):
        c = {"name": app, "image": f"registry.example.com/team/{app}:{'latest' if bad and rnd.random() < .5 else '1.' + str(rnd.randint(0, 30))}",
             "ports": [{"containerPort": 8080, "protocol": "TCP"}],
             "env": [{"name": "LOG_LEVEL", "value": "info"}],
             "resources": {} if bad else {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
             "securityContext": {"privileged": True} if bad and rnd.random() < .3 else
                                {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                 "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
             "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
             "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}
        if bad and rnd.random() < .3:
            c["env"].append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}})
        return c
    def podspec(app, bad):
        s = {"serviceAccountName": app, "automountServiceAccountToken": bad, "containers": [container(app, bad)]}
        if bad and rnd.random() < .3:
            s["volumes"] = [{"name": "host", "hostPath": {"path": "/var/run/docker.sock"}}]
            s["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/var/run/docker.sock"}]
        if bad and rnd.random() < .2:
            s["hostNetwork"] = True
        return s
    ns_i = 0
    while len(items) < n:
        ns = f"team-{ns_i:04d}"
        ns_i += 1
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(ns), "status": {"phase": "Active"}})
        if ns_i % 3:
            items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("default-deny", ns),
                          "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
        items.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("dev", ns),
                      "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]})
        items.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("dev", ns),
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dev"},
                      "subjects": [{"kind": "Group", "name": f"{ns}-devs", "apiGroup": "rbac.authorization.k8s.io"}]})
        for a in range(rnd.randint(4, 12)):
            app = f"svc{a}"
            bad = rnd.random() < 0.1
            labels = {"app": app}
            spec = podspec(app, bad)
            items.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(app, ns)})
            items.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"{app}-config", ns), "data": {"config.yaml": "a: 1\n" * 20}})
            items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(app, ns, labels),
                          "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": spec}},
                          "status": {"replicas": 2, "readyReplicas": 2}})
            rs = f"{app}-{rnd.getrandbits(32):08x}"
            items.append({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta(rs, ns, labels, ("Deployment", app)),
                          "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": spec}}})
            for p in range(2):
                items.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta(f"{rs}-{p}{rnd.getrandbits(20):05x}", ns, labels, ("ReplicaSet", rs)),
                              "spec": dict(spec, nodeName=f"node-{rnd.randint(0, 99)}"),
                              "status": {"phase": "Running", "podIP": f"10.{rnd.randint(0,255)}.{rnd.randint(0,255)}.{rnd.randint(1,254)}"}})
            items.append({"apiVersion": "v1", "kind": "Service", "metadata": meta(app, ns, labels),
                          "spec": {"type": "LoadBalancer" if bad else "ClusterIP", "selector": labels, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    items = items[:n]
    with open(out, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}, f)

if __name__ == "__main__":
    main()
