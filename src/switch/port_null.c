/*
 * port_null.c — a port with nothing behind it, for tests and benchmarks.
 *
 * Options: queues=N (1..16, default 1); rx=none (default: rx returns
 * nothing) or rx=generate (every rx call fills the whole burst with 64-byte
 * frames from 02:00:00:00:00:01 to 02:00:00:00:00:02, the 60-byte minimum
 * frame plus its FCS room counted as 64 bytes of wire, so a PMD thread can
 * be measured without a peer). tx counts every frame as sent and drops it.
 */
#include "switch/port.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NULL_FRAME_LEN 60u /* 64 on the wire with the FCS */

struct null_port {
	bool generate;
};

static int null_open(struct sw_port *p, char *err, size_t errlen)
{
	static const char *const known[] = {"queues", "rx", NULL};
	if (sw_options_check(&p->opts, "null", known, err, errlen) < 0)
		return -EINVAL;
	unsigned queues;
	if (sw_options_uint(&p->opts, "queues", 1, 1, SW_PORT_MAX_QUEUES, &queues, "null", err,
			    errlen) < 0)
		return -EINVAL;
	const char *rx = sw_options_get(&p->opts, "rx");
	bool generate = false;
	if (rx && strcmp(rx, "generate") == 0)
		generate = true;
	else if (rx && strcmp(rx, "none") != 0) {
		snprintf(err, errlen, "null: bad value '%s' for rx (none or generate)", rx);
		return -EINVAL;
	}
	struct null_port *np = calloc(1, sizeof(*np));
	if (!np) {
		snprintf(err, errlen, "null: out of memory");
		return -ENOMEM;
	}
	np->generate = generate;
	p->priv = np;
	p->nrxq = p->ntxq = queues;
	return 0;
}

static void null_close(struct sw_port *p)
{
	free(p->priv);
	p->priv = NULL;
}

static unsigned null_rx(struct sw_port *p, unsigned q, struct vnet_pkt_pool *pool,
			struct vnet_pkt **pkts, unsigned n)
{
	struct null_port *np = p->priv;
	if (!np->generate || q >= p->nrxq)
		return 0;
	unsigned got = vnet_pkt_alloc_burst(pool, pkts, n);
	static const uint8_t hdr[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5};
	for (unsigned i = 0; i < got; i++) {
		struct vnet_pkt *k = pkts[i];
		memcpy(k->data, hdr, sizeof(hdr));
		memset(k->data + sizeof(hdr), 0, NULL_FRAME_LEN - sizeof(hdr));
		k->len = NULL_FRAME_LEN;
		k->in_port = p->ofport;
	}
	atomic_fetch_add_explicit(&p->rxq[q].rx_packets, got, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->rxq[q].rx_bytes, (uint64_t)got * NULL_FRAME_LEN,
				  memory_order_relaxed);
	return got;
}

static unsigned null_tx(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n)
{
	if (q >= p->ntxq)
		q = 0;
	uint64_t bytes = 0;
	for (unsigned i = 0; i < n; i++)
		bytes += pkts[i]->len;
	atomic_fetch_add_explicit(&p->txq[q].tx_packets, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->txq[q].tx_bytes, bytes, memory_order_relaxed);
	return n;
}

static void null_service(struct sw_port *p)
{
	(void)p;
}

static int null_service_fd(struct sw_port *p)
{
	(void)p;
	return -1;
}

static int null_wake_fd(struct sw_port *p, unsigned q)
{
	(void)p;
	(void)q;
	return -1;
}

static void null_describe(struct sw_port *p, char *buf, size_t len)
{
	struct null_port *np = p->priv;
	snprintf(buf, len, "%u queue%s, rx %s", p->nrxq, p->nrxq == 1 ? "" : "s",
		 np && np->generate ? "generates 64-byte frames" : "none");
}

const struct sw_port_ops sw_port_null_ops = {
	.type = "null",
	.open = null_open,
	.close = null_close,
	.rx = null_rx,
	.tx = null_tx,
	.service = null_service,
	.service_fd = null_service_fd,
	.wake_fd = null_wake_fd,
	.describe = null_describe,
};
