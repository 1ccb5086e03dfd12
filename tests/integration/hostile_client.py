#!/usr/bin/env python3
"""hostile_client.py - a misbehaving client of vnet-switchd's sockets, for
resource_limits_test.sh. Each command attacks one socket for --hold seconds,
then prints one JSON line saying what the daemon did to it.

  ctl-flood   PATH  open --count connections to the control socket and sit
                    on them without sending anything
  ctl-big     PATH  send a request line of --bytes bytes (default 1 MiB)
  ctl-noread  PATH  pipeline --count "show" requests, never read an answer
  vhu-flood   PATH  open --count connections to a vhost-user socket
  vhu-big     PATH  a vhost-user header announcing a --bytes payload, then
                    the payload
  vhu-garbage PATH  --bytes bytes of 0xff (no valid header anywhere)
  vhu-noread  PATH  --count GET_FEATURES requests, never read a reply
  vhu-slow    PATH  a GET_FEATURES header one byte every 0.4 s

"closed_by_peer" counts the connections the daemon closed (EOF or reset
seen) before the hold ended; "refused" those it would not take at all.
Single-threaded; every socket is closed when the command ends.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

VHOST_USER_GET_FEATURES = 1
VHOST_USER_VERSION = 0x1


def vhu_header(request, size, flags=VHOST_USER_VERSION):
    return struct.pack("<III", request, flags, size)


def connect(path, timeout=2.0):
    """Blocking connect: waits (up to timeout) while the listen backlog is full,
    as a determined client would, instead of giving up at once."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sec = int(timeout)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                 struct.pack("ll", sec, int((timeout - sec) * 1e6)))
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


def is_closed(s):
    """True once the daemon closed its end (EOF or reset); drains what it sent."""
    try:
        while True:
            r, _, _ = select.select([s], [], [], 0)
            if not r:
                return False
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except BlockingIOError:
        return False


def hold_and_watch(socks, hold, watch_read=True):
    """Waits `hold` seconds; returns how many sockets the daemon closed."""
    end = time.monotonic() + hold
    closed = set()
    while time.monotonic() < end and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i not in closed and watch_read and is_closed(s):
                closed.add(i)
        time.sleep(0.05)
    return len(closed)


def send_all(s, data, deadline):
    """Sends as much of data as the daemon takes before deadline; bytes sent."""
    sent = 0
    while sent < len(data) and time.monotonic() < deadline:
        try:
            _, w, _ = select.select([], [s], [], 0.1)
            if w:
                sent += s.send(data[sent:sent + 65536])
        except (BrokenPipeError, ConnectionResetError):
            break
        except BlockingIOError:
            continue
    return sent


def flood(path, count, hold):
    socks, refused, first_error = [], 0, ""
    t0 = time.monotonic()
    for _ in range(count):
        try:
            socks.append(connect(path))
        except OSError as e:
            refused += 1
            first_error = first_error or str(e)
    opened = time.monotonic() - t0
    closed = hold_and_watch(socks, hold)
    for s in socks:
        s.close()
    return {"opened": len(socks), "refused": refused, "closed_by_peer": closed,
            "open_seconds": round(opened, 2), "first_error": first_error}


def one_shot(path, payload, hold, read_answer=False):
    s = connect(path)
    deadline = time.monotonic() + hold
    sent = send_all(s, payload, deadline)
    answer = b""
    closed = False
    while time.monotonic() < deadline:
        try:
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                data = s.recv(65536)
                if not data:
                    closed = True
                    break
                if read_answer:
                    answer += data
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
    s.close()
    return {"sent": sent, "closed_by_peer": int(closed),
            "answer": answer.decode(errors="replace").strip()[:200]}


def noread(path, payload, count, hold):
    """Sends count copies of payload and never reads; watches for the close."""
    s = connect(path)
    deadline = time.monotonic() + hold
    sent = send_all(s, payload * count, deadline)
    closed = False
    # Reading would drain the answers we must not read: watch for HUP only.
    poller = select.poll()
    poller.register(s, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    while time.monotonic() < deadline:
        ev = poller.poll(100)
        if ev and ev[0][1] & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
            closed = True
            break
    s.close()
    return {"sent": sent, "requests": sent // len(payload), "closed_by_peer": int(closed)}


def slow(path, payload, hold, gap=0.4):
    s = connect(path)
    deadline = time.monotonic() + hold
    sent, closed = 0, False
    while sent < len(payload) and time.monotonic() < deadline:
        try:
            s.send(payload[sent:sent + 1])
            sent += 1
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(gap)
        if is_closed(s):
            closed = True
            break
    while not closed and time.monotonic() < deadline:
        closed = is_closed(s)
        time.sleep(0.05)
    s.close()
    return {"sent": sent, "closed_by_peer": int(closed)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd")
    ap.add_argument("path")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--bytes", type=int, default=1 << 20)
    ap.add_argument("--hold", type=float, default=3.0)
    a = ap.parse_args()
    get_features = vhu_header(VHOST_USER_GET_FEATURES, 0)
    if a.cmd in ("ctl-flood", "vhu-flood"):
        res = flood(a.path, a.count, a.hold)
    elif a.cmd == "ctl-big":
        res = one_shot(a.path, b"x" * a.bytes + b"\n", a.hold, read_answer=True)
    elif a.cmd == "ctl-noread":
        res = noread(a.path, b'{"cmd":"show"}\n', a.count, a.hold)
    elif a.cmd == "vhu-big":
        res = one_shot(a.path, vhu_header(VHOST_USER_GET_FEATURES, a.bytes) + b"\0" * a.bytes,
                       a.hold)
    elif a.cmd == "vhu-garbage":
        res = one_shot(a.path, b"\xff" * a.bytes, a.hold)
    elif a.cmd == "vhu-noread":
        res = noread(a.path, get_features, a.count, a.hold)
    elif a.cmd == "vhu-slow":
        res = slow(a.path, get_features, a.hold)
    else:
        ap.error(f"unknown command {a.cmd}")
    res["cmd"] = a.cmd
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
