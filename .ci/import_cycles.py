#!/usr/bin/env python3
"""The largest import cycle among the modules (files) of src/: `python3 .ci/import_cycles.py [src] [-v]`.

Reads `crate::` and `super::` paths outside comments and unit tests, maps each to the longest
module it names, and prints the size of the largest strongly connected component (`-v`: its
modules). A folder's mod.rs and its children using each other count as a cycle here; the test
tests/it/layers.rs is the gate, this is the measure quoted in notes.
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] == 'mod': rel = rel[:-1]
            if rel in (['lib'], ['main']): rel = []
            mods[tuple(rel)] = p
def resolve(path):
    # longest module prefix
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods: return tuple(path[:n])
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    text = open(p).read()
    text = re.sub(r'#\[cfg\(test\)\]\s*mod \w+\s*\{.*', '', text, flags=re.S)
    text = '\n'.join(l for l in text.split('\n') if not l.lstrip().startswith('//'))
    for use in re.finditer(r'crate::([A-Za-z_][A-Za-z0-9_:{}, \n]*)', text):
        s = use.group(1)
        base = re.match(r'[A-Za-z0-9_:]*', s).group(0).rstrip(':').split('::')
        if '{' in s[:len('::'.join(base))+3]:
            inner = s[s.index('{')+1:s.index('}')] if '}' in s else ''
            for item in inner.split(','):
                item = item.strip().split('::')
                t = resolve(base + [i for i in item if i and i != 'self'])
                if t and t != m: edges[m].add(t)
        t = resolve(base)
        if t and t != m: edges[m].add(t)
    for sup in re.finditer(r'\bsuper::([A-Za-z0-9_:]+)', text):
        parent = list(m[:-1]) if os.path.basename(p) != 'mod.rs' else list(m[:-1])
        t = resolve(parent + sup.group(1).split('::'))
        if t and t != m: edges[m].add(t)
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
big = max(sccs, key=len)
print(f"{len(mods)} modules; largest cycle: {len(big)} modules")
if '-v' in sys.argv:
    print(sorted('::'.join(x) or 'crate' for x in big))
