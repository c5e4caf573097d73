"""Threads: one Cache and its Sessions shared by many threads; the GIL is
released during agent round trips (another thread's hits go on meanwhile)."""
import signal
import threading
import time

import hzshm


def test_threads_share_sessions(cache, sid):
    shared = cache.session(sid)
    for i in range(50):
        shared.set("hot%d" % i, b"hot-%d" % i)
    errors = []

    def worker(n):
        try:
            own = cache.session(sid)  # another handle of the same session, per thread
            for i in range(200):
                k = "t%d-%d" % (n, i % 20)
                shared.set(k, b"%d:%d" % (n, i))
                assert own.get(k) == b"%d:%d" % (n, i)  # read-your-writes across handles
                assert shared.get("hot%d" % (i % 50)) == b"hot-%d" % (i % 50)
                assert ("hot%d" % (i % 50)) in own
                if i % 10 == 0:
                    own.delete(k)
                    assert shared.get(k) is None
            own.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_close_while_other_threads_call(agent, sid):
    """close() from one thread while others are in calls: they finish or get
    Closed; nothing crashes and the handle is freed by the last call."""
    for _ in range(5):
        cache = hzshm.Cache(agent.name)
        s = cache.session(sid)
        s.set("k", b"v")
        started = threading.Barrier(5)
        outcomes = []

        def caller():
            started.wait()
            n = 0
            try:
                while True:
                    s.set("k", b"v")
                    assert s.get("k") == b"v"
                    n += 1
            except hzshm.Closed:
                outcomes.append(n)
            except BaseException as e:
                outcomes.append(e)

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        started.wait()
        cache.close()
        for t in threads:
            t.join()
        assert all(isinstance(o, int) for o in outcomes), outcomes
        assert s.closed and cache.closed


def test_gil_is_released_during_a_round_trip(own_agent, sid):
    """A set to a stopped agent blocks its thread until the timeout; the main
    thread's hits run meanwhile (they could not if the call held the GIL)."""
    cache = hzshm.Cache(own_agent.name, timeout=2.0)
    s = cache.session(sid)
    s.set("hot", b"v")
    assert s.get("hot") == b"v"
    span = {}
    entered = threading.Event()

    def blocked_writer():
        entered.set()
        span["t0"] = time.monotonic()
        try:
            s.set("blocked", b"x")
        except hzshm.Timeout:
            span["timeout"] = True
        span["t1"] = time.monotonic()

    own_agent.proc.send_signal(signal.SIGSTOP)  # hits still served until the heartbeat is stale (1 s)
    try:
        t = threading.Thread(target=blocked_writer)
        t.start()
        entered.wait()
        stamps = []
        while t.is_alive() and len(stamps) < 200000:
            try:
                s.get("hot")
            except hzshm.FailClosed:
                pass  # the heartbeat went stale meanwhile: still served without the agent
            stamps.append(time.monotonic())
        t.join()
    finally:
        own_agent.proc.send_signal(signal.SIGCONT)
    assert span.get("timeout") is True
    inside = [x for x in stamps if span["t0"] < x < span["t1"]]
    assert len(inside) > 100, (len(inside), len(stamps))
    cache.close()
