#!/usr/bin/env python3
"""Reads the ring that KINFER_MMA_PROBE=FILE wrote (kernels/cuda/mma_probe.cuh) and prints, for the launches of
the last decode step in it, where a block's time goes: the launch's span, its blocks per SM at once, and per
block (medians, us) the wait for the previous kernel, the first chunk's arrival, the chunk iterations (arrival
to arrival) with the part spent computing, and the store; summed by launch shape over the step.
  scripts/dev/mma_probe.py FILE [--launches]"""
import statistics
import struct
import sys
from collections import defaultdict

REC = struct.Struct("<4I2Q32I")
STORED = 31


def load(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack_from("<I", data, 0)
    recs = []
    for off in range(4, len(data) - REC.size + 1, REC.size):
        v = REC.unpack_from(data, off)
        launch, block, smid, n_chunks, start, end = v[:6]
        if start == 0 or end == 0:
            continue
        recs.append(dict(launch=launch, block=block, smid=smid, n=n_chunks, start=start, end=end, clk=v[6:]))
    return n, recs


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    path = sys.argv[1]
    n, recs = load(path)
    if not recs:
        print("probe: no records")
        return
    # The last step: each launch number's newest records (a graph replays the same numbers every step).
    newest = defaultdict(int)
    for r in recs:
        newest[r["launch"]] = max(newest[r["launch"]], r["start"])
    by_launch = defaultdict(list)
    for r in recs:
        if r["start"] >= newest[r["launch"]] - 200_000:  # within 200 us of the launch's newest block start
            by_launch[r["launch"]].append(r)
    # Keep launches whose blocks are all there (the ring may have cut the oldest).
    launches = sorted(by_launch.items(), key=lambda kv: min(r["start"] for r in kv[1]))
    t_first = min(min(r["start"] for r in rs) for _, rs in launches)
    print(f"probe: {n} block slots taken, {len(recs)} records in the ring, {len(launches)} launches in the last step")
    shapes = defaultdict(lambda: defaultdict(list))
    rows = []
    prev_end = None
    for lid, rs in launches:
        grid = max(r["block"] for r in rs) + 1
        nch = rs[0]["n"]
        start = min(r["start"] for r in rs)
        end = max(r["end"] for r in rs)
        # Cycles per us from the blocks' own clocks and global times.
        mhz = med([r["clk"][STORED] / ((r["end"] - r["start"]) / 1e3) for r in rs if r["end"] > r["start"]])
        us = lambda c: c / mhz
        # Blocks resident per SM at once: the most overlapping blocks on one SM.
        per_sm = defaultdict(list)
        for r in rs:
            per_sm[r["smid"]].append((r["start"], 1))
            per_sm[r["smid"]].append((r["end"], -1))
        most = 0
        for ev in per_sm.values():
            cur = 0
            for _, d in sorted(ev):
                cur += d
                most = max(most, cur)
        marks = min(nch, 14)
        wait = [us(r["clk"][0]) for r in rs]
        first = [us(r["clk"][1]) for r in rs]
        iters = [us(r["clk"][1 + 2 * (c + 1)] - r["clk"][1 + 2 * c]) for r in rs for c in range(marks - 1)]
        compute = [us(r["clk"][2 + 2 * c] - r["clk"][1 + 2 * c]) for r in rs for c in range(marks)]
        store = [us(r["clk"][STORED] - r["clk"][2 + 2 * (marks - 1)]) for r in rs] if nch <= 14 else []
        life = [(r["end"] - r["start"]) / 1e3 for r in rs]
        # Start of each block after the launch's first block start, for the last-started blocks (the tail).
        late = sorted((r["start"] - start) / 1e3 for r in rs)
        key = (grid, nch)
        shape = shapes[key]
        shape["span"].append((end - start) / 1e3)
        shape["gap"].append((start - prev_end) / 1e3 if prev_end else float("nan"))
        for name, xs in (("wait", wait), ("first", first), ("iter", iters), ("compute", compute),
                         ("store", store), ("life", life)):
            shape[name].extend(xs)
        shape["most"].append(most)
        shape["last_start"].append(late[-1])
        rows.append((lid, grid, nch, (start - t_first) / 1e3, (end - start) / 1e3,
                     (start - prev_end) / 1e3 if prev_end else float("nan"), most, med(first), med(iters),
                     med(compute), med(store), med(life), late[-1], mhz))
        prev_end = end
    if "--launches" in sys.argv:
        print("launch grid chunks  at_us span_us gap_us per_sm first iter compute store life last_start MHz")
        for row in rows:
            print("%6d %4d %6d %6.0f %7.1f %6.1f %6d %5.2f %4.2f %7.2f %5.2f %4.1f %10.1f %4.0f" % row)
    print("shape (blocks, chunks): launches, span us (sum per step, median), gap before, blocks/SM, per block "
          "medians us: wait, first chunk in, iteration, of it computing, store, life; last block's start us")
    for (grid, nch), sh in sorted(shapes.items(), key=lambda kv: -sum(kv[1]["span"])):
        print(f"  {grid:4d} x {nch:2d}: {len(sh['span']):3d} launches, span {sum(sh['span']):7.1f} "
              f"({med(sh['span']):5.1f}), gap {med(sh['gap']):5.1f}, per SM {med(sh['most']):.0f}; "
              f"wait {med(sh['wait']):.2f}, first {med(sh['first']):.2f}, iter {med(sh['iter']):.2f}, "
              f"compute {med(sh['compute']):.2f}, store {med(sh['store']):.2f}, life {med(sh['life']):.2f}; "
              f"last start {med(sh['last_start']):.1f}")


if __name__ == "__main__":
    main()
