#!/usr/bin/env python3
"""Checks deploy/Dockerfile against the repository (what can be checked without a Docker engine).

  dockercheck.py [--root .]

Rules: the SERVICES build argument lists exactly the workspace packages under services/ that have
a src/main.rs; every COPY source (outside --from) exists and is not excluded by .dockerignore;
no workspace member, Cargo.toml or Cargo.lock is excluded (cargo needs them all); the build uses
`cargo build --release --locked`; the final stage runs as a non-root numeric user and sets KB_DIR
to the directory the articles are copied to.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from pathlib import Path


def instructions(text: str) -> list:
    """[(line, INSTRUCTION, args)] with continuations joined and comments dropped."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    return out


def _pattern_regex(p: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over relative paths."""
    p = p.strip().lstrip("/")
    rx, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):
            rx, i = rx + "(?:.*/)?", i + 3
        elif p.startswith("**", i):
            rx, i = rx + ".*", i + 2
        elif p[i] == "*":
            rx, i = rx + "[^/]*", i + 1
        elif p[i] == "?":
            rx, i = rx + "[^/]", i + 1
        else:
            rx, i = rx + re.escape(p[i]), i + 1
    return re.compile("^" + rx + "$")


def ignored(path: str, patterns: list) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent excludes it."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        rx = _pattern_regex(pat[1:] if neg else pat)
        if any(rx.match(p) for p in prefixes):
            result = not neg
    return result


def check(root: Path) -> list:
    errs = []
    dockerfile = root / "deploy" / "Dockerfile"
    ins = instructions(dockerfile.read_text(encoding="utf-8"))
    di = root / ".dockerignore"
    patterns = [l.strip() for l in di.read_text(encoding="utf-8").splitlines() if l.strip() and not l.lstrip().startswith("#")] if di.exists() else []

    bins = sorted(p.parent.parent.name for p in root.glob("services/*/src/main.rs"))
    args = {}
    for line, word, rest in ins:
        if word == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k.strip()] = shlex.split(v)[0] if v.strip() else ""
    declared = sorted(args.get("SERVICES", "").split())
    if declared != bins:
        errs.append(f"deploy/Dockerfile: ARG SERVICES={' '.join(declared)!r} but the service binaries are {' '.join(bins)!r}")
    for b in bins:
        name = tomllib.loads((root / "services" / b / "Cargo.toml").read_text())["package"]["name"]
        if name != b:
            errs.append(f"services/{b}: package {name!r} differs from its directory; the Dockerfile copies target/release/<package>")

    stages = [i for i, (_, w, _) in enumerate(ins) if w == "FROM"]
    for line, word, rest in ins:
        if word not in ("COPY", "ADD"):
            continue
        toks = shlex.split(rest)
        if any(t.startswith("--from") for t in toks):
            continue
        srcs = [t for t in toks if not t.startswith("--")][:-1]
        for s in srcs:
            if s in (".", "./"):
                continue
            if not (root / s).exists():
                errs.append(f"deploy/Dockerfile:{line}: COPY source {s} does not exist")
            elif ignored(s, patterns):
                errs.append(f"deploy/Dockerfile:{line}: COPY source {s} is excluded by .dockerignore")

    ws = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]
    needed = ["Cargo.toml", "Cargo.lock"] + [f"{m}/Cargo.toml" for m in ws.get("members", [])] + [f"{m}/src" for m in ws.get("members", [])]
    for p in needed:
        if ignored(p, patterns):
            errs.append(f".dockerignore excludes {p}, which cargo needs in the build context")

    runs = " ".join(rest for _, w, rest in ins if w == "RUN")
    if not re.search(r"cargo build --release --locked", runs):
        errs.append("deploy/Dockerfile: the build must run `cargo build --release --locked`")

    final = ins[stages[-1]:] if stages else []
    users = [rest for _, w, rest in final if w == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        errs.append("deploy/Dockerfile: the final stage must switch to a numeric non-root USER (Kubernetes runAsNonRoot)")
    if any("cargo" in rest for _, w, rest in final if w == "RUN"):
        errs.append("deploy/Dockerfile: the final stage must not run cargo (runtime image only)")
    kb_copy = [shlex.split(rest)[-1] for _, w, rest in final if w == "COPY" and "knowledge-base/articles" in rest]
    kb_env = re.search(r"KB_DIR=(\S+)", " ".join(rest for _, w, rest in final if w == "ENV"))
    if not kb_copy or not kb_env or kb_env.group(1) != kb_copy[0]:
        errs.append("deploy/Dockerfile: the final stage must copy the knowledge-base articles and set KB_DIR to that directory")
    return errs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    args = ap.parse_args(argv)
    errs = check(Path(args.root))
    for e in errs:
        print(f"dockercheck: ERROR: {e}", file=sys.stderr)
    if errs:
        return 1
    print("dockercheck: deploy/Dockerfile and .dockerignore agree with the workspace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
