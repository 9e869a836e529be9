#!/usr/bin/env python3
"""Checks that every environment variable the services read is documented and deployable.

  envcheck.py [--k8s NAME=rendered.yaml ...] [--strict-k8s NAME ...] [--compose docker-compose.yml]

Errors (exit 1):
  * a variable read in services/*/src (see rustenv.py) is not in deploy/ENVIRONMENT.md;
  * deploy/k8s or docker-compose.yml sets a variable that ENVIRONMENT.md does not document
    (a typo, or a variable nobody reads);
  * a rendered kustomization named with --strict-k8s (an overlay meant to be deployed) leaves a
    `required` variable of a service unset or empty (NAME and NAME_FILE both count);
  * a rendered kustomization does not define a `required` variable at all, even empty (so the
    operator sees it in the ConfigMap).
Warnings: documented variables that no code reads (services under construction, or stale docs).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envdoc  # noqa: E402
import rustenv  # noqa: E402

SERVICES = ["discord-ingress", "bot-router", "twilio-egress", "webhook-receiver", "case-service"]


def k8s_env(docs: list) -> dict:
    """service -> {VAR: value or None (from a Secret/fieldRef)} for the flexcord containers."""
    configmaps = {d["metadata"]["name"]: (d.get("data") or {}) for d in docs if d.get("kind") == "ConfigMap"}
    out = {}
    for d in docs:
        if d.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            continue
        spec = d["spec"]
        if d["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        for c in spec["template"]["spec"].get("containers", []):
            cmd = (c.get("command") or c.get("args") or [""])[0]
            service = Path(cmd).name
            if service not in SERVICES:
                continue
            env = out.setdefault(service, {})
            for ef in c.get("envFrom", []) or []:
                ref = ef.get("configMapRef")
                if ref and ref.get("name") in configmaps:
                    for k, v in configmaps[ref["name"]].items():
                        env[k] = v
                elif ref is not None:
                    raise SystemExit(f"envcheck: {d['kind']}/{d['metadata']['name']} loads ConfigMap {ref.get('name')!r}, not in the render")
            for e in c.get("env", []) or []:
                env[e["name"]] = e.get("value") if "valueFrom" not in e else "<from valueFrom>"
    return out


def compose_env(path: Path) -> tuple:
    """({service: {VAR: value}}, {interpolated VAR: first line})."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    out = {}
    for name, svc in (data.get("services") or {}).items():
        cmd = svc.get("command") or [""]
        cmd = cmd.split()[0] if isinstance(cmd, str) else cmd[0]
        if Path(cmd).name not in SERVICES:
            continue
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        out[Path(cmd).name] = dict(env)
    interp = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", line):
            interp.setdefault(m.group(1), n)
    return out, interp


def suggestion(var: str) -> str:
    secret = "yes" if re.search(r"TOKEN|SECRET|PASSWORD|KEY$", var) else "no"
    return f"| `{var}` | <default> | {secret} | <what it does> |"


def check(code_reads: list, sections: list, k8s: dict, strict: set, compose: tuple | None):
    errors, warnings = [], []
    doc = envdoc.documented(sections)
    read_names = {}
    for r in code_reads:
        read_names.setdefault(r.var, []).append(f"{r.file}:{r.line}")

    # 1. read but not documented
    missing = sorted(v for v in read_names if v not in doc)
    for v in missing:
        base = v[: -len("_FILE")] if v.endswith("_FILE") else None
        if base in read_names and base in missing:
            continue  # reported with its base variable: a `yes` row covers NAME_FILE
        where = ", ".join(sorted(set(read_names[v]))[:3])
        row = suggestion(v)
        if v + "_FILE" in read_names:
            v, row = f"{v} (and {v}_FILE)", row.replace("| no |", "| yes |")
        errors.append(f"{v} is read by the code ({where}) but not documented in deploy/ENVIRONMENT.md; add a row such as:\n      {row}")

    # 2. set by a deployment but not documented
    for name, services in k8s.items():
        for service, env in sorted(services.items()):
            for var in sorted(env):
                if var not in doc:
                    errors.append(f"deploy/k8s ({name}) sets {var} for {service}, but deploy/ENVIRONMENT.md does not document it (typo? no service reads it)")
    if compose is not None:
        services, interp = compose
        for service, env in sorted(services.items()):
            for var in sorted(env):
                if var not in doc:
                    errors.append(f"docker-compose.yml sets {var} for {service}, but deploy/ENVIRONMENT.md does not document it")
        for var, line in sorted(interp.items()):
            if var not in doc:
                errors.append(f"docker-compose.yml:{line} interpolates ${{{var}}}, which deploy/ENVIRONMENT.md does not document")

    # 3. required variables in kustomizations
    for name, services in k8s.items():
        for s in sections:
            for v in s.vars:
                if not v.required:
                    continue
                for service in s.services:
                    if service not in services:
                        continue
                    env = services[service]
                    names = [v.name] + ([v.name + "_FILE"] if v.file_variant else [])
                    present = [n for n in names if n in env]
                    if not present:
                        errors.append(f"deploy/k8s ({name}): {service} needs {v.name} (required) but neither "
                                      f"{' nor '.join(names)} is set, not even empty in flexcord-config")
                    elif name in strict and not any(env[n] not in (None, "") for n in present):
                        errors.append(f"deploy/k8s ({name}): {service} needs {v.name} (required) but it is empty; set it in the overlay")

    # 4. documented but not read
    compose_only = {v.name for s in sections if not s.services for v in s.vars}
    unread = sorted(v.name for s in sections for v in s.vars if v.name not in read_names and v.name not in compose_only)
    if unread:
        warnings.append("documented in deploy/ENVIRONMENT.md but read by no code in services/*/src "
                        "(a service not written yet, or a stale row): " + ", ".join(unread))
    return errors, warnings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(envdoc.ROOT))
    ap.add_argument("--k8s", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--strict-k8s", action="append", default=[], metavar="NAME")
    ap.add_argument("--compose")
    args = ap.parse_args(argv)
    root = Path(args.root)

    dirs = sorted(p.parent for p in root.glob("services/*/Cargo.toml"))
    scan = rustenv.scan_dirs(dirs, root)
    try:
        sections = envdoc.load(root / "deploy" / "ENVIRONMENT.md")
    except envdoc.DocError as e:
        print(f"envcheck: {e}", file=sys.stderr)
        return 1
    k8s = {}
    for spec in args.k8s:
        name, _, path = spec.partition("=")
        docs = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d]
        k8s[name] = k8s_env(docs)
    compose = compose_env(Path(args.compose)) if args.compose else None

    errors, warnings = check(scan.reads, sections, k8s, set(args.strict_k8s), compose)
    code_vars = {r.var for r in scan.reads}
    print(f"envcheck: {len(code_vars)} variables read in services/*/src, "
          f"{sum(len(s.vars) for s in sections)} documented, {len(k8s)} kustomization render(s)"
          + (", docker-compose.yml" if compose else ""))
    for f, line, text in scan.dynamic:
        print(f"envcheck: note: {f}:{line} reads a variable whose name is computed ({text}); check it by hand")
    for w in warnings:
        print(f"envcheck: warning: {w}")
    for e in errors:
        print(f"envcheck: ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"envcheck: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print("envcheck: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
