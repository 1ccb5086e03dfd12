#!/usr/bin/env python3
"""gen-corpus.py — writes the hand-made seed inputs of every fuzz target.

Usage: tests/fuzz/gen-corpus.py [TARGET...]   (default: all of vq_split,
vhost_user, packet, ctl, vmm) into corpus/TARGET beside this script. Only
the files named here are (re)written; crash-* inputs found by fuzzing and
anything merged in from fuzzing runs are left alone. Each byte format is
described at the top of its fuzz_TARGET.c; the numbers below mirror their
enums. The seeds are well-formed sessions (so the fuzzer starts deep) plus
one of each hostile pattern the harness knows.
"""
import os
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from gen_corpus_more import TARGETS as MORE  # noqa: E402

(OP_DESC, OP_DESC_AT, OP_AVAIL_ADD, OP_AVAIL_PUB, OP_AVAIL_BUMP, OP_AVAIL_MISC,
 OP_POP, OP_POP_BURST, OP_PUSH, OP_PUSH_RAW, OP_FLUSH, OP_ENABLE, OP_DISABLE,
 OP_HAS_AVAIL, OP_POKE, OP_REATTACH, OP_REPLACE, OP_CHAIN, OP_INDIRECT,
 OP_NET_TX, OP_NET_RX) = range(21)

# address selectors (rd_addr bases)
R0DATA, R1, R2, R0R1, R2END, RINGS = range(6)
INDIRECT, EVENT_IDX, CUSTOM, UADDR = 0x08, 0x10, 0x20, 0x40
USED_GPA = 0x12000
CUSTOM_BASE = 0xfe00
AVAIL_GPA = 0x11000


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


def addr(sel, off=0, minus=False):
    return u8(sel | (8 if minus else 0)) + u16(off)


def raw_addr(a):
    return u8(7) + u64(a)


def ln(n):
    return u16(n) if n < 0xffff else u16(0xffff) + u32(n)


def header(log2size, flags=0, h1=0, custom=None):
    b = u8(log2size | flags) + u8(h1)
    if custom:
        b += b''.join(u16(c) for c in custom)
    return b


def chain(start, bufs):
    """bufs: list of (addr_bytes, len, writable)"""
    b = u8(OP_CHAIN) + u8(len(bufs) - 1) + u8(start)
    for a, n, w in bufs:
        b += a + ln(n) + u8(1 if w else 0)
    return b


def indirect(idx, table, bufs):
    b = u8(OP_INDIRECT) + u8(len(bufs) - 1) + u8(idx) + table
    for a, n, w in bufs:
        b += a + ln(n) + u8(1 if w else 0)
    return b


def pop(max_iov=16): return u8(OP_POP) + u16(max_iov)
def burst(n, ipc): return u8(OP_POP_BURST) + u8(n) + u8(ipc)
def push(which=0, mode=0): return u8(OP_PUSH) + u8(which) + u8(mode)
def push_raw(head, written=0): return u8(OP_PUSH_RAW) + u16(head) + u8(written)
def flush(): return u8(OP_FLUSH)
def enable(): return u8(OP_ENABLE)
def disable(): return u8(OP_DISABLE)
def has_avail(): return u8(OP_HAS_AVAIL)
def misc(flags, used_event): return u8(OP_AVAIL_MISC) + u16(flags) + u16(used_event)
def bump(delta): return u8(OP_AVAIL_BUMP) + u16(delta)
def replace(v): return u8(OP_REPLACE) + u8(v)
def reattach(mode, base=0): return u8(OP_REATTACH) + u8(mode) + u16(base)
def avail_add(head): return u8(OP_AVAIL_ADD) + u16(head)
def avail_pub(): return u8(OP_AVAIL_PUB)


def desc(i, a, n, flags, nxt):
    return u8(OP_DESC) + u8(i) + a + ln(n) + u8(flags) + u8(nxt)


def poke_raw(gpa, data):
    return u8(OP_POKE) + raw_addr(gpa) + u8(len(data)) + data


seeds = {}

seeds['seed-direct-single'] = header(3) + chain(0, [(addr(R0DATA), 64, False)]) + \
    pop() + push() + flush() + enable()

seeds['seed-direct-chain-rw'] = header(4) + chain(2, [
    (addr(R0DATA, 0x100), 100, False),
    (addr(R0R1, 0x380), 200, True),      # straddles R0/R1
    (addr(R1, 0x10), 50, True)]) + pop(16) + push(0, 0) + flush() + enable()

b = header(5, EVENT_IDX)
for k in range(8):
    b += chain(2 * k, [(addr(R0DATA, 0x40 * k), 32, False), (addr(R2, 0x80 * k), 64, True)])
b += burst(8, 4)
for k in range(8):
    b += push(0, k)
b += misc(0, 3) + flush() + enable() + has_avail()
seeds['seed-burst-event-idx'] = b

seeds['seed-indirect'] = header(3, INDIRECT) + indirect(0, addr(R2, 0x1000), [
    (addr(R0DATA, 0), 14, False), (addr(R1, 0x100), 1500, False),
    (addr(R0R1, 0x10), 0x40, True), (addr(R2, 0), 256, True)]) + \
    pop(8) + push(0, 1) + flush() + enable()

seeds['seed-indirect-no-feature'] = header(3) + indirect(1, addr(R2, 0x1000), [
    (addr(R0DATA, 0), 14, False)]) + pop(8) + pop(8)

# Indices near 65535: re-attach resuming at 65530 with used->idx 65533, then
# complete 10 chains so both indices wrap.
b = header(1, EVENT_IDX) + poke_raw(USED_GPA + 2, u16(65533)) + reattach(3, 65530) + bump(65530)
for k in range(10):
    b += chain(k, [(addr(R0DATA, 8 * k), 8, False), (addr(R1, 8 * k), 8, True)])
    b += misc(0, 65533 + k) + pop(4) + push(0, 0) + flush() + enable()
seeds['seed-wrap'] = b

b = header(1)
for k in range(12):
    b += chain(k, [(addr(R1, 16 * k), 16, True)]) + burst(2, 2) + push() + flush()
    b += misc(1 if k % 3 == 0 else 0, 0) + disable() + enable()
seeds['seed-no-interrupt-flag'] = b

seeds['seed-replace-move-r2'] = header(3) + chain(0, [(addr(R2, 0x10), 64, True)]) + pop() + \
    replace(3) + push() + flush() + chain(1, [(addr(R2, 0x10), 64, True)]) + pop()

seeds['crash-push-stale-used-ring-after-mem-replace'] = header(3, EVENT_IDX) + \
    chain(0, [(addr(R0DATA), 32, False), (addr(R1, 0), 32, True)]) + pop() + \
    replace(4) + push(0, 0) + flush() + enable() + \
    chain(2, [(addr(R0DATA), 32, False)]) + pop() + replace(4) + push() + flush()

seeds['seed-replace-drop-r1'] = header(3) + replace(1) + \
    chain(0, [(addr(R0R1, 0x3f0), 0x20, False)]) + pop() + replace(0) + reattach(0) + \
    chain(0, [(addr(R0R1, 0x3f0), 0x20, False)]) + pop() + push() + flush()

seeds['seed-uaddr-rings'] = header(2, UADDR | INDIRECT) + \
    chain(0, [(addr(R0DATA), 10, False)]) + pop() + push() + flush() + enable()

seeds['seed-custom-misaligned'] = header(2, CUSTOM, custom=(0x203, 0x1201, 0x2202)) + \
    chain(0, [(addr(R0DATA), 10, False)]) + pop()

seeds['seed-custom-straddle-used'] = header(3, CUSTOM, custom=(0x200, 0x1200, 0x41f0)) + \
    chain(0, [(addr(R0DATA), 10, False)]) + pop()

seeds['seed-loop'] = header(3) + desc(0, addr(R0DATA), 8, 1, 1) + desc(1, addr(R0DATA), 8, 1, 0) + \
    avail_add(0) + avail_pub() + pop()

seeds['seed-bogus-push'] = header(3) + chain(0, [(addr(R0DATA), 10, False)]) + pop() + \
    push_raw(0, 0) + push_raw(0, 0) + flush()

seeds['seed-readonly-write'] = header(3, 0, 0x08) + chain(0, [(addr(R2), 10, True)]) + pop()

seeds['seed-too-many-segs'] = header(4, INDIRECT) + indirect(3, addr(R0DATA, 0x800), [
    (addr(R0R1, 0x10), 0x20, False) for _ in range(16)]) + pop(20)

seeds['seed-avail-jump'] = header(3) + bump(9) + has_avail() + pop()

seeds['seed-double-head'] = header(3) + chain(0, [(addr(R0DATA), 10, False)]) + \
    avail_add(0) + avail_pub() + burst(2, 2) + push() + flush()

seeds['seed-huge-len'] = header(3) + chain(0, [(addr(R0DATA), 0xffffffff, False),
                                               (addr(R1), 0xfffffff0, True)]) + pop() + \
    chain(2, [(raw_addr(0xfffffffffffffff0), 0x20, False)]) + reattach(0) + pop()


# ---- the virtio-net frame path on the same rings ----

def net_tx(hdr12=True, discard=False, n=8):
    return u8(OP_NET_TX) + u8((1 if hdr12 else 0) | (2 if discard else 0) | (n << 2))


def net_rx(lens, hdr12=True):
    return u8(OP_NET_RX) + u8((1 if hdr12 else 0) | ((len(lens) - 1) << 1)) + \
        b''.join(u16(n) for n in lens)


# Guest TX: a 12-byte header split over three descriptors (CVE-2022-2132),
# then the frame in a fourth; a chain shorter than the header; one with a
# device-writable part; one whose frame is larger than a packet buffer.
seeds['seed-net-tx-split-header'] = header(4, EVENT_IDX) + chain(0, [
    (addr(R0DATA, 0x100), 4, False), (addr(R0DATA, 0x200), 4, False),
    (addr(R0R1, 0x3fe), 4, False), (addr(R1, 0x40), 60, False)]) + \
    chain(4, [(addr(R0DATA, 0x300), 72, False)]) + misc(0, 1) + net_tx() + enable()
seeds['seed-net-tx-hostile'] = header(4) + \
    chain(0, [(addr(R0DATA), 8, False)]) + \
    chain(1, [(addr(R0DATA, 0x40), 12, False), (addr(R1), 64, True)]) + \
    chain(3, [(addr(R1), 0x800, False), (addr(R2), 0x800, False)]) + \
    chain(5, [(addr(R0DATA, 0x80), 10 + 13, False)]) + net_tx(False) + net_tx(True, True)
# Guest RX: writable chains of several pieces, one too small, one read-only.
seeds['seed-net-rx-multi'] = header(4, EVENT_IDX) + \
    chain(0, [(addr(R0DATA, 0x100), 6, True), (addr(R0DATA, 0x200), 6, True),
              (addr(R1, 0x100), 1500, True)]) + \
    chain(3, [(addr(R2, 0x10), 40, True)]) + \
    chain(4, [(addr(R0DATA, 0x400), 64, False)]) + \
    chain(5, [(addr(R0R1, 0x3f0), 0x200, True)]) + misc(0, 2) + \
    net_rx([60, 1400, 100, 64, 60]) + flush() + enable()
# EVENT_IDX: used_event behind, at, and ahead of the used index; wraps.
b = header(2, EVENT_IDX)
for k, ev in enumerate([0, 0, 5, 2, 0xffff, 3]):
    b += chain(k, [(addr(R1, 16 * k), 16, True)]) + misc(0, ev) + pop() + push() + flush()
seeds['seed-event-idx-used-event'] = b + reattach(1) + chain(0, [(addr(R1), 8, True)]) + \
    pop() + push() + flush()

# Bugs found by fuzzing (crash-*: fixed; kept so the fix stays; each also a
# named test in tests/unit/test_fuzz_regressions.c).
# The avail and used rings at one address: every used->idx the device
# published made one more chain available; RX chains that are device-
# readable were skipped without a bound, so vnet_net_enqueue took chains
# forever. Now attach refuses the overlap and a call takes one ring's worth.
b = header(4, EVENT_IDX | CUSTOM, custom=(0x200, 0x1200, 0x1200))
for k in range(16):
    b += desc(k, addr(R0DATA, 0x40 * k), 64, 0, 0)
seeds['crash-net-rx-bad-chains-endless-loop'] = b + poke_raw(CUSTOM_BASE + 0x1200 + 2, u16(4)) + \
    reattach(3, 0) + net_rx([60])


def write_all(out_root, targets):
    for target in targets:
        corpus = seeds if target == 'vq_split' else MORE[target]()
        out = os.path.join(out_root, target)
        os.makedirs(out, exist_ok=True)
        for name, data in sorted(corpus.items()):
            with open(os.path.join(out, name), 'wb') as f:
                f.write(data)
        print(f'{len(corpus)} seeds written to {out}')


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    targets = sys.argv[1:] or ['vq_split'] + sorted(MORE)
    unknown = [t for t in targets if t != 'vq_split' and t not in MORE]
    if unknown:
        sys.exit(f'gen-corpus.py: unknown target(s) {unknown}; known: vq_split {sorted(MORE)}')
    write_all(os.path.join(here, 'corpus'), targets)


if __name__ == '__main__':
    main()
