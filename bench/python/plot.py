#!/usr/bin/env python3
"""plot.py - python_get.json -> python_get.md (figures vs the issue-14 targets) and python_get.png.

    python3 bench/python/plot.py bench/results
"""
import json
import os
import sys

ORDER = ["hzshm.get", "hzshm[k]", "dict.get", "dict[k]", "lmdb", "lmdb txn/get", "official near",
         "official direct", "loop"]


def main(out):
    with open(os.path.join(out, "python_get.json")) as f:
        doc = json.load(f)
    r = doc["results"]
    ns = {s: {n: v["median_ns"] for n, v in r[s].items()} for s in r}
    mins = {s: {n: v["min_ns"] for n, v in r[s].items()} for s in r}
    lines = ["# Python: ns per get (bench/python, one run)", "",
             "%d entries of %d B; %d lookups per pass, median of %d passes (official direct: one pass of "
             "the first 2000 keys). Python %s. Loop overhead included (the empty loop is `loop`)." % (
                 doc["entries"], doc["value_bytes"], doc["lookups"], doc["reps"], doc["python"]), "",
             "| store | hot 1k (ns) | uniform 200k (ns) | min of the passes: hot / uniform |",
             "| --- | ---: | ---: | ---: |"]
    for s in ORDER:
        if s in ns:
            lines.append("| %s | %.0f | %.0f | %.0f / %.0f |" % (s, ns[s]["hot"], ns[s]["uniform"], mins[s]["hot"],
                                                             mins[s]["uniform"]))
    lines += ["", "hzshm remote gets during the timed hot / uniform passes: %s / %s (0 = all hits)." % (
        doc.get("hzshm_remote_gets_during_hot"), doc.get("hzshm_remote_gets_during_uniform")), "",
              "| target (issue 14) | hot | uniform |", "| --- | --- | --- |"]

    def row(label, fn):
        cells = []
        for n in ("hot", "uniform"):
            ok, text = fn(n)
            cells.append("%s %s" % ("met" if ok else "MISSED", text))
        lines.append("| %s | %s | %s |" % (label, cells[0], cells[1]))

    h = lambda n: ns["hzshm.get"][n]
    lines.append("| hzshm.get <= 250 ns (hot) | %s %.0f ns | (no target) %.0f ns |" % (
        "met" if h("hot") <= 250 else "MISSED", h("hot"), h("uniform")))
    row("within 1.5x of dict.get", lambda n: (h(n) <= 1.5 * ns["dict.get"][n], "%.2fx" % (h(n) / ns["dict.get"][n])))
    row(">= 30x faster than the official near cache",
        lambda n: (ns["official near"][n] >= 30 * h(n), "%.0fx" % (ns["official near"][n] / h(n))))
    row(">= 3x faster than python-lmdb (one txn)",
        lambda n: (ns["lmdb"][n] >= 3 * h(n), "%.1fx" % (ns["lmdb"][n] / h(n))))
    with open(os.path.join(out, "python_get.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib missing, no python_get.png", file=sys.stderr)
        return
    stores = [s for s in ORDER if s in ns and s != "loop"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    w = 0.38
    for j, n in enumerate(("hot", "uniform")):
        xs = [i + (j - 0.5) * w for i in range(len(stores))]
        vals = [ns[s][n] for s in stores]
        bars = ax.bar(xs, vals, w, label="%s keys" % n)
        for x, v in zip(xs, vals):
            label = "%.0f" % v if v < 1e4 else "%.0fµs" % (v / 1e3) if v < 1e6 else "%.1fms" % (v / 1e6)
            ax.text(x, v * 1.05, label, ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(stores)))
    ax.set_xticklabels(stores, rotation=25, ha="right")
    ax.set_ylabel("ns per get (log)")
    ax.set_title("Python get, %d B values (one run)" % doc["value_bytes"])
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "python_get.png"), dpi=110)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
