"""Outcomes a real segment or agent gives only rarely, made on demand by an
LD_PRELOAD shim around libhzshm (tests/python/shim.c, built beside the
module) in a child interpreter: a view reported changed at its release
(HZSHM_ECHANGED), and every return code's Python exception."""
import errno
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


CODES = r"""
import json, os, sys
import hzshm
c = hzshm.Cache(sys.argv[1])
s = c.session(sys.argv[2])
out = {}
for rc in json.loads(sys.argv[3]):
    os.environ["HZSHM_SHIM_DEL_RC"] = str(rc)
    try:
        s.delete("k")
        out[rc] = None
    except Exception as e:
        out[rc] = [type(e).__name__, getattr(e, "name", None), getattr(e, "code", None)]
    del os.environ["HZSHM_SHIM_DEL_RC"]
c.close()
print(json.dumps(out))
"""

# Each return code a call may give: the exception it raises and its .name (hzshm/__init__.pyi).
EXPECTED = {
    -30004: ("FailClosed", "HZSHM_ESTALE"), -30011: ("FailClosed", "HZSHM_EDISCONNECTED"),
    -30026: ("FailClosed", "HZSHM_ESTOPPED"), -30012: ("AgentUnavailable", "HZSHM_EAGENT"),
    -30015: ("Timeout", "HZSHM_ETIMEDOUT"), -30005: ("TooBig", "HZSHM_ETOOBIG"),
    -30021: ("InvalidArgument", "HZSHM_EINVAL"), -30006: ("InvalidArgument", "HZSHM_EEMPTY"),
    -30007: ("InvalidArgument", "HZSHM_EBADSESSION"), -errno.ENOENT: ("NoCache", "ENOENT"),
    -30022: ("Closed", "HZSHM_ECLOSED"), -30030: ("PermissionDenied", "HZSHM_EUNTRUSTED"),
    -errno.EACCES: ("PermissionDenied", "EACCES"), -errno.EPERM: ("PermissionDenied", "EPERM"),
    -30014: ("Error", "HZSHM_EREMOTE"), -30013: ("Error", "HZSHM_EPROTO"), -30003: ("Error", "HZSHM_ECORRUPT"),
    -errno.EIO: ("Error", "EIO"),
}


def test_every_code_raises_its_exception(agent, sid):
    codes = sorted(EXPECTED) + [-errno.ENOMEM]
    out = run_child(CODES, agent.name, sid, json.dumps(codes))
    for rc, (cls, name) in EXPECTED.items():
        assert out[str(rc)] == [cls, name, rc], (rc, out[str(rc)])
    # Out of memory is Python's own MemoryError, as for any allocation.
    assert out[str(-errno.ENOMEM)][0] == "MemoryError", out[str(-errno.ENOMEM)]


OTHER_UID = r"""
import json, sys
import hzshm
try:
    hzshm.Cache(sys.argv[1])
    print(json.dumps(None))
except hzshm.Error as e:
    print(json.dumps([type(e).__name__, e.name, isinstance(e, PermissionError)]))
"""


def _system_python():
    """An interpreter that another uid may run (pyenv's lives under /root), of this one's version."""
    exe = "/usr/bin/python3"
    if os.geteuid() != 0 or not os.access(exe, os.X_OK):
        return None
    v = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    return exe if v.stdout.strip() == str(sys.version_info[:2]) else None


@pytest.mark.skipif(_system_python() is None, reason="needs root and a system python3 of this version")
def test_another_uid_gets_permission_denied(agent):
    """A process of another uid (nobody) may not open the agent's 0600
    segment: PermissionDenied, a PermissionError (before: the base Error)."""
    def as_nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    r = subprocess.run([_system_python(), "-c", OTHER_UID, agent.name], env=child_env(), preexec_fn=as_nobody,
                       cwd="/", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert json.loads(r.stdout) == ["PermissionDenied", "EACCES", True]
