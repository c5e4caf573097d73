"""hzshm: the host's shared-memory near cache in front of Hazelcast, from Python.

    import hzshm
    cache = hzshm.Cache("sessions")      # attach to the agent's cache (hzshm.NoCache if none)
    s = cache.session("sess-42")         # the Store of one session (one IMap)
    s.set("cart", b"3 items")            # bytes-like -> Hazelcast byte[]; str -> Hazelcast String
    s.get("cart")                        # b"3 items" | None; get(k, default)
    s.has("cart"), "cart" in s, s["cart"], del s["cart"]
    s.destroy()                          # the whole session, cluster-wide
    cache.stats()                        # the figures `hzshm stat` shows

Hits are served from shared memory with the GIL held; misses and writes go
to the host's hzshm-agent with the GIL released. Thread-safe, and usable in
worker processes forked after the cache was opened (gunicorn preload_app):
a child re-attaches by itself on its first call.
"""
from ._hzshm import (
    KEY_MAX,
    LIB_VERSION,
    SESSION_MAX,
    VALUE_MAX,
    AgentUnavailable,
    Cache,
    Closed,
    Error,
    FailClosed,
    InvalidArgument,
    NoCache,
    PermissionDenied,
    Session,
    Timeout,
    TooBig,
    UnsupportedType,
    strerror,
)

__version__ = "0.1.0"
__all__ = [
    "Cache",
    "Session",
    "Error",
    "FailClosed",
    "AgentUnavailable",
    "Timeout",
    "TooBig",
    "InvalidArgument",
    "NoCache",
    "UnsupportedType",
    "Closed",
    "PermissionDenied",
    "strerror",
    "KEY_MAX",
    "SESSION_MAX",
    "VALUE_MAX",
    "LIB_VERSION",
]
