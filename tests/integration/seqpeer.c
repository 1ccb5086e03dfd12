/*
 * seqpeer.c — a vhost-user front-end (a "VM") for the fault, soak and
 * resource-limit tests: it sends UDP frames stamped with a sequence number at
 * a fixed rate and checks every frame it receives, counting per sender
 * (keyed by the IPv4 source address) the frames that were corrupt (checksum
 * or payload pattern wrong: vnet_frame_parse_probe with verify), delivered
 * twice, lost (holes in the sequence) or late (out of order).
 *
 * Unlike vnet-pktgen it sends and receives at once, keeps its sequence
 * numbers across reconnections (so a frame a restarted switch delivers a
 * second time is caught as a duplicate), and with --reconnect it opens a
 * fresh device whenever the back-end goes away (client: connect again;
 * server: listen again), as a guest driver resetting its NIC would. A frame
 * the ring had no room for is retried, never skipped: a hole at the receiver
 * is a frame lost on the way.
 *
 * Signals: SIGUSR1 closes the device in order and opens a new one (a
 * front-end reconnect); SIGUSR2 stops sending (receiving goes on);
 * SIGTERM/SIGINT print the summary and exit. --status FILE is rewritten
 * (atomically) every 200 ms with the same JSON as the summary.
 *
 * Single-threaded: one loop drives the one queue pair.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vnet/frame.h"
#include "vnet/log.h"
#include "vnet/vhost_user_frontend.h"

#define BURST 32
#define MAX_SENDERS 64
/* A valid frame with a sequence number beyond this is counted, not tracked:
 * the bitmap of one sender stays below 8 MiB. */
#define MAX_TRACKED_SEQ (64u << 20)
#define STATUS_PERIOD_NS 200000000ull

static volatile sig_atomic_t stop_requested, reconnect_requested, tx_off_requested;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		reconnect_requested = 1;
	else if (sig == SIGUSR2)
		tx_off_requested = 1;
	else
		stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct sender {
	uint32_t ip;
	uint64_t rx, dup, late, untracked;
	uint32_t first, max;   /* first and highest sequence number seen */
	uint32_t base;         /* sequence number of bit 0 of seen */
	uint8_t *seen;
	size_t seen_bytes;
	uint64_t distinct;
};

struct opts {
	const char *socket, *status;
	bool server, reconnect;
	uint64_t rate;
	unsigned size;
	double duration;
	struct vnet_udp_flow flow;
};

struct peer {
	struct opts o;
	struct vnet_vhu_fe *fe;
	uint64_t tx, tx_full, rx, corrupt, foreign, ring_errors, connects, disconnects;
	uint64_t seq;               /* next sequence number to send */
	uint64_t tx_start_ns, tx_base;  /* pacing: frames due since tx_start_ns */
	struct sender senders[MAX_SENDERS];
	unsigned nsenders;
	uint64_t sender_overflow;
	uint8_t frames[BURST][2048];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: seqpeer --socket PATH [--server] [--reconnect] [--rate PPS] [--size B]\n"
		"               [--src-ip A] [--src-mac M] [--dst-mac M] [--duration S]\n"
		"               [--status FILE]\n"
		"  --server     listen at PATH (for a switch port in mode=client)\n"
		"  --reconnect  open a new device whenever the back-end goes away\n"
		"  --rate PPS   frames sent per second (0 = receive only; default 0)\n"
		"  --src-ip A   the sender identity receivers count by (default 10.0.0.1)\n"
		"SIGUSR1: reconnect; SIGUSR2: stop sending; SIGTERM: summary and exit.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"socket", 1, 0, 's'}, {"server", 0, 0, 'S'}, {"reconnect", 0, 0, 'R'},
		{"rate", 1, 0, 'r'},   {"size", 1, 0, 'z'},   {"src-ip", 1, 0, 'i'},
		{"src-mac", 1, 0, 'm'}, {"dst-mac", 1, 0, 'd'}, {"duration", 1, 0, 't'},
		{"status", 1, 0, 'j'}, {"help", 0, 0, 'h'},   {0, 0, 0, 0},
	};
	*o = (struct opts){
		.size = 128,
		.flow = {.src_mac = {0x02, 0, 0, 0, 0, 0x01}, .dst_mac = {0x02, 0, 0, 0, 0, 0x02},
			 .src_ip = 0x0a000001, .dst_ip = 0x0a0000fe, .src_port = 1024,
			 .dst_port = 5001},
	};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'S': o->server = true; break;
		case 'R': o->reconnect = true; break;
		case 'j': o->status = optarg; break;
		case 'r':
			o->rate = strtoull(optarg, &end, 10);
			if (*end)
				goto bad;
			break;
		case 'z':
			o->size = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->size > 1514 || o->size < vnet_frame_udp_min(&o->flow))
				goto bad;
			break;
		case 't':
			o->duration = strtod(optarg, &end);
			if (*end || o->duration < 0)
				goto bad;
			break;
		case 'i': if (vnet_parse_ipv4(optarg, &o->flow.src_ip)) goto bad; break;
		case 'm': if (vnet_parse_mac(optarg, o->flow.src_mac)) goto bad; break;
		case 'd': if (vnet_parse_mac(optarg, o->flow.dst_mac)) goto bad; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!o->socket || optind < argc) {
		usage(stderr);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "seqpeer: bad value '%s'\n", optarg);
	return -1;
}

static struct sender *sender_of(struct peer *p, uint32_t ip)
{
	for (unsigned i = 0; i < p->nsenders; i++)
		if (p->senders[i].ip == ip)
			return &p->senders[i];
	if (p->nsenders == MAX_SENDERS)
		return NULL;
	struct sender *s = &p->senders[p->nsenders++];
	memset(s, 0, sizeof(*s));
	s->ip = ip;
	return s;
}

/* Marks seq as seen; false when it was seen before. */
static bool mark_seen(struct sender *s, uint32_t seq)
{
	size_t byte = (seq - s->base) / 8;
	if (byte >= s->seen_bytes) {
		size_t n = s->seen_bytes ? s->seen_bytes : 4096;
		while (n <= byte)
			n *= 2;
		uint8_t *b = realloc(s->seen, n);
		if (!b) {
			fprintf(stderr, "seqpeer: out of memory for the sequence bitmap\n");
			exit(2);
		}
		memset(b + s->seen_bytes, 0, n - s->seen_bytes);
		s->seen = b;
		s->seen_bytes = n;
	}
	uint8_t bit = (uint8_t)(1u << ((seq - s->base) % 8));
	if (s->seen[byte] & bit)
		return false;
	s->seen[byte] |= bit;
	return true;
}

static void count_valid(struct peer *p, const uint8_t *frame, size_t len, uint32_t seq)
{
	size_t ip_off = VNET_ETH_HLEN;
	if (len >= 18 && frame[12] == 0x81 && frame[13] == 0x00)
		ip_off += 4;
	uint32_t ip = (uint32_t)frame[ip_off + 12] << 24 | (uint32_t)frame[ip_off + 13] << 16 |
		      (uint32_t)frame[ip_off + 14] << 8 | frame[ip_off + 15];
	struct sender *s = sender_of(p, ip);
	if (!s) {
		p->sender_overflow++;
		return;
	}
	s->rx++;
	if (s->rx == 1) {
		/* A receiver may start in the middle of a sender's stream: keep
		 * some room below the first number for frames that come late. */
		s->first = s->max = seq;
		s->base = seq > 65536 ? seq - 65536 : 0;
	}
	if (seq < s->base || seq - s->base >= MAX_TRACKED_SEQ) {
		s->untracked++;
		return;
	}
	if (!mark_seen(s, seq)) {
		s->dup++;
		return;
	}
	s->distinct++;
	if (seq < s->first)
		s->first = seq;
	if (seq > s->max)
		s->max = seq;
	else if (s->rx > 1)
		s->late++;
}

static void receive(struct peer *p, struct vnet_vhu_fe_pkt *pkts, int n)
{
	for (int i = 0; i < n; i++) {
		p->rx++;
		struct vnet_probe pr;
		if (vnet_frame_parse_probe(pkts[i].data, pkts[i].len, true, &pr))
			count_valid(p, pkts[i].data, pkts[i].len, pr.seq);
		else if (vnet_frame_parse_probe(pkts[i].data, pkts[i].len, false, &pr))
			p->corrupt++; /* our frame, but its checksums or payload are wrong */
		else
			p->foreign++;  /* not a seqpeer frame (ARP, IPv6 chatter, ...) */
	}
}

static void send_due(struct peer *p, uint64_t t)
{
	if (!p->o.rate || tx_off_requested)
		return;
	uint64_t due = p->tx_base + (t - p->tx_start_ns) * p->o.rate / 1000000000ull;
	if (due <= p->tx)
		return;
	unsigned n = due - p->tx > BURST ? BURST : (unsigned)(due - p->tx);
	struct iovec iov[BURST];
	for (unsigned i = 0; i < n; i++) {
		vnet_frame_build_udp(p->frames[i], sizeof(p->frames[i]), p->o.size, &p->o.flow,
				     p->seq + i, t);
		iov[i].iov_base = p->frames[i];
		iov[i].iov_len = p->o.size;
	}
	int k = vnet_vhu_fe_tx_burst(p->fe, 0, iov, n);
	if (k < 0) {
		p->ring_errors++;
		return;
	}
	if ((unsigned)k < n)
		p->tx_full++;
	p->seq += (unsigned)k;
	p->tx += (unsigned)k;
	/* A sender far behind (ring full for long, or a reconnect) does not
	 * burst to catch up: it goes on at the rate from now. */
	if (due - p->tx > 4 * BURST) {
		p->tx_start_ns = t;
		p->tx_base = p->tx;
	}
}

static void ip_str(uint32_t ip, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static void print_json(const struct peer *p, FILE *f)
{
	uint64_t dup = 0, lost = 0, late = 0, valid = 0;
	for (unsigned i = 0; i < p->nsenders; i++) {
		const struct sender *s = &p->senders[i];
		dup += s->dup;
		late += s->late;
		valid += s->rx - s->dup;
		if (s->distinct)
			lost += (uint64_t)(s->max - s->first) + 1 - s->distinct;
	}
	fprintf(f,
		"{\"connected\":%s,\"tx\":%llu,\"tx_full\":%llu,\"rx\":%llu,\"valid\":%llu,"
		"\"corrupt\":%llu,\"foreign\":%llu,\"dup\":%llu,\"lost\":%llu,\"late\":%llu,"
		"\"ring_errors\":%llu,\"connects\":%llu,\"disconnects\":%llu,\"senders\":[",
		p->fe ? "true" : "false", (unsigned long long)p->tx, (unsigned long long)p->tx_full,
		(unsigned long long)p->rx, (unsigned long long)valid,
		(unsigned long long)p->corrupt, (unsigned long long)p->foreign,
		(unsigned long long)dup, (unsigned long long)lost, (unsigned long long)late,
		(unsigned long long)p->ring_errors, (unsigned long long)p->connects,
		(unsigned long long)p->disconnects);
	for (unsigned i = 0; i < p->nsenders; i++) {
		const struct sender *s = &p->senders[i];
		char ip[16];
		ip_str(s->ip, ip, sizeof(ip));
		fprintf(f,
			"%s{\"ip\":\"%s\",\"rx\":%llu,\"dup\":%llu,\"late\":%llu,\"first\":%u,"
			"\"max\":%u,\"lost\":%llu,\"untracked\":%llu}",
			i ? "," : "", ip, (unsigned long long)s->rx, (unsigned long long)s->dup,
			(unsigned long long)s->late, s->first, s->max,
			(unsigned long long)(s->distinct ? (uint64_t)(s->max - s->first) + 1 -
								  s->distinct
							 : 0),
			(unsigned long long)s->untracked);
	}
	fprintf(f, "]}\n");
}

static void write_status(const struct peer *p)
{
	if (!p->o.status)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", p->o.status);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	print_json(p, f);
	if (fclose(f) == 0)
		rename(tmp, p->o.status);
}

static void drop_device(struct peer *p, const char *why)
{
	vnet_log(VNET_LOG_INFO, "seqpeer: %s; %s", why,
		 p->o.reconnect ? "opening a new device" : "exiting");
	vnet_vhu_fe_close(p->fe);
	p->fe = NULL;
	p->disconnects++;
}

static int open_device(struct peer *p)
{
	struct vnet_vhu_fe_config cfg = {
		.name = "seqpeer",
		.path = p->o.socket,
		.server = p->o.server,
		.connect_timeout_ms = 1000,
		.queue_pairs = 1,
	};
	int e = vnet_vhu_fe_open(&p->fe, &cfg);
	if (e < 0)
		return e;
	p->connects++;
	p->tx_start_ns = now_ns();
	p->tx_base = p->tx;
	vnet_log(VNET_LOG_INFO, "seqpeer: connected to %s (connection %llu)", p->o.socket,
		 (unsigned long long)p->connects);
	return 0;
}

static int run(struct peer *p)
{
	uint64_t start = now_ns(), next_status = start, next_check = start;
	uint64_t end = p->o.duration > 0 ? start + (uint64_t)(p->o.duration * 1e9) : UINT64_MAX;
	unsigned failed_opens = 0;
	while (!stop_requested && now_ns() < end) {
		uint64_t t = now_ns();
		if (t >= next_status) {
			write_status(p);
			next_status = t + STATUS_PERIOD_NS;
		}
		if (!p->fe) {
			int e = open_device(p);
			if (e < 0) {
				/* The first open must succeed within the usual wait;
				 * after that, --reconnect waits as long as it takes. */
				if (!p->o.reconnect || (!p->connects && ++failed_opens >= 30)) {
					fprintf(stderr, "seqpeer: cannot open %s: %s\n", p->o.socket,
						strerror(-e));
					return 1;
				}
				struct timespec ts = {0, 100000000};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		if (reconnect_requested) {
			reconnect_requested = 0;
			drop_device(p, "reconnect requested (SIGUSR1)");
			continue;
		}
		if (t >= next_check) {
			next_check = t + 10000000ull;
			int e = vnet_vhu_fe_check(p->fe);
			if (e < 0) {
				drop_device(p, e == -ECONNRESET ? "back-end hung up"
								: "back-end connection broken");
				if (!p->o.reconnect)
					return 1;
				continue;
			}
		}
		struct vnet_vhu_fe_pkt pkts[BURST];
		int n = vnet_vhu_fe_rx_burst(p->fe, 0, pkts, BURST);
		if (n < 0) {
			p->ring_errors++;
			drop_device(p, "receive ring broken");
			if (!p->o.reconnect)
				return 1;
			continue;
		}
		receive(p, pkts, n);
		uint64_t tx0 = p->tx;
		send_due(p, t);
		if (!n && p->tx == tx0) {
			/* Idle: sleep about a burst's worth of time, at most 200 µs. */
			long ns = 200000;
			if (p->o.rate && 1000000000ull * BURST / p->o.rate < (uint64_t)ns)
				ns = (long)(1000000000ull * BURST / p->o.rate);
			struct timespec ts = {0, ns};
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct peer p;
	if (parse_opts(argc, argv, &p.o) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	int rc = run(&p);
	if (p.fe) {
		/* Frames already on the way back get a moment to arrive. */
		uint64_t until = now_ns() + 200000000ull;
		while (now_ns() < until) {
			struct vnet_vhu_fe_pkt pkts[BURST];
			int n = vnet_vhu_fe_rx_burst(p.fe, 0, pkts, BURST);
			if (n <= 0) {
				struct timespec ts = {0, 1000000};
				nanosleep(&ts, NULL);
				continue;
			}
			receive(&p, pkts, n);
		}
		vnet_vhu_fe_close(p.fe);
		p.fe = NULL;
	}
	write_status(&p);
	print_json(&p, stdout);
	for (unsigned i = 0; i < p.nsenders; i++)
		free(p.senders[i].seen);
	return rc;
}
