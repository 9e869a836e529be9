#!/usr/bin/env python3
"""deploy/ENVIRONMENT.md -> .env.example.

ENVIRONMENT.md is the source: one `## Section` per service (or group), a `Services: a, b` line,
and a table `| Variable | Default | Secret | Description |`. This module parses it (envcheck.py
uses the parser too) and renders .env.example from it.

  python3 deploy/tools/envdoc.py --write   # regenerate .env.example
  python3 deploy/tools/envdoc.py --check   # exit 1 when .env.example is out of date
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "deploy" / "ENVIRONMENT.md"
EXAMPLE = ROOT / ".env.example"


@dataclasses.dataclass
class Var:
    name: str
    default: str  # cell text, markdown
    secret: str  # "no", "yes", "yes (env only)"
    description: str
    section: str
    line: int

    @property
    def file_variant(self) -> bool:
        """Whether NAME_FILE is also accepted."""
        return self.secret.strip().lower() == "yes"

    @property
    def required(self) -> bool:
        return self.default.strip().lower().startswith("required")


@dataclasses.dataclass
class Section:
    title: str
    services: list
    vars: list


class DocError(Exception):
    pass


def _cells(line: str) -> list:
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")):
        return []
    # split on | not escaped as \|
    parts = re.split(r"(?<!\\)\|", line[1:-1])
    return [p.strip().replace("\\|", "|") for p in parts]


def parse(text: str) -> list:
    sections, cur, header = [], None, None
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("## "):
            cur = Section(raw[3:].strip(), [], [])
            sections.append(cur)
            header = None
            continue
        if cur is None:
            continue
        if raw.startswith("Services:"):
            rest = raw.split(":", 1)[1].strip()
            cur.services = [] if rest.lower().startswith("none") else [s.strip() for s in rest.split(",") if s.strip()]
            continue
        cells = _cells(raw)
        if not cells:
            header = None if not raw.strip().startswith("|") else header
            continue
        if header is None:
            header = [c.lower() for c in cells]
            want = ["variable", "default", "secret", "description"]
            if header != want:
                raise DocError(f"ENVIRONMENT.md:{n}: table header must be | Variable | Default | Secret | Description |")
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        if len(cells) != 4:
            raise DocError(f"ENVIRONMENT.md:{n}: expected 4 cells, got {len(cells)}")
        m = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if not m:
            raise DocError(f"ENVIRONMENT.md:{n}: the Variable cell must be one `NAME` in backticks, got {cells[0]!r}")
        secret = cells[2].lower()
        if secret not in ("no", "yes", "yes (env only)"):
            raise DocError(f"ENVIRONMENT.md:{n}: Secret must be no, yes or yes (env only), got {cells[2]!r}")
        if not cells[3]:
            raise DocError(f"ENVIRONMENT.md:{n}: {m.group(1)} has no description")
        cur.vars.append(Var(m.group(1), cells[1], secret, cells[3], cur.title, n))
    seen = {}
    for s in sections:
        for v in s.vars:
            if v.name in seen:
                raise DocError(f"ENVIRONMENT.md:{v.line}: {v.name} is documented twice (also line {seen[v.name]})")
            seen[v.name] = v.line
    return [s for s in sections if s.vars]


def load(path: Path = DOC) -> list:
    return parse(path.read_text(encoding="utf-8"))


def documented(sections) -> dict:
    """NAME -> Var, with NAME_FILE entries for `yes` secrets."""
    out = {}
    for s in sections:
        for v in s.vars:
            out[v.name] = v
            if v.file_variant:
                out[v.name + "_FILE"] = v
    return out


def _plain(md: str) -> str:
    return re.sub(r"`([^`]*)`", r"\1", md).replace("\\|", "|")


def _example_value(v: Var):
    """(value, commented) for the .env.example line."""
    if v.required:
        return "", False
    m = re.fullmatch(r"`([^`]*)`", v.default.strip())
    return (m.group(1) if m else ""), True


def render(sections) -> str:
    out = [
        "# flexcord configuration. Copy to .env and fill in what you use.",
        "#",
        "# GENERATED from deploy/ENVIRONMENT.md by `python3 deploy/tools/envdoc.py --write`:",
        "# edit that file, not this one (deploy/validate.sh fails when they differ).",
        "#",
        "# SANDBOX: leave every credential below empty (DISCORD_BOT_TOKEN, TWILIO_ACCOUNT_SID, ...) and",
        "# `make run` starts the local sandbox with the Discord and Twilio emulators: no account needed.",
        "# REAL DISCORD AND TWILIO: fill in the uncommented variables (marked required), then",
        "# `make run` or `docker compose up -d` (see deploy/README.md).",
        "#",
        "# Lines starting with '#' show the default; uncomment to change it. An empty value means unset.",
        "# [secret] values must never be committed; NAME_FILE=/path/to/file may be used instead of NAME.",
    ]
    for s in sections:
        title = s.title
        who = ", ".join(s.services) if s.services else "not read by the services"
        out += ["", "# " + "=" * 94, f"# {title}  ({who})", "# " + "=" * 94]
        for v in s.vars:
            tags = []
            if v.required:
                tags.append("required")
            if v.secret == "yes":
                tags.append("secret, or " + v.name + "_FILE")
            elif v.secret.startswith("yes"):
                tags.append("secret")
            desc = _plain(v.description)
            default = _plain(v.default)
            line = "# " + desc
            if not v.required:
                line += f" Default: {default}."
            if tags:
                line += " [" + "; ".join(tags) + "]"
            out.append("")
            out += _wrap(line)
            value, commented = _example_value(v)
            out.append(("# " if commented else "") + f"{v.name}={value}")
    return "\n".join(out) + "\n"


def _wrap(line: str, width: int = 100) -> list:
    words, lines, cur = line[2:].split(" "), [], "#"
    for w in words:
        if len(cur) + 1 + len(w) > width and cur != "#":
            lines.append(cur)
            cur = "#"
        cur += " " + w
    lines.append(cur)
    return lines


def main(argv) -> int:
    mode = argv[1] if len(argv) > 1 else "--check"
    try:
        text = render(load())
    except DocError as e:
        print(f"envdoc: {e}", file=sys.stderr)
        return 1
    if mode == "--write":
        EXAMPLE.write_text(text, encoding="utf-8")
        print(f"envdoc: wrote {EXAMPLE.relative_to(ROOT)}")
        return 0
    if mode == "--check":
        current = EXAMPLE.read_text(encoding="utf-8") if EXAMPLE.exists() else ""
        if current != text:
            print(
                "envdoc: .env.example is out of date with deploy/ENVIRONMENT.md; "
                "run `python3 deploy/tools/envdoc.py --write` and commit both.",
                file=sys.stderr,
            )
            return 1
        print("envdoc: .env.example matches deploy/ENVIRONMENT.md")
        return 0
    if mode == "--print":
        sys.stdout.write(text)
        return 0
    print("usage: envdoc.py [--check|--write|--print]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
