#!/usr/bin/env python3
"""Sums an `ncu --csv --page raw --print-units base --metrics gpu__time_duration.sum,dram__bytes_read.sum` log
per kernel name: calls, microseconds and GB read per step (the log's totals divided by STEPS), GB/s.
Usage: scripts/dev/sum_ncu_csv.py NCU.csv STEPS"""
import collections
import csv
import sys


def main() -> None:
    path, steps = sys.argv[1], float(sys.argv[2])
    rows = list(csv.reader(open(path, newline="")))
    start = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if start is None:
        sys.exit(f"{path}: no ncu header (Kernel Name) in the log")
    hdr = rows[start]
    kn, tc, bc = hdr.index("Kernel Name"), hdr.index("gpu__time_duration.sum"), hdr.index("dram__bytes_read.sum")
    agg = collections.defaultdict(lambda: [0, 0.0, 0.0])  # calls, ns, bytes
    for r in rows[start + 1:]:
        try:
            ns, b = float(r[tc].replace(",", "")), float(r[bc].replace(",", ""))
        except (IndexError, ValueError):
            continue  # the units row, or a truncated line
        a = agg[r[kn].split("(")[0][:90]]
        a[0] += 1
        a[1] += ns
        a[2] += b
    for name, (n, ns, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"{n / steps:7.1f} calls {ns / 1e3 / steps:9.1f} us {b / 1e9 / steps:7.3f} GB "
              f"{b / max(ns, 1e-9):7.0f} GB/s  {name}")
    print(f"total {sum(a[1] for a in agg.values()) / 1e3 / steps:.1f} us per step")


if __name__ == "__main__":
    main()
