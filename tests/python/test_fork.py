"""fork(): a worker forked after the parent opened the cache (gunicorn
preload_app, uWSGI without lazy-apps) uses the inherited Cache and Session
objects with no call of its own, and never sees HZSHM_EFORKED."""
import multiprocessing
import os
import threading

import hzshm


def _child_work(cache, s, sid, q):
    try:
        assert s.get("parent") == b"p"  # the inherited session
        assert "parent" in s and s.has("missing") is False
        s.set("child-%d" % os.getpid(), b"c")
        s2 = cache.session(sid)  # a new session on the inherited cache
        assert s2.get("child-%d" % os.getpid()) == b"c"
        st = cache.stats()
        assert st["agent_state"] == "serving"
        s2.delete("to-delete")
        q.put(("ok", os.getpid()))
    except BaseException as e:  # report everything, EFORKED included
        q.put(("fail", "%s: %r (%s)" % (type(e).__name__, e, getattr(e, "name", ""))))


def _run_children(cache, s, sid, n):
    """n multiprocessing 'fork' children run _child_work; returns their pids."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child_work, args=(cache, s, sid, q)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert all(r[0] == "ok" for r in results), results
    return [r[1] for r in results]


def test_multiprocessing_fork(agent, sid):
    cache = hzshm.Cache(agent.name)
    s = cache.session(sid)
    s.set("parent", b"p")
    s.set("to-delete", b"x")
    assert s.get("parent") == b"p"
    for pid in _run_children(cache, s, sid, 3):
        assert s.get("child-%d" % pid) == b"c"  # the children's writes, seen here
    assert s.get("to-delete") is None
    assert s.get("parent") == b"p"  # the parent's handles are untouched
    s.set("parent", b"p2")
    assert s.get("parent") == b"p2"
    cache.close()


def test_pool_of_forked_workers(agent, sid):
    cache = hzshm.Cache(agent.name)
    s = cache.session(sid)
    for i in range(20):
        s.set("k%d" % i, b"v%d" % i)
    _GLOBAL["s"] = s  # inherited by the forked pool workers (not pickled)
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            got = pool.map(_global_get, ["k%d" % i for i in range(20)])
    finally:
        _GLOBAL.clear()
    assert got == [b"v%d" % i for i in range(20)]
    cache.close()


_GLOBAL = {}


def _global_get(key):
    return _GLOBAL["s"].get(key)


def test_os_fork_grandchild_and_close_in_child(agent, sid):
    cache = hzshm.Cache(agent.name)
    s = cache.session(sid)
    s.set("k", b"v")
    pid = os.fork()
    if pid == 0:  # child: fork again from a child that used its re-attached handle
        code = 1
        try:
            if s.get("k") == b"v":
                gpid = os.fork()
                if gpid == 0:
                    ok = s.get("k") == b"v" and s.set("g", b"grandchild") is None
                    os._exit(0 if ok else 1)
                _, st = os.waitpid(gpid, 0)
                s.close()
                cache.close()  # in a child: frees only this child's handles
                code = 0 if os.waitstatus_to_exitcode(st) == 0 else 2
        finally:
            os._exit(code)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
    assert s.get("g") == b"grandchild"
    assert s.get("k") == b"v"
    cache.close()


def test_fork_while_another_thread_waits_for_the_agent(agent, sid):
    """A thread is in a round trip (GIL released, busy) when the main thread
    forks: the child must not wait for that call nor misuse its handle."""
    cache = hzshm.Cache(agent.name)
    s = cache.session(sid)
    s.set("k", b"v")
    s.set("parent", b"p")
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            s.set("w", b"%d" % i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        _run_children(cache, s, sid, 4)
        # The child closes what it inherited, busy or not:
        pid = os.fork()
        if pid == 0:
            try:
                cache.close()
                os._exit(0 if s.closed else 1)
            finally:
                os._exit(3)
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
    finally:
        stop.set()
        t.join()
    assert s.get("k") == b"v"
    cache.close()
