"""Fixtures of the Python binding's tests: a real Hazelcast member, a real
hzshm-agent from the build, the official Python client.

Run by ctest (tests/python/CMakeLists.txt), which passes the member fixture's
directory and the binaries in the environment. Run by hand (pytest
tests/python), it starts its own member on port 5811 (the binding's range,
5801-5819) and uses build/release.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("HZSHM_BUILD_DIR", os.path.join(ROOT, "build", "release"))
AGENT_BIN = os.environ.get("HZSHM_AGENT_BIN", os.path.join(BUILD, "src", "agent", "hzshm-agent"))
CLI_BIN = os.environ.get("HZSHM_CLI_BIN", os.path.join(BUILD, "tools", "hzshm"))
HZ_MEMBER = os.environ.get("HZ_MEMBER", os.path.join(ROOT, "tools", "hz-member"))
CLUSTER = "dev"  # tools/hz-member's default cluster name
if "PYTHONPATH" not in os.environ:  # by hand: the build tree's package (ctest sets PYTHONPATH)
    sys.path.insert(0, os.path.join(BUILD, "python"))

import hzshm  # noqa: E402


def wait_for(pred, timeout=60.0, what="condition"):
    """Polls pred() until it returns a true value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)  # poll interval, not synchronization


def native_env():
    """The environment for our native helpers (agent, members, CLI): without an
    LD_PRELOAD that a sanitizer run of the interpreter needs (see CMakeLists)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def child_env(**extra):
    """The environment for a child interpreter that imports this hzshm (the
    one these tests import, whether PYTHONPATH or conftest found it)."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(hzshm.__file__)),
                                                    env.get("PYTHONPATH")) if p)
    return env


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the test run


class Agent:
    """One hzshm-agent process serving cache `name` for the member(s)."""

    def __init__(self, members, name=None, extra=()):
        self.members = members
        self.name = name or f"py{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sock = f"/tmp/hzshm-py-{self.name}.sock"
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        args = [AGENT_BIN, "-n", self.name, "-m", self.members, "-c", CLUSTER, "--socket", self.sock,
                "--memory", "32m", "--reconcile-ms", "1000", "--unlink-on-exit", *self.extra]
        self.proc = subprocess.Popen(args, preexec_fn=_die_with_parent, env=native_env())
        wait_for(self._ready, what=f"agent {self.name} serving")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"agent {self.name} exited with {self.proc.returncode} during start-up")
        try:
            with hzshm.Cache(self.name) as c:
                st = c.stats()
        except (hzshm.NoCache, hzshm.Error):  # not created yet, or created but not sized yet (ETRUNCATED)
            return False
        return (st["agent_pid"] == self.proc.pid and st["agent_state"] == "serving"
                and st["cluster_state"] == "connected")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def members():
    d = os.environ.get("HZSHM_TEST_MEMBER_DIR")
    own = None
    if d is None:
        own = tempfile.mkdtemp(prefix="hzshm-py-members-")
        subprocess.run([HZ_MEMBER, "start", "--dir", own, "--port", "5811", "--count", "1", "--heap", "256m"],
                       check=True, stdout=subprocess.DEVNULL, env=native_env())
        d = own
    addrs = subprocess.run([HZ_MEMBER, "addrs", "--dir", d], check=True, capture_output=True,
                           text=True, env=native_env()).stdout.strip()
    yield addrs
    if own:
        subprocess.run([HZ_MEMBER, "stop", "--dir", own], check=False, env=native_env())
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def agent(members):
    a = Agent(members)
    yield a
    a.stop()


@pytest.fixture
def own_agent(members):
    """An agent of the test's own (for tests that stop, kill or restart it)."""
    a = Agent(members)
    yield a
    if a.proc is not None and a.proc.poll() is None:
        a.proc.send_signal(signal.SIGCONT)
    a.stop()


@pytest.fixture(scope="session")
def hz(members):
    import hazelcast

    client = hazelcast.HazelcastClient(cluster_name=CLUSTER, cluster_members=members.split(","))
    yield client
    client.shutdown()


@pytest.fixture
def cache(agent):
    c = hzshm.Cache(agent.name)
    yield c
    c.close()


@pytest.fixture
def sid():
    return "py-" + uuid.uuid4().hex
