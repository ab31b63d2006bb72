#!/usr/bin/env python3
"""Plots for bench/RESULTS.md from the Markdown outputs kept in bench/out/
by bench/run_all.sh. Needs matplotlib:

    python3 -m venv bench/.venv && bench/.venv/bin/pip install matplotlib
    bench/.venv/bin/python bench/plot.py      # writes bench/results.png
"""
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")


def table(path):
    """Rows of the first benchmark table: (setup, load, SET ops/s, GET ops/s)."""
    rows = []
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and re.match(r"-c \d+ -P \d+", cells[1]) and "ratio" not in cells[0]:
            try:
                rows.append((cells[0], cells[1], float(cells[2]), float(cells[5])))
            except ValueError:
                pass
    return rows


def bars(ax, rows, title):
    loads = list(dict.fromkeys(r[1] for r in rows))
    setups = list(dict.fromkeys(r[0] for r in rows))
    width = 0.8 / len(setups)
    for i, s in enumerate(setups):
        for j, test in enumerate(("SET", "GET")):
            xs = [k * 2 + j + i * width for k in range(len(loads))]
            ys = [next((r[2 + j] for r in rows if r[0] == s and r[1] == ld), 0) for ld in loads]
            ax.bar(xs, ys, width, label=s if j == 0 else None, color=f"C{i}", alpha=1 if j == 0 else 0.55)
    ax.set_xticks([k * 2 + j + 0.4 - width / 2 for k in range(len(loads)) for j in (0, 1)])
    ax.set_xticklabels([f"{t}\n{ld}" for ld in loads for t in ("SET", "GET")], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ops/s (log)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def latency(ax, path):
    with open(path) as f:
        head = f.readline().split()
        t_trig, t_built = float(head[2]), float(head[4])
        pts = [tuple(map(float, line.split())) for line in f if line.strip()]
    t0 = pts[0][0]
    ax.scatter([w - t0 for w, _ in pts], [us / 1000 for _, us in pts], s=2)
    ax.axvspan(t_trig - t0, t_built - t0, color="orange", alpha=0.3, label="RAFTCACHE SNAPSHOT -> built")
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("SET latency ms (log)")
    ax.set_title("1 node, 1M keys, -c 1 -P 1 writes; snapshot at 1/3", fontsize=9)
    ax.legend(fontsize=7)


def main():
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    bars(axes[0], table(os.path.join(OUT, "compare.md")), "single node: raftcache vs redis")
    bars(axes[1], table(os.path.join(OUT, "cluster_compare.md")), "3 nodes: raftcache vs redis primary + 2 replicas")
    latency(axes[2], os.path.join(OUT, "snapshot_lat.txt"))
    fig.tight_layout()
    dst = os.path.join(HERE, "results.png")
    fig.savefig(dst, dpi=110)
    print(dst)


if __name__ == "__main__":
    main()
