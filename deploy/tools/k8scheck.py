#!/usr/bin/env python3
"""Checks the rules of a rendered flexcord kustomization that a schema cannot express.

  k8scheck.py --secret-template deploy/k8s/secret.template.yaml NAME=rendered.yaml ...

Rules (each failure names the object):
  * every container has liveness and readiness probes, CPU and memory requests, a memory limit
    and the restricted security context (non-root, read-only root, no privilege escalation);
  * flexcord containers: ADMIN_ADDR on the service's admin port, readiness = GET /readyz and
    liveness = GET /healthz on that port; all run the same image;
  * every Deployment/StatefulSet has a PodDisruptionBudget selecting its pods; every Service
    selects pods and its target ports exist;
  * ordered consumers (discord-ingress, bot-router, twilio-egress, case-service): in a
    StatefulSet with podManagementPolicy Parallel, INSTANCE_INDEX=auto and INSTANCE_COUNT equal
    to replicas (at most 8), or in a Deployment of exactly one replica with the Recreate
    strategy; case-service on SQLite has one replica;
  * NATS: a StatefulSet `nats` of 3, NATS_REPLICAS=3, NATS_URL and the cluster routes naming
    the three pods through the governing Service;
  * webhook-receiver and case-service have a TLS Ingress whose host is the host of
    WEBHOOK_PUBLIC_URL / CASE_PUBLIC_URL (https);
  * every Secret key a manifest uses is in the Secret template, and every *_FILE variable points
    at a file the container mounts from that key; every ConfigMap used is in the render.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

ADMIN_PORTS = {
    "discord-ingress": 9081,
    "bot-router": 9082,
    "twilio-egress": 9083,
    "webhook-receiver": 9084,
    "case-service": 9085,
}
CONSUMERS = {"discord-ingress", "bot-router", "twilio-egress", "case-service"}
PARTITIONS = 8
PUBLIC = {"webhook-receiver": "WEBHOOK_PUBLIC_URL", "case-service": "CASE_PUBLIC_URL"}
SECRET_NAME = "flexcord-secrets"
EXTERNAL_CONFIGMAPS = re.compile(r"^flexcord-kb-")


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_number(container: dict, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []) or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def _env(container: dict, configmaps: dict) -> dict:
    env = {}
    for ef in container.get("envFrom", []) or []:
        ref = ef.get("configMapRef")
        if ref and ref.get("name") in configmaps:
            env.update(configmaps[ref["name"]])
    for e in container.get("env", []) or []:
        env[e["name"]] = e.get("value") if "valueFrom" not in e else None
    return env


def check(docs: list, secret_keys: set) -> list:
    errs = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    configmaps = {d["metadata"]["name"]: (d.get("data") or {}) for d in by_kind.get("ConfigMap", [])}
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    services = by_kind.get("Service", [])
    pdbs = by_kind.get("PodDisruptionBudget", [])
    ingresses = by_kind.get("Ingress", [])
    flexcord_images = set()
    service_env = {}

    for w in workloads:
        kind, name = w["kind"], w["metadata"]["name"]
        obj = f"{kind}/{name}"
        spec = w["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not _selects(spec.get("selector", {}).get("matchLabels", {}), labels):
            errs.append(f"{obj}: selector does not match its pod labels")
        if not any(_selects(p["spec"].get("selector", {}).get("matchLabels", {}), labels) for p in pdbs):
            errs.append(f"{obj}: no PodDisruptionBudget selects its pods")
        psc = pod.get("securityContext", {})
        volumes = {v["name"]: v for v in pod.get("volumes", []) or []}
        for vol in volumes.values():
            cm = vol.get("configMap")
            if cm and cm["name"] not in configmaps and not EXTERNAL_CONFIGMAPS.match(cm["name"]):
                errs.append(f"{obj}: volume {vol['name']} uses ConfigMap {cm['name']}, which the render does not define")
            sec = vol.get("secret")
            if sec and sec.get("secretName") == SECRET_NAME:
                for item in sec.get("items", []) or []:
                    if item["key"] not in secret_keys:
                        errs.append(f"{obj}: mounts key {item['key']} of Secret {SECRET_NAME}, missing from the Secret template")
        for c in pod.get("containers", []):
            cobj = f"{obj} container {c['name']}"
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    errs.append(f"{cobj}: no {probe}")
            req = (c.get("resources") or {}).get("requests") or {}
            lim = (c.get("resources") or {}).get("limits") or {}
            for r in ("cpu", "memory"):
                if r not in req:
                    errs.append(f"{cobj}: no {r} request")
            if "memory" not in lim:
                errs.append(f"{cobj}: no memory limit")
            csc = c.get("securityContext") or {}
            if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                errs.append(f"{cobj}: runAsNonRoot is not set")
            if csc.get("readOnlyRootFilesystem") is not True:
                errs.append(f"{cobj}: readOnlyRootFilesystem is not true")
            if csc.get("allowPrivilegeEscalation") is not False:
                errs.append(f"{cobj}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                errs.append(f"{cobj}: capabilities are not dropped (drop: [ALL])")
            for ef in c.get("envFrom", []) or []:
                ref = ef.get("configMapRef")
                if ref and ref.get("name") not in configmaps:
                    errs.append(f"{cobj}: envFrom ConfigMap {ref.get('name')} is not in the render")
            for e in c.get("env", []) or []:
                skr = (e.get("valueFrom") or {}).get("secretKeyRef")
                if skr and skr.get("name") == SECRET_NAME and skr.get("key") not in secret_keys:
                    errs.append(f"{cobj}: env {e['name']} uses key {skr.get('key')} of Secret {SECRET_NAME}, missing from the Secret template")

            cmd = (c.get("command") or [""])[0]
            svc = Path(cmd).name
            if svc not in ADMIN_PORTS:
                continue
            flexcord_images.add(c.get("image"))
            env = _env(c, configmaps)
            service_env[svc] = (w, c, env)
            want = ADMIN_PORTS[svc]
            admin = env.get("ADMIN_ADDR") or ""
            if not admin.endswith(f":{want}"):
                errs.append(f"{cobj}: ADMIN_ADDR must listen on {want}, got {admin!r}")
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                hg = (c.get(probe) or {}).get("httpGet") or {}
                if hg.get("path") != path or _port_number(c, hg.get("port")) != want:
                    errs.append(f"{cobj}: {probe} must be GET {path} on port {want}, got {hg.get('path')} on {hg.get('port')}")
            # *_FILE variables point at files mounted from the Secret
            mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", []) or []}
            for var, value in env.items():
                if not var.endswith("_FILE") or not value:
                    continue
                directory, _, fname = value.rpartition("/")
                vol = volumes.get(mounts.get(directory, ""), {})
                sec = vol.get("secret")
                if sec is None:
                    errs.append(f"{cobj}: {var}={value} but nothing is mounted at {directory}")
                    continue
                items = {i["path"]: i["key"] for i in sec.get("items", []) or []}
                if items and fname not in items:
                    errs.append(f"{cobj}: {var}={value} but the Secret volume at {directory} has no item {fname}")
                key = items.get(fname, fname)
                if sec.get("secretName") == SECRET_NAME and key not in secret_keys:
                    errs.append(f"{cobj}: {var} needs key {key} in the Secret template")

            replicas = spec.get("replicas", 1)
            if svc in CONSUMERS:
                count = env.get("INSTANCE_COUNT") or "1"
                index = env.get("INSTANCE_INDEX") or "0"
                if kind == "StatefulSet":
                    if spec.get("podManagementPolicy") != "Parallel":
                        errs.append(f"{obj}: ordered consumer StatefulSet needs podManagementPolicy: Parallel")
                    if index != "auto":
                        errs.append(f"{obj}: INSTANCE_INDEX must be auto (pod ordinal), got {index!r}")
                    if str(count) != str(replicas):
                        errs.append(f"{obj}: INSTANCE_COUNT={count} but replicas={replicas}; change them together")
                    if replicas > PARTITIONS:
                        errs.append(f"{obj}: {replicas} replicas but only {PARTITIONS} partitions")
                elif replicas != 1 or (spec.get("strategy") or {}).get("type") != "Recreate" or str(count) != "1":
                    errs.append(f"{obj}: an ordered consumer in a Deployment must have exactly 1 replica, "
                                f"INSTANCE_COUNT=1 and strategy Recreate (use a StatefulSet to scale)")
            if svc == "discord-ingress" and replicas != 1 and (env.get("DISCORD_GATEWAY_ENABLED") or "true").lower() in ("1", "true", "yes", "on"):
                errs.append(f"{obj}: discord-ingress holds the gateway connection: exactly 1 replica")
            # DATABASE_URL from a Secret (valueFrom) is the postgres component; unset = SQLite default.
            db_url = env.get("DATABASE_URL", "sqlite:")
            if svc == "case-service" and db_url is not None and db_url.startswith("sqlite:") and replicas != 1:
                errs.append(f"{obj}: case-service on SQLite must run 1 replica (use the postgres component to scale)")

        if kind == "StatefulSet":
            gov = next((s for s in services if s["metadata"]["name"] == spec.get("serviceName")), None)
            if gov is None:
                errs.append(f"{obj}: serviceName {spec.get('serviceName')!r} is not a Service in the render")
            elif gov["spec"].get("clusterIP") != "None" or not _selects(gov["spec"].get("selector", {}), labels):
                errs.append(f"{obj}: governing Service {gov['metadata']['name']} must be headless and select the pods")

    if len(flexcord_images) > 1:
        errs.append(f"the flexcord services run different images: {sorted(flexcord_images)}")
    missing = set(ADMIN_PORTS) - set(service_env)
    if missing:
        errs.append(f"no workload runs {', '.join(sorted(missing))}")

    pods = [(w, w["spec"]["template"]) for w in workloads]
    for s in services:
        sel = s["spec"].get("selector") or {}
        matching = [t for _, t in pods if _selects(sel, t["metadata"].get("labels", {}))]
        if not matching:
            errs.append(f"Service/{s['metadata']['name']}: selects no pods")
            continue
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p.get("port"))
            if not any(_port_number(c, tp) for t in matching for c in t["spec"]["containers"]):
                errs.append(f"Service/{s['metadata']['name']}: targetPort {tp!r} is not a port of its pods")

    # NATS cluster
    nats = next((w for w in by_kind.get("StatefulSet", []) if w["metadata"]["name"] == "nats"), None)
    if nats is None:
        errs.append("no StatefulSet/nats (the JetStream cluster)")
    else:
        n = nats["spec"].get("replicas", 1)
        if n != 3:
            errs.append(f"StatefulSet/nats: 3 replicas expected, got {n}")
        gov = nats["spec"].get("serviceName")
        expected = {f"nats-{i}.{gov}" for i in range(n)}
        for svc, (w, c, env) in service_env.items():
            if env.get("NATS_REPLICAS") != "3":
                errs.append(f"{svc}: NATS_REPLICAS must be 3 on the cluster, got {env.get('NATS_REPLICAS')!r}")
            hosts = {urlparse(u.strip()).hostname for u in (env.get("NATS_URL") or "").split(",") if u.strip()}
            if not expected <= hosts:
                errs.append(f"{svc}: NATS_URL must list {sorted(expected)}, got {sorted(h for h in hosts if h)}")
        conf_name = next((v["configMap"]["name"] for v in nats["spec"]["template"]["spec"].get("volumes", []) if "configMap" in v), None)
        conf = (configmaps.get(conf_name) or {}).get("nats.conf", "")
        routes = set(re.findall(r"nats://([A-Za-z0-9.-]+):6222", conf))
        if routes != expected:
            errs.append(f"ConfigMap/{conf_name}: cluster routes {sorted(routes)} should be {sorted(expected)}")
        if not re.search(r"store_dir\s*:\s*/data", conf):
            errs.append(f"ConfigMap/{conf_name}: JetStream store_dir must be /data (the PVC)")

    # public endpoints
    for svc, var in PUBLIC.items():
        if svc not in service_env:
            continue
        url = service_env[svc][2].get(var) or ""
        u = urlparse(url)
        ing = [i for i in ingresses if any(
            (p.get("backend", {}).get("service") or {}).get("name") == svc
            for r in i["spec"].get("rules", []) for p in (r.get("http") or {}).get("paths", []))]
        if not ing:
            errs.append(f"no Ingress routes to {svc}")
            continue
        hosts = {r.get("host") for i in ing for r in i["spec"].get("rules", [])}
        tls_hosts = {h for i in ing for t in i["spec"].get("tls", []) or [] for h in t.get("hosts", [])}
        if u.scheme != "https" or u.hostname not in hosts:
            errs.append(f"{svc}: {var}={url!r} must be https://<its Ingress host> (hosts: {sorted(h for h in hosts if h)})")
        if not hosts <= tls_hosts:
            errs.append(f"Ingress for {svc}: hosts {sorted(hosts - tls_hosts)} have no TLS")
    return errs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secret-template", required=True)
    ap.add_argument("renders", nargs="+", metavar="NAME=FILE")
    args = ap.parse_args(argv)
    tmpl = yaml.safe_load(Path(args.secret_template).read_text(encoding="utf-8"))
    keys = set((tmpl.get("stringData") or {}).keys()) | set((tmpl.get("data") or {}).keys())
    failed = 0
    for spec in args.renders:
        name, _, path = spec.partition("=")
        docs = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d]
        errs = check(docs, keys)
        for e in errs:
            print(f"k8scheck: ERROR ({name}): {e}", file=sys.stderr)
        if errs:
            failed += 1
        else:
            print(f"k8scheck: {name}: {len(docs)} objects, rules ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
