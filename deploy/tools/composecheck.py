#!/usr/bin/env python3
"""Checks docker-compose.yml beyond the Compose Specification schema.

  composecheck.py docker-compose.yml

Rules: every service has a healthcheck and a restart policy; the five flexcord services each run
their binary, read `env_file: .env`, use one image built from deploy/Dockerfile, wait for a
healthy NATS, set ADMIN_ADDR to their admin port and probe GET /readyz on it, run one replica,
and reach NATS through a service of this file; depends_on targets, named volumes and bind-mount
sources exist; case-service's SQLite file is on a volume.
"""

from __future__ import annotations

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
RESTART = {"always", "unless-stopped", "on-failure"}


def _interp_default(value: str) -> str:
    """`${VAR:-default}` -> default (what compose uses when .env leaves VAR unset)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)


def check(data: dict, root: Path) -> list:
    errs = []
    services = data.get("services") or {}
    volumes = set((data.get("volumes") or {}).keys())
    images, seen = set(), set()
    for name, s in services.items():
        obj = f"service {name}"
        hc = s.get("healthcheck") or {}
        if not hc.get("test") or hc.get("disable"):
            errs.append(f"{obj}: no healthcheck")
        if s.get("restart") not in RESTART:
            errs.append(f"{obj}: restart policy must be one of {sorted(RESTART)}, got {s.get('restart')!r}")
        deps = s.get("depends_on") or {}
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            if dep not in services:
                errs.append(f"{obj}: depends_on {dep!r}, which is not a service")
        for v in s.get("volumes", []) or []:
            src = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                if not (root / src).exists():
                    errs.append(f"{obj}: bind mount source {src} does not exist")
            elif src and src not in volumes:
                errs.append(f"{obj}: volume {src} is not declared under volumes:")

        cmd = s.get("command") or []
        cmd = cmd.split() if isinstance(cmd, str) else cmd
        binary = Path(cmd[0]).name if cmd else ""
        if binary not in ADMIN_PORTS:
            continue
        seen.add(binary)
        env_file = s.get("env_file")
        env_files = [env_file] if isinstance(env_file, str) else [e if isinstance(e, str) else e.get("path") for e in env_file or []]
        if ".env" not in env_files:
            errs.append(f"{obj}: must read env_file: .env")
        images.add(s.get("image"))
        build = s.get("build") or {}
        dockerfile = build.get("dockerfile") if isinstance(build, dict) else None
        if not dockerfile or not (root / (build.get("context") or ".") / dockerfile).exists():
            errs.append(f"{obj}: must build from deploy/Dockerfile (build.dockerfile)")
        nats_dep = (deps.get("nats") or {}) if isinstance(deps, dict) else {}
        if nats_dep.get("condition") != "service_healthy":
            errs.append(f"{obj}: must depend on nats with condition service_healthy")
        env = s.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env if "=" in e)
        want = ADMIN_PORTS[binary]
        if not str(env.get("ADMIN_ADDR", "")).endswith(f":{want}"):
            errs.append(f"{obj}: environment ADMIN_ADDR must end in :{want}")
        test = " ".join(hc.get("test") or []) if isinstance(hc.get("test"), list) else str(hc.get("test", ""))
        if f"127.0.0.1:{want}/readyz" not in test:
            errs.append(f"{obj}: healthcheck must GET http://127.0.0.1:{want}/readyz")
        host = urlparse(str(env.get("NATS_URL", ""))).hostname
        if host not in services:
            errs.append(f"{obj}: NATS_URL must name a service of this file, got {env.get('NATS_URL')!r}")
        if str(env.get("INSTANCE_COUNT", "1")) != "1" or ((s.get("deploy") or {}).get("replicas") or 1) != 1:
            errs.append(f"{obj}: one replica per service in compose (INSTANCE_COUNT=1)")
        if binary == "case-service":
            url = _interp_default(str(env.get("DATABASE_URL", "")))
            m = re.match(r"sqlite://(/[^?]*)", url)
            mounts = [v.split(":")[1] for v in s.get("volumes", []) or [] if isinstance(v, str) and ":" in v]
            if not m or not any(m.group(1).startswith(p.rstrip("/") + "/") for p in mounts):
                errs.append(f"{obj}: the default DATABASE_URL must be a SQLite file on a mounted volume, got {url!r}")
    for missing in sorted(set(ADMIN_PORTS) - seen):
        errs.append(f"no service runs {missing}")
    if len(images) > 1:
        errs.append(f"the flexcord services use different images: {sorted(map(str, images))}")
    return errs


def main(argv=None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    path = Path(argv[0] if argv else "docker-compose.yml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errs = check(data, path.resolve().parent)
    for e in errs:
        print(f"composecheck: ERROR: {e}", file=sys.stderr)
    if errs:
        return 1
    print(f"composecheck: {path.name}: {len(data.get('services') or {})} services, rules ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
