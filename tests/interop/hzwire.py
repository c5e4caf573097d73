#!/usr/bin/env python3
"""hzwire.py - the Hazelcast client protocol 2.x by hand, for probes and tests (stdlib only).

Frames, messages, UUIDs, String/byte[] Data, MurmurHash3 partitioning, a blocking connection that
files responses by correlation id and queues events, a "client" (one UUID, one authenticated
connection per member), and parsers for the Authentication response and invalidation events.
Layouts follow /work/shared/docs/hazelcast-client-protocol.md; what a real 5.5.0 member does is in
docs/PROTOCOL-NOTES.md (checked by probe.py). Used by probe.py and test_fake_server.py.
"""

import select
import socket
import struct
import time
import uuid as uuidlib

# ---- framing (hazelcast-client-protocol.md §1.2, §1.3) ------------------------------------------
BEGIN_FRAG, END_FRAG, IS_FINAL = 0x8000, 0x4000, 0x2000
BEGIN_DS, END_DS, IS_NULL, IS_EVENT = 0x1000, 0x0800, 0x0400, 0x0200
UNFRAGMENTED = BEGIN_FRAG | END_FRAG

T_AUTH, T_DESTROY_PROXY, T_PING = 0x000100, 0x000500, 0x000B00
T_PUT, T_GET, T_REMOVE, T_CONTAINS, T_DELETE, T_SET = 0x010100, 0x010200, 0x010300, 0x010600, 0x010900, 0x010F00
T_EVICT, T_EVICT_ALL, T_SIZE, T_CLEAR = 0x011E00, 0x011F00, 0x012A00, 0x012D00
T_ADD_INVAL, T_INVAL_EVENT, T_INVAL_BATCH = 0x013F00, 0x013F02, 0x013F03
T_ERROR = 0


class Frame:
    __slots__ = ("flags", "content")

    def __init__(self, content=b"", flags=0):
        self.content, self.flags = content, flags

    def has(self, mask):
        return (self.flags & mask) == mask

    def encode(self):
        return struct.pack("<iH", 6 + len(self.content), self.flags) + self.content


def enc_uuid(u):
    if u is None:
        return b"\x01" + b"\x00" * 16
    msb, lsb = u.int >> 64, u.int & ((1 << 64) - 1)
    return b"\x00" + struct.pack("<qq", msb - (1 << 64) if msb >= 1 << 63 else msb,
                                 lsb - (1 << 64) if lsb >= 1 << 63 else lsb)


def dec_uuid(b, off):
    if b[off]:
        return None
    msb, lsb = struct.unpack_from("<QQ", b, off + 1)
    return uuidlib.UUID(int=(msb << 64) | lsb)


def request(mtype, fixed=b"", frames=(), pid=-1):
    """Returns the frames of a request; the correlation id is filled in by Conn.send."""
    init = Frame(struct.pack("<iqi", mtype, 0, pid) + fixed, UNFRAGMENTED)
    return [init] + list(frames)


def s_frame(s):
    return Frame(s.encode("utf-8"))


NULL_FRAME = Frame(b"", IS_NULL)


# ---- serialization (§2) ----------------------------------------------------------------------
def data_string(s):
    b = s.encode("utf-8")
    return struct.pack(">iii", 0, -11, len(b)) + b


def data_bytes(b):
    return struct.pack(">iii", 0, -12, len(b)) + b


def murmur3_32(data, seed=0x01000193):
    c1, c2, h, n = 0xCC9E2D51, 0x1B873593, seed, len(data)
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF
    for i in range(0, n - n % 4, 4):
        k = struct.unpack_from("<I", data, i)[0]
        k = rotl((k * c1) & 0xFFFFFFFF, 15) * c2 & 0xFFFFFFFF
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail, k = data[n - n % 4:], 0
    for i in reversed(range(len(tail))):
        k = (k << 8) | tail[i]
    if tail:
        h ^= rotl((k * c1) & 0xFFFFFFFF, 15) * c2 & 0xFFFFFFFF
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def partition_of(data, count):
    h = struct.unpack_from(">i", data, 0)[0] or murmur3_32(data[8:])
    return 0 if h == -(1 << 31) else abs(h) % count


# ---- connection ------------------------------------------------------------------------------
class Closed(Exception):
    pass


class Conn:
    """One TCP connection speaking the client protocol; events are queued in .events."""
    _corr = 100

    def __init__(self, addr, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"CP2")
        self.buf, self.frames, self.responses, self.events = b"", [], {}, []
        self.closed = False
        self.order = []  # (is_event, message type) of every message received, in arrival order

    def send(self, frames, corr=None):
        if corr is None:
            Conn._corr += 1
            corr = Conn._corr
        init = frames[0]
        init.content = init.content[:4] + struct.pack("<q", corr) + init.content[12:]
        frames[-1].flags |= IS_FINAL
        self.sock.sendall(b"".join(f.encode() for f in frames))
        frames[-1].flags &= ~IS_FINAL
        return corr

    def pump(self, timeout):
        """Reads what arrives within timeout and files complete messages; raises Closed at EOF."""
        if self.closed:
            raise Closed(self.addr)
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed(self.addr)
        self.buf += chunk
        while len(self.buf) >= 6:
            ln, flags = struct.unpack_from("<iH", self.buf, 0)
            if len(self.buf) < ln:
                break
            self.frames.append(Frame(self.buf[6:ln], flags))
            self.buf = self.buf[ln:]
            if flags & IS_FINAL:
                msg, self.frames = self.frames, []
                corr = struct.unpack_from("<q", msg[0].content, 4)[0]
                self.order.append((bool(msg[0].flags & IS_EVENT), mtype(msg)))
                if msg[0].flags & IS_EVENT:
                    self.events.append(msg)
                else:
                    self.responses[corr] = msg

    def call(self, frames, timeout=20.0):
        corr = self.send(frames)
        deadline = time.monotonic() + timeout
        while corr not in self.responses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no response to 0x%06x" % struct.unpack_from("<i", frames[0].content)[0])
            self.pump(left)
        msg = self.responses.pop(corr)
        if mtype(msg) == T_ERROR:
            raise RemoteError(msg)
        return msg

    def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.pump(deadline - time.monotonic())
        except Closed:
            return True
        return False

    def close(self):
        self.sock.close()


class RemoteError(Exception):
    def __init__(self, msg):
        # List_ErrorHolder: begin list, then per holder begin, fixed(errorCode), className, message(N), ...
        self.code = struct.unpack_from("<i", msg[3].content, 0)[0] if len(msg) > 4 else -1
        self.cls = msg[4].content.decode() if len(msg) > 4 else "?"
        self.text = msg[5].content.decode() if len(msg) > 5 and not msg[5].has(IS_NULL) else None
        super().__init__("remote error %d %s" % (self.code, self.cls))


def mtype(msg):
    return struct.unpack_from("<i", msg[0].content, 0)[0]


def fragmented_call(conn, frames, nfrag, timeout=10.0):
    """Sends frames as nfrag fragments (whole frames per fragment, fragmentation id 77); returns the response."""
    Conn._corr += 1
    corr = Conn._corr
    frames[0].content = frames[0].content[:4] + struct.pack("<q", corr) + frames[0].content[12:]
    per = -(-len(frames) // nfrag)
    parts = [frames[i:i + per] for i in range(0, len(frames), per)]
    out = b""
    for n, part in enumerate(parts):
        flags = (BEGIN_FRAG if n == 0 else 0) | (END_FRAG if n == len(parts) - 1 else 0)
        seq = [Frame(struct.pack("<q", 77), flags)] + part
        out += b"".join(f.encode() for f in seq[:-1]) + Frame(seq[-1].content, seq[-1].flags | IS_FINAL).encode()
    conn.sock.sendall(out)
    deadline = time.monotonic() + timeout
    while corr not in conn.responses:
        if time.monotonic() >= deadline:
            raise TimeoutError("no response to a fragmented message")
        conn.pump(deadline - time.monotonic())
    return conn.responses.pop(corr)


def auth_request(cluster, client_uuid, user=None, password=None, client_type="CPP", ser_version=1,
                 labels=(), name="hzshm-probe"):
    fixed = enc_uuid(client_uuid) + bytes([ser_version, 1, 0])  # routingMode ALL_MEMBERS, cpDirect false
    frames = [s_frame(cluster), s_frame(user) if user is not None else NULL_FRAME,
              s_frame(password) if password is not None else NULL_FRAME,
              s_frame(client_type), s_frame("5.5.0"), s_frame(name), Frame(b"", BEGIN_DS)]
    frames += [s_frame(label) for label in labels] + [Frame(b"", END_DS)]
    return request(T_AUTH, fixed, frames)


def skip_struct(msg, i):
    """msg[i] is a begin frame; returns the index after its matching end frame."""
    depth = 0
    while True:
        f = msg[i]
        if f.has(BEGIN_DS):
            depth += 1
        elif f.has(END_DS):
            depth -= 1
        i += 1
        if depth == 0:
            return i


def parse_auth(msg):
    c = msg[0].content
    out = {"status": c[13], "initial_content_len": len(c), "frames": len(msg)}
    if c[13] != 0:
        return out
    out.update(member_uuid=dec_uuid(c, 14), ser_version=c[31], partition_count=struct.unpack_from("<i", c, 32)[0],
               cluster_id=dec_uuid(c, 36), failover=bool(c[53]))
    if len(c) >= 62:
        out["member_list_version"], out["partition_list_version"] = struct.unpack_from("<ii", c, 54)
    i = 1
    i = i + 1 if msg[i].has(IS_NULL) else skip_struct(msg, i)  # address
    out["server_version"] = msg[i].content.decode()
    i += 1
    out["tpc_ports_null"] = msg[i].has(IS_NULL)
    out["tpc_ports_len"] = len(msg[i].content)
    i += 1
    out["tpc_token_null"] = msg[i].has(IS_NULL)
    i += 1
    if i < len(msg):  # memberInfos List_MemberInfo: count the elements at depth 1
        n, j, end = 0, i + 1, skip_struct(msg, i)
        while j < end - 1:
            j, n = skip_struct(msg, j), n + 1
        out["member_infos"], i = n, end
    if i < len(msg):  # partitions: begin, one List_Integer per owner, end, List_UUID of owners
        end = skip_struct(msg, i)
        out["partition_owners"] = end - i - 2
        out["partitions_listed"] = sum(len(f.content) // 4 for f in msg[i + 1:end - 1])
        i = end + 1
    if i < len(msg):  # keyValuePairs (2.8)
        end = skip_struct(msg, i)
        kv = [f.content.decode() for f in msg[i + 1:end - 1]]
        out["key_value_pairs"] = dict(zip(kv[0::2], kv[1::2]))
        i = end
    out["extra_frames"] = len(msg) - i
    return out


class Client:
    """A logical client: one UUID, one authenticated connection per member address."""
    live = []  # every open Client: events() heartbeats them all while it waits

    def __init__(self, members, cluster):
        Client.live.append(self)
        self.uuid = uuidlib.uuid4()
        self.conns, self.auth = [], []
        for addr in members:
            c = Conn(addr)
            a = parse_auth(c.call(auth_request(cluster, self.uuid)))
            if a["status"] != 0:
                raise RuntimeError("authentication to %s failed: %r" % (addr, a))
            self.conns.append(c)
            self.auth.append(a)
        self.partition_count = self.auth[0]["partition_count"]

    def key_call(self, mtype_, name, key, value=None, fixed=b"", pid=None, conn=0):
        kd = data_string(key)
        frames = [s_frame(name), Frame(kd)] + ([Frame(value)] if value is not None else [])
        p = partition_of(kd, self.partition_count) if pid is None else pid
        return self.conns[conn].call(request(mtype_, struct.pack("<q", 0) + fixed, frames, pid=p))

    def put(self, name, key, value, ttl=-1, op=T_PUT, **kw):
        return self.key_call(op, name, key, data_bytes(value), fixed=struct.pack("<q", ttl), **kw)

    def get(self, name, key, **kw):
        m = self.key_call(T_GET, name, key, **kw)
        return None if m[1].has(IS_NULL) else m[1].content

    def name_call(self, mtype_, name, conn=0):
        return self.conns[conn].call(request(mtype_, b"", [s_frame(name)]))

    def add_inval_listener(self, name):
        """Registers the near-cache invalidation listener on every connection (localOnly=true)."""
        out = []
        for c in self.conns:
            corr = c.send(request(T_ADD_INVAL, struct.pack("<iB", 256, 1), [s_frame(name)]))
            deadline = time.monotonic() + 20
            while corr not in c.responses and time.monotonic() < deadline:
                c.pump(deadline - time.monotonic())
            out.append((corr, dec_uuid(c.responses.pop(corr)[0].content, 13)))
        return out

    def events(self, timeout, until=None):
        """Collects events from all connections for up to timeout s (or until until(events) is true)."""
        got, deadline = [], time.monotonic() + timeout
        while True:
            for c in self.conns:
                got += [(c.addr, e) for e in c.events]
                c.events = []
            if until is not None and until(got):
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            heartbeat_all()
            r, _, _ = select.select([c.sock for c in self.conns], [], [], min(left, 1.0))
            for c in self.conns:
                if c.sock in r:
                    c.pump(0)

    def close(self):
        Client.live.remove(self)
        for c in self.conns:
            c.close()


_last_ping = [0.0]


def heartbeat_all():
    """Sends Client.Ping on every connection of every live Client at most once a second, as a
    real client's heartbeat does, so that long waits survive a short member heartbeat timeout."""
    if time.monotonic() - _last_ping[0] < 1.0:
        return
    _last_ping[0] = time.monotonic()
    for cl in Client.live:
        for c in cl.conns:
            if not c.closed:
                c.send(request(T_PING))
                c.responses.clear()  # nobody waits for ping answers; drop them (and stale ones)


def parse_inval(msg):
    """IMapInvalidation (0x013F02) or IMapBatchInvalidation (0x013F03) -> list of dicts."""
    c = msg[0].content
    if mtype(msg) == T_INVAL_EVENT:
        key = None if msg[1].has(IS_NULL) else msg[1].content
        return [{"type": "single", "corr": struct.unpack_from("<q", c, 4)[0],
                 "header_pid": struct.unpack_from("<i", c, 12)[0], "source": dec_uuid(c, 16),
                 "partition_uuid": dec_uuid(c, 33), "sequence": struct.unpack_from("<q", c, 50)[0], "key": key}]
    if mtype(msg) == T_INVAL_BATCH:
        end = skip_struct(msg, 1)
        keys = [f.content for f in msg[2:end - 1]]
        srcs = [dec_uuid(msg[end].content, 17 * i) for i in range(len(keys))]
        seqs = struct.unpack_from("<%dq" % len(keys), msg[end + 2].content, 0)
        return [{"type": "batch", "header_pid": struct.unpack_from("<i", c, 12)[0], "source": srcs[i],
                 "sequence": seqs[i], "key": keys[i]} for i in range(len(keys))]
    return []


def invals(evs):
    return [x for _, e in evs for x in parse_inval(e)]


