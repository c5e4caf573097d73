#!/usr/bin/env python3
"""test_fake_server.py FAKE_SERVER - checks that every fake_server scenario puts on the wire
exactly the fault it advertises (so the hz client's fault tests test what they claim), that the
baseline answers are well-formed, and that the fault fires once: a second connection is served
normally. Synchronizes on the fake server's log lines, never on sleeps.
"""
import os
import socket
import struct
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hzwire as hw  # noqa: E402  (frame helpers)

FAKE = sys.argv[1]
failures = 0


def check(name, cond, detail=""):
    global failures
    print("%s %s %s" % ("ok" if cond else "FAIL", name, detail), flush=True)
    if not cond:
        failures += 1


class Fake:
    def __init__(self, scenario, *extra):
        self.p = subprocess.Popen([FAKE, "--port", "0", "--scenario", scenario] + list(extra),
                                  stdout=subprocess.PIPE, text=True)
        first = self.p.stdout.readline().split()
        assert first[0] == "listening", first
        self.addr = first[1]
        self.lines = []

    def wait_line(self, pred, timeout=10, after=0):
        """Returns the first log line from index `after` on that satisfies pred (None at EOF/deadline)."""
        deadline = time.monotonic() + timeout
        for ln in self.lines[after:]:
            if pred(ln):
                return ln
        while time.monotonic() < deadline:
            ln = self.p.stdout.readline()  # the server logs every step, so this returns promptly
            if not ln:
                return None
            ln = ln.strip()
            self.lines.append(ln)
            if pred(ln):
                return ln
        return None

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def read_exact(sock, n, timeout=10):
    sock.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def frames(buf):
    """Splits raw bytes into (length, flags, content) while the lengths are sane."""
    out, off = [], 0
    while len(buf) - off >= 6:
        ln, fl = struct.unpack_from("<iH", buf, off)
        if ln < 6 or off + ln > len(buf):
            break
        out.append((ln, fl, buf[off + 6:off + ln]))
        off += ln
    return out


def corr_of(fr):
    return struct.unpack_from("<q", fr[2], 4)[0]


def type_of(fr):
    return struct.unpack_from("<i", fr[2], 0)[0]


def connect_and_auth(fake, expect_ok=True):
    c = hw.Conn(fake.addr)
    if expect_ok:
        a = hw.parse_auth(c.call(hw.auth_request("dev", uuid.uuid4())))
        return c, a
    return c, None


GET_CORR = 5555


def send_get(c):
    kd = hw.data_string("k")
    c.send(hw.request(hw.T_GET, struct.pack("<q", 0), [hw.s_frame("m"), hw.Frame(kd)], pid=21),
           corr=GET_CORR)


def fault_bytes(fake, c, name):
    mark = len(fake.lines)
    send_get(c)
    ln = fake.wait_line(lambda s: s.endswith("fault " + name), after=mark)
    check(name + ".fired", ln is not None, ln or "")
    mark = fake.lines.index(ln) if ln else mark
    sent = fake.wait_line(lambda s: " sent " in s and s.split()[1] == ln.split()[1], after=mark) if ln else None
    n = int(sent.split()[3]) if sent else 0
    return read_exact(c.sock, n)


def is_eof(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def holds(fake, c):
    """The connection stays open and unanswered: a Ping gets logged as ignored, and nothing arrives."""
    mark = len(fake.lines)
    c.send(hw.request(hw.T_PING))
    ok = fake.wait_line(lambda s: s.endswith("ignored (holding)"), after=mark) is not None
    c.sock.setblocking(False)
    try:
        data = c.sock.recv(1)
        ok = ok and False if data else ok
    except BlockingIOError:
        pass
    c.sock.setblocking(True)
    return ok


def answers_again(c):
    r = c.call(hw.request(hw.T_PING), timeout=10)
    return hw.mtype(r) == hw.T_PING + 1


PREDICATES = {
    "truncated": (lambda b, f: len(b) == 10 and struct.unpack_from("<i", b)[0] > 10, "hold"),
    "truncated-close": (lambda b, f: len(b) == 10, "close"),
    "truncated-header": (lambda b, f: len(b) == 3, "close"),
    "oversized": (lambda b, f: struct.unpack_from("<I", b)[0] == 0x7FFFFFF0, "hold"),
    "negative-length": (lambda b, f: struct.unpack_from("<i", b)[0] == -1, "hold"),
    "short-length": (lambda b, f: [struct.unpack_from("<i", b, 6 * i)[0] for i in range(6)] == list(range(6)), "hold"),
    "empty-message": (lambda b, f: b == struct.pack("<iH", 6, 0xE000), "hold"),
    "short-initial": (lambda b, f: len(f) == 1 and len(f[0][2]) == 8, "hold"),
    "bogus-flags": (lambda b, f: len(f) == 1 and f[0][1] == 0xFFFF, "hold"),
    "unknown-correlation": (lambda b, f: [corr_of(x) for x in f if x[1] & 0xC000 == 0xC000][-1:] == [GET_CORR]
                            and corr_of(f[0]) != GET_CORR, "continue"),
    "unknown-correlation-only": (lambda b, f: all(corr_of(x) != GET_CORR for x in f if x[1] & 0xC000 == 0xC000),
                                 "continue"),
    "duplicate-response": (lambda b, f: [corr_of(x) for x in f if x[1] & 0xC000 == 0xC000] == [GET_CORR] * 2,
                           "continue"),
    "wrong-type": (lambda b, f: type_of(f[0]) == 0x7F7F01 and corr_of(f[0]) == GET_CORR, "continue"),
    "error": (lambda b, f: type_of(f[0]) == 0 and struct.unpack_from("<i", f[3][2])[0] == 39, "continue"),
    "garbage-custom": (lambda b, f: type_of(f[0]) == 0 and len(f[3][2]) == 1 and f[-1][1] & 0x2000, "hold"),
    "unbalanced-end": (lambda b, f: f[1][1] == 0x0800 and f[-1][1] == 0x2800, "hold"),
    "unclosed-begin": (lambda b, f: f[1][1] == 0x1000 and f[-1][1] == 0x2000, "hold"),
    "deep-nesting": (lambda b, f: len(f) == 200001 and f[-1][1] == 0x2800, "hold"),
    "value-not-data": (lambda b, f: len(f) == 2 and len(f[1][2]) == 5 and f[1][1] == 0x2000, "hold"),
    "fragment-never-ends": (lambda b, f: f[0][1] == 0x8000 and struct.unpack_from("<q", f[0][2])[0] == 42
                            and not any(x[1] & 0x4000 for x in f[1:] if x[1] != 0xC000), "hold"),
    "fragment-unknown-id": (lambda b, f: f[0][1] == 0x4000 and corr_of(f[2]) == GET_CORR, "continue"),
    "event-unknown": (lambda b, f: [hex(type_of(x)) for x in f if x[1] & 0x0200] == ["0x7f7f02", "0x13f02"],
                      "continue"),
    "trickle": (lambda b, f: corr_of(f[0]) == GET_CORR and f[-1][1] == 0x2400, "continue"),
    "silent": (lambda b, f: b == b"", "hold"),
    "close": (lambda b, f: b == b"", "close"),
}


def run_scenario(name):
    fake = Fake(name)
    try:
        c, a = connect_and_auth(fake)
        check(name + ".auth", a["status"] == 0)
        b = fault_bytes(fake, c, name)
        pred, after = PREDICATES[name]
        try:
            good = bool(pred(b, frames(b)))
        except (IndexError, struct.error):
            good = False
        check(name + ".bytes", good, "%d bytes: %s" % (len(b), b[:48].hex()))
        if after == "close":
            check(name + ".closed", is_eof(c.sock))
        elif after == "hold":
            check(name + ".held", holds(fake, c))
        else:
            check(name + ".continues", answers_again(c))
        c.close()
        # The fault fired once: a new connection is served normally.
        c2, a2 = connect_and_auth(fake)
        send_get(c2)
        c2.sock.settimeout(10)
        r = c2.call(hw.request(hw.T_PING), timeout=10)
        check(name + ".next_connection_normal", a2["status"] == 0 and hw.mtype(r) == hw.T_PING + 1)
        c2.close()
    finally:
        fake.stop()


def run_normal():
    fake = Fake("normal")
    try:
        c, a = connect_and_auth(fake)
        check("normal.auth", a["status"] == 0 and a["partition_count"] == 271 and a.get("member_infos") == 1
              and a.get("partitions_listed") == 271 and a["extra_frames"] == 0, repr(a))
        corr = c.send(hw.request(0x000300))
        deadline = time.monotonic() + 10
        while corr not in c.responses and time.monotonic() < deadline:
            c.pump(deadline - time.monotonic())
        check("normal.cluster_view", [t for _, t in c.order] == [0x000101, 0x000302, 0x000303, 0x000301],
              str(["0x%06x" % t for _, t in c.order]))
        cl = hw.Client.__new__(hw.Client)
        cl.conns, cl.partition_count, cl.uuid = [c], 271, None
        check("normal.get_null", cl.get("m", "k") is None)
        r = cl.key_call(hw.T_CONTAINS, "m", "k")
        check("normal.contains_false", len(r[0].content) == 14 and r[0].content[13] == 0)
        r = c.call(hw.request(hw.T_SIZE, b"", [hw.s_frame("m")]))
        check("normal.size", struct.unpack_from("<i", r[0].content, 13)[0] == 0)
        # Bad client input: a frame length below 6 closes the connection.
        c.sock.sendall(struct.pack("<iH", 3, 0))
        check("normal.bad_client_frame_closes", is_eof(c.sock))
        c.close()
    finally:
        fake.stop()


def run_options():
    """--new-cluster-id changes the cluster id per connection (a restarted cluster); --partitions N."""
    for extra, differ in ((["--new-cluster-id"], True), ([], False)):
        fake = Fake("normal", "--partitions", "7", *extra)
        try:
            ids = []
            for _ in range(2):
                c, a = connect_and_auth(fake)
                ids.append(a["cluster_id"])
                check("options.partitions", a["partition_count"] == 7 and a.get("partitions_listed") == 7)
                c.close()
            check("options.cluster_id%s" % ("_new" if differ else "_same"), (ids[0] != ids[1]) == differ, str(ids))
        finally:
            fake.stop()


def run_auth(name, expect):
    fake = Fake(name)
    try:
        c = hw.Conn(fake.addr)
        c.send(hw.auth_request("dev", uuid.uuid4()))
        ln = fake.wait_line(lambda s: s.endswith("fault " + name))
        check(name + ".fired", ln is not None)
        if expect == "close":
            check(name + ".closed", is_eof(c.sock))
        elif expect == "hold":
            check(name + ".held", holds(fake, c))
        else:
            deadline = time.monotonic() + 10
            while not c.responses and time.monotonic() < deadline:
                c.pump(deadline - time.monotonic())
            msg = next(iter(c.responses.values()), None)
            check(name + ".response", msg is not None and expect(msg))
        c.close()
    finally:
        fake.stop()


def main():
    bad = subprocess.run([FAKE, "--port", "0", "--scenario", "no-such"], capture_output=True, text=True)
    check("cli.unknown_scenario", bad.returncode == 2 and "unknown scenario" in bad.stderr)
    # A number that does not parse whole or is out of range is refused (exit 2, naming it), before listening.
    for args in (["--port", "70000"], ["--port", "12x"], ["--port", "010x"], ["--port", " 1"], ["--port", "+1"],
                 ["--times", "0"], ["--skip", "-1"], ["--cluster-id", "256"], ["--partitions", "abc"],
                 ["--error-code", "39z"], ["--trigger", "0xZZ"], ["--trigger", "-1"]):
        argv = [FAKE, "--scenario", "normal"] + (["--port", "0"] if args[0] != "--port" else []) + args
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        check("cli.bad_number " + " ".join(args), r.returncode == 2 and ("bad argument " + args[0]) in r.stderr
              and "listening" not in r.stdout, "exit %d: %s" % (r.returncode, r.stderr.strip()[:80]))
    ok = subprocess.run([FAKE, "--scenario", "normal", "--port", "0", "--partitions", "0", "--list"],
                        capture_output=True, text=True, timeout=10)
    check("cli.partitions_zero_accepted", ok.returncode == 0, "exit %d" % ok.returncode)
    listed = subprocess.run([FAKE, "--list"], capture_output=True, text=True).stdout.split("\n")
    names = [ln.split()[0] for ln in listed if ln.strip()]
    check("cli.list", len(names) >= 25 and "normal" in names)
    run_normal()
    run_options()
    for name in names:
        if name in PREDICATES:
            run_scenario(name)
    run_auth("auth-fail", lambda m: m[0].content[13] == 1)
    run_auth("auth-short", lambda m: len(m[0].content) == 14)
    run_auth("auth-silent", "hold")
    run_auth("auth-close", "close")
    untested = [n for n in names if n not in PREDICATES and n not in ("normal",) and not n.startswith("auth-")]
    check("cli.all_scenarios_tested", not untested, str(untested))
    print("all checks passed" if failures == 0 else "%d check(s) failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
