/*
 * pmd.c — vnet-switchd's poll-mode threads: receive a burst on each
 * assigned queue, forward it, transmit per output port, and after a run of
 * empty rounds sleep in poll() on the queues' wake fds until traffic (or the
 * control thread) wakes them.
 */
#include "switch/switchd.h"

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "switch/capture.h"
#include "util/cycles.h"
#include "vnet/log.h"

#define PMD_BURST 32
#define PMD_POOL_PACKETS 2048
#define PMD_SLEEP_MS 100 /* bound on a sleep, so stats and stop flags are seen */

/* The forwarding core stamps flows and learned MACs with the time. Reading
 * it per burst cost more than it looks: clock_gettime() reads the TSC behind
 * an lfence, which waits for every ring load in flight. Once every
 * PMD_CLOCK_ROUNDS rounds (and after each sleep) is exact enough for ages
 * counted in seconds and "used" times shown in milliseconds. */
#define PMD_CLOCK_ROUNDS 32

static void capture_burst(struct sw_port *p, struct vnet_pkt **pkts, unsigned n)
{
	struct sw_capture *c = atomic_load_explicit(&p->capture, memory_order_acquire);
	if (__builtin_expect(c != NULL, 0))
		for (unsigned i = 0; i < n; i++)
			sw_capture_frame(c, pkts[i]->data, pkts[i]->len);
}

/* Receives and forwards one burst; returns the number of packets received. */
static unsigned poll_queue(struct sd_pmd *pmd, const struct sd_rxq *rq,
			   struct vnet_pkt_pool *pool, struct sw_fwd_out *out, uint64_t now)
{
	struct vnet_pkt *pkts[PMD_BURST];
	unsigned n = rq->port->ops->rx(rq->port, rq->q, pool, pkts, PMD_BURST);
	if (!n)
		return 0;
	capture_burst(rq->port, pkts, n);
	unsigned taken = sw_forward_burst(&rq->br->ctx, rq->port->ofport, pkts, n, now, out);
	for (unsigned i = 0; i < out->n_ports; i++) {
		struct sw_fwd_out_port *op = &out->ports[i];
		capture_burst(op->port, op->pkts, op->n);
		sw_port_tx(op->port, pmd->index, op->pkts, op->n);
	}
	sw_fwd_out_free(out);
	if (taken < n) /* the core takes at most SW_FWD_MAX_BURST: never here with 32 */
		vnet_pkt_free_burst(pkts + taken, n - taken);
	return n;
}

/* Sleeps until a queue has frames, the control thread calls, or the bound. */
static void pmd_sleep(struct sd_pmd *pmd, const struct sd_rxq_list *l)
{
	struct pollfd pfd[1 + 64];
	unsigned nfd = 0;
	pfd[nfd++] = (struct pollfd){.fd = pmd->wake_efd, .events = POLLIN};
	bool pending = false;
	unsigned armed = 0;
	for (; armed < l->n && nfd < sizeof(pfd) / sizeof(pfd[0]); armed++) {
		const struct sd_rxq *rq = &l->q[armed];
		if (rq->port->ops->arm_wake && rq->port->ops->arm_wake(rq->port, rq->q, true))
			pending = true;
		int fd = rq->port->ops->wake_fd ? rq->port->ops->wake_fd(rq->port, rq->q) : -1;
		if (fd >= 0)
			pfd[nfd++] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	if (!pending) {
		atomic_fetch_add_explicit(&pmd->sleeps, 1, memory_order_relaxed);
		sw_rcu_offline(&pmd->rcu);
		poll(pfd, nfd, PMD_SLEEP_MS);
		sw_rcu_online(&pmd->rcu);
		if (pfd[0].revents & POLLIN) {
			uint64_t v;
			ssize_t r = read(pmd->wake_efd, &v, sizeof(v));
			(void)r;
		}
	}
	/* While offline the control thread may have replaced (and freed) `l` and
	 * closed its ports: disarm through the current list. Disarming a queue
	 * that was never armed is harmless. */
	if (!pending)
		l = atomic_load_explicit(&pmd->rxqs, memory_order_acquire);
	for (unsigned i = 0; l && i < (pending ? armed : l->n); i++) {
		const struct sd_rxq *rq = &l->q[i];
		if (rq->port->ops->arm_wake)
			rq->port->ops->arm_wake(rq->port, rq->q, false);
	}
}

static void *pmd_main(void *arg)
{
	struct sd_pmd *pmd = arg;
	struct switchd *sd = pmd->sd;
	if (pmd->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(pmd->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			vnet_warn("pmd%u: cannot pin to CPU %d", pmd->index, pmd->cpu);
	}
	struct vnet_pkt_pool pool;
	struct sw_fwd_out *out = NULL;
	if (vnet_pkt_pool_init(&pool, PMD_POOL_PACKETS, 0) < 0 ||
	    !(out = sw_fwd_out_create(&pool)) || sw_rcu_register(&sd->rcu, &pmd->rcu) < 0) {
		vnet_err("pmd%u: out of memory; thread not running", pmd->index);
		if (out)
			sw_fwd_out_destroy(out);
		vnet_pkt_pool_fini(&pool);
		return NULL;
	}
	vnet_info("pmd%u: polling on CPU %d", pmd->index, pmd->cpu);
	unsigned idle = 0;
	/* Running totals kept here and published with plain relaxed stores: one
	 * writer, so no locked read-modify-write per round. */
	uint64_t loops = 0, busy_loops = 0, packets = 0, busy_cycles = 0, idle_cycles = 0;
	uint64_t now = 0;
	while (!atomic_load_explicit(&pmd->stop, memory_order_relaxed)) {
		const struct sd_rxq_list *l = atomic_load_explicit(&pmd->rxqs, memory_order_acquire);
		unsigned got = 0;
		if (loops % PMD_CLOCK_ROUNDS == 0)
			now = vnet_mono_ns();
		uint64_t c0 = vnet_cycles();
		for (unsigned i = 0; l && i < l->n; i++)
			got += poll_queue(pmd, &l->q[i], &pool, out, now);
		uint64_t spent = vnet_cycles() - c0;
		atomic_store_explicit(&pmd->loops, ++loops, memory_order_relaxed);
		if (got) {
			atomic_store_explicit(&pmd->busy_loops, ++busy_loops, memory_order_relaxed);
			atomic_store_explicit(&pmd->packets, packets += got, memory_order_relaxed);
			atomic_store_explicit(&pmd->busy_cycles, busy_cycles += spent,
					      memory_order_relaxed);
			idle = 0;
		} else {
			atomic_store_explicit(&pmd->idle_cycles, idle_cycles += spent,
					      memory_order_relaxed);
		}
		if (got || !sd->idle_spins) {
			/* busy, or configured never to sleep */
		} else if (++idle >= sd->idle_spins) {
			idle = 0;
			if (l)
				pmd_sleep(pmd, l);
			else {
				sw_rcu_offline(&pmd->rcu);
				struct pollfd pfd = {.fd = pmd->wake_efd, .events = POLLIN};
				poll(&pfd, 1, PMD_SLEEP_MS);
				sw_rcu_online(&pmd->rcu);
			}
			now = vnet_mono_ns(); /* a sleep may have lasted PMD_SLEEP_MS */
		}
		/* Nothing from the RCU-protected tables is held across this point. */
		sw_quiesce(&pmd->rcu);
	}
	sw_rcu_unregister(&pmd->rcu);
	sw_fwd_out_destroy(out);
	vnet_pkt_pool_fini(&pool);
	return NULL;
}

int sd_pmd_start(struct switchd *sd, struct sd_pmd *pmd)
{
	pmd->sd = sd;
	atomic_init(&pmd->stop, false);
	atomic_init(&pmd->rxqs, NULL);
	pmd->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pmd->wake_efd < 0)
		return -errno;
	int e = pthread_create(&pmd->tid, NULL, pmd_main, pmd);
	if (e) {
		close(pmd->wake_efd);
		return -e;
	}
	char name[16];
	snprintf(name, sizeof(name), "pmd%u", pmd->index);
	pthread_setname_np(pmd->tid, name);
	pmd->running = true;
	return 0;
}

static void pmd_wake(struct sd_pmd *pmd)
{
	uint64_t one = 1;
	ssize_t r = write(pmd->wake_efd, &one, sizeof(one));
	(void)r;
}

void sd_pmd_stop(struct sd_pmd *pmd)
{
	if (!pmd->running)
		return;
	atomic_store(&pmd->stop, true);
	pmd_wake(pmd);
	pthread_join(pmd->tid, NULL);
	free(atomic_load(&pmd->rxqs));
	close(pmd->wake_efd);
	pmd->running = false;
}

void sd_pmd_reassign(struct switchd *sd)
{
	unsigned total = 0;
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		for (struct sd_port *p = b->ports; p; p = p->next)
			total += p->port.nrxq;
	struct sd_rxq_list *lists[SD_MAX_PMDS] = {0};
	for (unsigned i = 0; i < sd->npmd; i++) {
		lists[i] = calloc(1, sizeof(struct sd_rxq_list) + total * sizeof(struct sd_rxq));
		if (!lists[i]) {
			vnet_err("switchd: out of memory assigning queues");
			for (unsigned j = 0; j < i; j++)
				free(lists[j]);
			return;
		}
	}
	/* Round-robin queue by queue, so a port's queues land on different PMDs. */
	unsigned next = 0;
	for (struct sd_bridge *b = sd->bridges; b; b = b->next)
		for (struct sd_port *p = b->ports; p; p = p->next)
			for (unsigned q = 0; q < p->port.nrxq; q++) {
				struct sd_rxq_list *l = lists[next++ % sd->npmd];
				l->q[l->n++] = (struct sd_rxq){.port = &p->port, .br = b, .q = q};
			}
	for (unsigned i = 0; i < sd->npmd; i++) {
		struct sd_rxq_list *old = atomic_exchange(&sd->pmds[i].rxqs, lists[i]);
		if (old)
			sw_rcu_defer(&sd->rcu, free, old);
		pmd_wake(&sd->pmds[i]);
	}
}
