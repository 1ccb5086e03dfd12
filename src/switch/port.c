/*
 * port.c — what every port type shares: options, the registry of types and
 * the serialised transmit entry point.
 *
 * Accounting contract of every port type (port_*.c): rx() counts what it
 * returns in rx_packets/rx_bytes and what it had to throw away in
 * rx_dropped/errors. tx() returns how many packets it transmitted and
 * counts every other packet of the burst itself (tx_dropped: no room in the
 * ring / guest buffers, too big, port down; errors: the kernel refused it),
 * so the caller frees the whole burst, does not retry the rest and does not
 * count it again.
 */
#include "switch/port.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

const char *sw_options_get(const struct sw_options *opts, const char *key)
{
	for (unsigned i = 0; i < opts->n && i < SW_PORT_MAX_OPTIONS; i++)
		if (strcmp(opts->o[i].key, key) == 0)
			return opts->o[i].value;
	return NULL;
}

int sw_options_check(const struct sw_options *opts, const char *type, const char *const *known,
		     char *err, size_t errlen)
{
	for (unsigned i = 0; i < opts->n && i < SW_PORT_MAX_OPTIONS; i++) {
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strcmp(*k, opts->o[i].key) == 0;
		if (!ok) {
			snprintf(err, errlen, "unknown option '%s' for %s port", opts->o[i].key,
				 type);
			return -EINVAL;
		}
	}
	return 0;
}

int sw_options_uint(const struct sw_options *opts, const char *key, unsigned def, unsigned min,
		    unsigned max, unsigned *out, const char *type, char *err, size_t errlen)
{
	const char *v = sw_options_get(opts, key);
	if (!v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 0);
	if (errno || end == v || *end || v[0] == '-' || x < min || x > max) {
		snprintf(err, errlen, "%s: bad value '%s' for %s (%u..%u)", type, v, key, min, max);
		return -EINVAL;
	}
	*out = (unsigned)x;
	return 0;
}

const struct sw_port_ops *sw_port_type(const char *type)
{
	static const struct sw_port_ops *const types[] = {
		&sw_port_vhost_user_ops,
		&sw_port_tap_ops,
		&sw_port_afpacket_ops,
		&sw_port_null_ops,
	};
	if (!type)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(types[i]->type, type) == 0)
			return types[i];
	return NULL;
}

/*
 * q may be any number (e.g. the calling poll-mode thread's index): it is
 * folded onto the port's ntxq queues, so threads outnumbering a port's
 * queues share them under the lock. A port without tx queues (not open)
 * takes nothing and counts nothing.
 */
unsigned sw_port_tx(struct sw_port *p, unsigned q, struct vnet_pkt **pkts, unsigned n)
{
	unsigned ntxq = p->ntxq;
	if (n == 0 || ntxq == 0)
		return 0;
	q %= ntxq;
	while (atomic_flag_test_and_set_explicit(&p->tx_lock[q], memory_order_acquire))
		cpu_relax();
	unsigned sent = p->ops->tx(p, q, pkts, n);
	atomic_flag_clear_explicit(&p->tx_lock[q], memory_order_release);
	return sent;
}
