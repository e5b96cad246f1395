#!/usr/bin/env python3
"""Graph-level trace: per launch GPU time and the idle gap before the next launch (median of the last N)."""
import sys, statistics
rows = sorted((int(l.split("\t")[1]), int(l.split("\t")[2])) for l in open(sys.argv[1]) if l.startswith("GRAPH"))
n = int(sys.argv[2]); rows = rows[-n - 1:]
dur = [e - s for s, e in rows[:-1]]
gap = [rows[i + 1][0] - rows[i][1] for i in range(len(rows) - 1)]
print(f"graphs {len(rows)}: GPU per step median {statistics.median(dur)/1e3:.1f} us, gap median {statistics.median(gap)/1e3:.1f} us (p10 {sorted(gap)[len(gap)//10]/1e3:.1f}, p90 {sorted(gap)[9*len(gap)//10]/1e3:.1f})")
