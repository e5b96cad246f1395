#!/usr/bin/env python3
"""Summarise a trace of scripts/dev/cuda_ktrace.cpp:  cuda_ktrace_summary.py TRACE MARKER STEPS
Over the last STEPS decode steps (a step starts at the kernel whose name contains MARKER, e.g. embed_kernel),
per kernel name and grid: launches per step, mean duration (from its start: PDL launches it early, waiting),
exclusive time per step (end - max(start, the latest end before it): what the step would lose without it) and
idle gap before it."""
import sys, collections, subprocess
path, last, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []
for line in open(path):
    n, s, e, g, b = line.rstrip("\n").split("\t")
    rows.append((int(s), int(e), n, int(g), int(b)))
rows.sort()
names = sorted({r[2] for r in rows})
try:
    dem = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    m = dict(zip(names, dem))
    rows = [(s, e, m.get(n, n), g, b) for s, e, n, g, b in rows]
except Exception:
    pass
ends = [i for i, r in enumerate(rows) if last in r[2]]
if len(ends) < steps + 1:
    print("too few steps", len(ends)); sys.exit(1)
lo, hi = ends[-steps - 1], ends[-1]
sel = rows[lo:hi]
wall = sel[-1][1] - sel[0][0]
print(f"{steps} steps, {len(sel)} kernels, wall {wall/1e3/steps:.1f} us per step")
agg = collections.defaultdict(lambda: [0, 0, 0, 0])
prev_end = sel[0][0]
for s, e, n, g, b in sel:
    key = (n.replace("kinfer::cuda::", "").replace("(anonymous namespace)::", "")[:70], g, b)
    a = agg[key]
    a[0] += 1; a[1] += e - s
    excl = max(0, e - max(s, prev_end))
    a[2] += excl
    a[3] += max(0, s - prev_end)  # idle gap before it
    prev_end = max(prev_end, e)
tot = sum(a[2] + a[3] for a in agg.values())
print(f"{'kernel':70} {'grid':>6} {'blk':>4} {'n/step':>6} {'mean us':>8} {'excl us/step':>12} {'gap us/step':>11}")
for key, a in sorted(agg.items(), key=lambda kv: -kv[1][2]):
    print(f"{key[0]:70} {key[1]:6d} {key[2]:4d} {a[0]/steps:6.1f} {a[1]/a[0]/1e3:8.2f} {a[2]/steps/1e3:12.1f} {a[3]/steps/1e3:11.1f}")
print(f"sum excl+gap per step {tot/steps/1e3:.1f} us")
