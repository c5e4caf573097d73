#!/usr/bin/env python3
"""bench_get.py - ns per get from Python, one run, the same keys for every store.

    python3 bench/python/bench_get.py --cache NAME --members 127.0.0.1:5815 --out DIR

(bench/python/run starts the member and the agent and calls this.)

Data: ENTRIES (200k) keys of 100-byte values, loaded into each store. Two key
sequences, the same for every store: "hot" (uniform over the first 1k keys)
and "uniform" (over all 200k). Each figure is the median over REPS passes of
the loop `for k in keys: get(k)` (loop overhead included, the same for all;
the empty loop is reported as "loop"). Stores:
  hzshm      Session.get and s[k] (hits: the agent's remote_gets must not move)
  near       the official client's near cache (hazelcast-python-client)
  direct     the official client's map.get, no near cache (a subsample)
  lmdb       python-lmdb on tmpfs (/dev/shm), one read transaction; and one per get
  dict       a plain dict: d.get and d[k]
The cyclic GC is frozen (gc.freeze) before the official client's passes.
Writes DIR/python_get.json.
"""
import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import time

ENTRIES = 200_000
HOT = 1_000
VALUE = 100
LOOKUPS = 200_000
REPS = 5
DIRECT_LOOKUPS = 2_000


def keyname(i):
    return "key-%06d" % i


def value(i):
    v = ("v%06d-" % i).encode()
    return (v * (VALUE // len(v) + 1))[:VALUE]


def one_pass(fn, keys):
    t0 = time.perf_counter_ns()
    for k in keys:
        fn(k)
    return (time.perf_counter_ns() - t0) / len(keys)


def one_pass_subscript(obj, keys):
    """obj[k] written as a subscript (no method call)."""
    t0 = time.perf_counter_ns()
    for k in keys:
        obj[k]
    return (time.perf_counter_ns() - t0) / len(keys)


def one_pass_empty(_, keys):
    t0 = time.perf_counter_ns()
    for k in keys:
        pass
    return (time.perf_counter_ns() - t0) / len(keys)


def timed(fn, keys, reps=REPS):
    """ns per call of fn over keys: (median, min) over reps passes."""
    per = [one_pass(fn, keys) for _ in range(reps)]
    return statistics.median(per), min(per)


def interleaved(cases, reps=REPS):
    """cases: {label: (pass_fn, obj, keys)}; one pass of each in turn per
    repetition (so that a change of machine load hits all alike)."""
    per = {label: [] for label in cases}
    for _ in range(reps):
        for label, (pf, obj, keys) in cases.items():
            per[label].append(pf(obj, keys))
    return {label: (statistics.median(v), min(v)) for label, v in per.items()}


def check(fn, keys, idx):
    for k, i in zip(keys[:1000], idx[:1000]):
        got = fn(k)
        assert bytes(got) == value(i), (k, got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--members", required=True)
    ap.add_argument("--cluster", default="dev", help="the cluster name (tools/hz-member's default: dev)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lmdb-dir", default="/dev/shm/hzshm-bench-lmdb")
    a = ap.parse_args()
    import hazelcast
    import lmdb

    import hzshm

    rnd = random.Random(14)
    seq = {"hot": [rnd.randrange(HOT) for _ in range(LOOKUPS)],
           "uniform": [rnd.randrange(ENTRIES) for _ in range(LOOKUPS)]}
    names = [keyname(i) for i in range(ENTRIES)]
    vals = [value(i) for i in range(ENTRIES)]
    keys = {n: [names[i] for i in s] for n, s in seq.items()}
    bkeys = {n: [names[i].encode() for i in s] for n, s in seq.items()}
    res = {"entries": ENTRIES, "hot": HOT, "value_bytes": VALUE, "lookups": LOOKUPS, "reps": REPS,
           "python": sys.version.split()[0], "results": {}}
    out = res["results"]

    def record(store, name, fig):
        out.setdefault(store, {})[name] = {"median_ns": round(fig[0], 1), "min_ns": round(fig[1], 1)}
        print("%-18s %-8s %9.1f ns (min %.1f)" % (store, name, fig[0], fig[1]), flush=True)

    d = dict(zip(names, vals))
    for n in keys:
        check(d.get, keys[n], seq[n])

    # hzshm: load through the agent (each set is written into this host's segment too)
    cache = hzshm.Cache(a.cache)
    s = cache.session("bench-python")
    s.destroy()
    t0 = time.monotonic()
    for k, v in zip(names, vals):
        s.set(k, v)
    res["hzshm_load_s"] = round(time.monotonic() - t0, 1)
    # The member echoes an invalidation for each of our sets (they may land
    # after the set returned and drop the entry): wait for them, then warm.
    deadline = time.monotonic() + 300
    while cache.stats()["invalidations_applied"] < ENTRIES and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the agent's counter, not synchronization of the figures
    for k in names:
        s.get(k)

    # python-lmdb on tmpfs
    shutil.rmtree(a.lmdb_dir, ignore_errors=True)
    env = lmdb.open(a.lmdb_dir, map_size=1 << 30, metasync=False, sync=False)
    with env.begin(write=True) as txn:
        for k, v in zip(names, vals):
            txn.put(k.encode(), v)

    def per_txn(k, env=env):
        with env.begin() as t:
            return t.get(k)

    txn = env.begin()
    for n in keys:
        check(s.get, keys[n], seq[n])
        check(txn.get, bkeys[n], seq[n])
        before = cache.stats()
        figs = interleaved({
            "loop": (one_pass_empty, None, keys[n]),
            "dict.get": (one_pass, d.get, keys[n]),
            "dict[k]": (one_pass_subscript, d, keys[n]),
            "hzshm.get": (one_pass, s.get, keys[n]),
            "hzshm[k]": (one_pass_subscript, s, keys[n]),
            "lmdb": (one_pass, txn.get, bkeys[n]),
            "lmdb txn/get": (one_pass, per_txn, bkeys[n]),
        })
        after = cache.stats()
        res["hzshm_remote_gets_during_" + n] = after["remote_gets"] - before["remote_gets"]
        for label, fig in figs.items():
            record(label, n, fig)
    txn.abort()
    res["hzshm_stats"] = cache.stats()
    s.destroy()  # free the member's heap for the official client's two maps
    cache.close()
    env.close()
    shutil.rmtree(a.lmdb_dir, ignore_errors=True)
    del d

    # the official client: near cache (sized for every entry) and direct gets
    from hazelcast.config import InMemoryFormat

    client = hazelcast.HazelcastClient(
        cluster_name=a.cluster, cluster_members=a.members.split(","),
        near_caches={"bench-near": {"eviction_max_size": ENTRIES * 2, "in_memory_format": InMemoryFormat.BINARY}})
    plain = client.get_map("bench-plain")
    near = client.get_map("bench-near")
    for m in (plain, near):
        m.clear().result()
        batch = {}
        for k, v in zip(names, vals):
            batch[k] = bytearray(v)
            if len(batch) == 5000:
                m.put_all(batch).result()
                batch = {}
    for i in range(0, ENTRIES, 2000):  # warm the near cache (pipelined gets)
        futs = [near.get(k) for k in names[i:i + 2000]]
        for f in futs:
            f.result()
    nb, pb = near.blocking(), plain.blocking()
    # Millions of live objects (key lists, the near cache): keep the cyclic GC
    # from rescanning them during the client's allocations (a server would
    # gc.freeze() after preloading too). hzshm and dict hits allocate no
    # GC-tracked object, so this only helps the official client.
    gc.collect()
    gc.freeze()
    for n in keys:
        check(nb.get, keys[n], seq[n])
        record("official near", n, timed(nb.get, keys[n], reps=3))
        record("official direct", n, timed(pb.get, keys[n][:DIRECT_LOOKUPS], reps=1))
    stats = near._near_cache.get_statistics() if hasattr(near, "_near_cache") else {}
    res["official_near_cache_stats"] = {k: v for k, v in stats.items() if isinstance(v, (int, float))}
    near.destroy()
    plain.destroy()
    client.shutdown()

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "python_get.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
