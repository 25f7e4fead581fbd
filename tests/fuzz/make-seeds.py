#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/) and nothing else.

The seeds are committed; run this again after changing it (it rewrites the files it
knows and leaves others, such as regression inputs a fuzzer found, alone):

    python3 tests/fuzz/make-seeds.py

Frames follow PROTOCOL.md §1 and core/PROTOCOL-v2.md; the ids, token and session key
are the fixed ones of the targets (fuzz-upgrade.c, fuzz-server-peer.c).
"""
import hashlib
import hmac
import os
import struct
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

CLIENT_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440000").bytes
TUNNEL_ID = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8").bytes
SERVICE_ID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000").bytes
CONNECTION_ID = uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479").bytes

AUTH, AUTH_OK, AUTH_FAIL = 0x01, 0x02, 0x03
REGISTER, REGISTER_OK, REGISTER_FAIL = 0x10, 0x11, 0x12
CONNECT, CONNECT_ACK, CONNECT_FAIL = 0x20, 0x21, 0x22
HEARTBEAT, HEARTBEAT_ACK = 0x30, 0x31
UNREGISTER, DISCONNECT = 0x40, 0x41


def unhex(s):
    return bytes.fromhex("".join(s.split()))


def frame(t, payload):
    return struct.pack(">BI", t, len(payload)) + payload


def str8(s):
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def str16(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def entry(tag, value):
    return struct.pack(">BH", tag, len(value)) + value


def block(*entries):
    return b"\x02" + b"".join(entries)


VERSION = lambda v=2: entry(0x01, struct.pack(">H", v))
CAPS = lambda c: entry(0x02, struct.pack(">I", c))
PROOF = lambda p=b"\x11" * 32: entry(0x03, p)
RESUME = lambda: entry(0x04, TUNNEL_ID + b"\x22" * 32)
RESUME_SECRET = lambda: entry(0x05, b"\x33" * 32)
HEARTBEAT_MS = lambda ms: entry(0x06, struct.pack(">I", ms))
RESUMED = lambda: entry(0x07, b"\x01")
ASSIGNED_PORT = lambda p: entry(0x08, struct.pack(">H", p))
EXPOSE = lambda e: entry(0x09, bytes([e]))
CODE = lambda c: entry(0x0A, struct.pack(">H", c))
SERVER_PROOF = lambda: entry(0x0B, b"\x44" * 32)
ACCESS_TTL = lambda s: entry(0x0C, struct.pack(">I", s))
MAX_CONNECTIONS = lambda n: entry(0x0D, struct.pack(">I", n))
IDLE_TIMEOUT = lambda s: entry(0x0E, struct.pack(">I", s))
TIMESTAMP_US = lambda us: entry(0x0F, struct.pack(">Q", us))
STANDBY_MAX = lambda n: entry(0x10, struct.pack(">H", n))
# family (4 or 6), source and destination (16 bytes each, IPv4 in the first 4), ports
ADDRESSES = lambda fam, src, dst, sport, dport: entry(
    0x11, bytes([fam]) + src.ljust(16, b"\0") + dst.ljust(16, b"\0") + struct.pack(">HH", sport, dport))


def auth(token, ext=b""):
    return frame(AUTH, str16(token) + CLIENT_ID + ext)


def register(name, proto=0, local=22, remote=0, ext=b""):
    return frame(REGISTER, str8(name) + bytes([proto]) + struct.pack(">HH", local, remote) + ext)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- message: whole frames, as on the wire ----

def message_seeds():
    vectors = {
        # PROTOCOL.md §1.4
        "v1-auth": "01 00 00 00 1C 00 0A 74 75 6E 5F 61 62 63 31 32 33"
                   "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00",
        "v1-auth-ok": "02 00 00 00 10 6B A7 B8 10 9D AD 11 D1 80 B4 00 C0 4F D4 30 C8",
        "v1-register-ssh": "10 00 00 00 09 03 73 73 68 00 00 16 08 AE",
        "v1-register-game-udp": "10 00 00 00 0A 04 67 61 6D 65 01 69 87 00 00",
        "v1-heartbeat": "30 00 00 00 08 00 00 01 8D 0C FE 2A 00",
        "v1-disconnect": "41 00 00 00 0E 00 0C 69 64 6C 65 20 74 69 6D 65 6F 75 74",
        # the decode errors of §1.4
        "err-empty": "",
        "err-short-1": "01",
        "err-short-4": "01 00 00 00",
        "err-incomplete": "01 00 00 00 20 00",
        "err-unknown-type": "FF 00 00 00 00",
        "err-too-large": "01 FF FF FF FF",
    }
    for name, hx in vectors.items():
        write("message", name, unhex(hx))
    seeds = {
        "v1-auth-fail": frame(AUTH_FAIL, str16("invalid token")),
        "v1-register-ok": frame(REGISTER_OK, SERVICE_ID),
        "v1-register-fail": frame(REGISTER_FAIL, str16("port 2222 in use")),
        "v1-connect": frame(CONNECT, SERVICE_ID + CONNECTION_ID + str16("203.0.113.7:51000")),
        "v1-connect-ack": frame(CONNECT_ACK, CONNECTION_ID),
        "v1-connect-fail": frame(CONNECT_FAIL, CONNECTION_ID + str16("connection refused")),
        "v1-heartbeat-ack": frame(HEARTBEAT_ACK, struct.pack(">Q", 1705320000000)),
        "v1-unregister": frame(UNREGISTER, SERVICE_ID),
        "v2-auth": auth("0123456789abcdef", block(VERSION(), CAPS(0x1F), PROOF())),
        "v2-auth-resume": auth("0123456789abcdef", block(VERSION(), CAPS(0x0B), PROOF(), RESUME())),
        # §2a: the raw token in the token field, BEARER (0x40) in CAPS, no PROOF
        "v2-auth-bearer": auth("zlt_bearer_0123456789abcdef", block(VERSION(), CAPS(0x4F))),
        "v2-auth-ok": frame(AUTH_OK, TUNNEL_ID + block(VERSION(), CAPS(0x1D), RESUME_SECRET(),
                                                        HEARTBEAT_MS(15000), RESUMED())),
        "v2-auth-fail-code": frame(AUTH_FAIL, str16("bad token") + block(CODE(1))),
        "v2-register-internal": register("web", 0, 8080, 0, block(EXPOSE(1))),
        "v2-register-ok-port": frame(REGISTER_OK, SERVICE_ID + block(ASSIGNED_PORT(28600))),
        "v2-register-fail-code": frame(REGISTER_FAIL, str16("duplicate") + block(CODE(4))),
        "v2-connect-empty-block": frame(CONNECT, SERVICE_ID + CONNECTION_ID + str16("[::1]:5") + b"\x02"),
        "v2-disconnect-code": frame(DISCONNECT, str16("server shutting down") + block(CODE(11))),
        "v2-unknown-tag": frame(AUTH_OK, TUNNEL_ID + block(entry(0x7F, b"future"), VERSION())),
        "v2-unused-tag": frame(REGISTER, str8("ssh") + b"\x00\x00\x16\x00\x00" + block(CODE(9))),
        "err-v2-duplicate-tag": auth("k", block(VERSION(), VERSION())),
        "err-v2-wrong-size": auth("k", block(entry(0x01, b"\x00\x02\x00"))),
        "err-v2-truncated-entry": auth("k", block(VERSION())[:-1]),
        "err-v2-bad-marker": auth("k", b"\x03" + VERSION()),
        "v2-heartbeat-empty-block": frame(HEARTBEAT, struct.pack(">Q", 1) + b"\x02"),
        "v2-heartbeat-us": frame(HEARTBEAT, struct.pack(">Q", 1705320000000)
                                 + block(TIMESTAMP_US(1705320000000123))),
        "err-bad-protocol": frame(REGISTER, str8("ssh") + b"\x07\x00\x16\x00\x00"),
        "err-not-utf8": frame(DISCONNECT, struct.pack(">H", 2) + b"\xc3\x28"),
        "err-nul-in-string": frame(AUTH_FAIL, struct.pack(">H", 3) + b"a\x00b"),
        "multi-register-heartbeat": register("ssh", 0, 22, 2222) + register("game", 1, 27015)
        + frame(HEARTBEAT, struct.pack(">Q", 1705320000000)),
        "multi-trailing-garbage": register("ssh") + b"\x10\x00",
    }
    for name, data in seeds.items():
        write("message", name, data)


# ---- ext: byte 0 = type index (| 0x08: no marker added), then the block ----

EXT_KINDS = {"auth": 0, "auth-ok": 1, "auth-fail": 2, "register": 3, "register-ok": 4,
             "register-fail": 5, "connect": 6, "disconnect": 7,
             "heartbeat": 0x10, "heartbeat-ack": 0x11}


def ext_seeds():
    def w(name, kind, body, own_marker=False):
        write("ext", name, bytes([EXT_KINDS[kind] | (0x08 if own_marker else 0)]) + body)

    w("auth-v2", "auth", VERSION() + CAPS(0x1F) + PROOF())
    w("auth-resume", "auth", VERSION() + CAPS(0x0B) + PROOF() + RESUME())
    w("auth-ok-all", "auth-ok", VERSION() + CAPS(0x1D) + RESUME_SECRET() + HEARTBEAT_MS(15000)
      + RESUMED())
    w("auth-fail-code", "auth-fail", CODE(12))
    w("register-expose", "register", EXPOSE(1))
    w("register-ok-port", "register-ok", ASSIGNED_PORT(28600))
    w("register-fail-code", "register-fail", CODE(7))
    w("connect-empty", "connect", b"")
    w("disconnect-code", "disconnect", CODE(9))
    w("unknown-tags", "auth-ok", entry(0x00, b"") + entry(0x0B, b"x" * 5) + entry(0xFF, b"") + VERSION())
    w("unused-known-tag", "register-ok", EXPOSE(0) + ASSIGNED_PORT(1))
    w("no-block", "auth", b"", own_marker=True)
    w("own-marker", "disconnect", b"\x02" + CODE(11), own_marker=True)
    w("bad-marker", "auth", b"\x01" + VERSION(), own_marker=True)
    w("duplicate", "auth", VERSION() + VERSION())
    w("wrong-size", "register", entry(0x09, b"\x01\x00"))
    w("overrun", "auth-ok", b"\x06\x00\x10\x00")
    w("truncated-header", "auth-fail", b"\x0a\x00")
    w("auth-access", "auth", VERSION() + CAPS(0x11) + PROOF() + ACCESS_TTL(1800))
    w("auth-ok-proof", "auth-ok", VERSION() + CAPS(0x1F) + SERVER_PROOF() + ACCESS_TTL(600))
    w("register-limits", "register", EXPOSE(0) + MAX_CONNECTIONS(64) + IDLE_TIMEOUT(300))
    w("heartbeat-us", "heartbeat", TIMESTAMP_US(1705320000000123))
    w("heartbeat-ack-us", "heartbeat-ack", TIMESTAMP_US(1705320000000123))
    w("server-proof-short", "auth-ok", entry(0x0B, b"x" * 5))
    w("auth-ok-standby", "auth-ok", VERSION() + CAPS(0x3D) + SERVER_PROOF() + STANDBY_MAX(64))
    w("standby-max-long", "auth-ok", CAPS(0x20) + entry(0x10, b"\x00\x00\x40"))
    w("standby-max-on-auth", "auth", VERSION() + CAPS(0x20) + PROOF() + STANDBY_MAX(8))
    w("auth-bearer", "auth", VERSION() + CAPS(0x4F) + RESUME())
    w("auth-ok-bearer", "auth-ok", VERSION() + CAPS(0x5D) + SERVER_PROOF())
    w("connect-addresses", "connect",
      ADDRESSES(4, bytes([203, 0, 113, 7]), bytes([198, 51, 100, 1]), 51234, 8080))
    w("connect-addresses-v6", "connect",
      ADDRESSES(6, b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x01", b"\0" * 15 + b"\x01", 51234, 443))
    w("addresses-short", "connect", entry(0x11, b"\x04" * 36))
    w("register-hostname", "register", entry(0x12, b"a.apps.example.test"))
    w("register-hostname-nul", "register", entry(0x12, b"a\0b.test"))
    w("register-hostname-empty", "register", entry(0x12, b""))
    w("addresses-on-register", "register", EXPOSE(0) + ADDRESSES(4, b"\x7f\0\0\x01", b"\x7f\0\0\x01", 1, 2))
    w("auth-addresses-cap", "auth", VERSION() + CAPS(0x9F) + PROOF())


# ---- upgrade: raw HTTP requests ----

SESSION_KEY = b"\x5a" * 32
TUNNEL = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
CONNECTION = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
GONE = "0f8fad5b-d9cb-469f-a165-70867728950e"


def data_mac(tunnel, connection):
    msg = b"zlt-data-v2" + uuid.UUID(tunnel).bytes + uuid.UUID(connection).bytes
    return hmac.new(SESSION_KEY, msg, hashlib.sha256).hexdigest()


def standby_mac(tunnel, standby_id):
    msg = b"zlt-standby-v2" + uuid.UUID(tunnel).bytes + struct.pack(">Q", standby_id)
    return hmac.new(SESSION_KEY, msg, hashlib.sha256).hexdigest()


def standby_headers(tunnel=TUNNEL, standby="2", mac=None):
    return ["Connection: Upgrade", "Upgrade: zlt-data/2", f"X-Zlt-Tunnel: {tunnel}",
            f"X-Zlt-Standby: {standby}",
            f"X-Zlt-Mac: {mac if mac is not None else standby_mac(tunnel, int(standby))}"]


def request(path="/tunnel/v1/data", method="GET", headers=(), body=b"", version="HTTP/1.1"):
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def data_headers(tunnel=TUNNEL, connection=CONNECTION, mac=None, upgrade="zlt-data/2"):
    return ["Connection: Upgrade", f"Upgrade: {upgrade}", f"X-Zlt-Tunnel: {tunnel}",
            f"X-Zlt-Connection: {connection}",
            f"X-Zlt-Mac: {mac if mac is not None else data_mac(tunnel, connection)}"]


WS_HEADERS = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]


def ws_frame(payload, opcode=2):
    # a client frame: FIN, masked
    mask = b"\x01\x02\x03\x04"
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def upgrade_seeds():
    seeds = {
        "data-ok": request(headers=data_headers()),
        "data-ok-then-bytes": request(headers=data_headers()) + b"first bytes of the stream",
        "data-bad-mac": request(headers=data_headers(mac="00" * 32)),
        "data-short-mac": request(headers=data_headers(mac="abcd")),
        "data-unknown-connection": request(headers=data_headers(
            connection="11111111-2222-4333-8444-555555555555",
            mac=data_mac(TUNNEL, "11111111-2222-4333-8444-555555555555"))),
        "data-gone": request(headers=data_headers(connection=GONE)),
        "data-other-tunnel": request(headers=data_headers(tunnel=GONE)),
        "data-bad-uuid": request(headers=data_headers(tunnel="not-a-uuid", mac="00" * 32)),
        "data-missing-mac": request(headers=data_headers()[:-1]),
        "data-no-upgrade": request(headers=data_headers()[2:]),
        "data-websocket-mode": request(headers=data_headers(upgrade="websocket")
                                       + ["Sec-WebSocket-Version: 13",
                                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                                          "Sec-WebSocket-Protocol: zlt-data.v2"]),
        "data-post": request(method="POST", headers=data_headers() + ["Content-Length: 4"],
                             body=b"abcd"),
        "data-http10": request(headers=data_headers(), version="HTTP/1.0"),
        "access-ok": request(headers=data_headers(
            connection="9b2c3d4e-1111-4222-8333-444455556666") + ["X-Zlt-Service: web"]),
        "access-probe": request(headers=data_headers(
            connection="9b2c3d4e-1111-4222-8333-444455556666") + ["X-Zlt-Service: web",
                                                                 "X-Zlt-Probe: 1"]),
        "access-unknown-service": request(headers=data_headers() + ["X-Zlt-Service: db"]),
        "access-bad-name": request(headers=data_headers() + ["X-Zlt-Service: a b/c"]),
        "standby-ok": request(headers=standby_headers()),
        "standby-ok-then-bytes": request(headers=standby_headers()) + b"too early",
        "standby-over-bound": request(headers=standby_headers(standby="3")),
        "standby-bad-mac": request(headers=standby_headers(mac="00" * 32)),
        "standby-other-tunnel": request(headers=standby_headers(
            tunnel=GONE, mac=standby_mac(GONE, 2))),
        "standby-leading-zero": request(headers=standby_headers(standby="02",
                                                                mac=standby_mac(TUNNEL, 2))),
        "standby-overflow": request(headers=standby_headers(standby="18446744073709551616",
                                                            mac="00" * 32)),
        "standby-and-connection": request(headers=standby_headers()
                                          + [f"X-Zlt-Connection: {CONNECTION}"]),
        "standby-and-service": request(headers=standby_headers() + ["X-Zlt-Service: web"]),
        "control-upgrade": request(path="/tunnel/v1", headers=WS_HEADERS),
        "control-upgrade-frame": request(path="/tunnel/v1", headers=WS_HEADERS)
        + ws_frame(frame(HEARTBEAT, struct.pack(">Q", 1))) + ws_frame(b"\x03\xe8", opcode=8),
        "control-no-key": request(path="/tunnel/v1", headers=WS_HEADERS[:3]),
        "control-plain-get": request(path="/tunnel/v1"),
        "not-found": request(path="/"),
        "pipelined": request(path="/") + request(headers=data_headers()),
        "chunked": request(method="POST", path="/x", headers=["Transfer-Encoding: chunked"],
                           body=b"4\r\nabcd\r\n0\r\n\r\n"),
        "long-header": request(headers=["X-Long: " + "a" * 3000]),
        "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32,
        "incomplete": b"GET /tunnel/v1/data HTTP/1.1\r\nHost: x\r\n",
        "empty": b"",
    }
    for name, data in seeds.items():
        write("upgrade", name, data)
    upgrade_head_seeds(seeds)


def upgrade_head_seeds(upgrade):
    # the listener's own head reader: the same requests, and the edges of its form
    seeds = dict(upgrade)
    ok = standby_headers()
    seeds.update({
        "head-lowercase-names": request(headers=[h.split(": ", 1)[0].lower() + ": "
                                                 + h.split(": ", 1)[1] for h in ok]),
        "head-spaces-around-values": request(headers=[h.replace(": ", ":  \t") + " \t"
                                                      for h in ok]),
        "head-no-space": request(headers=[h.replace(": ", ":") for h in ok]),
        "head-empty-mac": request(headers=ok[:-1] + ["X-Zlt-Mac:"]),
        "head-token-lists": request(headers=["Connection: keep-alive, Upgrade",
                                             "Upgrade: h2c, zlt-data/2"] + ok[2:]),
        "head-host-ipv6": request(headers=ok).replace(b"Host: 127.0.0.1", b"Host: [::1]:3679"),
        "head-no-host": request(headers=ok).replace(b"Host: 127.0.0.1\r\n", b""),
        "head-twice-mac": request(headers=ok + ["X-Zlt-Mac: " + "00" * 32]),
        "head-folded": request(headers=ok[:-1] + ["X-Zlt-Mac:", " " + ok[-1].split(": ")[1]]),
        "head-bare-lf": request(headers=ok).replace(b"\r\n", b"\n"),
        "head-obs-text": request(headers=ok + ["User-Agent: caf\u00e9"]),
        "head-user-agent": request(headers=ok + ["User-Agent: zlayer-tunnel/1"]),
        "head-content-length-0": request(headers=ok + ["Content-Length: 0"]),
        "head-expect": request(headers=ok + ["Expect: 100-continue"]),
        "head-probe-0": request(headers=data_headers() + ["X-Zlt-Service: web", "X-Zlt-Probe: 0"]),
        "head-nul": request(headers=ok).replace(b"zlt-data/2", b"zlt-data/2\0"),
        "head-query": request(path="/tunnel/v1/data?x=1", headers=ok),
    })
    for name, data in seeds.items():
        write("upgrade-head", name, data)


# ---- server-peer: flags, then u16-length-prefixed channel messages ----

F_V2, F_RESUME, F_ACCESS, F_NO_LOGIN, F_SCOPED, F_ABRUPT, F_BUILD = 1, 2, 4, 8, 16, 32, 64
TOKEN = "zlt_fuzz_0123456789abcdef0123456789abcdef"


def msgs(*messages):
    return b"".join(struct.pack(">H", len(m)) + m for m in messages)


def peer_seeds():
    hb = frame(HEARTBEAT, struct.pack(">Q", 1705320000000))
    seeds = {
        "v1-register": (0, [register("ssh", 0, 22, 0)]),
        "v1-register-udp": (0, [register("game", 1, 27015, 0)]),
        "v1-register-port": (0, [register("web", 0, 8080, 28610)]),
        "v1-register-outside-range": (0, [register("web", 0, 8080, 2222)]),
        "v1-register-duplicate": (0, [register("ssh"), register("ssh", 0, 23)]),
        "v1-register-two-in-one": (0, [register("ssh") + register("web", 0, 80)]),
        "v1-register-unregister": (0, [register("ssh"), frame(UNREGISTER, SERVICE_ID)]),
        "v1-heartbeats": (0, [hb, frame(HEARTBEAT_ACK, struct.pack(">Q", 5)), hb + hb]),
        "v1-connect-answers": (0, [frame(CONNECT_ACK, CONNECTION_ID),
                                   frame(CONNECT_FAIL, CONNECTION_ID + str16("refused"))]),
        "v1-auth-twice": (0, [auth(TOKEN)]),
        "v1-server-only-type": (0, [frame(AUTH_OK, TUNNEL_ID)]),
        "v1-garbage": (0, [b"\xff\x00\x00\x00\x00"]),
        "v1-split-frame": (0, [register("ssh")[:7], register("ssh")[7:]]),
        "v1-empty-message": (0, [b""]),
        "v1-register-newline-name": (0, [register("evil\nzlt-Message: forged line")]),
        "v1-many-services": (0, [b"".join(register(f"s{i}", 0, 1000 + i) for i in range(34))]),
        "v2-register": (F_V2, [register("ssh", 0, 22, 0, block(EXPOSE(0)))]),
        "v2-register-internal": (F_V2 | F_ACCESS, [register("web", 0, 8080, 0, block(EXPOSE(1)))]),
        "v2-resume-hold": (F_V2 | F_RESUME, [register("ssh"), register("game", 1, 27015)]),
        "v2-disconnect-from-agent": (F_V2, [frame(DISCONNECT, str16("bye") + block(CODE(0)))]),
        "scoped-allowed": (F_SCOPED, [register("web", 0, 80)]),
        "scoped-refused": (F_SCOPED | F_V2, [register("db", 0, 5432)]),
        "abrupt": (F_ABRUPT | F_V2 | F_RESUME, [register("ssh"), hb]),
        "nologin-v1-auth": (F_NO_LOGIN, [auth(TOKEN), register("ssh")]),
        "nologin-bad-token": (F_NO_LOGIN, [auth("zlt_wrong")]),
        "nologin-register-first": (F_NO_LOGIN, [register("ssh")]),
        "nologin-v2-no-proof": (F_NO_LOGIN, [auth("0123456789abcdef", block(VERSION(), CAPS(1)))]),
        # a bearer Auth (§2a) to a server whose validator (the token file) did not ask
        "nologin-v2-bearer-unasked": (F_NO_LOGIN, [auth(TOKEN, block(VERSION(), CAPS(0x41)))]),
        "nologin-auth-and-register": (F_NO_LOGIN, [auth(TOKEN) + register("ssh")]),
    }
    for name, (flags, messages) in seeds.items():
        write("server-peer", name, bytes([flags]) + msgs(*messages))

    # FLAG_BUILD recipes (fuzz-server-peer.c, build_frames()): a kind byte (index in
    # all_types, 13 = dial), then the fields; uuid selectors: 0 = last RegisterOk's
    # service, 1 = last Connect's connection, 2 = the tunnel, 3 = 16 bytes follow
    K_AUTH, K_REGISTER, K_CONNECT_ACK, K_CONNECT_FAIL, K_HEARTBEAT, K_HEARTBEAT_ACK, \
        K_UNREGISTER, K_DISCONNECT, K_DIAL = 0, 3, 7, 8, 9, 10, 11, 12, 13

    def r_register(name, proto=0, local=22, port=0x80, ext=b"\x00"):
        b = name.encode()
        return bytes([K_REGISTER, len(b)]) + b + bytes([proto]) + struct.pack(">H", local) \
            + bytes([port]) + ext

    def r_str(s):
        b = s.encode()
        return bytes([len(b)]) + b

    recipes = {
        "build-register-unregister": (F_BUILD, [r_register("ssh"), r_register("game", 1, 27015),
                                                bytes([K_UNREGISTER, 0, 0]),
                                                bytes([K_UNREGISTER, 4, 0])]),
        "build-register-ports": (F_BUILD, [r_register("a", 0, 1, 8), r_register("b", 0, 2, 8),
                                           r_register("c", 1, 3, 47)]),
        "build-dial-connect-fail": (F_BUILD, [r_register("ssh"), bytes([K_DIAL, 0]),
                                              bytes([K_CONNECT_FAIL, 1]) + r_str("refused"),
                                              bytes([K_CONNECT_ACK, 1])]),
        "build-dial-unregister": (F_BUILD, [r_register("web", 0, 80), bytes([K_DIAL, 0, K_DIAL, 0]),
                                            bytes([K_UNREGISTER, 0, 0])]),
        "build-heartbeats": (F_BUILD, [bytes([K_HEARTBEAT, 0, 0, 0, 1, 0, 0, 0, 2, 0,
                                              K_HEARTBEAT_ACK, 0, 0, 0, 0, 0, 0, 0, 0, 0])]),
        "build-v2-internal": (F_BUILD | F_V2 | F_ACCESS, [r_register("web", 0, 8080, 0x80,
                                                                     b"\x03\x01")]),
        "build-v2-disconnect-code": (F_BUILD | F_V2, [bytes([K_DISCONNECT]) + r_str("bye")
                                                      + b"\x03\x09"]),
        "build-auth-again": (F_BUILD | F_V2 | F_RESUME, [bytes([K_AUTH]) + r_str("k") + b"\x02"
                                                         + b"\x00"]),
    }
    for name, (flags, messages) in recipes.items():
        write("server-peer", name, bytes([flags]) + msgs(*messages))


def client_hello(sni=None, pad=0):
    """A ClientHello handshake message (its 4-byte header included), as tests/test-hostnames.c
    builds it: session id, two suites, null compression, supported_versions, optional
    padding (RFC 7685), optional server_name"""
    body = b"\x03\x03" + bytes(32) + b"\x04abcd" + b"\x00\x04\x13\x01\x13\x02" + b"\x01\x00"
    exts = b"\x00\x2b\x00\x03\x02\x03\x04"
    if pad:
        exts += struct.pack(">HH", 0x15, pad) + bytes(pad)
    if sni is not None:
        name = sni.encode()
        exts += struct.pack(">HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body += struct.pack(">H", len(exts)) + exts
    return struct.pack(">B", 1) + struct.pack(">I", len(body))[1:] + body


def records(message, size, content=0x16):
    out = b""
    for i in range(0, len(message), size):
        part = message[i:i + size]
        out += struct.pack(">BBBH", content, 3, 1, len(part)) + part
    return out


def host_sniff_seeds():
    # mode 0: a connection's first bytes to both parsers
    hello = client_hello("b.apps.example.test")
    plain = {
        "tls-one-record": records(hello, 16384),
        "tls-split-2": records(hello, 2),
        "tls-split-7": records(hello, 7),
        "tls-no-sni": records(client_hello(), 16384),
        "tls-padded-split": records(client_hello("big.apps.example.test", 3000), 1000),
        "tls-alert-between": records(hello[:10], 16384) + b"\x15\x03\x03\x00\x02\x02\x28"
        + records(hello[10:], 16384),
        "tls-empty-record": records(hello[:10], 16384) + b"\x16\x03\x01\x00\x00"
        + records(hello[10:], 16384),
        "tls-too-large": b"\x16\x03\x01\x00\x04\x01\x00\x40\x01",
        "http-host": b"GET / HTTP/1.1\r\nHost: a.apps.example.test:80\r\n\r\n",
        "http-two-hosts": b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        "http-bare-lf": b"POST /x HTTP/1.1\nhost: A.Example.Test\n\n",
    }
    for name, data in plain.items():
        write("host-sniff", name, b"\x00" + data)
    # mode 1: a handshake message, framed in one record and in records of (byte & 0x3f) + 1
    for name, size, message in (("reframe-1", 0, hello), ("reframe-5", 4, hello),
                                ("reframe-64", 63, client_hello("c.example.test", 200)),
                                ("reframe-short", 2, hello[:40]),
                                ("reframe-not-hello", 3, b"\x02" + hello[1:])):
        write("host-sniff", name, bytes([1, size]) + message)


if __name__ == "__main__":
    message_seeds()
    ext_seeds()
    upgrade_seeds()
    peer_seeds()
    host_sniff_seeds()
