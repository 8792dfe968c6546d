#!/usr/bin/env python3
"""Checks the library's layering: no module dependency cycle, no import from a higher layer.

usage: layers.py SRC_DIR   (exit 1 with a list of the offending edges, 0 if the tree is clean)

A module is a file (src/a.rs is `a`, src/a/b.rs is `a::b`); an edge is a `crate::` path (or a
`super::` path) in its non-test code, to the longest module it names. The layers, lowest first,
are the top-level folders of src/ (docs/architecture.md); a module may import from its own layer
and the layers below. `error` is the one exception: every layer reports through it, and it may
name the types it reports. The binary (src/bin) sits above everything and is not checked here.
"""
import os
import re
import sys

LAYERS = ["io", "model", "store", "chunks", "tar", "formats", "transport"]
ANYWHERE = {"error"}

src = sys.argv[1] if len(sys.argv) > 1 else "src"
mods = {}
for root, _, files in os.walk(src):
    rel_root = os.path.relpath(root, src)
    if rel_root.split(os.sep)[0] == "bin":
        continue
    for f in files:
        if not f.endswith(".rs") or f == "tests.rs":
            continue
        parts = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts != ["lib"]:
            mods["::".join(parts)] = os.path.join(root, f)


def code_only(text):
    """The text without comments and without #[cfg(test)] modules."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(line.split("//")[0] for line in text.splitlines())
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def resolve(path):
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in mods:
            return cand
    return None


def paths_in(module, text):
    """Module paths a file names, absolute from the crate root."""
    found = set(re.findall(r"\bcrate::((?:\w+::)*\w+)", text))
    for group in re.findall(r"\bcrate::\{([^;]*?)\};", text, flags=re.S):
        for item in group.split(","):
            item = re.sub(r"::\{.*", "", item.strip().split(" as ")[0].strip(), flags=re.S)
            if item:
                found.add(item)
    parent = module.split("::")[:-1]
    for rest in re.findall(r"\bsuper::((?:super::)*(?:\w+::)*\w+)", text):
        base = list(parent)
        while rest.startswith("super::"):
            rest = rest[len("super::"):]
            base = base[:-1]
        found.add("::".join(base + [rest]))
    return found


edges = {}
for m, f in mods.items():
    targets = {resolve(p) for p in paths_in(m, code_only(open(f, encoding="utf-8").read()))}
    edges[m] = {t for t in targets if t and t != m and not m.startswith(t + "::")}

problems = []


def layer(module):
    top = module.split("::")[0]
    return LAYERS.index(top) if top in LAYERS else None


for m in sorted(mods):
    top = m.split("::")[0]
    if top not in LAYERS and top not in ANYWHERE:
        problems.append(f"{m}: in no layer; put it under one of {', '.join(LAYERS)}")
        continue
    for t in sorted(edges[m]):
        if m in ANYWHERE or t.split("::")[0] in ANYWHERE:
            continue
        if layer(t) is not None and layer(m) is not None and layer(t) > layer(m):
            problems.append(f"{m} imports {t}: layer {top} may not use the higher layer {t.split('::')[0]}")

# Cycles: Tarjan's strongly connected components over every edge.
index, low, stack, on_stack, sccs, counter = {}, {}, [], set(), [], [0]


def strongconnect(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in (() if v in ANYWHERE else edges[v]):
        if w not in index:
            strongconnect(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        strongconnect(v)
for comp in sccs:
    inner = [f"{a}->{b}" for a in comp for b in sorted(edges[a]) if b in comp]
    problems.append(f"cycle: {', '.join(comp)} [{'; '.join(inner)}]")

n_edges = sum(len(e) for e in edges.values())
if problems:
    print("\n".join(problems))
    print(f"layering: {len(problems)} problem(s) in {len(mods)} modules, {n_edges} edges")
    sys.exit(1)
print(f"layering: {len(mods)} modules, {n_edges} edges, no cycle, no upward import")
