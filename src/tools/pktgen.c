/*
 * vnet-pktgen — traffic over vhost-user in either role, like testpmd with
 * net_vhost (--role backend) or net_virtio_user (--role frontend).
 * Modes: tx, rx, echo, latency, responder (ARP + ICMP echo for --ip).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/pktgen.h"
#include "util/cycles.h"
#include "vnet/log.h"

#define PG_VERSION "0.1.0"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/*
 * The loop reads the time once per round. clock_gettime() reads the TSC
 * behind an lfence, which waits for every load in flight, ring misses
 * included: profiled in rx mode, a fifth of the time went there. So time is
 * the TSC (no fence) scaled by its calibrated rate and anchored once to
 * CLOCK_MONOTONIC; every timestamp pktgen takes comes from here, so they stay
 * consistent with each other.
 */
static uint64_t now_ns(void)
{
#if defined(__x86_64__) || defined(__i386__)
	static uint64_t base_cycles;
	static double base_ns, ns_per_cycle = -1;
	if (ns_per_cycle < 0) {
		uint64_t hz = vnet_cycles_hz();
		vnet_clock_tsc_pair(&base_ns, &base_cycles);
		/* a failed calibration: keep to the system clock */
		ns_per_cycle = hz >= 1000000 ? 1e9 / (double)hz : 0;
	}
	if (ns_per_cycle > 0)
		return (uint64_t)(base_ns + (double)(vnet_cycles() - base_cycles) * ns_per_cycle);
#endif
	return vnet_mono_ns();
}

struct pg_stats {
	uint64_t tx_packets, tx_bytes;
	uint64_t rx_packets, rx_bytes;
	uint64_t errors;        /* frames that failed --verify */
	uint64_t drops;         /* frames we wanted to send but the ring was full */
	uint64_t answered;      /* responder: ARP + ICMP answers */
	uint64_t lost;          /* latency probes that never came back */
	uint64_t warmup;        /* probes lost before the first answer: peer not forwarding yet */
	uint64_t *rtt_ns;       /* latency samples */
	uint64_t nrtt, rtt_cap;
	uint64_t busy_cycles;   /* TSC cycles of rounds that moved frames */
	uint64_t busy_rounds;   /* rounds that moved frames (a round polls every queue pair) */
};

struct pg_run {
	struct pg_opts *o;
	struct pg_port *port;
	struct pg_stats st;
	uint8_t (*txbuf)[PG_BURST][9216];
	/* tx mode: one frame per seq % PG_TX_SLOTS and queue, built once and then
	 * only re-stamped (vnet_frame_restamp_udp), as testpmd's txonly rewrites
	 * headers only: the generator must not be what a benchmark measures. */
	uint8_t *tx_slots;
	size_t tx_slot_size;
	uint64_t seq;
	uint64_t start_ns, first_ns, last_ns;
	uint64_t ready_ns;      /* when the peer was first ready: --duration counts from here */
	/* latency: the probe in flight */
	bool probe_out;
	uint64_t probe_seq, probe_sent_ns;
};

static const char *const mode_names[] = {"tx", "rx", "echo", "latency", "responder"};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vnet-pktgen --role frontend|backend --socket PATH [--server|--client]\n"
		"                   --mode tx|rx|echo|latency|responder [options]\n"
		"  --queues N         queue pairs (default 1)\n"
		"  --size B           frame bytes without FCS (default 64)\n"
		"  --rate PPS         tx/latency rate (default: as fast as possible)\n"
		"  --count N          frames to send (tx, latency) or receive (rx)\n"
		"  --duration S       stop after S seconds\n"
		"  --flows N          UDP source ports 1024..1024+N-1 (default 1)\n"
		"  --src-mac M --dst-mac M --vlan ID --src-ip A --dst-ip A\n"
		"  --verify           rx: check checksums and payload of every frame\n"
		"  --ip A --mac M     responder: answer ARP and ICMP echo for A\n"
		"  --poll             front-end: no kick/call eventfds (back-end polls)\n"
		"  --wait S           give up if the peer is not ready within S (default 30)\n"
		"  --delay S          wait S more seconds once the peer is ready before sending\n"
		"  --start-on-kick    back-end: send on a queue pair only after the driver kicked its\n"
		"                     RX ring (DPDK's virtio PMD drops what its RX ring holds when\n"
		"                     it starts, then kicks)\n"
		"  --json             machine-readable summary on stdout\n"
		"  --log-level L      error|warn|info|debug\n"
		"Defaults: backend listens (--server), frontend connects (--client).\n");
}

static int parse_opts(int argc, char **argv, struct pg_opts *o)
{
	enum { O_ROLE = 256, O_SOCKET, O_SERVER, O_CLIENT, O_QUEUES, O_MODE, O_SIZE, O_RATE,
	       O_COUNT, O_DURATION, O_FLOWS, O_SRCMAC, O_DSTMAC, O_VLAN, O_SRCIP, O_DSTIP,
	       O_VERIFY, O_IP, O_MAC, O_POLL, O_JSON, O_WAIT, O_LOG, O_DELAY, O_KICK, O_HELP, O_VERSION };
	static const struct option long_opts[] = {
		{"role", 1, 0, O_ROLE}, {"socket", 1, 0, O_SOCKET}, {"server", 0, 0, O_SERVER},
		{"client", 0, 0, O_CLIENT}, {"queues", 1, 0, O_QUEUES}, {"mode", 1, 0, O_MODE},
		{"size", 1, 0, O_SIZE}, {"rate", 1, 0, O_RATE}, {"count", 1, 0, O_COUNT},
		{"duration", 1, 0, O_DURATION}, {"flows", 1, 0, O_FLOWS},
		{"src-mac", 1, 0, O_SRCMAC}, {"dst-mac", 1, 0, O_DSTMAC}, {"vlan", 1, 0, O_VLAN},
		{"src-ip", 1, 0, O_SRCIP}, {"dst-ip", 1, 0, O_DSTIP}, {"verify", 0, 0, O_VERIFY},
		{"ip", 1, 0, O_IP}, {"mac", 1, 0, O_MAC}, {"poll", 0, 0, O_POLL},
		{"json", 0, 0, O_JSON}, {"wait", 1, 0, O_WAIT}, {"log-level", 1, 0, O_LOG},
		{"delay", 1, 0, O_DELAY}, {"start-on-kick", 0, 0, O_KICK},
		{"help", 0, 0, O_HELP}, {"version", 0, 0, O_VERSION}, {0, 0, 0, 0},
	};
	int server = -1;
	bool have_role = false, have_mode = false;
	*o = (struct pg_opts){
		.queues = 1, .size = 64, .flows = 1, .wait = 30,
		.flow = {.src_mac = {0x02, 0, 0, 0, 0, 0x01}, .dst_mac = {0x02, 0, 0, 0, 0, 0x02},
			 .src_ip = 0x0a000001, .dst_ip = 0x0a000002, .src_port = 1024,
			 .dst_port = 5001},
		.mac = {0x02, 0x76, 0x6e, 0x65, 0x74, 0x01},
	};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case O_ROLE:
			have_role = true;
			if (!strcmp(optarg, "frontend"))
				o->frontend = true;
			else if (strcmp(optarg, "backend"))
				goto bad;
			break;
		case O_SOCKET: o->socket = optarg; break;
		case O_SERVER: server = 1; break;
		case O_CLIENT: server = 0; break;
		case O_QUEUES:
			o->queues = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->queues < 1 || o->queues > PG_MAX_QUEUES)
				goto bad;
			break;
		case O_MODE: {
			have_mode = true;
			int m = 0;
			while (m < 5 && strcmp(optarg, mode_names[m]))
				m++;
			if (m == 5)
				goto bad;
			o->mode = (enum pg_mode)m;
			break;
		}
		case O_SIZE:
			o->size = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->size > 9216)
				goto bad;
			break;
		case O_RATE: o->rate = strtoull(optarg, &end, 10); if (*end) goto bad; break;
		case O_COUNT: o->count = strtoull(optarg, &end, 10); if (*end) goto bad; break;
		case O_DURATION: o->duration = strtod(optarg, &end); if (*end) goto bad; break;
		case O_WAIT: o->wait = strtod(optarg, &end); if (*end) goto bad; break;
		case O_DELAY: o->delay = strtod(optarg, &end); if (*end || o->delay < 0) goto bad; break;
		case O_FLOWS:
			o->flows = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->flows < 1 || o->flows > 64511)
				goto bad;
			break;
		case O_SRCMAC: if (vnet_parse_mac(optarg, o->flow.src_mac)) goto bad; break;
		case O_DSTMAC: if (vnet_parse_mac(optarg, o->flow.dst_mac)) goto bad; break;
		case O_MAC: if (vnet_parse_mac(optarg, o->mac)) goto bad; break;
		case O_VLAN:
			o->flow.vlan = (uint16_t)strtoul(optarg, &end, 10);
			if (*end || o->flow.vlan < 1 || o->flow.vlan > 4094)
				goto bad;
			break;
		case O_SRCIP: if (vnet_parse_ipv4(optarg, &o->flow.src_ip)) goto bad; break;
		case O_DSTIP: if (vnet_parse_ipv4(optarg, &o->flow.dst_ip)) goto bad; break;
		case O_IP: if (vnet_parse_ipv4(optarg, &o->ip)) goto bad; break;
		case O_VERIFY: o->verify = true; break;
		case O_POLL: o->poll = true; break;
		case O_KICK: o->start_on_kick = true; break;
		case O_JSON: o->json = true; break;
		case O_LOG: {
			int l = vnet_log_parse_level(optarg);
			if (l < 0)
				goto bad;
			vnet_log_set_level((enum vnet_log_level)l);
			break;
		}
		case O_VERSION: printf("vnet-pktgen %s\n", PG_VERSION); exit(0);
		case 'h': case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc || !have_role || !have_mode || !o->socket) {
		fprintf(stderr, "vnet-pktgen: --role, --mode and --socket are required\n");
		usage(stderr);
		return -1;
	}
	if (o->mode == PG_RESPONDER && !o->ip) {
		fprintf(stderr, "vnet-pktgen: responder mode needs --ip\n");
		return -1;
	}
	o->server = server < 0 ? !o->frontend : server;
	size_t min = vnet_frame_udp_min(&o->flow);
	if (o->size < min) {
		fprintf(stderr, "vnet-pktgen: --size %u is below the %zu-byte minimum for this frame\n",
			o->size, min);
		return -1;
	}
	o->connect_timeout_ms = (unsigned)(o->wait * 1000);
	return 0;
bad:
	fprintf(stderr, "vnet-pktgen: bad value for --%s: %s\n",
		long_opts[c - O_ROLE].name, optarg ? optarg : "");
	return -1;
}

static void add_rtt(struct pg_stats *st, uint64_t ns)
{
	if (st->nrtt == st->rtt_cap) {
		uint64_t cap = st->rtt_cap ? st->rtt_cap * 2 : 4096;
		uint64_t *p = realloc(st->rtt_ns, cap * sizeof(*p));
		if (!p)
			return;
		st->rtt_ns = p;
		st->rtt_cap = cap;
	}
	st->rtt_ns[st->nrtt++] = ns;
}

/* Sends up to n frames from the queue pair's tx buffers; counts drops. */
static unsigned send_frames(struct pg_run *r, unsigned qp, struct iovec *frames, unsigned n)
{
	int k = r->port->tx(r->port, qp, frames, n);
	if (k < 0)
		k = 0;
	for (int i = 0; i < k; i++) {
		r->st.tx_packets++;
		r->st.tx_bytes += frames[i].iov_len;
	}
	return (unsigned)k;
}

static void do_tx(struct pg_run *r, unsigned qp, uint64_t t)
{
	const struct pg_opts *o = r->o;
	uint64_t want = PG_BURST;
	if (o->count) {
		if (r->st.tx_packets >= o->count)
			return;
		if (o->count - r->st.tx_packets < want)
			want = o->count - r->st.tx_packets;
	}
	if (o->rate) {
		double allowed = (double)(t - r->first_ns) / 1e9 * (double)o->rate + 1;
		if (allowed <= (double)r->st.tx_packets) {
			/* Not due yet: sleep rather than spin when the next frame is more
			 * than 50 µs away, so a paced sender leaves the core to others. */
			double wait_ns = ((double)r->st.tx_packets + 1 - allowed) * 1e9 / (double)o->rate;
			if (wait_ns > 50000) {
				struct timespec ts = {0, (long)(wait_ns < 1e6 ? wait_ns : 1e6)};
				nanosleep(&ts, NULL);
			}
			return;
		}
		if (allowed - (double)r->st.tx_packets < (double)want)
			want = (uint64_t)(allowed - (double)r->st.tx_packets);
	}
	struct iovec frames[PG_BURST];
	uint8_t *slots = r->tx_slots + (size_t)qp * PG_TX_SLOTS * r->tx_slot_size;
	for (unsigned i = 0; i < want; i++) {
		uint64_t seq = r->seq + i;
		uint8_t *buf = slots + (seq % PG_TX_SLOTS) * r->tx_slot_size;
		uint16_t src_port = (uint16_t)(o->flow.src_port + seq % o->flows);
		if (!vnet_frame_restamp_udp(buf, o->size, src_port, seq, t)) {
			struct vnet_udp_flow f = o->flow;
			f.src_port = src_port;
			vnet_frame_build_udp(buf, r->tx_slot_size, o->size, &f, seq, t);
		}
		frames[i].iov_base = buf;
		frames[i].iov_len = o->size;
	}
	r->seq += send_frames(r, qp, frames, (unsigned)want);
}

static void count_rx(struct pg_run *r, const struct iovec *f)
{
	r->st.rx_packets++;
	r->st.rx_bytes += f->iov_len;
	if (r->o->verify) {
		struct vnet_probe pr;
		if (!vnet_frame_parse_probe(f->iov_base, f->iov_len, true, &pr))
			r->st.errors++;
	}
}

static void do_rx_modes(struct pg_run *r, unsigned qp, uint64_t t)
{
	const struct pg_opts *o = r->o;
	struct iovec frames[PG_BURST], out[PG_BURST];
	uint64_t limit = PG_BURST;
	if (o->mode == PG_RX && o->count && o->count - r->st.rx_packets < limit)
		limit = o->count - r->st.rx_packets;
	int n = r->port->rx(r->port, qp, frames, (unsigned)limit);
	if (n <= 0)
		return;
	if (!r->first_ns)
		r->first_ns = t;
	r->last_ns = t;
	unsigned nout = 0;
	for (int i = 0; i < n; i++) {
		count_rx(r, &frames[i]);
		switch (o->mode) {
		case PG_ECHO:
			vnet_frame_swap_mac(frames[i].iov_base, frames[i].iov_len);
			out[nout++] = frames[i];
			break;
		case PG_RESPONDER: {
			uint8_t *buf = r->txbuf[qp][nout];
			size_t len = vnet_frame_answer(frames[i].iov_base, frames[i].iov_len, o->ip,
						       o->mac, buf, sizeof(r->txbuf[qp][nout]));
			if (len) {
				out[nout].iov_base = buf;
				out[nout++].iov_len = len;
				r->st.answered++;
			}
			break;
		}
		case PG_LATENCY: {
			struct vnet_probe pr;
			if (r->probe_out &&
			    vnet_frame_parse_probe(frames[i].iov_base, frames[i].iov_len, false, &pr) &&
			    pr.seq == (uint32_t)r->probe_seq) {
				add_rtt(&r->st, t - r->probe_sent_ns);
				r->probe_out = false;
			}
			break;
		}
		default:
			break;
		}
	}
	if (nout) {
		unsigned sent = send_frames(r, qp, out, nout);
		r->st.drops += nout - sent;
	}
}

static void do_latency(struct pg_run *r, uint64_t t)
{
	const struct pg_opts *o = r->o;
	if (r->probe_out) {
		if (t - r->probe_sent_ns < 1000000000ull)
			return;
		/* A second without an answer. Before the first answer the peer may
		 * not be forwarding yet (testpmd starts its engine after the link). */
		if (r->st.nrtt)
			r->st.lost++;
		else
			r->st.warmup++;
		r->probe_out = false;
	}
	if (o->count && r->st.nrtt + r->st.lost >= o->count)
		return;
	if (o->rate && r->probe_sent_ns && t - r->probe_sent_ns < 1000000000ull / o->rate)
		return;
	uint8_t *buf = r->txbuf[0][PG_BURST - 1];
	vnet_frame_build_udp(buf, sizeof(r->txbuf[0][0]), o->size, &o->flow, r->seq, t);
	struct iovec f = {.iov_base = buf, .iov_len = o->size};
	if (send_frames(r, 0, &f, 1) == 1) {
		r->probe_out = true;
		r->probe_seq = r->seq++;
		r->probe_sent_ns = t;
	}
}

static bool finished(const struct pg_run *r, uint64_t t)
{
	const struct pg_opts *o = r->o;
	if (stop_requested)
		return true;
	if (o->duration > 0 && r->ready_ns && (double)(t - r->ready_ns) / 1e9 >= o->duration)
		return true;
	if (!o->count)
		return false;
	switch (o->mode) {
	case PG_TX: return r->st.tx_packets >= o->count;
	case PG_RX: return r->st.rx_packets >= o->count;
	case PG_LATENCY: return r->st.nrtt + r->st.lost >= o->count;
	default: return r->st.rx_packets >= o->count;
	}
}

static bool all_ready(struct pg_run *r)
{
	for (unsigned q = 0; q < r->o->queues; q++)
		if (!r->port->ready(r->port, q))
			return false;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile_us(uint64_t *v, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t i = (uint64_t)ceil(p / 100.0 * (double)n);
	return (double)v[i ? i - 1 : 0] / 1000.0;
}

static void report(struct pg_run *r, bool final)
{
	const struct pg_opts *o = r->o;
	const struct pg_stats *st = &r->st;
	uint64_t end = final ? (r->last_ns ? r->last_ns : now_ns()) : now_ns();
	double secs = r->first_ns && end > r->first_ns ? (double)(end - r->first_ns) / 1e9 : 0;
	uint64_t pkts = o->mode == PG_TX ? st->tx_packets : st->rx_packets;
	uint64_t bytes = o->mode == PG_TX ? st->tx_bytes : st->rx_bytes;
	double pps = secs > 0 ? (double)pkts / secs : 0;
	double gbps = secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
	if (!final) {
		fprintf(stderr, "\r%s %s: tx %llu rx %llu  %.3f Mpps %.3f Gbit/s  err %llu drop %llu ",
			o->frontend ? "frontend" : "backend", mode_names[o->mode],
			(unsigned long long)st->tx_packets, (unsigned long long)st->rx_packets,
			pps / 1e6, gbps, (unsigned long long)st->errors,
			(unsigned long long)st->drops);
		return;
	}
	double p50 = 0, p99 = 0, max = 0;
	if (st->nrtt) {
		qsort(st->rtt_ns, st->nrtt, sizeof(uint64_t), cmp_u64);
		p50 = percentile_us(st->rtt_ns, st->nrtt, 50);
		p99 = percentile_us(st->rtt_ns, st->nrtt, 99);
		max = (double)st->rtt_ns[st->nrtt - 1] / 1000.0;
	}
	if (o->json) {
		printf("{\"role\":\"%s\",\"mode\":\"%s\",\"queues\":%u,\"size\":%u,"
		       "\"tx_packets\":%llu,\"tx_bytes\":%llu,\"rx_packets\":%llu,\"rx_bytes\":%llu,"
		       "\"errors\":%llu,\"drops\":%llu,\"answered\":%llu,\"seconds\":%.6f,"
		       "\"pps\":%.1f,\"gbps\":%.4f,\"latency_samples\":%llu,\"lost\":%llu,"
		       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f,\"warmup_lost\":%llu,"
		       "\"reconnects\":%llu,\"busy_cycles\":%llu,\"cycles_per_packet\":%.1f,"
		       "\"frames_per_round\":%.1f,\"tsc_hz\":%llu}\n",
		       o->frontend ? "frontend" : "backend", mode_names[o->mode], o->queues, o->size,
		       (unsigned long long)st->tx_packets, (unsigned long long)st->tx_bytes,
		       (unsigned long long)st->rx_packets, (unsigned long long)st->rx_bytes,
		       (unsigned long long)st->errors, (unsigned long long)st->drops,
		       (unsigned long long)st->answered, secs, pps, gbps,
		       (unsigned long long)st->nrtt, (unsigned long long)st->lost, p50, p99, max,
		       (unsigned long long)st->warmup,
		       (unsigned long long)r->port->connections_closed,
		       (unsigned long long)st->busy_cycles,
		       pkts ? (double)st->busy_cycles / (double)pkts : 0.0,
		       st->busy_rounds ? (double)pkts / (double)st->busy_rounds : 0.0,
		       (unsigned long long)vnet_cycles_hz());
	} else {
		printf("vnet-pktgen %s %s: tx %llu, rx %llu packets in %.3f s: %.3f Mpps, "
		       "%.3f Gbit/s; %llu errors, %llu drops",
		       o->frontend ? "frontend" : "backend", mode_names[o->mode],
		       (unsigned long long)st->tx_packets, (unsigned long long)st->rx_packets, secs,
		       pps / 1e6, gbps, (unsigned long long)st->errors,
		       (unsigned long long)st->drops);
		if (o->mode == PG_RESPONDER)
			printf("; %llu answers", (unsigned long long)st->answered);
		if (o->mode == PG_LATENCY)
			printf("; RTT p50 %.1f us, p99 %.1f us, max %.1f us (%llu samples, %llu lost, "
			       "%llu lost before the first answer)",
			       p50, p99, max, (unsigned long long)st->nrtt,
			       (unsigned long long)st->lost, (unsigned long long)st->warmup);
		printf("\n");
	}
}

static int run(struct pg_run *r)
{
	const struct pg_opts *o = r->o;
	bool tty = isatty(STDERR_FILENO) && !o->json;
	uint64_t t = now_ns(), ready_deadline = t + (uint64_t)(o->wait * 1e9);
	uint64_t next_report = t + 1000000000ull;
	unsigned iter = 0;
	bool ready = false;
	while (!finished(r, t)) {
		/* Control messages are few: look for them every 64 rounds. */
		if ((iter++ & 63) == 0 || !ready)
			r->port->service(r->port);
		t = now_ns();
		if (!ready) {
			ready = all_ready(r);
			if (!ready) {
				if (t > ready_deadline && !r->st.rx_packets && !r->st.tx_packets) {
					vnet_err("pktgen: peer not ready on %s after %.0f s%s", o->socket,
						 o->wait,
						 o->start_on_kick
							 ? " (--start-on-kick: also waiting for a kick of its RX ring)"
							 : "");
					return 1;
				}
				struct timespec ts = {0, 1000000};
				nanosleep(&ts, NULL);
				continue;
			}
			if (!r->ready_ns) {
				r->ready_ns = t;
				if (o->delay > 0) {
					/* Some peers start forwarding after their link is up. */
					struct timespec ts = {(time_t)o->delay,
							      (long)((o->delay - (double)(time_t)o->delay) * 1e9)};
					nanosleep(&ts, NULL);
					t = now_ns();
					r->ready_ns = t;
				}
			}
			if (!r->first_ns && (o->mode == PG_TX || o->mode == PG_LATENCY))
				r->first_ns = t;
		}
		uint64_t c0 = vnet_cycles(), moved = r->st.tx_packets + r->st.rx_packets;
		for (unsigned q = 0; q < o->queues; q++) {
			if (o->mode == PG_TX)
				do_tx(r, q, t);
			else
				do_rx_modes(r, q, t);
		}
		if (r->st.tx_packets + r->st.rx_packets != moved) {
			r->st.busy_cycles += vnet_cycles() - c0;
			r->st.busy_rounds++;
		}
		if (o->mode == PG_LATENCY)
			do_latency(r, t);
		if (o->mode == PG_TX)
			r->last_ns = t;
		if (!o->frontend && !r->port->ready(r->port, 0))
			ready = false; /* front-end went away: wait for the next one */
		if (tty && t >= next_report) {
			report(r, false);
			next_report = t + 1000000000ull;
		}
	}
	if (tty)
		fprintf(stderr, "\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct pg_opts o;
	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct pg_run r = {.o = &o};
	r.txbuf = calloc(PG_MAX_QUEUES, sizeof(*r.txbuf));
	if (o.mode == PG_TX) {
		r.tx_slot_size = (o.size + 63) & ~(size_t)63;
		r.tx_slots = calloc((size_t)o.queues * PG_TX_SLOTS, r.tx_slot_size);
	}
	if (!r.txbuf || (o.mode == PG_TX && !r.tx_slots)) {
		fprintf(stderr, "vnet-pktgen: out of memory\n");
		free(r.txbuf);
		return 2;
	}
	int e = pg_port_open(&o, &r.port);
	if (e < 0) {
		fprintf(stderr, "vnet-pktgen: cannot open the %s on %s: %s\n",
			o.frontend ? "front-end" : "back-end", o.socket, strerror(-e));
		free(r.txbuf);
		free(r.tx_slots);
		return 2;
	}
	r.start_ns = now_ns();
	int rc = run(&r);
	report(&r, true);
	if (!o.frontend && o.mode == PG_TX && r.st.tx_packets && !stop_requested &&
	    r.port->drained) {
		/* The last bursts are in the guest's used ring, but a virtio-user
		 * driver stops polling RX as soon as the socket closes: wait (at
		 * most 5 s: a busy machine may starve it) until it has taken them and
		 * posted its buffers again. */
		uint64_t until = now_ns() + 5000000000ull;
		for (unsigned q = 0; q < o.queues; q++)
			while (!stop_requested && !r.port->drained(r.port, q) && now_ns() < until) {
				r.port->service(r.port);
				struct timespec ts = {0, 1000000};
				nanosleep(&ts, NULL);
			}
	}
	r.port->close(r.port);
	free(r.st.rtt_ns);
	free(r.txbuf);
	free(r.tx_slots);
	if (rc == 0 && o.count && !stop_requested && !finished(&r, now_ns()))
		rc = 1;
	return rc;
}
