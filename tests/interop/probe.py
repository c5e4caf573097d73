#!/usr/bin/env python3
"""probe.py - raw Hazelcast client-protocol probes against real members.

Writes frames by hand (stdlib sockets only) per /work/shared/docs/hazelcast-client-protocol.md
and checks what a real member does for every item that document marks UNVERIFIED. The
findings are written up in docs/PROTOCOL-NOTES.md; this script keeps them checked.

    probe.py --members 127.0.0.1:5721,127.0.0.1:5722 [--peer PATH/hzpeer] GROUP...
    probe.py --members 127.0.0.1:5723 --heartbeat-seconds 4 batch heartbeat

Groups: auth, limits, ops, hash and evict (need --peer), view, inval, expiry, destroy, batch (member started
with --batch on), heartbeat (member started with a small hazelcast.client.max.no.heartbeat.seconds).
Each check prints "ok NAME: fact" or "FAIL NAME: ..."; exit status 1 if any check failed.
--json prints the observed facts as one JSON object at the end.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time
import uuid as uuidlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hzwire import *  # noqa: E402,F401,F403  (the wire helpers are this script's vocabulary)


# ---- checks ----------------------------------------------------------------------------------
class Checker:
    def __init__(self):
        self.failed, self.facts = 0, {}

    def fact(self, name, value):
        self.facts[name] = value if isinstance(value, (int, float, str, bool, type(None), list, dict)) else str(value)

    def check(self, name, cond, detail):
        print("%s %s: %s" % ("ok" if cond else "FAIL", name, detail), flush=True)
        self.fact(name, detail)
        if not cond:
            self.failed += 1


def same_partition_key(client, key, prefix):
    """A key other than `key` that lands in the same partition (for sequence-gap checks)."""
    want = partition_of(data_string(key), client.partition_count)
    for i in range(100000):
        k = "%s-%d" % (prefix, i)
        if partition_of(data_string(k), client.partition_count) == want:
            return k
    raise RuntimeError("no key found")


def listener_and_writer(members, cluster, group):
    """A fresh map name, a client with an invalidation listener for it on every member, and a
    writer client (another UUID) connected to every member; it sends all its key operations to
    the first member, so about half of them run on a partition another member owns."""
    m = "probe-%s-%d" % (group, os.getpid())
    lst, w = Client(members, cluster), Client(members, cluster)
    lst.regs = lst.add_inval_listener(m)
    return m, lst, w


def group_auth(ck, members, cluster):
    c = Conn(members[0])
    a = parse_auth(c.call(auth_request(cluster, uuidlib.uuid4())))
    c.close()
    ck.check("auth.status", a["status"] == 0, "status %d for null username/password, clientType CPP" % a["status"])
    ck.check("auth.initial_len", a["initial_content_len"] == 62,
             "response initial-frame content is %d bytes (2.7 layout: 62)" % a["initial_content_len"])
    ck.check("auth.server_version", a["server_version"] == "5.5.0", "serverHazelcastVersion %r" % a["server_version"])
    ck.check("auth.member_infos", a.get("member_infos") == len(members),
             "memberInfos (2.7) lists %s members (cluster has %d)" % (a.get("member_infos"), len(members)))
    ck.check("auth.partitions", a.get("partitions_listed") in (0, a["partition_count"]),
             "partitions (2.7) lists %s of %d partitions with %s owners" % (
                 a.get("partitions_listed"), a["partition_count"], a.get("partition_owners")))
    ck.fact("auth.partitions_listed", a.get("partitions_listed"))
    ck.check("auth.key_value_pairs", "key_value_pairs" in a,
             "keyValuePairs (2.8) present: %r" % a.get("key_value_pairs"))
    ck.check("auth.tpc", not a["tpc_ports_null"] and a["tpc_ports_len"] == 0 and a["tpc_token_null"],
             "tpcPorts is an empty List_Integer frame (not null), tpcToken a null frame")
    ck.check("auth.extra_frames", a["extra_frames"] == 0, "%d frames after keyValuePairs" % a["extra_frames"])
    ck.check("auth.failover", a["failover"] is False, "failoverSupported %r" % a["failover"])

    def status(**kw):
        cc = Conn(members[0])
        try:
            return parse_auth(cc.call(auth_request(kw.pop("cluster", cluster), uuidlib.uuid4(), **kw)))["status"]
        except (Closed, TimeoutError, RemoteError) as e:
            return "no response (%s)" % type(e).__name__
        finally:
            cc.close()

    st = status(client_type="ZZZ")
    ck.check("auth.client_type_3", st == 0, "clientType 'ZZZ' -> status %s" % st)
    st = status(client_type="hzshm-agent/arbitrary long type")
    ck.check("auth.client_type_long", st == 0, "clientType 'hzshm-agent/arbitrary long type' -> status %s" % st)
    for user, pw in (("user", "secret"), ("", ""), ("user", None), (None, "secret")):
        st = status(user=user, password=pw)
        ck.check("auth.credentials_%s_%s" % (user is not None, pw is not None), st == 1,
                 "username %r / password %r on OSS -> status %s" % (user, pw, st))
    # Once a partition operation has run, the 2.7 partitions field lists every partition.
    cl = Client(members[:1], cluster)
    cl.put("probe-auth", "k", b"v", op=T_SET)
    c = Conn(members[0])
    a = parse_auth(c.call(auth_request(cluster, uuidlib.uuid4())))
    c.close()
    cl.close()
    ck.check("auth.partitions_assigned", a.get("partitions_listed") == a["partition_count"]
             and a.get("partition_owners") == len(members),
             "after a partition operation the auth response lists %s of %d partitions, %s owners" % (
                 a.get("partitions_listed"), a["partition_count"], a.get("partition_owners")))
    st = status(cluster="not-" + cluster)
    ck.check("auth.wrong_cluster", st == 1, "wrong cluster name -> status %s" % st)
    st = status(ser_version=9)
    ck.check("auth.ser_version", st == 2, "serializationVersion 9 -> status %s" % st)


def group_limits(ck, members, cluster):
    # Before authentication the member caps one message at 4096 bytes (frame lengths summed).
    def auth_with_label(n):
        c = Conn(members[0])
        msg = auth_request(cluster, uuidlib.uuid4(), labels=["x" * n])
        size = sum(len(f.content) + 6 for f in msg)
        try:
            return size, parse_auth(c.call(msg, timeout=10))["status"]
        except (Closed, TimeoutError) as e:
            return size, type(e).__name__
        finally:
            c.close()

    # The label's length steers the message size (sum of frame lengths) to exactly 4096 and 4097 bytes.
    overhead = sum(len(f.content) + 6 for f in auth_request(cluster, uuidlib.uuid4(), labels=[""]))
    size, st = auth_with_label(4096 - overhead)
    ck.check("limits.auth_at_cap", size == 4096 and st == 0, "auth message of %d bytes -> status %s" % (size, st))
    size, st = auth_with_label(4097 - overhead)
    ck.check("limits.auth_over_cap", size == 4097 and st == "Closed", "auth message of %d bytes -> %s" % (size, st))
    # Fragmented messages: refused before authentication, accepted after it.
    c = Conn(members[0])
    try:
        st = fragmented_call(c, auth_request(cluster, uuidlib.uuid4()), 3)
        st = parse_auth(st)["status"]
    except (Closed, TimeoutError) as e:
        st = type(e).__name__
    c.close()
    ck.check("limits.fragmented_before_auth", st == "Closed", "a fragmented Authentication -> %s" % st)
    cl = Client(members[:1], cluster)
    kd = data_string("frag")
    frames = [s_frame("probe-limits"), Frame(kd), Frame(data_bytes(b"f" * 3000))]
    r = fragmented_call(cl.conns[0], request(T_SET, struct.pack("<qq", 0, -1), frames,
                                             pid=partition_of(kd, cl.partition_count)), 2)
    back = cl.get("probe-limits", "frag")
    ck.check("limits.fragmented_after_auth", mtype(r) == T_SET + 1 and back == data_bytes(b"f" * 3000),
             "after auth a Map.Set sent as 2 fragments is executed")
    big = os.urandom(4 << 20)
    cl.put("probe-limits", "big", big, op=T_SET)
    m = cl.key_call(T_GET, "probe-limits", "big")
    back = m[1].content
    ck.check("limits.after_auth", back[12:] == big,
             "after auth a 4 MiB value round-trips (messages > 4096 accepted)")
    ck.check("limits.big_response_unfragmented", m[0].flags == UNFRAGMENTED and len(m) == 2,
             "the member answers a 4 MiB Get as one unfragmented message (initial flags 0x%04x, %d frames)" % (
                 m[0].flags, len(m)))
    cl.name_call(T_CLEAR, "probe-limits")
    cl.close()


def group_ops(ck, members, cluster):
    cl = Client(members[:1], cluster)
    m = "probe-ops-%d" % os.getpid()
    cl.put(m, "d1", b"v", op=T_SET)
    r1 = cl.key_call(T_DELETE, m, "d1")
    r0 = cl.key_call(T_DELETE, m, "d1")
    ck.check("ops.delete_bool", len(r1[0].content) == 14 and r1[0].content[13] == 1 and r0[0].content[13] == 0,
             "Map.Delete response content %d bytes; bool %d when deleted, %d when absent" % (
                 len(r1[0].content), r1[0].content[13], r0[0].content[13]))
    r = cl.key_call(T_REMOVE, m, "absent")
    ck.check("ops.remove_absent", r[1].has(IS_NULL), "Map.Remove of an absent key answers a null frame")
    try:
        cl.put(m, "pidneg", b"v", op=T_SET, pid=-1)
        v = cl.get(m, "pidneg")
        detail = "Map.Set with partition id -1 in the header succeeds; Get with the right pid then %s" % (
            "finds it" if v else "does not find it")
    except RemoteError as e:
        detail = "Map.Set with partition id -1 -> error %d %s" % (e.code, e.cls)
    ck.check("ops.key_op_pid_minus1", True, detail)
    r = cl.conns[0].call(request(T_PING))
    ck.check("ops.ping", mtype(r) == T_PING + 1 and len(r[0].content) == 13, "Client.Ping answered 0x000B01, 13 bytes")
    cl.name_call(T_CLEAR, m)
    cl.close()


def group_hash(ck, members, cluster, peer):
    keys = ["k1", "key-1", "hello", "default", "", "\u043a\u043b\u044e\u0447-\u00e9-\U0001F600", "a" * 100]
    m = "probe-hash-%d" % os.getpid()
    p = subprocess.Popen([peer, "--members", ",".join(members), "--cluster", cluster, "serve"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def cmd(line):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    try:
        ready = p.stdout.readline().strip()
        ck.check("hash.peer_ready", ready == "ok ready", "HzPeer serve answered %r" % ready)
        cl = Client(members, cluster)
        for k in keys:
            tok = "x:" + k.encode("utf-8").hex()
            ours = partition_of(data_string(k), cl.partition_count)
            theirs = cmd("partition " + tok)
            cmd("set %s %s 0a0b" % (m, tok))
            right = cl.get(m, k, pid=ours)
            wrong = cl.get(m, k, pid=(ours + 1) % cl.partition_count)
            ck.check("hash.%s" % (k.encode("utf-8").hex()[:16] or "empty"),
                     theirs == "ok %d" % ours and right == data_bytes(b"\x0a\x0b") and wrong is None,
                     "key %r: our partition %d, official client %s; Get with our pid finds the official "
                     "client's value: %s; with pid+1: %s" % (k[:20], ours, theirs, right is not None, wrong is not None))
        cl.close()
        cmd("destroy " + m)
        cmd("quit")
    finally:
        p.stdin.close()
        p.wait(timeout=30)


def wait_invals(lst, n, timeout, pred=lambda x: True):
    return [x for x in invals(lst.events(timeout, until=lambda got: len([y for y in invals(got) if pred(y)]) >= n))
            if pred(x)]


def group_inval(ck, members, cluster):
    m, lst, w = listener_and_writer(members, cluster, "inval")
    regs = lst.regs
    reg_corrs = {c.addr: corr for c, (corr, _) in zip(lst.conns, regs)}
    ck.check("inval.register", all(r[1] is not None for r in regs),
             "AddNearCacheInvalidationListener answered a registration UUID on each of %d members" % len(regs))
    kd = data_string("k")
    pk = partition_of(kd, lst.partition_count)

    w.put(m, "k", b"1", op=T_SET)
    got = lst.events(20, until=lambda g: len(invals(g)) >= 1)
    ev = invals(got)
    e = ev[0] if ev else {}
    ck.check("inval.put", len(ev) == 1 and e["key"] == kd, "Map.Set -> %d single invalidation(s) for the key" % len(ev))
    ck.check("inval.header_pid", e.get("header_pid") == pk,
             "event header partitionId %s = partition of the key %d" % (e.get("header_pid"), pk))
    ck.check("inval.source", e.get("source") == w.uuid, "sourceUuid is the writing client's UUID")
    ck.check("inval.corr", got and struct.unpack_from("<q", got[0][1][0].content, 4)[0] == reg_corrs[got[0][0]],
             "event correlation id = the registration request's correlation id")
    ck.check("inval.flags", got and got[0][1][0].flags == UNFRAGMENTED | IS_EVENT and got[0][1][-1].flags == IS_FINAL,
             "event initial frame flags 0x%04x (IS_FINAL only on the key frame)" % (got[0][1][0].flags if got else 0))
    s1 = e.get("sequence", 0)
    sentinel = same_partition_key(lst, "k", "sent")

    def seq_after(op, label):
        """Runs op, then a Set of the sentinel key (same partition); returns (events of op, sentinel seq gap)."""
        nonlocal s1
        op()
        w.put(m, sentinel, b"s", op=T_SET)
        sd = data_string(sentinel)
        got = invals(lst.events(20, until=lambda g: any(x["key"] == sd for x in invals(g))))
        mine = [x for x in got if x["key"] != sd]
        sent = [x for x in got if x["key"] == sd]
        gap = sent[0]["sequence"] - s1 if sent else None
        s1 = sent[0]["sequence"] if sent else s1
        return mine, gap

    mine, gap = seq_after(lambda: w.put(m, "k", b"2", op=T_SET), "set")
    ck.check("inval.sequence_step", len(mine) == 1 and mine[0]["sequence"] == s1 - 1 and gap == 2,
             "consecutive invalidations of one partition have sequences n, n+1 (gap %s over set+sentinel)" % gap)
    mine, gap = seq_after(lambda: w.key_call(T_REMOVE, m, "absent-" + sentinel), "remove-absent")
    ck.fact("inval.remove_absent_events", len(mine))
    mine, gap = seq_after(lambda: w.key_call(T_REMOVE, m, same_partition_key(lst, "k", "nx")), "remove-absent")
    ck.check("inval.remove_absent", True, "Map.Remove of an absent key (same partition): %d event(s), sequence "
             "advanced by %d" % (len(mine), gap - 1))
    ck.fact("inval.remove_absent_invalidates", len(mine) > 0)
    mine, gap = seq_after(lambda: w.key_call(T_DELETE, m, same_partition_key(lst, "k", "nx")), "delete-absent")
    ck.check("inval.delete_absent", True, "Map.Delete of an absent key: %d event(s), sequence advanced by %d" % (
        len(mine), gap - 1))
    ck.fact("inval.delete_absent_invalidates", len(mine) > 0)
    mine, gap = seq_after(lambda: w.key_call(T_DELETE, m, "k"), "delete")
    ck.check("inval.delete_present", len(mine) == 1, "Map.Delete of a present key: %d event(s)" % len(mine))
    w.put(m, "k", b"3", op=T_SET)
    lst.events(20, until=lambda g: len(invals(g)) >= 1)
    mine, gap = seq_after(lambda: w.key_call(T_EVICT, m, "k"), "evict")
    ck.check("inval.evict", len(mine) == 1, "Map.Evict of a present key: %d event(s)" % len(mine))
    mine, gap = seq_after(lambda: w.key_call(T_REMOVE, m, "k"), "remove")
    ck.fact("inval.remove_after_evict_events", len(mine))

    # The writer's own registration also receives the invalidation of its own write (source = itself).
    w.regs = w.add_inval_listener(m)
    w.put(m, "self", b"1", op=T_SET)
    sd = data_string("self")
    own = [x for x in invals(w.events(20, until=lambda g: any(x["key"] == sd for x in invals(g))))
           if x["key"] == sd]
    lst.events(20, until=lambda g: any(x["key"] == sd for x in invals(g)))
    ck.check("inval.own_writes", len(own) == 1 and own[0]["source"] == w.uuid,
             "a client's own registration gets the invalidation of its own write (%d event, source = itself: %s)" % (
                 len(own), bool(own) and own[0]["source"] == w.uuid))

    name_pid = partition_of(data_string(m), lst.partition_count)
    for op, label in ((T_CLEAR, "clear"), (T_EVICT_ALL, "evictAll")):
        w.put(m, "k", b"4", op=T_SET)
        lst.events(20, until=lambda g: len(invals(g)) >= 1)
        w.name_call(op, m)
        got = invals(lst.events(20, until=lambda g: any(x["key"] is None for x in invals(g))))
        nulls = [x for x in got if x["key"] is None]
        x = nulls[0] if nulls else {}
        ck.check("inval.%s" % label, len(nulls) == 1 and x["source"] == w.uuid,
                 "%s -> %d clear-all (null key) event(s) from the caller's UUID; header partitionId %s, map-name "
                 "partition %d, sequence %s" % (label, len(nulls), x.get("header_pid"), name_pid, x.get("sequence")))
        ck.fact("inval.%s_header_pid_is_name_partition" % label, x.get("header_pid") == name_pid)
        if pk != name_pid:
            # Sequence steps of the key's partition since the last sentinel: the Set of "k" above, a silent
            # increment by the clear, the sentinel's own Set: 3 (2 if the clear did not touch it).
            mine, gap = seq_after(lambda: None, label + "-gap")
            ck.check("inval.%s_silent_increment" % label, gap == 3,
                     "after %s the key's partition (not the name's) advanced its sequence silently: %s step(s) "
                     "for Set + %s + sentinel Set" % (label, gap, label))
    lst.close()
    w.close()


def group_destroy(ck, members, cluster):
    m, lst, w = listener_and_writer(members, cluster, "destroy")
    w.put(m, "k", b"1", op=T_SET)
    lst.events(20, until=lambda g: len(invals(g)) >= 1)
    w.conns[0].call(request(T_DESTROY_PROXY, b"", [s_frame(m), s_frame("hz:impl:mapService")]))
    member_uuids = {a["member_uuid"] for a in lst.auth}
    got = invals(lst.events(20, until=lambda g: len([x for x in invals(g) if x["key"] is None]) >= len(members)))
    nulls = [x for x in got if x["key"] is None]
    ck.check("destroy.clear_events", len(nulls) == len(members) and {x["source"] for x in nulls} == member_uuids,
             "DestroyProxy -> %d clear-all events, sources = member UUIDs: %s" % (
                 len(nulls), {x["source"] for x in nulls} == member_uuids))
    ck.fact("destroy.sequences", [x["sequence"] for x in nulls])
    # Is our registration gone? A fresh listener gets the next put's event; the old one must not.
    fresh = Client(members, cluster)
    fresh.add_inval_listener(m)
    w.put(m, "k", b"2", op=T_SET)
    fe = invals(fresh.events(20, until=lambda g: len(invals(g)) >= 1))
    old = invals(lst.events(1.0))
    ck.check("destroy.registration_dropped", len(fe) == 1 and len(old) == 0,
             "after destroy the old registration gets %d events, a fresh one %d (sequence %s)" % (
                 len(old), len(fe), fe[0]["sequence"] if fe else None))
    w.conns[0].call(request(T_DESTROY_PROXY, b"", [s_frame(m), s_frame("hz:impl:mapService")]))
    for c in (lst, w, fresh):
        c.close()


def group_expiry(ck, members, cluster):
    m, lst, w = listener_and_writer(members, cluster, "expiry")
    kd = data_string("ttl")
    w.put(m, "ttl", b"1", ttl=1000, op=T_SET)
    first = wait_invals(lst, 1, 20, lambda x: x["key"] == kd)
    t0 = time.monotonic()
    # The member's background expiry task runs every 5 s (hazelcast.internal.map.expiration.task.period.seconds).
    more = wait_invals(lst, 1, 12, lambda x: x["key"] == kd)
    ck.check("expiry.background", len(more) == 0, "TTL 1 s, key untouched for %.0f s: %d invalidation(s) after the Set's own "
             "(%d)" % (time.monotonic() - t0, len(more), len(first)))
    ck.fact("expiry.invalidates", len(more) > 0)
    v = w.get(m, "ttl")
    after = wait_invals(lst, 1, 2, lambda x: x["key"] == kd)
    ck.check("expiry.gone", v is None and len(after) == 0, "Get after expiry returns null; invalidations caused by that Get: %d" % len(after))
    w.name_call(T_CLEAR, m)
    lst.close()
    w.close()


def group_view(ck, members, cluster):
    cl = Client(members[:1], cluster)
    cl.put("probe-view", "k", b"v", op=T_SET)  # makes sure the partitions are assigned
    c = cl.conns[0]
    corr = c.send(request(0x000300))
    want = {0x000302, 0x000303, 0x000304, 0x000305}
    seen, deadline = {}, time.monotonic() + 15
    while not want <= set(seen) and time.monotonic() < deadline:
        c.pump(deadline - time.monotonic())
        for e in c.events:
            seen.setdefault(mtype(e), e)
        c.events = []
    while corr not in c.responses and time.monotonic() < deadline:
        c.pump(deadline - time.monotonic())
    ck.check("view.events", want <= set(seen) and corr in c.responses,
             "AddClusterViewListener -> events %s (MembersView, PartitionsView, 2.8 MemberGroupsView and "
             "ClusterVersion) right after registration" % sorted("0x%06x" % t for t in seen))
    first = [t for ev, t in c.order if t in want | {0x000301}]
    ck.check("view.events_before_response", first[:1] == [0x000302] and first[-1:] == [0x000301],
             "order on the wire: %s (the events come BEFORE the registration's response)" % [
                 "0x%06x" % t for t in first])
    cv = seen.get(0x000305)
    ck.check("view.cluster_version", cv is not None and cv[2].content[:2] == b"\x05\x05",
             "ClusterVersion event: Version(major, minor) = %r" % ((tuple(cv[2].content[:2]) if cv else None),))
    pv = seen.get(0x000303)
    # partitions EntryList_UUID_List_Integer: begin, one List_Integer per owner, end, then List_UUID
    listed = sum(len(f.content) // 4 for f in pv[2:skip_struct(pv, 1) - 1]) if pv else 0
    ck.fact("view.partitions_view_frames", len(pv) if pv else 0)
    ck.check("view.partitions", pv is not None and listed >= cl.partition_count,
             "PartitionsView lists %d partition ids" % listed)
    cl.close()


def group_evict(ck, members, cluster, peer):
    """Size-based eviction (map configured through the official client: LRU, 1 entry per partition)."""
    m = "probe-evict-%d" % os.getpid()
    r = subprocess.run([peer, "--members", ",".join(members), "--cluster", cluster, "serve"],
                       input="mapconfig-evict %s 1\nquit\n" % m, capture_output=True, text=True, timeout=120)
    ck.check("evict.config", r.stdout.split("\n")[1:2] == ["ok"], "dynamic map config via HzPeer: %r" % r.stdout)
    lst, w = Client(members, cluster), Client(members[:1], cluster)
    lst.regs = lst.add_inval_listener(m)
    keys = ["e0"] + [same_partition_key(lst, "e0", "ev%d" % i) for i in range(4)]
    for k in keys:
        w.put(m, k, b"1", op=T_SET)
    # All keys share one partition: its sequence counts every invalidation, sent or not.
    last = data_string(keys[-1])
    ev = invals(lst.events(20, until=lambda g: any(x["key"] == last for x in invals(g))))
    size = struct.unpack_from("<i", w.name_call(T_SIZE, m)[0].content, 13)[0]
    seqs = [x["sequence"] for x in ev]
    ck.check("evict.no_invalidation", size == 1 and len(ev) == len(keys) and seqs == list(range(seqs[0], seqs[0] + len(keys))),
             "%d Sets into one partition with max 1 entry: map size %d afterwards, %d invalidations (one per Set, "
             "sequences %s): evictions send none and do not advance the sequence" % (len(keys), size, len(ev), seqs))
    w.name_call(T_CLEAR, m)
    lst.close()
    w.close()


def group_batch(ck, members, cluster):
    m, lst, w = listener_and_writer(members, cluster, "batch")
    t0 = time.monotonic()
    for i in range(3):
        w.put(m, "b%d" % i, b"1", op=T_SET)
    got = lst.events(25, until=lambda g: len(invals(g)) >= 3)
    dt = time.monotonic() - t0
    kinds = [mtype(e) for _, e in got]
    ck.check("batch.batched", kinds and all(k == T_INVAL_BATCH for k in kinds) and len(invals(got)) == 3,
             "with batching on, 3 Sets -> %d event message(s) of type %s holding %d keys after %.1f s" % (
                 len(kinds), ["0x%06x" % k for k in kinds], len(invals(got)), dt))
    ck.fact("batch.delay_s", round(dt, 1))
    ev = invals(got)
    name_pid = partition_of(data_string(m), lst.partition_count)
    key_pids = sorted({partition_of(data_string("b%d" % i), lst.partition_count) for i in range(3)})
    ck.check("batch.header_pid", bool(ev) and all(0 <= x["header_pid"] < lst.partition_count for x in ev),
             "batch event header partitionId %s; map-name partition %d, keys' partitions %s" % (
                 sorted({x["header_pid"] for x in ev}), name_pid, key_pids))
    t0 = time.monotonic()
    w.name_call(T_CLEAR, m)
    got = lst.events(25, until=lambda g: any(x["key"] is None for x in invals(g)))
    kinds = [mtype(e) for _, e in got]
    ck.check("batch.clear_immediate", T_INVAL_EVENT in kinds,
             "clear with batching on -> single event type(s) %s after %.1f s" % (
                 ["0x%06x" % k for k in kinds], time.monotonic() - t0))
    lst.close()
    w.close()


def group_heartbeat(ck, members, cluster, seconds):
    idle, busy = Client(members[:1], cluster), Client(members[:1], cluster)
    t0 = time.monotonic()
    closed_at, deadline = None, t0 + seconds + 60
    while closed_at is None and time.monotonic() < deadline:
        busy.conns[0].call(request(T_PING))
        try:
            idle.conns[0].pump(1.0)
        except Closed:
            closed_at = time.monotonic() - t0
    busy_alive = not busy.conns[0].closed
    try:
        busy.conns[0].call(request(T_PING))
    except (Closed, TimeoutError):
        busy_alive = False
    ck.check("heartbeat.idle_closed", closed_at is not None and closed_at >= seconds,
             "hazelcast.client.max.no.heartbeat.seconds=%d: idle authenticated connection closed by the member "
             "after %s s" % (seconds, None if closed_at is None else round(closed_at, 1)))
    ck.check("heartbeat.ping_keeps_alive", busy_alive, "a connection sending Client.Ping every ~1 s stays open")
    idle.close()
    busy.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", required=True)
    ap.add_argument("--cluster", default="dev")
    ap.add_argument("--peer")
    ap.add_argument("--heartbeat-seconds", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("groups", nargs="+")
    a = ap.parse_args()
    members = a.members.split(",")
    ck = Checker()
    for g in a.groups:
        try:
            if g in ("hash", "evict"):
                globals()["group_" + g](ck, members, a.cluster, a.peer)
            elif g == "heartbeat":
                group_heartbeat(ck, members, a.cluster, a.heartbeat_seconds)
            else:
                globals()["group_" + g](ck, members, a.cluster)
        except Exception as e:  # a probe that breaks is a failed check, not a crash
            import traceback
            traceback.print_exc()
            ck.check(g + ".ran", False, "%s: %s" % (type(e).__name__, e))
    if a.json:
        print(json.dumps(ck.facts, sort_keys=True))
    print("%d check(s) failed" % ck.failed if ck.failed else "all checks passed")
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
