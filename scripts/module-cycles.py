#!/usr/bin/env python3
"""Import circles between jit's modules: prints each strongly connected set of
files that reach one another through `crate::`/`super::` paths, leaving out a
module's own submodules (a parent declares its children; that is not a
circle). Exits 1 when there is one.

    python3 scripts/module-cycles.py [--edges]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for dirpath, _, names in os.walk(ROOT):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(dirpath, name)
            files[module_of(path)] = open(path, encoding="utf-8").read()
modules = set(files)


def resolve(here, parts):
    """The longest existing module named by a path from `here`."""
    if parts[0] == "crate":
        target = []
    elif parts[0] in ("super", "self"):
        target = list(here)
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                target = target[:-1]
            parts = parts[1:]
        parts = ["_"] + list(parts)
    else:
        return None
    best = None
    for p in parts[1:]:
        target.append(p)
        if tuple(target) in modules:
            best = tuple(target)
        else:
            break
    return best


PATH = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def edges():
    out = {m: set() for m in modules}
    for here, text in files.items():
        text = re.sub(r"(?s)#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text)  # tests may reach anywhere
        text = re.sub(r"//[^\n]*", "", text)
        found = [m.group(1).split("::") for m in PATH.finditer(text)]
        for g in USE_GROUP.finditer(text):
            base = g.group(1).split("::")
            for item in re.split(r"[,{}\s]+", g.group(2)):
                if item and item != "self":
                    found.append(base + item.split("::"))
        for parts in found:
            target = resolve(here, parts)
            if target is None or target == here:
                continue
            # A module and its own descendants are one unit of code.
            if target[: len(here)] == here or here[: len(target)] == target:
                continue
            out[here].add(target)
    return out


def strongly_connected(graph):
    index, low, stack, on, sets, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            sets.append(group)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [s for s in sets if len(s) > 1]


graph = edges()
if "--edges" in sys.argv:
    for m in sorted(graph):
        for t in sorted(graph[m]):
            print("::".join(m), "->", "::".join(t))
circles = strongly_connected(graph)
name = lambda m: "::".join(m) or "crate"
print(f"{len(modules)} modules, {sum(len(v) for v in graph.values())} imports between them, {len(circles)} circle(s)")
for c in circles:
    print("  circle:", ", ".join(sorted(name(m) for m in c)))
    for a in sorted(c):
        for b in sorted(graph[a] & set(c)):
            print(f"    {name(a)} -> {name(b)}")
sys.exit(1 if circles else 0)
