"""Outcomes a real segment or agent gives only rarely, made on demand by an
LD_PRELOAD shim around libhzshm (tests/python/shim.c, built beside the
module) in a child interpreter: a view reported changed at its release
(HZSHM_ECHANGED)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, child_env

SHIM = os.environ.get("HZSHM_PY_SHIM", os.path.join(BUILD, "tests", "python", "libhzshm_py_shim.so"))
pytestmark = pytest.mark.skipif(not os.path.exists(SHIM), reason="the shim (tests/python/shim.c) is not built")


def run_child(code, *args):
    """Runs code in a child interpreter with the shim preloaded (after a
    sanitizer run's runtimes); returns what it printed as JSON."""
    env = child_env()
    env["LD_PRELOAD"] = ":".join(p for p in (env.get("LD_PRELOAD"), SHIM) if p)
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


TORN = r"""
import json, os, sys
import hzshm
c = hzshm.Cache(sys.argv[1])
s = c.session(sys.argv[2])
s.set("b", b"the value")
s.set("u", "the String")
assert s.get("b") == b"the value" and s.get("u") == "the String"  # real hits
out = {}
for kind in ("bytes", "str"):
    os.environ["HZSHM_SHIM_TORN"] = kind  # every view is junk, changed at its release
    try:
        out[kind] = [repr(s.get("b")), repr(s.get("u")), repr(s["b"]), s.has("missing"), "missing" in s]
    except Exception as e:
        out[kind] = "%s: %s" % (type(e).__name__, e)
    del os.environ["HZSHM_SHIM_TORN"]
c.close()
print(json.dumps(out))
"""


def test_a_view_changed_while_read_is_discarded(agent, sid):
    """hzshm.h: when hzshm_view_release says HZSHM_ECHANGED, what was read
    from the view must be discarded. get returns the value (read again,
    by the checked copy), never the junk; has does not count a key that a
    reused view showed."""
    out = run_child(TORN, agent.name, sid)
    want = [repr(b"the value"), repr("the String"), repr(b"the value"), False, False]
    assert out == {"bytes": want, "str": want}, out
