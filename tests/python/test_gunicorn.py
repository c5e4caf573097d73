"""examples/gunicorn under gunicorn: 4 sync workers forked after the app (and
its hzshm.Cache) was loaded in the master (preload_app), driven over HTTP.
Each phase polls until all four workers have answered (which worker takes a
connection is up to the kernel), with a deadline; every answer is checked."""
import http.client
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
from urllib.parse import quote

import pytest

from conftest import ROOT, _die_with_parent, wait_for

WORKERS = 4


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


@pytest.fixture
def server(agent, tmp_path):
    sock = str(tmp_path / "gunicorn.sock")
    env = dict(os.environ, HZSHM_CACHE=agent.name)
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "sync", "--preload",
         "--bind", "unix:" + sock, "--chdir", os.path.join(ROOT, "examples", "gunicorn"), "app:app"],
        env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def up():
        if proc.poll() is not None:
            raise AssertionError("gunicorn exited: " + (tmp_path / "gunicorn.log").read_text())
        try:
            return request(sock, "GET", "/whoami")[0] == 200
        except OSError:
            return False

    wait_for(up, what="gunicorn to answer")
    yield sock, proc.pid
    proc.terminate()
    proc.wait(60)
    log.close()


def request(sock, method, path, body=None):
    c = UnixHTTP(sock)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read(), int(r.getheader("X-Worker-Pid"))
    finally:
        c.close()


def every_worker(sock, path, answer):
    """GETs path until each of the WORKERS workers gave an answer that
    answer(status, body) accepts as final (True); answer may assert on any
    answer. Returns {pid: (status, body)} of the final answers."""
    final = {}

    def all_final():
        status, body, pid = request(sock, "GET", path)
        if answer(status, body):
            final[pid] = (status, body)
        return len(final) >= WORKERS

    wait_for(all_final, what=f"all {WORKERS} workers to answer {path} as expected (so far {final})")
    assert len(final) == WORKERS
    return final


def exactly(expected_status, expected_body):
    def answer(status, body):  # read-your-writes on one host: never another answer
        assert (status, body) == (expected_status, expected_body)
        return True
    return answer


def test_workers_share_session_state(server, hz, sid):
    sock, master = server
    who = every_worker(sock, "/whoami", lambda st, body: st == 200)
    for pid, (_, body) in who.items():  # the cache was opened in the master, before the fork
        info = json.loads(body)
        assert info["opened_in"] == master and info["pid"] == pid != master

    path = f"/s/{sid}/cart"
    st, _, writer = request(sock, "PUT", path, b"3 items")
    assert st == 204
    assert writer in every_worker(sock, path, exactly(200, b"3 items"))

    st, _, _ = request(sock, "DELETE", f"/s/{sid}")  # destroy, served by one worker
    assert st == 204
    every_worker(sock, path, exactly(404, b""))

    st, _, _ = request(sock, "PUT", path, b"v1")
    assert st == 204
    every_worker(sock, path, exactly(200, b"v1"))  # cached by now
    hz.get_map(sid).blocking().put("cart", bytearray(b"v2 from the official client"))
    new = (200, b"v2 from the official client")
    reached = []

    def eventually_new(status, body):
        if (status, body) == new:
            reached.append(True)
            return True
        assert not reached, "an old value after the new one was served"  # one shared segment per host
        assert (status, body) == (200, b"v1")
        return False

    every_worker(sock, path, eventually_new)

    hz.get_map(sid).blocking().put("pickled", b"python bytes")
    st, body, _ = request(sock, "GET", f"/s/{sid}/pickled")
    assert (st, body) == (415, b"type id -120\n")


def test_utf8_session_ids_and_keys(server, hz, sid):
    """A percent-encoded UTF-8 id and key name the same IMap and key as for
    every other client (WSGI hands PATH_INFO over as latin-1 of its bytes)."""
    sock, _ = server
    usid, ukey = sid + "-caf\u00e9", "cl\u00e9 \u20ac"
    path = "/s/%s/%s" % (quote(usid), quote(ukey))
    st, _, _ = request(sock, "PUT", path, b"utf-8 path")
    assert st == 204
    assert hz.get_map(usid).blocking().get(ukey) == bytearray(b"utf-8 path")
    hz.get_map(usid).blocking().put(ukey, bytearray(b"from the official client"))
    every_worker(sock, path, lambda st, body: (st, body) == (200, b"from the official client"))
    st, body, _ = request(sock, "GET", "/s/%s/%%ff%%fe" % quote(usid))  # not UTF-8
    assert st == 400 and b"UTF-8" in body


def _load_app(name):
    spec = importlib.util.spec_from_file_location("hzshm_example_app", os.path.join(ROOT, "examples", "gunicorn",
                                                                                   "app.py"))
    mod = importlib.util.module_from_spec(spec)
    old = os.environ.get("HZSHM_CACHE")
    os.environ["HZSHM_CACHE"] = name
    try:
        spec.loader.exec_module(mod)
    finally:
        if old is None:
            del os.environ["HZSHM_CACHE"]
        else:
            os.environ["HZSHM_CACHE"] = old
    return mod


def _call(app, method, path, body=b""):
    got = {}

    def start_response(status, headers):
        got["status"] = status

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    out = b"".join(app(environ, start_response))
    return int(got["status"].split()[0]), out


def test_app_answers_503_when_the_agent_is_gone(own_agent, sid):
    """No agent (killed): a write is AgentUnavailable, which the app answers
    as 503 like a cache that fails closed, not as a worker's 500 traceback."""
    mod = _load_app(own_agent.name)
    try:
        assert _call(mod.app, "PUT", f"/s/{sid}/k", b"v") == (204, b"")
        assert _call(mod.app, "GET", f"/s/{sid}/k") == (200, b"v")
        own_agent.kill9()
        st, body = _call(mod.app, "PUT", f"/s/{sid}/k", b"w")
        assert (st, body) == (503, b"HZSHM_EAGENT\n")
    finally:
        mod.CACHE.close()
        if own_agent.proc is None:  # serving again, so that its stop unlinks the segment and the socket
            own_agent.start()
