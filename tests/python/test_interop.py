"""Interop with the official Python client (hazelcast-python-client) on the same
member: values written by each are read by the other, and invalidations reach
the hzshm cache."""
import pytest

import hzshm
from conftest import wait_for


def test_official_bytearray_is_byte_array(cache, hz, sid):
    m = hz.get_map(sid).blocking()
    m.put("k", bytearray(b"from the official client"))  # the client's byte[]
    assert cache.session(sid).get("k") == b"from the official client"


def test_hzshm_write_is_a_byte_array_or_string_for_the_official_client(cache, hz, sid):
    s = cache.session(sid)
    s.set("k", b"from hzshm")
    s.set("u", "caf\u00e9 \u20ac")
    m = hz.get_map(sid).blocking()
    assert m.get("k") == bytearray(b"from hzshm")
    u = m.get("u")
    assert u == "caf\u00e9 \u20ac" and type(u) is str  # a str goes as a Hazelcast String
    s.delete("k")
    assert m.get("k") is None
    s.destroy()
    assert m.get("u") is None


def test_official_string_reads_as_str(cache, hz, sid):
    hz.get_map(sid).blocking().put("k", "a String \u20ac")
    s = cache.session(sid)
    v = s.get("k")  # a miss: the agent's answer says String
    assert v == "a String \u20ac" and type(v) is str
    hits = s.cache.stats()["hits"]
    v = s.get("k")  # now a hit: the segment's entry says String
    assert v == "a String \u20ac" and type(v) is str
    assert s.cache.stats()["hits"] > hits


def test_pickled_value_is_unsupported_type(cache, hz, sid):
    m = hz.get_map(sid).blocking()
    m.put("pickled", b"python bytes")  # the official client pickles a bytes object
    m.put("int", 42)
    s = cache.session(sid)
    with pytest.raises(hzshm.UnsupportedType) as e:
        s.get("pickled")
    assert e.value.type_id == -120 and e.value.name == "HZSHM_ETYPE" and isinstance(e.value, TypeError)
    assert "-120" in str(e.value)
    with pytest.raises(hzshm.UnsupportedType) as e:
        s["int"]
    assert e.value.type_id not in (-120, -12)  # another non-byte[] type
    assert s.has("pickled")  # it exists, whatever its type
    s.set("pickled", b"now a byte[]")  # overwriting it is fine
    assert s.get("pickled") == b"now a byte[]"


def test_official_writes_invalidate_the_cache(cache, hz, sid):
    s = cache.session(sid)
    s.set("k", b"old")
    assert s.get("k") == b"old"  # cached here
    m = hz.get_map(sid).blocking()
    m.put("k", bytearray(b"new"))
    wait_for(lambda: s.get("k") == b"new", what="the official client's write to reach the cache")
    m.delete("k")
    wait_for(lambda: s.get("k") is None, what="the official client's delete to reach the cache")
    assert "k" not in s
    m.put("k", bytearray(b"back"))
    wait_for(lambda: s.get("k") == b"back", what="a cached absence to be invalidated")
    m.destroy()
    wait_for(lambda: s.get("k") is None, what="the official client's destroy to reach the cache")
