/*
 * pktgen.h — vnet-pktgen internals: options, and the port interface that
 * hides whether pktgen is the vhost-user back-end or front-end.
 * Single-threaded: one loop drives every queue pair.
 */
#ifndef VNET_TOOLS_PKTGEN_H
#define VNET_TOOLS_PKTGEN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vnet/frame.h"

#define PG_MAX_QUEUES 16
#define PG_BURST 32
/* The payload pattern of vnet_frame_build_udp() repeats every 256 seqs. */
#define PG_TX_SLOTS 256u

enum pg_mode { PG_TX, PG_RX, PG_ECHO, PG_LATENCY, PG_RESPONDER };

struct pg_opts {
	bool frontend;            /* --role frontend (else backend) */
	const char *socket;
	bool server;              /* --server / --client */
	unsigned queues;
	bool poll;                /* front-end: NOFD kick/call */
	enum pg_mode mode;
	unsigned size;            /* frame bytes */
	uint64_t rate;            /* pps, 0 = as fast as possible */
	uint64_t count;           /* 0 = unlimited */
	double duration;          /* seconds, 0 = unlimited */
	unsigned flows;
	bool verify;
	struct vnet_udp_flow flow;
	uint32_t ip;              /* responder */
	uint8_t mac[6];
	bool json;
	unsigned connect_timeout_ms;
	double wait;              /* seconds to wait for the peer before giving up */
	double delay;             /* seconds to wait once the peer is ready */
	bool start_on_kick;       /* back-end: a queue pair is ready once its RX ring was kicked */
};

struct pg_port {
	const struct pg_opts *opts;
	void (*service)(struct pg_port *p);
	bool (*ready)(struct pg_port *p, unsigned qp);
	/* Received frames stay valid until the next rx on the same queue pair. */
	int (*rx)(struct pg_port *p, unsigned qp, struct iovec *frames, unsigned n);
	/* Copies frames into the ring; returns how many were taken. */
	int (*tx)(struct pg_port *p, unsigned qp, const struct iovec *frames, unsigned n);
	void (*close)(struct pg_port *p);
	/* Back-end: true when the driver has taken every frame we gave it on
	 * queue pair qp (all its RX buffers are posted again). NULL: no way to
	 * tell. */
	bool (*drained)(struct pg_port *p, unsigned qp);
	uint64_t connections_closed;
};

int pg_port_open(const struct pg_opts *o, struct pg_port **out);

#endif
