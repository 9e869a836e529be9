"""Finds the environment variables Rust code reads, from its source (no compiler needed).

How a read is recognised:

* Base readers: ``std::env::var``/``var_os`` (any path ending in ``env::var``) and the
  flexcord-bus config helpers (``required``, ``optional``, ``parse_or``, ``parse_optional``,
  ``secs_or``, ``millis_or``, ``bool_or``, ``list``, ``secret``, ``required_secret``);
  ``secret``/``required_secret`` also read ``NAME_FILE``.
* Inferred readers: a function or ``let`` closure whose string parameter reaches a reader's name
  argument is itself a reader at that position (iterated to a fixed point), so helpers such as
  ``fn number(lookup, var, default, ..)`` or ``let url = |var: &'static str, ..| get(var)``
  count. A parameter typed ``Fn(&str) -> ..`` (a lookup function, e.g. ``lookup``/``get``) is a
  reader of its first argument. A reader whose body spells ``"{param}_FILE"`` also reads
  ``NAME_FILE``.
* At every call of a reader, the argument at a name position is taken when it is a string
  literal in SCREAMING_SNAKE_CASE, or a ``const`` holding one (``const VAR: &str = "X"``).
* Method readers: a method (``fn name(&self, ..)``) whose string parameter reaches a reader is a
  reader too, and so are method calls of that name (``env.secret("X")``, ``env.parse_or::<u32>("X",
  1)``, whatever the receiver): this is how ``flexcord_bus::config::Env``'s methods (``optional``,
  ``number_in``, ``secret``...) are found, from their bodies (``std::env::var(name)``), with
  ``NAME_FILE`` for the ones that spell ``"{name}_FILE"``. Positions do not count ``self``.
* clap attributes ``env = "NAME"`` count as reads.

Ignored: comments, ``#[cfg(test)]``/``#[test]`` items (and ``#[cfg(test)] mod x;`` files),
compile-time ``env!``/``option_env!``, method calls of methods that are not readers
(``map.get("X")``), and names built at run time (reported separately as dynamic reads so a human
can look).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

VAR_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")

# name -> (name positions, also reads NAME_FILE)
BASE_READERS = {
    "required": ({0}, False),
    "optional": ({0}, False),
    "parse_or": ({0}, False),
    "parse_optional": ({0}, False),
    "secs_or": ({0}, False),
    "millis_or": ({0}, False),
    "bool_or": ({0}, False),
    "list": ({0}, False),
    "secret": ({0}, True),
    "required_secret": ({0}, True),
}
STD_ENV_READERS = {"var", "var_os"}


@dataclasses.dataclass(frozen=True)
class Tok:
    kind: str  # ident, str, char, life, num, punct
    text: str  # for str: the decoded-enough content
    line: int


@dataclasses.dataclass
class Read:
    var: str
    file: str
    line: int
    via: str


@dataclasses.dataclass
class Scan:
    reads: list  # [Read]
    dynamic: list  # [(file, line, text)]

    def names(self):
        return sorted({r.var for r in self.reads})


# --------------------------------------------------------------------------------------------
# Tokenizer


_PUNCT2 = {"::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "..", "+=", "-=", "*=", "/="}


def tokenize(src: str) -> list:
    toks = []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
            continue
        # raw strings r"..", r#".."#, br#".."#, cr".."
        m = re.compile(r'(?:b|c)?r(#*)"').match(src, i)
        if m:
            hashes = m.group(1)
            end = src.find('"' + hashes, m.end())
            end = n if end < 0 else end
            toks.append(Tok("str", src[m.end():end], line))
            line += src.count("\n", i, end)
            i = end + 1 + len(hashes)
            continue
        if c == '"' or (c in "bc" and i + 1 < n and src[i + 1] == '"'):
            j = i + (2 if c != '"' else 1)
            buf = []
            while j < n and src[j] != '"':
                if src[j] == "\\" and j + 1 < n:
                    buf.append(src[j : j + 2])
                    j += 2
                else:
                    buf.append(src[j])
                    j += 1
            text = "".join(buf)
            toks.append(Tok("str", text, line))
            line += src.count("\n", i, j)
            i = j + 1
            continue
        if c == "'" or (c == "b" and i + 1 < n and src[i + 1] == "'"):
            k = i + (1 if c == "'" else 2)
            if k < n and src[k] == "\\":
                j = src.find("'", k + 2)
                j = n if j < 0 else j
                toks.append(Tok("char", src[k:j], line))
                i = j + 1
                continue
            if k + 1 < n and src[k + 1] == "'":
                toks.append(Tok("char", src[k], line))
                i = k + 2
                continue
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(src, k)
            if m:
                toks.append(Tok("life", "'" + m.group(0), line))
                i = m.end()
                continue
            i = k
            continue
        m = re.compile(r"r#([A-Za-z_][A-Za-z0-9_]*)|[A-Za-z_][A-Za-z0-9_]*").match(src, i)
        if m:
            toks.append(Tok("ident", m.group(1) or m.group(0), line))
            i = m.end()
            continue
        if c.isdigit():
            m = re.compile(r"[0-9][0-9A-Za-z_]*(?:\.[0-9][0-9A-Za-z_]*)?").match(src, i)
            toks.append(Tok("num", m.group(0), line))
            i = m.end()
            continue
        two = src[i : i + 2]
        if two in _PUNCT2:
            toks.append(Tok("punct", two, line))
            i += 2
            continue
        toks.append(Tok("punct", c, line))
        i += 1
    return toks


def match_brackets(toks: list) -> dict:
    """Maps the index of every (, [, { to its closer and back."""
    pairs, stack = {}, []
    openers, closers = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}
    for i, t in enumerate(toks):
        if t.kind != "punct":
            continue
        if t.text in openers:
            stack.append(i)
        elif t.text in closers and stack:
            j = stack.pop()
            pairs[j], pairs[i] = i, j
    return pairs


# --------------------------------------------------------------------------------------------
# Structure: test exclusion, functions, closures, consts


def _attr_is_test(toks, start, end) -> bool:
    words = [t.text for t in toks[start:end] if t.kind == "ident"]
    if not words:
        return False
    if words == ["test"] or words[-1:] == ["test"] and len(words) == 2 and words[0] in ("tokio",):
        return True
    return words[0] == "cfg" and "test" in words and "not" not in words


def _item_end(toks, pairs, i) -> int:
    """Index just past the item starting at i (its body's closing brace, or its `;`)."""
    j = i
    while j < len(toks):
        t = toks[j]
        if t.kind == "punct" and t.text in ("(", "["):
            j = pairs.get(j, j) + 1
            continue
        if t.kind == "punct" and t.text == "{":
            return pairs.get(j, len(toks) - 1) + 1
        if t.kind == "punct" and t.text == ";":
            return j + 1
        j += 1
    return len(toks)


def test_ranges(toks, pairs):
    """(excluded index ranges, names of `#[cfg(test)] mod name;` file modules)."""
    ranges, file_mods = [], []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "punct" and t.text == "#" and i + 1 < len(toks) and toks[i + 1].text == "[":
            close = pairs.get(i + 1)
            if close is not None and _attr_is_test(toks, i + 2, close):
                j = close + 1
                # skip further attributes
                while j + 1 < len(toks) and toks[j].text == "#" and toks[j + 1].text == "[":
                    j = pairs.get(j + 1, j + 1) + 1
                end = _item_end(toks, pairs, j)
                words = [x.text for x in toks[j:end] if x.kind == "ident"]
                if words and "mod" in words[:3] and toks[end - 1].text == ";":
                    name = words[words.index("mod") + 1] if words.index("mod") + 1 < len(words) else None
                    if name:
                        file_mods.append(name)
                ranges.append((i, end))
                i = end
                continue
        i += 1
    return ranges, file_mods


def _split_top(toks, pairs, start, end):
    """Splits toks[start:end] at depth-0 commas (also respecting <> nesting)."""
    parts, cur, angle = [], [], 0
    i = start
    while i < end:
        t = toks[i]
        if t.kind == "punct" and t.text in ("(", "[", "{") and i in pairs:
            j = pairs[i]
            cur.extend(range(i, j + 1))
            i = j + 1
            continue
        if t.kind == "punct" and t.text == "<":
            angle += 1
        elif t.kind == "punct" and t.text == ">" and angle > 0:
            angle -= 1
        if t.kind == "punct" and t.text == "," and angle == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(i)
        i += 1
    if cur:
        parts.append(cur)
    return parts


@dataclasses.dataclass
class Param:
    name: str
    type_text: str


@dataclasses.dataclass(eq=False)
class Func:
    name: str
    file: str
    params: list
    body: tuple  # (start, end) token indexes, end exclusive
    generics_text: str
    kind: str  # fn or closure
    parent: object = None  # enclosing Func for closures
    has_self: bool = False  # a method (`self` receiver): called as `.name(..)`


def _param_from(toks, idxs, typed=True) -> Param | None:
    ts = [toks[k] for k in idxs]
    colon = next((k for k, t in enumerate(ts) if t.kind == "punct" and t.text == ":"), None)
    pat = ts if colon is None else ts[:colon]
    idents = [t.text for t in pat if t.kind == "ident" and t.text not in ("mut", "ref")]
    if not idents or idents[-1] == "self":
        return None
    ty = "" if colon is None else " ".join(t.text for t in ts[colon + 1 :])
    return Param(idents[-1], ty)


def _angle_close(toks, j, stop=()) -> int:
    """The index of the `>` closing the `<` at j (len(toks) when there is none before a `stop`)."""
    depth = 0
    for k in range(j, len(toks)):
        if toks[k].text == "<":
            depth += 1
        elif toks[k].text == ">":
            depth -= 1
            if depth == 0:
                return k
        elif toks[k].text in stop:
            break
    return len(toks)


def functions(toks, pairs, file) -> list:
    out = []
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text == "fn" and i + 1 < n and toks[i + 1].kind == "ident":
            name = toks[i + 1].text
            j = i + 2
            generics = ""
            if j < n and toks[j].text == "<":
                k = _angle_close(toks, j)
                generics = " ".join(x.text for x in toks[j : k + 1])
                j = k + 1
            if j >= n or toks[j].text != "(" or j not in pairs:
                continue
            pclose = pairs[j]
            split = _split_top(toks, pairs, j + 1, pclose)
            params = [p for p in (_param_from(toks, idx) for idx in split) if p]
            has_self = bool(split) and any(toks[x].text == "self" for x in split[0])
            k = pclose + 1
            while k < n and toks[k].text not in ("{", ";"):
                k += 1
            if k < n and toks[k].text == "{" and k in pairs:
                where = " ".join(x.text for x in toks[pclose + 1 : k])
                out.append(Func(name, file, params, (k + 1, pairs[k]), generics + " " + where, "fn", has_self=has_self))
        # let NAME = [move] |params| body
        if (
            t.kind == "ident"
            and t.text == "let"
            and i + 3 < n
            and toks[i + 1].kind == "ident"
            and toks[i + 2].text == "="
        ):
            name = toks[i + 1].text
            j = i + 3
            if toks[j].text == "move":
                j += 1
            if j < n and toks[j].text in ("|", "||"):
                if toks[j].text == "||":
                    params, k = [], j + 1
                else:
                    k = j + 1
                    depth = 0
                    while k < n and not (toks[k].text == "|" and depth == 0):
                        if toks[k].text in ("(", "[", "<"):
                            depth += 1
                        elif toks[k].text in (")", "]", ">"):
                            depth -= 1
                        k += 1
                    params = [p for p in (_param_from(toks, idx) for idx in _split_top(toks, pairs, j + 1, k)) if p]
                    k += 1
                # optional `-> Type` before a block body
                if k < n and toks[k].text == "->":
                    while k < n and toks[k].text != "{":
                        k += 1
                if k < n and toks[k].text == "{" and k in pairs:
                    body = (k + 1, pairs[k])
                else:
                    e, depth = k, 0
                    while e < n:
                        x = toks[e]
                        if x.text in ("(", "[", "{") and e in pairs:
                            e = pairs[e] + 1
                            continue
                        if x.text == ";":
                            break
                        e += 1
                    body = (k, e)
                out.append(Func(name, file, params, body, "", "closure"))
    # parents: the innermost fn containing a closure
    fns = [f for f in out if f.kind == "fn"]
    for f in out:
        if f.kind == "closure":
            enclosing = [g for g in fns if g.body[0] <= f.body[0] and f.body[1] <= g.body[1]]
            f.parent = min(enclosing, key=lambda g: g.body[1] - g.body[0]) if enclosing else None
    return out


def consts(toks) -> list:
    """[(index, NAME, value)] for `const|static NAME: &str = "value";`."""
    out = []
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text in ("const", "static") and i + 1 < len(toks) and toks[i + 1].kind == "ident":
            j = i + 2
            while j < len(toks) and j < i + 12 and toks[j].text not in ("=", ";"):
                j += 1
            ty = " ".join(x.text for x in toks[i + 2 : j])
            if j + 2 < len(toks) and toks[j].text == "=" and toks[j + 1].kind == "str" and "str" in ty and toks[j + 2].text == ";":
                out.append((i, toks[i + 1].text, toks[j + 1].text))
    return out


# --------------------------------------------------------------------------------------------
# Analysis


@dataclasses.dataclass
class FileInfo:
    path: str
    toks: list
    pairs: dict
    excluded: list
    funcs: list
    consts: list

    def is_excluded(self, i) -> bool:
        return any(a <= i < b for a, b in self.excluded)


def _is_lookup_type(ty: str, generics: str) -> bool:
    if "Fn" in ty and "str" in ty:
        return True
    # `lookup: F` with `F: Fn(&str) -> ..` in the generics or where clause
    m = re.fullmatch(r"&?\s*(?:dyn\s+|impl\s+)?([A-Z][A-Za-z0-9]*)", ty.strip())
    if m and re.search(re.escape(m.group(1)) + r"\s*:\s*[^,]*Fn\s*\(\s*&", generics):
        return True
    return False


def _open_paren(toks, i):
    """The index of the `(` that calls the identifier at i (`f(`, `f::<T>(`), else None."""
    j = i + 1
    if j + 1 < len(toks) and toks[j].text == "::" and toks[j + 1].text == "<":
        j = _angle_close(toks, j + 1, stop=(";", "{", "}")) + 1
    if j < len(toks) and toks[j].text == "(":
        return j
    return None


def _calls(fi: FileInfo, start: int, end: int):
    """Yields (name, path_prefix, open_paren_index) for plain calls (not methods, not macros)."""
    toks = fi.toks
    for i in range(start, end):
        t = toks[i]
        if t.kind != "ident":
            continue
        op = _open_paren(toks, i)
        if op is None:
            continue
        prev = toks[i - 1] if i > 0 else None
        if prev is not None and prev.kind == "punct" and prev.text == ".":
            continue  # method call
        if prev is not None and prev.kind == "ident" and prev.text in ("fn", "struct", "enum"):
            continue  # definition
        path = []
        k = i - 1
        while k >= 1 and toks[k].text == "::" and toks[k - 1].kind == "ident":
            path.insert(0, toks[k - 1].text)
            k -= 2
        yield t.text, path, op


def _method_calls(fi: FileInfo, start: int, end: int):
    """Yields (name, open_paren_index) for method calls `.name(..)` / `.name::<T>(..)`."""
    toks = fi.toks
    for i in range(max(start, 1), end):
        t = toks[i]
        if t.kind != "ident" or toks[i - 1].text != ".":
            continue
        op = _open_paren(toks, i)
        if op is not None:
            yield t.text, op


def _args(fi: FileInfo, open_idx: int):
    close = fi.pairs.get(open_idx)
    if close is None:
        return []
    return _split_top(fi.toks, fi.pairs, open_idx + 1, close)


def _arg_ident(fi: FileInfo, idxs):
    """The identifier an argument names (`x`, `&x`, `x.as_str()`...), else None."""
    ts = [fi.toks[k] for k in idxs]
    while ts and ts[0].kind == "punct" and ts[0].text in ("&", "*"):
        ts = ts[1:]
    if ts and ts[0].kind == "ident":
        # a path like config::NAME -> NAME
        j = 0
        while j + 2 < len(ts) and ts[j + 1].text == "::" and ts[j + 2].kind == "ident":
            j += 2
        return ts[j].text
    return None


def _arg_literal(fi: FileInfo, idxs):
    ts = [fi.toks[k] for k in idxs]
    while ts and ts[0].kind == "punct" and ts[0].text == "&":
        ts = ts[1:]
    if len(ts) == 1 and ts[0].kind == "str":
        return ts[0].text
    return None


def _is_closure_param(fi: FileInfo, f, op: int, ident: str) -> bool:
    """Whether `ident` is a parameter of an anonymous closure around index op (`|k| ...`)."""
    start = f.body[0] if f is not None else max(0, op - 200)
    toks = fi.toks
    for i in range(op - 1, start, -1):
        if toks[i].kind == "ident" and toks[i].text == ident and toks[i - 1].text in ("|", ","):
            j = i + 1
            if j < len(toks) and toks[j].text in ("|", ",", ":"):
                return True
    return False


class Crate:
    def __init__(self, name: str, files: list):
        self.name = name
        self.files = files  # [FileInfo]


def load_crate(name: str, src_dir: Path) -> Crate:
    infos = {}
    skipped = set()
    paths = sorted(p for p in src_dir.rglob("*.rs"))
    for p in paths:
        src = p.read_text(encoding="utf-8", errors="replace")
        toks = tokenize(src)
        pairs = match_brackets(toks)
        ranges, file_mods = test_ranges(toks, pairs)
        base = p.parent if p.name in ("lib.rs", "main.rs", "mod.rs") else p.parent / p.stem
        for m in file_mods:
            skipped.add(base / f"{m}.rs")
            skipped.add(base / m / "mod.rs")
        infos[p] = FileInfo(str(p), toks, pairs, ranges, functions(toks, pairs, str(p)), consts(toks))
    files = []
    for p, fi in infos.items():
        # a file under a skipped test module directory is a test too
        if p in skipped or any(s.name == "mod.rs" and s.parent in p.parents for s in skipped):
            continue
        files.append(fi)
    return Crate(name, files)


def analyse(crates: list, root: Path | None = None) -> Scan:
    """Finds the reads in `crates` (readers defined in any crate are visible to all)."""
    # reader tables: global by fn name; closures and lookup params resolved per function
    global_readers = {k: (set(v[0]), v[1]) for k, v in BASE_READERS.items()}
    crate_readers = {c.name: {} for c in crates}
    # methods (`fn name(&self, ..)`) are called as `.name(..)` on any receiver: global by name
    method_readers = {}

    def rel(path):
        if root is None:
            return path
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            return path

    def scope_chain(fi, f):
        chain = []
        while f is not None:
            chain.append(f)
            f = f.parent
        return chain

    def local_readers(fi, f, closure_readers):
        """Readers visible inside function f: lookup params and reader closures of f and parents."""
        table = {}
        for g in reversed(scope_chain(fi, f)):
            for p in g.params:
                if _is_lookup_type(p.type_text, g.generics_text):
                    table[p.name] = ({0}, False)
            for (parent, name), val in closure_readers.items():
                if parent is g:
                    table[name] = val
        return table

    def resolve(crate, fi, f, name, path, closure_readers):
        if path and path[-1] == "env" and name in STD_ENV_READERS:
            return ({0}, False)
        if f is not None and not path:
            loc = local_readers(fi, f, closure_readers)
            if name in loc:
                return loc[name]
        if name in crate_readers[crate.name]:
            return crate_readers[crate.name][name]
        if name in global_readers and (not path or path[-1] in ("config",) or name not in ("var", "var_os")):
            return global_readers[name]
        return None

    def calls(crate, fi, start, end, closure_readers, within=None):
        """(name shown, open paren, reader) for every plain and method call that reads."""
        for cname, path, op in _calls(fi, start, end):
            r = resolve(crate, fi, enclosing(fi, op - 1) or within, cname, path, closure_readers)
            if r is not None:
                yield "::".join(path + [cname]), op, r
        for mname, op in _method_calls(fi, start, end):
            r = method_readers.get(mname)
            if r is not None:
                yield "." + mname, op, r

    def enclosing(fi, i):
        best = None
        for g in fi.funcs:
            if g.body[0] <= i < g.body[1] and (best is None or g.body[1] - g.body[0] < best.body[1] - best.body[0]):
                best = g
        return best

    # Fixed point: infer readers from function bodies.
    closure_readers = {}
    changed = True
    rounds = 0
    while changed and rounds < 20:
        changed, rounds = False, rounds + 1
        for crate in crates:
            for fi in crate.files:
                for f in fi.funcs:
                    if fi.is_excluded(f.body[0]):
                        continue
                    names = {p.name: k for k, p in enumerate(f.params)}
                    if not names:
                        continue
                    positions, file_variant = set(), False
                    for _, op, r in calls(crate, fi, *f.body, closure_readers, within=f):
                        args = _args(fi, op)
                        for pos in r[0]:
                            if pos < len(args):
                                ident = _arg_ident(fi, args[pos])
                                if ident in names:
                                    positions.add(names[ident])
                                    file_variant |= r[1]
                    if positions:
                        body_text = " ".join(t.text for t in fi.toks[f.body[0] : f.body[1]] if t.kind == "str")
                        for p in positions:
                            if "{" + f.params[p].name + "}_FILE" in body_text:
                                file_variant = True
                        val = (positions, file_variant)
                        if f.kind == "fn" and f.has_self:
                            old = method_readers.get(f.name)
                            if old is None or not positions <= old[0] or (file_variant and not old[1]):
                                merged = (positions | (old[0] if old else set()), file_variant or (old[1] if old else False))
                                method_readers[f.name] = merged
                                changed = True
                        elif f.kind == "fn":
                            old = crate_readers[crate.name].get(f.name)
                            if old is None or not positions <= old[0] or (file_variant and not old[1]):
                                merged = (positions | (old[0] if old else set()), file_variant or (old[1] if old else False))
                                crate_readers[crate.name][f.name] = merged
                                changed = True
                        else:
                            key = (f.parent, f.name)
                            if closure_readers.get(key) != val:
                                closure_readers[key] = val
                                changed = True
        # pub readers of one crate are callable from the others (e.g. flexcord_bus::config::*)
        for crate in crates:
            for name, val in crate_readers[crate.name].items():
                old = global_readers.get(name)
                if old is None or not val[0] <= old[0] or (val[1] and not old[1]):
                    global_readers[name] = (val[0] | (old[0] if old else set()), val[1] or (old[1] if old else False))
                    changed = True

    def is_reader(g):
        if g.kind == "closure":
            return (g.parent, g.name) in closure_readers
        if g.has_self:
            return g.name in method_readers
        return any(g.name in crate_readers[c.name] for c in crates)

    reads, dynamic = [], []
    for crate in crates:
        for fi in crate.files:
            for shown, op, r in calls(crate, fi, 0, len(fi.toks), closure_readers):
                if fi.is_excluded(op):
                    continue
                f = enclosing(fi, op - 1)
                args = _args(fi, op)
                line = fi.toks[op].line
                for pos in r[0]:
                    if pos >= len(args):
                        continue
                    lit = _arg_literal(fi, args[pos])
                    via = shown
                    if lit is None:
                        ident = _arg_ident(fi, args[pos])
                        if ident is None:
                            continue
                        chain_params = {p.name for g in scope_chain(fi, f) for p in g.params} if f else set()
                        if ident in chain_params or _is_closure_param(fi, f, op, ident):
                            continue  # a reader's own parameter: found at its call sites
                        if f is not None and any(is_reader(g) for g in scope_chain(fi, f)):
                            continue  # e.g. NAME_FILE built inside a reader: covered by its file variant
                        cands = [(k, v) for k, name, v in fi.consts if name == ident and k < op]
                        if cands:
                            lit = max(cands)[1]
                        else:
                            other = [v for c2 in crates for f2 in c2.files for _, name, v in f2.consts if name == ident]
                            if len(set(other)) == 1:
                                lit = other[0]
                        if lit is None:
                            dynamic.append((rel(fi.path), line, f"{via}({ident})"))
                            continue
                        via += f"({ident})"
                    if not VAR_RE.match(lit):
                        continue
                    reads.append(Read(lit, rel(fi.path), line, via))
                    if r[1] and not lit.endswith("_FILE"):
                        reads.append(Read(lit + "_FILE", rel(fi.path), line, via + " [file variant]"))
            # clap: #[arg(env = "NAME")]
            toks = fi.toks
            for i in range(len(toks) - 2):
                if toks[i].kind == "ident" and toks[i].text == "env" and toks[i + 1].text == "=" and toks[i + 2].kind == "str":
                    if not fi.is_excluded(i) and VAR_RE.match(toks[i + 2].text):
                        reads.append(Read(toks[i + 2].text, rel(fi.path), toks[i].line, "clap env"))
            # prefix scans cannot be followed
            for cname, path, op in _calls(fi, 0, len(toks)):
                if cname in ("vars", "vars_os") and path[-1:] == ["env"] and not fi.is_excluded(op):
                    dynamic.append((rel(fi.path), toks[op].line, "::".join(path + [cname]) + "()"))
    return Scan(reads, dynamic)


def crate_name(cargo_toml: Path) -> str:
    m = re.search(r'^\s*name\s*=\s*"([^"]+)"', cargo_toml.read_text(), re.M)
    return m.group(1) if m else cargo_toml.parent.name


def scan_dirs(crate_dirs: list, root: Path | None = None) -> Scan:
    crates = [load_crate(crate_name(d / "Cargo.toml"), d / "src") for d in crate_dirs if (d / "src").is_dir()]
    return analyse(crates, root)


def main(argv):
    root = Path(argv[1]) if len(argv) > 1 else Path(".")
    dirs = sorted(p.parent for p in root.glob("services/*/Cargo.toml"))
    scan = scan_dirs(dirs, root)
    by = {}
    for r in scan.reads:
        by.setdefault(r.var, []).append(f"{r.file}:{r.line}")
    for var in sorted(by):
        print(f"{var}\t{', '.join(sorted(set(by[var]))[:3])}")
    for f, line, text in scan.dynamic:
        print(f"# dynamic: {f}:{line} {text}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
