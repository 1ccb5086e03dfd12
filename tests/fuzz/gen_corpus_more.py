"""gen_corpus_more.py — seed inputs of the fuzz targets vhost_user, packet,
ctl and vmm, for gen-corpus.py (which writes them; run that, not this).

Each function returns {file name: bytes} in the format described at the top
of the target's fuzz_*.c; the constants below mirror the harnesses' enums.
"""
import json
import struct


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)
def be16(v): return struct.pack('>H', v & 0xffff)
def be32(v): return struct.pack('>I', v & 0xffffffff)


# ------------------------------------------------------------ vhost_user

STEP_MSG, STEP_MSG2, STEP_DESC, STEP_POKE, STEP_DATA = range(5)
# fuzz_vhost_user.c's common[] table: index -> request
(C_SET_OWNER, C_GET_FEATURES, C_SET_FEATURES, C_SET_PROTOCOL_FEATURES, C_SET_MEM_TABLE,
 C_SET_VRING_NUM, C_SET_VRING_ADDR, C_SET_VRING_BASE, C_SET_VRING_KICK, C_SET_VRING_CALL,
 C_SET_VRING_ENABLE, C_GET_VRING_BASE, C_ADD_MEM_REG, C_REM_MEM_REG, C_RESET_DEVICE,
 C_GET_CONFIG) = range(16)
REQ_GET_PROTOCOL_FEATURES, REQ_GET_QUEUE_NUM, REQ_SET_VRING_ERR = 15, 17, 14
REQ_SET_LOG_BASE, REQ_GET_MAX_MEM_SLOTS, REQ_SET_STATUS, REQ_GET_STATUS = 6, 36, 39, 40
REQ_NET_SET_MTU, REQ_IOTLB_MSG, REQ_SET_INFLIGHT_FD = 20, 22, 32
FD_NATURAL, FD_EVENTFD, FD_PIPE, FD_DEVNULL, FD_MEMFD = 0, 1, 2, 3, 4


def msg(common=None, req=None, payload=b'', need_reply=False, size=0, extra=0, flags=None):
    """A MSG step: a request from the common table or any request < 64."""
    q = u8(common) if common is not None else u8(0x80 | req)
    fl = (1 if need_reply else 0) | (2 if flags is not None else 0)
    b = u8(STEP_MSG) + q + u8(fl) + (u8(flags) if flags is not None else b'')
    return b + payload + u8(size) + u8(extra)


def raw_payload(data=b''):
    return u8(len(data)) + data


def ring_state(idx, v): return u8(idx) + u8(v)
def vring_fd(idx, nofd=False, kind=FD_NATURAL): return u8(idx) + u8((1 if nofd else 0) | kind << 2)
def region(k, sel=0): return u8(k | sel)


def desc(ring, slot, boff, length, flags=0, nxt=0, publish=True, qlog2=7):
    pub = (1 | qlog2 << 2) if publish else 0
    return u8(STEP_DESC) + u8(ring) + u8(slot) + u16(boff) + u16(length) + u8(flags) + \
        u8(nxt) + u8(pub)


def data(qp, rx=True, tx_lens=()):
    b = u8(STEP_DATA) + u8(qp) + u8((1 if rx else 0) | (2 if tx_lens else 0))
    if tx_lens:
        b += u8(len(tx_lens) - 1) + b''.join(u16(n) for n in tx_lens)
    return b


def vhu_up(rings=(0, 1), qlog2=7, ack=True):
    """SET_OWNER ... SET_VRING_ENABLE for the rings, as QEMU sends them."""
    b = msg(C_SET_OWNER, payload=raw_payload()) + msg(C_GET_FEATURES, payload=raw_payload())
    b += msg(req=REQ_GET_PROTOCOL_FEATURES, payload=raw_payload())
    b += msg(C_SET_FEATURES, payload=u8(0)) + msg(C_SET_PROTOCOL_FEATURES, payload=u8(0))
    b += msg(req=REQ_GET_QUEUE_NUM, payload=raw_payload())
    b += msg(C_SET_MEM_TABLE, payload=u8(1) + region(0), need_reply=ack)
    for r in rings:
        b += msg(C_SET_VRING_NUM, payload=ring_state(r, qlog2), need_reply=ack)
        b += msg(C_SET_VRING_ADDR, payload=u8(r) + u8(0), need_reply=ack)
        b += msg(C_SET_VRING_BASE, payload=ring_state(r, 0))
        b += msg(C_SET_VRING_CALL, payload=vring_fd(r))
        b += msg(C_SET_VRING_KICK, payload=vring_fd(r))
        b += msg(C_SET_VRING_ENABLE, payload=ring_state(r, 1), need_reply=ack)
    return b


def vhost_user():
    s = {}
    up = vhu_up()
    # guest TX on ring 1: 12-byte header + 60-byte frame; RX buffers on ring 0
    traffic = desc(1, 0, 0, 72) + desc(1, 1, 0x100, 12, 1, 2) + desc(1, 2, 0x200, 60) + \
        desc(0, 0, 0x1000, 2048, 2) + desc(0, 1, 0x1800, 2048, 2)
    s['seed-bring-up-traffic'] = u8(0) + up + traffic + data(0, True, (60, 1514)) + \
        msg(C_GET_VRING_BASE, payload=ring_state(1, 0)) + msg(C_RESET_DEVICE, payload=raw_payload())
    s['seed-mq-config-status'] = u8(0x01 | 0x04 | 0x08) + vhu_up((0, 1, 2, 3)) + \
        msg(C_GET_CONFIG, payload=u8(6 << 3)) + msg(req=REQ_NET_SET_MTU, payload=u16(1400)) + \
        msg(req=REQ_SET_STATUS, payload=u16(0x0f)) + msg(req=REQ_GET_STATUS, payload=raw_payload()) + \
        msg(req=REQ_GET_MAX_MEM_SLOTS, payload=raw_payload())
    # memory slots: ADD beyond the limit, REM with a stray fd, an unknown region
    b = u8(0) + msg(C_SET_FEATURES, payload=u8(0)) + msg(C_SET_PROTOCOL_FEATURES, payload=u8(0))
    for i in range(34):
        b += msg(C_ADD_MEM_REG, payload=region(i & 3, 0x10 if i % 2 else 0), need_reply=True)
    s['seed-add-mem-reg-beyond-slots'] = b + msg(C_REM_MEM_REG, payload=region(0) + u8(1)) + \
        msg(C_REM_MEM_REG, payload=region(1, 0x20) + u64(1) + u64(2) + u64(3) + u64(4) + u8(0))
    # bad memory: sizes past the file, the empty memfd, a pipe for a region
    s['seed-mem-table-bad'] = u8(0) + msg(C_SET_MEM_TABLE, payload=u8(2) + region(0, 0x04) + region(1)) + \
        msg(C_SET_MEM_TABLE, payload=u8(1) + region(2)) + \
        msg(C_SET_MEM_TABLE, payload=u8(1) + region(0, 0x40) + u8(FD_PIPE)) + \
        msg(C_SET_MEM_TABLE, payload=u8(9) + b''.join(region(i & 3) for i in range(9)))
    # CVE-2019-14818 / CVE-2020-10726 classes: fds on messages that take none,
    # repeated fd-carrying messages, a wrong fd type for call/err
    b = u8(0) + up
    for _ in range(8):
        b += msg(C_SET_VRING_CALL, payload=vring_fd(0, kind=FD_EVENTFD)) + \
            msg(req=REQ_SET_VRING_ERR, payload=vring_fd(1, kind=FD_EVENTFD)) + \
            msg(C_SET_VRING_NUM, payload=ring_state(0, 8), extra=3)
    s['seed-fd-leaks'] = b + msg(req=REQ_SET_INFLIGHT_FD, payload=b'') + \
        msg(req=REQ_SET_LOG_BASE, payload=u16(0))
    # found: a blocking pipe as call fd; once 64 KiB of interrupts filled it,
    # the data-plane thread blocked (fixed: call/err fds are made non-blocking)
    s['crash-call-fd-blocking-pipe'] = u8(0) + up + msg(C_SET_VRING_CALL, payload=vring_fd(1, kind=FD_PIPE))
    # CVE-2020-10723: an index that only fits after narrowing; CVE-2021-3839
    s['seed-ring-index-range'] = u8(0) + msg(C_SET_VRING_NUM, payload=u8(0x80) + u32(0x100) + u8(3)) + \
        msg(C_SET_VRING_ADDR, payload=u8(0x80) + u32(0x10000) + u8(0)) + \
        msg(C_SET_VRING_KICK, payload=vring_fd(0x7f)) + msg(C_GET_VRING_BASE, payload=ring_state(200, 0))
    # lies about sizes: less, more, huge; a wrong version; REPLY set; unknown
    s['seed-size-lies'] = u8(0) + msg(C_SET_FEATURES, payload=u8(0), size=1 | 4 << 2) + \
        msg(C_GET_FEATURES, payload=raw_payload(b'\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00'),
            size=2 | 12 << 2) + \
        msg(req=REQ_IOTLB_MSG, payload=raw_payload(bytes(40)), size=3) + u32(0x1000) + \
        msg(C_SET_OWNER, payload=raw_payload(), flags=0x2) + \
        msg(C_SET_OWNER, payload=raw_payload(), flags=0x5) + msg(req=63, payload=raw_payload(b'xyz'))
    # a running ring moved, its size changed, stopped and restarted
    s['seed-ring-restart'] = u8(0) + up + traffic + data(0) + \
        msg(C_SET_VRING_ADDR, payload=u8(1) + u8(0x04 | 0x30)) + data(0) + \
        msg(C_SET_VRING_NUM, payload=ring_state(1, 4), need_reply=True) + \
        msg(C_GET_VRING_BASE, payload=ring_state(1, 0)) + \
        msg(C_SET_VRING_BASE, payload=ring_state(1, 0x80) + u32(0x1ffff)) + \
        msg(C_SET_VRING_KICK, payload=vring_fd(1, nofd=True)) + data(0) + \
        msg(C_SET_MEM_TABLE, payload=u8(1) + region(0, 0x08)) + data(0)
    return s


# ---------------------------------------------------------------- packet

def mac(last): return bytes([2, 0, 0, 0, 0, last])


def ipv4_csum(h):
    s = sum(struct.unpack('>%dH' % (len(h) // 2), h))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ipv4(proto, payload, src=0x0a000002, dst=0x0a000001, frag=0x4000):
    h = bytearray(struct.pack('>BBHHHBBH', 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0) +
                  be32(src) + be32(dst))
    h[10:12] = be16(ipv4_csum(bytes(h)))
    return bytes(h) + payload


def eth(dst, src, etype, body, vlan=None):
    tag = be16(0x8100) + be16(vlan) if vlan is not None else b''
    return dst + src + tag + be16(etype) + body


def probe_frame(seq=7):
    """A frame as vnet_frame_build_udp() writes it (valid checksums)."""
    probe = u32(0x766e6574) + u32(seq) + u64(123456789)
    payload = probe + bytes((seq + i) & 0xff for i in range(18))
    udp_len = 8 + len(payload)
    src, dst = 0x0a000002, 0x0a000001
    pseudo = be32(src) + be32(dst) + be16(17) + be16(udp_len)
    udp = be16(1000) + be16(2000) + be16(udp_len) + be16(0) + payload
    c = ipv4_csum(pseudo + udp + (b'\0' if len(udp) % 2 else b''))
    udp = udp[:6] + be16(c or 0xffff) + udp[8:]
    return eth(mac(1), mac(2), 0x0800, ipv4(17, udp, src, dst))


def vhdr(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack('<BBHHHH', flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def frame(data, hdr=None, end=False):
    ctl = (1 if end else 0) | (2 if hdr is not None else 0) | 4
    return u8(ctl) + (hdr or b'') + u16(len(data)) + data


def flows(*texts):
    return u8(len(texts)) + b''.join(u8(len(t)) + t.encode() for t in texts)


def packet():
    s = {}
    tcp = ipv4(6, be16(1234) + be16(80) + bytes(16))
    udp6 = be32(0x60000000) + be16(8 + 8) + u8(0) + u8(64) + bytes(32) + \
        u8(17) + u8(0) + bytes(6) + be16(53) + be16(53) + be16(8) + be16(0)
    arp = be16(1) + be16(0x0800) + u8(6) + u8(4) + be16(1) + mac(2) + be32(0x0a000002) + \
        bytes(6) + be32(0x0a000001)
    icmp = ipv4(1, u8(8) + u8(0) + be16(0) + be32(0x10001) + bytes(8))
    csum = vhdr(1, 0, 0, 0, 34, 16)            # NEEDS_CSUM on the TCP checksum
    gso = vhdr(1, 1, 54, 1448, 34, 16)         # TSO
    evil = vhdr(1, 1, 0xffff, 0, 0xfffe, 0xffff)  # csum_start past the end, gso_size 0
    # ports: 1 access VLAN 10, 2 trunk (0, 10, 20), 3 trunk all, 4 access 4094
    ports = 1 | 2 << 2 | 0 << 4 | 1 << 6
    s['seed-vlan-offloads'] = u8(ports) + u8(2 | 1 << 3) + flows() + \
        frame(eth(mac(9), mac(2), 0x0800, tcp), csum) + \
        frame(eth(mac(1), mac(2), 0x0800, tcp, vlan=10), gso) + \
        frame(eth(b'\xff' * 6, mac(2), 0x0800, tcp, vlan=20), evil, end=True) + \
        frame(eth(mac(2), mac(1), 0x86dd, udp6, vlan=10), csum)
    s['seed-flows'] = u8(ports) + u8(1 | 2 << 3) + \
        flows('priority=100,ip,nw_dst=10.0.0.1,actions=output:3,mod_vlan_vid:20,output:2',
              'in_port=1,dl_vlan=0xffff,actions=strip_vlan,NORMAL',
              'priority=200,icmp,actions=drop') + \
        frame(eth(mac(9), mac(1), 0x0800, tcp), csum) + frame(eth(mac(9), mac(1), 0x0800, icmp)) + \
        frame(eth(mac(9), mac(1), 0x0806, arp))
    s['seed-answers-probe'] = u8(0) + u8(3) + flows() + frame(eth(b'\xff' * 6, mac(2), 0x0806, arp)) + \
        frame(eth(mac(1), mac(2), 0x0800, icmp)) + frame(probe_frame()) + \
        frame(eth(mac(1), mac(2), 0x0800, probe_frame()[14:], vlan=7))
    qinq = eth(mac(1), mac(2), 0x88a8, be16(5) + be16(0x8100) + be16(10) + be16(0x0800) + tcp)
    ext = be32(0x60000000) + be16(24) + u8(0) + u8(64) + bytes(32) + \
        u8(44) + u8(0) + bytes(6) + u8(6) + u8(0) + be16(0) + be32(1) + bytes(8)
    frag = ipv4(17, bytes(16), frag=0x2001)
    s['seed-parse-edges'] = u8(0xff) + u8(1) + flows() + frame(qinq) + \
        frame(eth(mac(1), mac(2), 0x86dd, ext)) + frame(eth(mac(1), mac(2), 0x0800, frag)) + \
        frame(eth(mac(1), mac(2), 0x8100, b'')) + frame(mac(1) + mac(2)) + \
        frame(eth(mac(1), mac(2), 0x0800, ipv4(6, bytes(4))[:30])) + \
        frame(eth(mac(1), mac(2), 0x05dc, bytes(46)))
    return s


# ------------------------------------------------------------------- ctl

def req(cmd, **fields):
    fields = {'cmd': cmd, **fields}
    return json.dumps(fields, separators=(',', ':'))


def ctl():
    s = {}
    session = [
        req('add-br', bridge='br0'), req('add-br', bridge='br1'),
        req('add-port', bridge='br0', port='vm1', options={'type': 'vhost-user', 'mode': 'server'}),
        req('add-port', bridge='br0', port='tap0', type='tap', tag=10),
        req('add-port', bridge='br0', port='up', options={'type': 'afpacket', 'iface': 'eth1'},
            trunks=[10, 20], ofport_request=7),
        req('add-port', bridge='br1', port='n1', type='null', trunks='1,2,10-20'),
        req('set-port', port='tap0', options={'tag': '', 'trunks': '5-6', 'multiqueue': '2'}),
        req('add-flow', bridge='br0', flow='priority=100,in_port=1,actions=output:2'),
        req('add-flow', bridge='br0', flow='priority=200,icmp,nw_dst=10.0.0.0/24,actions=drop'),
        req('add-flow', bridge='br0', flow='tcp,tp_dst=80,dl_vlan=10,actions=strip_vlan,NORMAL'),
        req('fdb-add', bridge='br0', port='vm1', vlan=0, mac='52:54:00:00:00:05'),
        req('dump-flows', bridge='br0'), req('fdb-show', bridge='br0'), req('show'),
        req('list-ports', bridge='br0'), req('port-stats'), req('port-stats', port='vm1'),
        req('bridge-stats'), req('pmd-stats'), req('version'),
        req('capture', port='vm1', file='/tmp/x.pcap', count=1, timeout=1),
        req('del-flows', bridge='br0', match='in_port=1'), req('fdb-del', bridge='br0', vlan=0,
                                                              mac='52:54:00:00:00:05'),
        req('fdb-flush', bridge='br0'), req('del-port', port='vm1'), req('del-br', bridge='br1'),
    ]
    s['seed-session'] = '\n'.join(session).encode() + b'\n'
    # found: the same flow in two spellings, then replaced; after a restart
    # the switch ran NORMAL instead of output:1 (config.c compared match
    # text, the flow table compares matches; fixed)
    s['crash-flow-respelled-restart-differs'] = '\n'.join([
        req('add-br', bridge='br0'),
        req('add-flow', bridge='br0', flow='priority=5,ip,actions=drop'),
        req('add-flow', bridge='br0', flow='priority=5,dl_type=0x0800,actions=NORMAL'),
        req('add-flow', bridge='br0', flow='priority=5,ip,actions=output:1'),
        req('del-flows', bridge='br0', match='ip'), req('dump-flows', bridge='br0')]).encode()
    # found: "priority=050" was octal 40 in the flow table, decimal 50 in the
    # state file, so a restart reordered the flows (fixed: decimal in both)
    s['crash-flow-priority-octal-restart-differs'] = '\n'.join([
        req('add-br', bridge='br0'),
        req('add-flow', bridge='br0', flow='priority=050,actions=drop'),
        req('add-flow', bridge='br0', flow='priority=45,actions=NORMAL')]).encode()
    bad = [b'{"cmd":"add-br"}', b'{"cmd":"add-br","bridge":"br0","bridge":"br1"}',
           b'{"cmd":"nope"}', b'[1,2]', b'{"cmd":"add-port","bridge":"br0","port":"x",'
           b'"options":{"tag":"4095","trunks":[1,4096]}}', b'{"cmd":5}', b'{',
           b'{"cmd":"add-flow","bridge":"br0","flow":"actions=output:70000"}',
           b'{"cmd":"add-br","bridge":"0123456789abcdefg"}', b'{"cmd":"show","extra":1}',
           b'{"cmd":"add-br","bridge":"br\\u0000x"}', b'\xff\xfe{"cmd":"show"}']
    s['seed-bad-requests'] = b'\n'.join(bad)
    state = {'format': 'vnet-switchd-state', 'version': 1, 'bridges': [{
        'name': 'br0',
        'ports': [{'name': 'vm1', 'ofport': 1, 'type': 'vhost-user',
                   'options': {'mode': 'client', 'path': '/tmp/vm1.sock'}, 'tag': 10},
                  {'name': 'up', 'ofport': 300, 'type': 'afpacket', 'trunks': '1,2,10-20'}],
        'flows': [{'priority': 100, 'text': 'in_port=1,actions=output:300'},
                  {'priority': 7, 'text': 'ipv6,ipv6_dst=fe80::/10,actions=drop'}],
        'fdb': [{'port': 'vm1', 'vlan': 0, 'mac': '52:54:00:00:00:05'}]}]}
    text = json.dumps(state, indent=1)
    s['seed-state-then-requests'] = b'state:' + text.encode() + b'\n--\n' + \
        '\n'.join([req('show'), req('add-port', bridge='br0', port='vm2', type='null'),
                   req('del-port', bridge='br0', port='up')]).encode()
    s['seed-state-corrupt'] = b'state:' + text[:-40].encode() + b'\n--\n' + req('show').encode()
    s['seed-state-blank'] = b'state: \n\t\n--\n' + req('add-br', bridge='b').encode()
    return s


# ------------------------------------------------------------------- vmm

(S_MMIO, S_PIO, S_CFG, S_QUEUE, S_STATUS, S_MSIX, S_BAR, S_SIGNAL) = range(8)


def vmm_h0(pci, queues=2, qmax=2, fail=False, high=False):
    return u8((1 if pci else 0) | (2 if fail else 0) | (queues - 1) << 2 | qmax << 5 |
              (0x80 if high else 0))


def mmio_acc(off, width=4, write=False, value=0):
    return u8(S_MMIO) + u16(off) + u8({1: 0, 2: 1, 4: 2, 8: 3}[width]) + u8(1 if write else 0) + \
        u64(value)


def queue(q, size_log2=8, addr_sel=(0, 0, 0), vec=None, ready=True):
    b = u8(S_QUEUE) + u8(q) + u8(size_log2) + b''.join(u8(a) for a in addr_sel)
    if vec is not None:
        b += u8(vec)
    return b + u8(1 if ready else 0)


def vmm():
    s = {}
    neg, ok, reset = u8(S_STATUS) + u8(1), u8(S_STATUS) + u8(2), u8(S_STATUS) + u8(0)
    ident = b''.join(mmio_acc(o) for o in (0x000, 0x004, 0x008, 0x00c, 0x034, 0x060, 0x070, 0x0fc))
    s['seed-mmio-bring-up'] = vmm_h0(False) + ident + neg + queue(0) + queue(1) + ok + \
        u8(S_SIGNAL) + u8(0) + mmio_acc(0x060) + mmio_acc(0x064, write=True, value=1) + \
        mmio_acc(0x100, 1) + mmio_acc(0x104, 2) + mmio_acc(0x050, write=True, value=1) + reset
    s['seed-mmio-hostile'] = vmm_h0(False, 3, 1) + neg + \
        queue(0, 3, (3, 4, 6)) + queue(7) + mmio_acc(0x050, write=True, value=5) + \
        mmio_acc(0x070, write=True, value=0xff) + mmio_acc(0x071, 1, True, 1) + \
        mmio_acc(0x1ff, 8) + mmio_acc(0x038, write=True, value=0x10000) + reset + \
        queue(0, 2) + queue(0, 2, ready=False) + u8(S_SIGNAL) + u8(2)
    pci_up = vmm_h0(True) + u8(S_CFG) + u8(1) + u8(0) + u8(2) + u8(0) + u32(0) + \
        u8(S_MSIX) + u8(1) + u8(0) + u8(S_MSIX) + u8(1) + u8(1) + u8(S_MSIX) + u8(1 | 16) + u8(2) + \
        neg + queue(0, vec=0) + queue(1, vec=1) + ok
    s['seed-pci-bring-up'] = pci_up + u8(S_SIGNAL) + u8(0) + u8(S_SIGNAL) + u8(1) + \
        mmio_acc(0x1000, 1) + u8(S_BAR) + u8(1) + u8(S_MSIX) + u8(2 | 1) + u8(0) + reset
    s['seed-pci-hostile'] = vmm_h0(True, 8, 3, fail=True, high=True) + \
        u8(S_BAR) + u8(8 | 2) + u8(S_BAR) + u8(16) + u8(S_BAR) + u8(4) + u64(0xfffffffffffff000) + \
        u8(S_BAR) + u8(0) + u8(S_MSIX) + u8(1 | 4) + u8(3) + u32(0x12345678) + \
        queue(0, 12, (7, 5, 6), vec=0xff) + u8(S_PIO) + u8(9) + u8(2) + u32(0x80000800) + \
        u8(S_CFG) + u8(1) + u8(0x40) + u8(2) + u8(1) + u32(0xffffffff) + neg + ok + ok + reset
    # found: virtio-mmio kept QueueNotify's ioeventfd after the driver cleared
    # QueueReady (before DRIVER_OK), so a notify of the not-ready queue did
    # not exit to be refused (fixed)
    s['crash-mmio-kick-kept-after-queue-disabled'] = vmm_h0(False, 1) + queue(0) + \
        queue(0, ready=False)
    # found: every refused FEATURES_OK logged a warning, one line per VM
    # exit (fixed: once per reset)
    s['crash-features-ok-refusal-floods-log'] = vmm_h0(False) + \
        (u8(S_STATUS) + u8(1 | 4) + u32(0xffffffff)) * 30
    return s


TARGETS = {'vhost_user': vhost_user, 'packet': packet, 'ctl': ctl, 'vmm': vmm}
