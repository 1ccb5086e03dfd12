/*
 * fuzz_vq_split_device.c — the device half of the split-ring fuzz target
 * (see fuzz_vq_split.c for the input): every call into libvnet's device-side
 * virtqueue (pop, burst pop, push, flush, notification control, attach) and
 * its virtio-net frame path (net_rxtx.h) on the rings the hostile driver
 * wrote, each followed by the invariants of their header contracts and of
 * the spec's notification rule. Single-threaded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_vq_split.h"
#include "vnet/guestmem.h"
#include "vnet/net.h"
#include "vnet/net_rxtx.h"
#include "vnet/virtio_ring.h"

/* ---- the device, with invariant checks ---- */

static unsigned log_count(void)
{
	return testlog_count();
}

/* Called after every device operation. */
void check_state(void)
{
	if (!S.attached)
		return;
	if (S.vq.broken && !S.was_broken) {
		S.was_broken = true;
		S.log_at_break = log_count();
	}
	if (S.was_broken) {
		CHECK(S.vq.broken);
		CHECK(log_count() == S.log_at_break); /* logged once, then silent */
	}
	CHECK(S.nfl <= S.qsize);
	if (!S.vq.broken)
		CHECK(S.vq.inflight == S.nfl);
}

static bool piece_ok(const struct vnet_mem_table *t, const struct iovec *v, bool write)
{
	if (v->iov_len == 0)
		return true;
	unsigned n = vnet_mem_table_count(t);
	for (unsigned i = 0; i < n; i++) {
		const struct vnet_mem_region *rg = vnet_mem_table_region(t, i);
		uintptr_t b = (uintptr_t)rg->host, p = (uintptr_t)v->iov_base;
		if (p >= b && p - b < rg->size && v->iov_len <= rg->size - (p - b)) {
			unsigned prot = rg->prot ? rg->prot : VNET_MEM_READ | VNET_MEM_WRITE;
			return (prot & (write ? VNET_MEM_WRITE : VNET_MEM_READ)) != 0;
		}
	}
	return false;
}

static void check_chain(const struct vnet_mem_table *t, const struct vnet_vq_chain *c,
			const struct iovec *iov, unsigned max_iov)
{
	CHECK(c->iov == iov);
	CHECK(c->head < S.qsize);
	CHECK((unsigned)c->n_out + c->n_in <= max_iov);
	CHECK((unsigned)c->n_out + c->n_in <= VNET_VQ_MAX_SEGS);
	uint64_t out = 0, in = 0;
	for (unsigned i = 0; i < c->n_out; i++) {
		CHECK(piece_ok(t, &iov[i], false));
		out += iov[i].iov_len;
	}
	for (unsigned i = c->n_out; i < (unsigned)c->n_out + c->n_in; i++) {
		CHECK(piece_ok(t, &iov[i], true));
		in += iov[i].iov_len;
		/* The device fills its writable buffers: out-of-bounds → fault. */
		memset(iov[i].iov_base, 0xa5, iov[i].iov_len);
	}
	CHECK(out == c->out_len);
	CHECK(in == c->in_len);
	/* Our memset may have scribbled over the used ring (guest's choice). */
	for (unsigned i = c->n_out; i < (unsigned)c->n_out + c->n_in; i++) {
		uint8_t *u = ghost(S.used_gpa);
		uintptr_t p = (uintptr_t)iov[i].iov_base;
		if (u && p < (uintptr_t)u + vring_used_bytes(S.qsize) &&
		    (uintptr_t)u < p + iov[i].iov_len)
			S.used_dirty = true;
	}
	/* Heads are unique among chains in flight. */
	for (unsigned i = 0; i < S.nfl; i++)
		CHECK(S.fl[i].head != c->head);
	CHECK(S.nfl < S.qsize);
	S.fl[S.nfl++] = (struct inflight){.head = c->head, .in_len = c->in_len};
}

const struct vnet_mem_table *bracket_begin(unsigned *tok)
{
	return vnet_guestmem_read_begin(&S.m.gm, tok);
}

void op_pop(struct reader *r)
{
	unsigned max_iov = rd16(r) % (IOV_MAX_POP + 1);
	unsigned tok;
	const struct vnet_mem_table *t = bracket_begin(&tok);
	struct vnet_vq_chain c;
	memset(&c, 0, sizeof(c));
	int ret = vnet_vq_pop(&S.vq, &c, S.iov, max_iov);
	if (ret == 1) {
		CHECK(S.attached && !S.vq.broken);
		check_chain(t, &c, S.iov, max_iov);
	} else if (ret < 0) {
		CHECK(!S.attached || S.vq.broken);
	} else {
		CHECK(ret == 0);
	}
	vnet_guestmem_read_end(&S.m.gm, tok);
}

void op_pop_burst(struct reader *r)
{
	unsigned n = rd8(r) % (BURST_MAX + 1);
	unsigned ipc = rd8(r) % (BURST_IOV_MAX + 1);
	unsigned tok;
	const struct vnet_mem_table *t = bracket_begin(&tok);
	unsigned got = vnet_vq_pop_burst(&S.vq, S.chains, n, S.iov, ipc);
	CHECK(got <= n);
	if (got)
		CHECK(S.attached);
	for (unsigned i = 0; i < got; i++)
		check_chain(t, &S.chains[i], S.iov + (size_t)i * ipc, ipc);
	vnet_guestmem_read_end(&S.m.gm, tok);
}

static void do_push(uint16_t head, uint32_t written, bool expect_ok)
{
	unsigned tok;
	bool was_usable = S.attached && !S.vq.broken;
	const struct vnet_mem_table *t = bracket_begin(&tok);
	/* After a table change the push re-maps the rings first, which fails
	 * (queue broken) when the new table no longer holds them. */
	bool remaps = S.vq.mem_gen != vnet_mem_table_generation(t);
	vnet_vq_push(&S.vq, head, written);
	vnet_guestmem_read_end(&S.m.gm, tok);
	if (!was_usable)
		return;
	if (expect_ok) {
		CHECK(!S.vq.broken || remaps);
		if (S.npend < sizeof(S.pend) / sizeof(S.pend[0]))
			S.pend[S.npend++] = (struct pushed){head, written};
		else
			S.used_dirty = true;
	} else {
		CHECK(S.vq.broken); /* a head not in flight breaks the queue */
	}
}

static void remove_fl(unsigned i)
{
	S.fl[i] = S.fl[--S.nfl];
}

void op_push(struct reader *r)
{
	uint8_t which = rd8(r), mode = rd8(r);
	if (!S.nfl)
		return;
	unsigned i = which % S.nfl;
	struct inflight f = S.fl[i];
	uint32_t written = 0;
	switch (mode % 3) {
	case 0: written = f.in_len; break;
	case 1: written = f.in_len ? (uint32_t)mode % (f.in_len + 1) : 0; break;
	default: written = 0; break;
	}
	remove_fl(i);
	do_push(f.head, written, true);
}

void op_push_raw(struct reader *r)
{
	uint16_t head = rd16(r);
	uint32_t written = rd8(r);
	for (unsigned i = 0; i < S.nfl; i++) {
		if (S.fl[i].head == head) {
			if (written > S.fl[i].in_len)
				written = S.fl[i].in_len;
			remove_fl(i);
			do_push(head, written, true);
			return;
		}
	}
	do_push(head, written, false);
}

/*
 * Whether the driver asked for an interrupt for used entries published up
 * to `now`, by the spec's rule, from what the guest wrote: no NO_INTERRUPT
 * flag; or with EVENT_IDX, used_event among the entries published since
 * the last decision (the first decision after attach is always yes).
 */
static bool spec_wants_interrupt(uint16_t now)
{
	uint16_t old = S.sig_used;
	bool valid = S.sig_valid;
	S.sig_used = now;
	S.sig_valid = true;
	if (!(S.features & (1ull << VIRTIO_F_RING_EVENT_IDX)))
		return !(gread16(S.avail_gpa) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	uint16_t event = gread16(S.avail_gpa + offsetof(struct vring_avail, ring) +
				 (uint64_t)S.qsize * 2);
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

/* A flush (or a frame-path call that flushed once) decided `notify`. */
static void check_notify(bool notify, uint16_t published_before)
{
	if (!S.attached || S.vq.broken)
		return;
	if (S.vq.used_published == published_before) {
		CHECK(!notify); /* nothing new: nothing to signal */
		return;
	}
	bool want = spec_wants_interrupt(S.vq.used_published);
	if (notify != want) {
		fprintf(stderr, "fuzz_vq_split: flush to used idx %u said notify=%d, the driver's "
			"flags/used_event ask for %d\n", S.vq.used_published, notify, want);
		CHECK(notify == want);
	}
}

void op_flush(void)
{
	unsigned tok;
	bool usable = S.attached && !S.vq.broken;
	uint16_t before = usable ? S.vq.used_published : 0;
	bracket_begin(&tok);
	bool notify = vnet_vq_flush(&S.vq);
	vnet_guestmem_read_end(&S.m.gm, tok);
	if (usable)
		check_notify(notify, before);
	if (!usable || S.vq.broken) {
		S.npend = 0;
		return;
	}
	/* Everything pushed is published, in push order, at the right slots. */
	uint16_t idx = gread16(S.used_gpa + offsetof(struct vring_used, idx));
	if (S.npend) /* the device stores its own index, whatever the guest wrote */
		CHECK(idx == (uint16_t)(before + S.npend));
	if (!S.used_dirty) {
		/* A hostile driver can recycle heads before reaping them, so more
		 * than qsize entries may be pushed: only the last qsize survive. */
		unsigned first = S.npend > S.qsize ? S.npend - S.qsize : 0;
		for (unsigned k = first; k < S.npend; k++) {
			struct vring_used_elem e = {0, 0};
			uint64_t slot = S.used_gpa + offsetof(struct vring_used, ring) +
					(uint64_t)((uint16_t)(before + k) & (S.qsize - 1)) * sizeof(e);
			CHECK(gread(slot, &e, sizeof(e)));
			CHECK(e.id == S.pend[k].head);
			CHECK(e.len == S.pend[k].len);
		}
	}
	S.npend = 0;
	S.used_dirty = false;
}

void op_enable(void)
{
	unsigned tok;
	bool usable = S.attached && !S.vq.broken;
	bracket_begin(&tok);
	bool more = vnet_vq_enable_notify(&S.vq);
	vnet_guestmem_read_end(&S.m.gm, tok);
	if (!usable || S.vq.broken)
		return;
	uint16_t avail_idx = gread16(S.avail_gpa + offsetof(struct vring_avail, idx));
	if (S.features & (1ull << VIRTIO_F_RING_EVENT_IDX)) {
		uint64_t ev = S.used_gpa + offsetof(struct vring_used, ring) +
			      (uint64_t)S.qsize * sizeof(struct vring_used_elem);
		CHECK(gread16(ev) == S.vq.last_avail);
	} else {
		CHECK(!(gread16(S.used_gpa) & VRING_USED_F_NO_NOTIFY));
	}
	/* No lost wake-up: "false" means nothing is pending right now. */
	CHECK(more == (avail_idx != S.vq.last_avail));
}

void op_disable(void)
{
	unsigned tok;
	bracket_begin(&tok);
	vnet_vq_disable_notify(&S.vq);
	vnet_guestmem_read_end(&S.m.gm, tok);
}

void op_has_avail(void)
{
	unsigned tok;
	bool usable = S.attached && !S.vq.broken;
	bracket_begin(&tok);
	bool has = vnet_vq_has_avail(&S.vq);
	vnet_guestmem_read_end(&S.m.gm, tok);
	if (!usable)
		CHECK(!has);
	else if (!S.vq.broken && !has)
		/* It may answer from a cached index (so "true" can be stale if a
		 * hostile driver moves avail->idx back), but never misses work. */
		CHECK(gread16(S.avail_gpa + offsetof(struct vring_avail, idx)) == S.vq.last_avail);
}

void attach(void)
{
	unsigned tok;
	bracket_begin(&tok);
	int ret = vnet_vq_attach(&S.vq, &S.m.gm, &S.cfg);
	vnet_guestmem_read_end(&S.m.gm, tok);
	S.attached = ret == 0;
	if (ret != 0)
		CHECK(ret == -EINVAL || ret == -EFAULT);
	S.sig_valid = false;
	S.was_broken = false;
	S.nfl = 0;
	S.npend = 0;
	S.used_dirty = false;
}

void op_reattach(struct reader *r)
{
	uint8_t mode = rd8(r);
	uint16_t base = rd16(r);
	uint16_t next = 0;
	if (S.attached)
		next = vnet_vq_detach(&S.vq);
	attach();
	if (S.attached && (mode & 1))
		vnet_vq_set_last_avail(&S.vq, (mode & 2) ? base : next);
}

/* ---- the virtio-net frame path on the same rings ---- */

/* A frame-path call that flushed published the harness's pushes along
 * with entries of its own, which the harness does not track. */
static void net_forget_pending(uint16_t published_before)
{
	if (S.vq.used_published == published_before)
		return;
	S.npend = 0;
	S.used_dirty = true;
}

void op_net_tx(struct reader *r)
{
	uint8_t f = rd8(r);
	unsigned hdr = (f & 1) ? 12 : 10, n = (f >> 2) % (VNET_NET_BURST + 8);
	bool discard = f & 2;
	bool usable = S.attached && !S.vq.broken;
	uint16_t avail0 = S.vq.last_avail, pub0 = S.vq.used_published;
	struct vnet_net_stats st = {0};
	struct vnet_pkt *pkts[VNET_NET_BURST + 8];
	bool notify = false;
	unsigned tok;
	bracket_begin(&tok);
	unsigned got = vnet_net_dequeue(&S.vq, hdr, &S.pool, pkts, n, discard, &st, &notify);
	vnet_guestmem_read_end(&S.m.gm, tok);
	CHECK(got <= n && got <= VNET_NET_BURST && got == st.packets);
	if (discard)
		CHECK(got == 0);
	for (unsigned i = 0; i < got; i++) {
		CHECK(pkts[i]->pool == &S.pool && pkts[i]->data == pkts[i]->buf + VNET_PKT_HEADROOM);
		CHECK(pkts[i]->len >= 14 && pkts[i]->len <= S.pool.frame_room);
	}
	vnet_pkt_free_burst(pkts, got);
	CHECK(S.pool.nfree == S.pool.count);
	if (usable && !S.vq.broken) {
		/* Every chain taken is returned and counted exactly once. */
		uint16_t taken = (uint16_t)(S.vq.last_avail - avail0);
		CHECK(st.packets + st.drop_disabled + st.err_bad_chain + st.drop_too_big == taken);
		CHECK(S.vq.inflight == S.nfl);
		check_notify(notify, pub0);
	}
	net_forget_pending(pub0);
}

void op_net_rx(struct reader *r)
{
	uint8_t f = rd8(r);
	unsigned hdr = (f & 1) ? 12 : 10, want = (f >> 1) % 40 + 1;
	bool usable = S.attached && !S.vq.broken;
	uint16_t pub0 = S.vq.used_published;
	struct vnet_pkt *pkts[40];
	unsigned n = vnet_pkt_alloc_burst(&S.pool, pkts, want);
	for (unsigned i = 0; i < n; i++) {
		uint16_t len = rd16(r) % (S.pool.frame_room + 1);
		memset(pkts[i]->data, 0x40 + (int)i, len);
		pkts[i]->len = len;
	}
	struct vnet_net_stats st = {0};
	bool notify = false;
	unsigned tok;
	bracket_begin(&tok);
	unsigned done = vnet_net_enqueue(&S.vq, hdr, pkts, n, &st, &notify);
	vnet_guestmem_read_end(&S.m.gm, tok);
	CHECK(done <= n);
	CHECK(st.packets + st.drop_too_big == done && st.drop_no_buf == n - done);
	vnet_pkt_free_burst(pkts, n);
	CHECK(S.pool.nfree == S.pool.count);
	if (usable && !S.vq.broken) {
		CHECK(S.vq.inflight == S.nfl);
		/* It flushes once per burst that moved something: its last
		 * decision becomes the reference for the next one. */
		if (S.vq.used_published != pub0) {
			S.sig_used = S.vq.used_published;
			S.sig_valid = true;
		} else {
			CHECK(!notify);
		}
	}
	if (!usable && !S.vq.broken)
		CHECK(done == 0 && !notify);
	net_forget_pending(pub0);
}

