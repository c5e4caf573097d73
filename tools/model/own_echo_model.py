# own_echo_model.py - bounded exhaustive model of one key's own-echo accounting
# in the agent (fill.c resv_own_echo, requests.c write_ack, inval.c key
# events, fill.c fill_complete; stamps as an epoch bumped by a stale mark).
# Not a test of the C code: a hand transcription of it, to search
# interleavings of acks, failures (timeouts), echoes (early, late, lost with a
# stale mark, duplicated), foreign writes and fills. Echo and unknown windows
# never expire (the worst case for a stale expectation). A terminal state (all
# writes resolved, all events delivered or lost, fills done) whose cached value
# differs from the cluster's is a value served until --max-ttl-ms.
#
# usage: python3 own_echo_model.py old|new NOWN NFOREIGN NLOSS NFILL NDUP INORDER ACKORDER FIX
#   old/new: resv_own_echo before/after cons21 (f086e07)
#   INORDER 1: the member applies our writes of the key in submit order
#   ACKORDER 1: success acknowledgements come in the order the member applied
#   FIX 1: requests.c marks write_canceled when a write fails with others in flight
#   FIX 2: FIX 1, and a write submitted while another of the key is in flight
#     marks write_canceled: overlapping writes of a key are never cached
#     (requests.c: FIX 1 since e680f78, FIX 2 since 3bb5ebc; with FIX 2 the
#     failure-branch assignment of FIX 1 never changes anything)
# Results (revcons21): old 2 1 1 2 0 1 0 0 -> stale (the e2e_lostecho interleaving);
#   new ... 1 0 0 -> none; new 2 1 1 2 0 0 1 0 -> stale (a write applied after a
#   later one, failed after its event came early); new 2 1 1 2 0 0 1 1 -> none,
#   and none with 3 writes or 2 losses + a duplicate; new 2 1 1 2 0 0 0 1 -> stale
#   (success acks out of application order: the later-submitted write applied
#   first, acknowledged last, is cached); ... 0 0 2 -> none.
# Windows never expire (worst case for stale expectations; unknown covers the run).
import sys
from collections import namedtuple
NEW = sys.argv[1] == "new"
NOWN = int(sys.argv[2]) if len(sys.argv) > 2 else 2
NFOR = int(sys.argv[3]) if len(sys.argv) > 3 else 1
NLOSS = int(sys.argv[4]) if len(sys.argv) > 4 else 1
NFILL = int(sys.argv[5]) if len(sys.argv) > 5 else 2
DUP = int(sys.argv[6]) if len(sys.argv) > 6 else 0
INORDER = int(sys.argv[7]) if len(sys.argv) > 7 else 0
ACKORDER = int(sys.argv[8]) if len(sys.argv) > 8 else 0
FIX = int(sys.argv[9]) if len(sys.argv) > 9 else 0

# write: (id, state) state: 'pend' (submitted, not applied), 'applied', 'gone' (never applied)
# client: per own write: 'flight', 'acked', 'failed'
S = namedtuple('S', 'cluster cache epoch resv writes_m writes_c queue fills nown nfor nloss nfill ndup')
# resv: (writes, echoes, early, unknown, wcanc, wseq)  fills: tuple of (canceled, read, epoch)
# writes_m[i]: member state of own write i: None(not submitted) 'pend' 'applied' 'gone'
# writes_c[i]: client state: None, ('flight', wseq, epoch), 'done'
R0 = (0, 0, 0, 0, 0, 0)

def own_echo(r):
    w, e, early, unk, wc, ws = r
    if NEW:
        expected = e > 0
        e = e - 1 if expected else 0
        if unk > 0: return 0, (w, e, early, unk, wc, ws)
        if expected: return 1, (w, e, early, unk, wc, ws)
        if w > 0: return 1, (w, e, early + 1, unk, wc, ws)
        return 0, (w, e, early, unk, wc, ws)
    else:
        if e > 0: return 1, (w, e - 1, early, unk, wc, ws)
        e = 0
        if w > 0 and unk == 0: return 1, (w, e, early + 1, unk, wc, ws)
        return 0, (w, e, early, unk, wc, ws)

def maybe_free(st):
    w, e, early, unk, wc, ws = st.resv
    fetching = any(not f[0] or True for f in st.fills if f[3] == 'cur')
    if not fetching and w == 0 and e == 0 and unk == 0:
        return st._replace(resv=R0)
    return st

def cancel_fills(fills):
    return tuple((1, f[1], f[2], f[3]) if f[3] == 'cur' else f for f in fills)

def succ(st):
    out = []
    # own write submit
    for i in range(NOWN):
        if st.writes_m[i] is None and all(st.writes_m[j] is not None for j in range(i)):
            w, e, early, unk, wc, ws = st.resv
            r = (w + 1, e, early, unk, 1 if (FIX == 2 and w > 0) else wc, ws + 1)
            wm = list(st.writes_m); wm[i] = 'pend'
            wcl = list(st.writes_c); wcl[i] = ('flight', ws + 1, st.epoch)
            out.append(('submit%d' % i, st._replace(resv=r, writes_m=tuple(wm), writes_c=tuple(wcl))))
    # member applies a pending own write (any order)
    for i in range(NOWN):
        if st.writes_m[i] == 'pend' and not (INORDER and any(st.writes_m[j] == 'pend' for j in range(i))):
            wm = list(st.writes_m); wm[i] = 'applied'; ordl = st.nown + (i,)
            q = st.queue + (('own', i),)
            out.append(('apply%d' % i, st._replace(cluster='o%d' % i, writes_m=tuple(wm), queue=q, nown=ordl)))
            # a failed write that the member gives up (never applied)
            if st.writes_c[i] == 'done':
                wm2 = list(st.writes_m); wm2[i] = 'gone'
                out.append(('gone%d' % i, st._replace(writes_m=tuple(wm2))))
    # client side: ack success (only after applied) or failure (any time in flight)
    for i in range(NOWN):
        c = st.writes_c[i]
        if isinstance(c, tuple):
            _, wseq, wep = c
            okset = (1, 0) if st.writes_m[i] == 'applied' else (0,)
            if ACKORDER and st.writes_m[i] == 'applied':
                pos = st.nown.index(i)
                if any(isinstance(st.writes_c[j], tuple) for j in st.nown[:pos]): okset = (0,)
            for ok in okset:
                w, e, early, unk, wc, ws = st.resv
                w -= 1
                fills = cancel_fills(st.fills)
                if ok:
                    if early > 0: early -= 1
                    elif not wc and unk == 0: e += 1
                else:
                    unk += 1
                    if FIX and w > 0: wc = 1
                cache_it = ok and not wc and w == 0 and wseq == ws and wep == st.epoch
                if w == 0: wc = 0; early = 0
                cache = ('o%d' % i) if cache_it else None
                wcl = list(st.writes_c); wcl[i] = 'done'
                n = st._replace(resv=(w, e, early, unk, wc, ws), fills=fills, cache=cache, writes_c=tuple(wcl))
                out.append((('ack%d' if ok else 'fail%d') % i, maybe_free(n)))
    # foreign write
    if st.nfor < NFOR:
        out.append(('foreign', st._replace(cluster='f%d' % st.nfor, nfor=st.nfor + 1, queue=st.queue + (('for', st.nfor),))))
    # deliver head event
    if st.queue:
        ev = st.queue[0]
        q = st.queue[1:]
        r = st.resv
        if ev[0] == 'own':
            own, r = own_echo(r)
        else:
            own = 0
        w, e, early, unk, wc, ws = r
        if not own: wc = 1
        n = st._replace(queue=q, resv=(w, e, early, unk, wc, ws), fills=cancel_fills(st.fills),
                        cache=st.cache if own else None)
        out.append(('deliver', maybe_free(n)))
        if DUP and st.ndup < DUP:
            out.append(('dup', st._replace(queue=(ev,) + st.queue, ndup=st.ndup + 1)))
        if st.nloss < NLOSS:
            # lost with the connection: a stale mark at the reconnect (epoch), cache cleared
            out.append(('lose', st._replace(queue=q, epoch=st.epoch + 1, cache=None, nloss=st.nloss + 1)))
    # fills: start (if no uncanceled current fill), execute (read at member), complete
    cur_live = any(f[3] == 'cur' and not f[0] for f in st.fills)
    if st.nfill < NFILL and not cur_live and st.cache is None:
        # a canceled current fill is detached (resv_replace)
        fills = tuple((f[0], f[1], f[2], 'old') for f in st.fills) + ((0, None, st.epoch, 'cur'),)
        out.append(('fillstart', st._replace(fills=fills, nfill=st.nfill + 1)))
    for k, f in enumerate(st.fills):
        if f[1] is None:
            fl = list(st.fills); fl[k] = (f[0], ('v', st.cluster), f[2], f[3])
            out.append(('fillread', st._replace(fills=tuple(fl))))
        else:
            fl = list(st.fills); del fl[k]
            cache = st.cache
            if not f[0] and f[2] == st.epoch: cache = f[1][1]
            n = st._replace(fills=tuple(fl), cache=cache)
            out.append(('fillcomplete', maybe_free(n)))
    return out

init = S('init', None, 0, R0, (None,) * NOWN, (None,) * NOWN, (), (), (), 0, 0, 0, 0)
seen = {init: None}
stack = [init]
bad = None
while stack:
    st = stack.pop()
    nx = succ(st)
    if not nx:
        # quiescent: nothing in flight, nothing to deliver
        if st.cache is not None and st.cache != st.cluster:
            bad = st
            break
    for lab, n in nx:
        if n not in seen:
            seen[n] = (st, lab)
            stack.append(n)
print(('new' if NEW else 'old'), 'states', len(seen))
if bad:
    path = []
    s = bad
    while seen[s]:
        p, lab = seen[s]
        path.append(lab)
        s = p
    print('STALE FOREVER: cache', bad.cache, 'cluster', bad.cluster)
    print(' -> '.join(reversed(path)))
else:
    print('no stale terminal state')
