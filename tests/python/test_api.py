"""Every call of the binding and every error, against a real member and agent."""
import decimal
import fractions
import subprocess
import sys

import pytest

import hzshm
from conftest import CLI_BIN, child_env, native_env, wait_for


def test_set_get_has_delete(cache, sid):
    s = cache.session(sid)
    assert s.get("cart") is None
    assert s.get("cart", b"dflt") == b"dflt"
    assert s.has("cart") is False and "cart" not in s
    s.set("cart", b"3 items")
    assert s.get("cart") == b"3 items"
    assert s.has("cart") is True and "cart" in s
    s.set("cart", b"4 items", ttl=None)
    assert s.get("cart", b"dflt") == b"4 items"
    s.delete("cart")
    assert s.get("cart") is None and not s.has("cart")
    s.delete("cart")  # deleting a missing key is no error


def test_mapping_protocol(cache, sid):
    s = cache.session(sid)
    with pytest.raises(KeyError):
        s["k"]
    with pytest.raises(KeyError):
        del s["k"]
    s["k"] = b"v"
    assert s["k"] == b"v" and "k" in s
    del s["k"]
    assert "k" not in s
    with pytest.raises(KeyError):
        s["k"]
    with pytest.raises(TypeError):
        len(s)


def test_value_kinds(cache, sid):
    s = cache.session(sid)
    s.set("ba", bytearray(b"from bytearray"))
    s.set("mv", memoryview(b"xxfrom memoryview")[2:])
    s.set("str", "caf\u00e9 \u20ac")  # str: a Hazelcast String
    s.set("estr", "")
    s.set("empty", b"")
    assert s.get("ba") == b"from bytearray"
    assert s.get("mv") == b"from memoryview"
    assert s.get("str") == "caf\u00e9 \u20ac" and type(s.get("str")) is str
    assert s["str"] == "caf\u00e9 \u20ac" and s.get("estr") == "" and s.has("estr")
    assert type(s.get("ba")) is bytes and type(s.get("empty")) is bytes
    s.set("str", b"bytes again")  # a type change replaces the value
    assert s.get("str") == b"bytes again"
    s["str"] = "str again"
    assert s.get("str") == "str again"
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate has no UTF-8: nothing is written
        s.set("str", "\ud800")
    assert s.get("str") == "str again"
    assert s.get("empty") == b"" and s.has("empty")
    for bad in (None, 42, 1.5, ["x"], memoryview(b"abcdef")[::2]):
        with pytest.raises((TypeError, BufferError)):
            s.set("bad", bad)
    assert s.get("bad") is None  # nothing was written


def test_keys_str_and_bytes_are_the_same_key(cache, sid):
    s = cache.session(sid)
    s.set("cl\u00e9", b"u")
    assert s.get("cl\u00e9".encode()) == b"u"
    with pytest.raises(TypeError):
        s.get(42)
    with pytest.raises(TypeError):
        s.has(None)


def test_large_values(cache, sid):
    s = cache.session(sid)
    big = bytes(range(256)) * 2048  # 512 KiB: read back through the agent or the segment
    s.set("big", big)
    assert s.get("big") == big
    most = b"m" * hzshm.VALUE_MAX
    s.set("max", most)
    assert s.get("max") == most
    with pytest.raises(hzshm.TooBig) as e:
        s.set("max", most + b"!")
    assert e.value.name == "HZSHM_ETOOBIG" and isinstance(e.value, ValueError)
    assert s.get("max") == most  # unchanged


def test_bad_keys(cache, sid):
    s = cache.session(sid)
    with pytest.raises(hzshm.InvalidArgument) as e:
        s.get("")
    assert e.value.name == "HZSHM_EEMPTY"
    with pytest.raises(hzshm.InvalidArgument):
        s.set("", b"v")
    with pytest.raises(hzshm.TooBig):
        s.set("k" * (hzshm.KEY_MAX + 1), b"v")
    with pytest.raises(hzshm.TooBig):
        s.get("k" * (hzshm.KEY_MAX + 1))
    s.set("k" * hzshm.KEY_MAX, b"longest")
    assert s.get("k" * hzshm.KEY_MAX) == b"longest"
    with pytest.raises(hzshm.InvalidArgument) as e:
        s.get(b"\xff\xfe")  # not UTF-8
    assert e.value.name == "HZSHM_EINVAL"
    with pytest.raises(UnicodeEncodeError):
        s.get("\ud800")  # a lone surrogate has no UTF-8


def test_ttl(cache, sid):
    s = cache.session(sid)
    for bad in (-1, -0.5, float("nan")):
        with pytest.raises(hzshm.InvalidArgument):
            s.set("t", b"v", ttl=bad)
    with pytest.raises(TypeError):
        s.set("t", b"v", ttl="1")
    with pytest.raises(TypeError):
        s.set("t", b"v", ttl=True)
    with pytest.raises(TypeError):
        s.set("t", b"v", ttl=1j)  # complex: no __float__
    with pytest.raises(hzshm.InvalidArgument):
        s.set("t", b"v", ttl=fractions.Fraction(-1, 2))
    assert s.get("t") is None  # none of those wrote

    class Index:  # as numpy.int64: an integer through __index__ only
        def __init__(self, n):
            self.n = n

        def __index__(self):
            return self.n

    for ok in (Index(600), fractions.Fraction(1200, 2), decimal.Decimal("600.5")):
        s.set("n", b"v", ttl=ok)
        assert s.get("n") == b"v"
    s.set("i1", b"v", ttl=Index(1))  # read as 1 s: it expires
    wait_for(lambda: s.get("i1") is None, what="the Index(1) ttl to expire")
    s.set("forever", b"v", ttl=0)
    s.set("t", b"v", ttl=1)
    assert s.get("t") == b"v"
    wait_for(lambda: s.get("t") is None, what="the 1 s ttl to expire")
    assert s.get("forever") == b"v"


def test_hits_come_from_shared_memory(cache, sid):
    s = cache.session(sid)
    s.set("k", b"v")
    assert s.get("missing") is None  # absence, now cached
    a = cache.stats()
    for _ in range(100):
        assert s.get("k") == b"v"
        assert not s.has("missing")
        assert "k" in s
    b = cache.stats()
    assert b["remote_gets"] == a["remote_gets"] and b["hits"] >= a["hits"] + 300


def test_destroy(cache, sid):
    s = cache.session(sid)
    s.set("a", b"1")
    s.set("b", b"2")
    other = cache.session(sid)  # another handle of the same session
    assert other.get("a") == b"1"
    s.destroy()
    assert s.get("a") is None and other.get("b") is None
    s.set("a", b"again")  # still usable
    assert other.get("a") == b"again"


def test_session_ids(cache):
    with pytest.raises(hzshm.InvalidArgument) as e:
        cache.session("")
    assert e.value.name == "HZSHM_EEMPTY"
    with pytest.raises(hzshm.TooBig):
        cache.session("s" * (hzshm.SESSION_MAX + 1))
    with pytest.raises(hzshm.InvalidArgument) as e:
        cache.session("a\0b")
    assert e.value.name == "HZSHM_EBADSESSION"
    with pytest.raises(TypeError):
        cache.session(b"bytes-id")
    s = cache.session("s" * hzshm.SESSION_MAX)
    assert s.sid == "s" * hzshm.SESSION_MAX and s.cache is cache


def test_prefix(agent, hz, sid):
    with hzshm.Cache(agent.name, prefix="app:") as c:
        c.session(sid).set("k", b"prefixed")
    assert hz.get_map("app:" + sid).blocking().get("k") == bytearray(b"prefixed")
    assert hz.get_map(sid).blocking().get("k") is None
    with pytest.raises(hzshm.TooBig):
        hzshm.Cache(agent.name, prefix="p" * hzshm.SESSION_MAX)


def test_cache_errors(agent):
    with pytest.raises(hzshm.NoCache) as e:
        hzshm.Cache("no-such-cache")
    assert e.value.code < 0 and e.value.name == "ENOENT" and isinstance(e.value, FileNotFoundError)
    assert "no-such-cache" in str(e.value)
    for bad in ("", "bad name", "x" * 65, "a\0b"):
        with pytest.raises(hzshm.InvalidArgument):
            hzshm.Cache(bad)
    for kw in ({"timeout": 0}, {"timeout": -1}, {"connections": 0}, {"connections": 65}):
        with pytest.raises(ValueError):
            hzshm.Cache(agent.name, **kw)
    with pytest.raises(TypeError):
        hzshm.Cache(agent.name, prefix=1)
    with pytest.raises(TypeError):
        hzshm.Session()
    c = hzshm.Cache(agent.name, timeout=5, connections=2)
    c.close()


def test_error_attributes():
    assert issubclass(hzshm.FailClosed, hzshm.Error)
    for cls in (hzshm.AgentUnavailable, hzshm.Timeout, hzshm.TooBig, hzshm.InvalidArgument, hzshm.NoCache,
                hzshm.UnsupportedType, hzshm.Closed, hzshm.PermissionDenied):
        assert issubclass(cls, hzshm.Error)
    assert issubclass(hzshm.Timeout, TimeoutError) and issubclass(hzshm.UnsupportedType, TypeError)
    assert issubclass(hzshm.PermissionDenied, PermissionError)
    assert hzshm.strerror(0) == "OK" or hzshm.strerror(0)
    assert hzshm.strerror(-30001) == "key not found"


def test_context_managers_and_close(agent, sid):
    with hzshm.Cache(agent.name) as c:
        assert not c.closed
        with c.session(sid) as s:
            s.set("k", b"v")
            assert s.get("k") == b"v"
        assert s.closed
        with pytest.raises(hzshm.Closed) as e:
            s.get("k")
        assert e.value.name == "HZSHM_ECLOSED"
        s2 = c.session(sid)
    assert c.closed and s2.closed  # closing a cache closes its sessions
    for call in (lambda: s2.get("k"), lambda: s2.set("k", b"v"), lambda: "k" in s2, s2.destroy,
                 lambda: s2.delete("k"), lambda: c.session(sid), c.stats):
        with pytest.raises(hzshm.Closed):
            call()
    c.close()
    s2.close()  # idempotent
    assert "closed" in repr(c) and "closed" in repr(s2)


def test_stats_has_the_figures_of_hzshm_stat(cache, agent):
    st = cache.stats()
    out = subprocess.run([CLI_BIN, "-n", agent.name, "stat"], check=True, capture_output=True, text=True,
                         env=native_env()).stdout
    cli = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert list(st) == list(cli) + ["health"]  # and the verdict's reason, which `hzshm health` prints
    assert st["healthy"] is True and cli["healthy"] == "yes" and "serving" in st["health"]
    assert st["agent_pid"] == agent.proc.pid == int(cli["agent_pid"])
    assert st["agent_state"] == cli["agent_state"] == "serving"
    assert st["memory_limit"] == int(cli["memory_limit"])


def test_fail_closed_then_resume(own_agent, sid):
    import signal

    c = hzshm.Cache(own_agent.name)
    s = c.session(sid)
    s.set("k", b"v")
    assert s.get("k") == b"v"
    own_agent.proc.send_signal(signal.SIGSTOP)  # heartbeat stops: the hit must fail closed

    def failing_closed():
        try:
            s.get("k")
        except hzshm.FailClosed as e:
            return e
        return None

    e = wait_for(failing_closed, what="FailClosed on a hit")
    assert e.name == "HZSHM_ESTALE"
    with pytest.raises(hzshm.FailClosed):
        s.has("k")
    own_agent.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: failing_closed() is None, what="hits to resume")
    assert s.get("k") == b"v"
    c.close()


def test_timeout(own_agent, sid):
    import signal

    # Warm-up while the agent serves. The session's first set on a fresh agent
    # registers its listener with the member, which on a cold member path can
    # take longer than 0.3 s: made through a handle with the default timeout.
    with hzshm.Cache(own_agent.name) as warm:
        warm.session(sid).set("warm", b"up")
    c = hzshm.Cache(own_agent.name, timeout=0.3)
    s = c.session(sid)

    def answered():
        try:
            s.set("warm", b"up")  # this handle's connection, made while the agent serves
            return True
        except hzshm.Timeout:  # a loaded machine; the agent is not stopped yet
            return False

    wait_for(answered, what="a set through the 0.3 s handle while the agent serves")
    own_agent.proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(hzshm.Timeout) as e:
            s.set("k", b"v")
        assert e.value.name == "HZSHM_ETIMEDOUT" and isinstance(e.value, TimeoutError)
    finally:
        own_agent.proc.send_signal(signal.SIGCONT)
    c.close()


def test_agent_unavailable_then_restart(own_agent, sid):
    c = hzshm.Cache(own_agent.name)
    s = c.session(sid)
    s.set("k", b"v")
    own_agent.kill9()
    with pytest.raises(hzshm.AgentUnavailable) as e:
        s.set("k", b"w")
    assert e.value.name == "HZSHM_EAGENT"
    with pytest.raises(hzshm.AgentUnavailable):
        s.delete("k")
    own_agent.start()  # same name: the segment is reused and the handle resumes

    def served():
        try:
            return s.get("k") == b"v"
        except hzshm.FailClosed:
            return False

    wait_for(served, what="the restarted agent to serve the old handle")
    # Not a hit of the dead agent's entry: the restarted agent marked every
    # partition stale, so "v" came through it from the member.
    st = c.stats()
    assert st["hits"] == 0 and st["remote_gets"] >= 1, st
    s.set("k", b"w")  # the restarted agent listens once it serves: no retry
    assert s.get("k") == b"w"
    c.close()


UNINITIALIZED = r"""
import hzshm
c = hzshm.Cache.__new__(hzshm.Cache)  # never __init__-ed: no name to open
for use in (lambda: c.name, lambda: c.session("s"), c.stats, c.__enter__):
    try:
        use()
        raise SystemExit("no exception from an uninitialized Cache")
    except hzshm.Closed as e:
        assert e.name == "HZSHM_ECLOSED" and "not initialized" in str(e), e
assert "?" in repr(c) and c.closed is False
c.close()
c.close()
assert c.closed
"""


def test_uninitialized_cache_raises_instead_of_crashing():
    """Cache.__new__(Cache) without __init__ (hostile or careless code): every
    use raises Closed; .name dereferenced a NULL name (SIGSEGV)."""
    r = subprocess.run([sys.executable, "-c", UNINITIALIZED], env=child_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)


def test_objects_are_not_copied_or_pickled(cache, sid):
    """A Cache or Session is a process's handle: copy and pickle refuse it
    (a forked child inherits it instead)."""
    import copy
    import pickle

    s = cache.session(sid)
    for obj in (cache, s):
        for op in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError):
                op(obj)
    s.set("k", b"v")
    assert s.get("k") == b"v"


def test_get_default_by_keyword(cache, sid):
    """get(key, /, default=None), as the docstring and the stub have it."""
    s = cache.session(sid)
    assert s.get("nope", default=b"d") == b"d"
    assert s.get("nope", default=None) is None
    s.set("k", b"v")
    assert s.get("k", default=b"d") == b"v"
    for bad in (lambda: s.get("k", b"d", default=b"e"), lambda: s.get("k", dflt=b"e"), lambda: s.get(),
                lambda: s.get(key="k"), lambda: s.get("k", b"d", b"e")):
        with pytest.raises(TypeError):
            bad()


def test_an_uncached_value_costs_one_round_trip(cache, sid):
    """A value too large for the segment's slabs (1 MiB; the test agent's
    32 MiB segment has smaller ones) is never cached: every get asks the
    agent. One request each, not a first one that only learns the size
    (HZSHM_EBUFSIZE) and a second one (two member GETs)."""
    s = cache.session(sid)
    big = bytes(range(256)) * (hzshm.VALUE_MAX // 256)
    s.set("big", big)
    assert s.get("big") == big  # learns the size
    a = cache.stats()
    for _ in range(3):
        assert s.get("big") == big
    b = cache.stats()
    assert b["uncacheable_values"] > 0 and b["hits"] == a["hits"], (a, b)  # served uncached
    assert b["agent_requests"] - a["agent_requests"] == 3, (a, b)
    assert b["remote_gets"] - a["remote_gets"] == 3, (a, b)
    s.set("big", b"small now")  # and a smaller value after a large one
    assert s.get("big") == b"small now"
