/*
 * test_ports.c — vnet-switchd's port types behind struct sw_port_ops.
 *
 * Registry and option errors; the null port's counters; the vhost-user
 * port against libvnet's own front-end (vnet_vhu_fe) in this process, in
 * server and client mode, with a second connection refused, and with the
 * front-end disconnecting and reconnecting while a thread keeps polling
 * rx/tx (the teardown handover; run it under ASan). The tap and afpacket
 * tests need root: they build two private network namespaces with
 * unshare() (the switch's and a peer's, both gone with their last fd when
 * the test ends or crashes: nothing touches the host's namespace), move a
 * tap / one end of a veth pair into the peer namespace and exchange frames
 * with an AF_PACKET socket opened there. Without root they are skipped.
 *
 * PORTS_TEST_FILTER=<glob> runs a subset (tests/integration/
 * ports_netns_test.sh runs the namespace tests this way).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "switch/port.h"
#include "testmem.h"
#include "vhu_port.h"
#include "vnet/log.h"
#include "vnet/pkt.h"
#include "vnet/vhost_user.h"
#include "vnet/vhost_user_frontend.h"

#define ETH_TEST 0x88b5 /* IEEE local experimental ethertype */

/* ---- helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void opt_set(struct sw_options *o, const char *k, const char *v)
{
	assert_true(o->n < SW_PORT_MAX_OPTIONS);
	snprintf(o->o[o->n].key, sizeof(o->o[o->n].key), "%s", k);
	snprintf(o->o[o->n].value, sizeof(o->o[o->n].value), "%s", v);
	o->n++;
}

/* A port of `type` with options given as "key", "value", ..., NULL. */
static struct sw_port *port_new(const char *type, const char *name, ...)
{
	struct sw_port *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->ofport = 7;
	p->ops = sw_port_type(type);
	assert_non_null(p->ops);
	va_list ap;
	va_start(ap, name);
	for (const char *k; (k = va_arg(ap, const char *));)
		opt_set(&p->opts, k, va_arg(ap, const char *));
	va_end(ap);
	return p;
}

static int port_open(struct sw_port *p, char *err, size_t len)
{
	err[0] = '\0';
	return p->ops->open(p, err, len);
}

static void port_free(struct sw_port *p)
{
	if (p->priv)
		p->ops->close(p);
	free(p);
}

static size_t make_frame(uint8_t *f, size_t len, uint32_t seq)
{
	static const uint8_t hdr[14] = {2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa, 0x88, 0xb5};
	memcpy(f, hdr, 14);
	memcpy(f + 14, "vnetport", 8);
	memcpy(f + 22, &seq, 4);
	for (size_t i = 26; i < len; i++)
		f[i] = (uint8_t)(i + seq);
	return len;
}

/* The sequence number of one of our test frames, or -1. `off` skips a tag. */
static long frame_seq(const uint8_t *f, size_t len, size_t off)
{
	if (len < off + 26 || f[off + 12] != 0x88 || f[off + 13] != 0xb5 ||
	    memcmp(f + off + 14, "vnetport", 8))
		return -1;
	uint32_t seq;
	memcpy(&seq, f + off + 22, 4);
	return seq;
}

static struct vnet_pkt *pkt_frame(struct vnet_pkt_pool *pool, size_t len, uint32_t seq)
{
	struct vnet_pkt *k = vnet_pkt_alloc(pool);
	assert_non_null(k);
	k->len = (uint32_t)make_frame(k->data, len, seq);
	return k;
}

/* Polls the port's rx queue q for a frame with `seq` (tag offset off). */
static bool port_rx_find(struct sw_port *p, unsigned q, struct vnet_pkt_pool *pool, uint32_t seq,
			 size_t off, uint8_t *copy, size_t *copy_len, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	bool found = false;
	while (!found && now_ms() < end) {
		struct vnet_pkt *pkts[32];
		unsigned n = p->ops->rx(p, q, pool, pkts, 32);
		for (unsigned i = 0; i < n; i++) {
			if (!found && frame_seq(pkts[i]->data, pkts[i]->len, off) == (long)seq) {
				found = true;
				assert_int_equal(pkts[i]->in_port, p->ofport);
				if (copy) {
					memcpy(copy, pkts[i]->data, pkts[i]->len);
					*copy_len = pkts[i]->len;
				}
			}
		}
		vnet_pkt_free_burst(pkts, n);
		if (!n)
			usleep(1000);
	}
	return found;
}

/* ---- registry, options, null ---- */

static void test_registry(void **state)
{
	(void)state;
	const char *names[] = {"vhost-user", "tap", "afpacket", "null"};
	for (unsigned i = 0; i < 4; i++) {
		const struct sw_port_ops *o = sw_port_type(names[i]);
		assert_non_null(o);
		assert_string_equal(o->type, names[i]);
		assert_non_null(o->open);
		assert_non_null(o->close);
		assert_non_null(o->rx);
		assert_non_null(o->tx);
		assert_non_null(o->service);
		assert_non_null(o->service_fd);
		assert_non_null(o->wake_fd);
		assert_non_null(o->describe);
	}
	assert_non_null(sw_port_type("vhost-user")->arm_wake);
	assert_null(sw_port_type("tap")->arm_wake);
	assert_null(sw_port_type("vhostuser"));
	assert_null(sw_port_type(""));
	assert_null(sw_port_type(NULL));

	struct sw_options o = {0};
	opt_set(&o, "a", "1");
	opt_set(&o, "b", "two");
	assert_string_equal(sw_options_get(&o, "b"), "two");
	assert_null(sw_options_get(&o, "c"));
}

static void expect_open_error(struct sw_port *p, const char *want)
{
	char err[200];
	assert_true(port_open(p, err, sizeof(err)) < 0);
	if (!strstr(err, want))
		fail_msg("error '%s' does not contain '%s'", err, want);
	assert_null(p->priv);
	port_free(p);
}

static void test_option_errors(void **state)
{
	(void)state;
	expect_open_error(port_new("vhost-user", "vm1", "path", "/tmp/x.sock", "bogus", "1", NULL),
			  "unknown option 'bogus' for vhost-user port");
	expect_open_error(port_new("null", "n", "colour", "red", NULL),
			  "unknown option 'colour' for null port");
	expect_open_error(port_new("tap", "t", "iface", "x", NULL), "unknown option 'iface' for tap port");
	expect_open_error(port_new("afpacket", "a", "name", "x", NULL),
			  "unknown option 'name' for afpacket port");
	const char *badq[] = {"0", "17", "abc", "-1", "2x", ""};
	for (unsigned i = 0; i < 6; i++)
		expect_open_error(port_new("vhost-user", "vm1", "path", "/tmp/x.sock", "queues",
					   badq[i], NULL),
				  "bad value");
	expect_open_error(port_new("null", "n", "queues", "99", NULL), "bad value '99' for queues");
	expect_open_error(port_new("vhost-user", "vm1", "mode", "both", NULL), "bad value 'both' for mode");
	expect_open_error(port_new("vhost-user", "vm1", "mode", "client", NULL), "needs path=");
	expect_open_error(port_new("vhost-user", "vm1", "path", "/tmp/x.sock", "socket-mode", "999", NULL),
			  "socket-mode");
	expect_open_error(port_new("vhost-user", "vm1", "path", "/tmp/x.sock", "socket-group",
				   "no-such-group-vnet", NULL),
			  "no group");
	expect_open_error(port_new("afpacket", "a", NULL), "iface= is required");
	expect_open_error(port_new("afpacket", "a", "iface", "vnetnoif0", NULL),
			  "no interface vnetnoif0");
	expect_open_error(port_new("afpacket", "a", "iface", "lo", "frame-size", "1000", NULL),
			  "multiple of");
	expect_open_error(port_new("tap", "t", "name", "a-name-far-too-long-for-linux", NULL),
			  "bad interface name");
	expect_open_error(port_new("null", "n", "rx", "sometimes", NULL), "bad value 'sometimes' for rx");
}

static void test_null_port(void **state)
{
	(void)state;
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 128, 0), 0);
	char err[200];
	struct sw_port *p = port_new("null", "n0", "queues", "2", NULL);
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	assert_int_equal(p->nrxq, 2);
	assert_int_equal(p->ntxq, 2);
	struct vnet_pkt *pkts[32];
	assert_int_equal(p->ops->rx(p, 0, &pool, pkts, 32), 0);
	for (unsigned i = 0; i < 5; i++)
		pkts[i] = pkt_frame(&pool, 100, i);
	/* q 3 folds onto queue 1 of 2 */
	assert_int_equal(sw_port_tx(p, 3, pkts, 5), 5);
	vnet_pkt_free_burst(pkts, 5);
	assert_int_equal(atomic_load(&p->txq[1].tx_packets), 5);
	assert_int_equal(atomic_load(&p->txq[1].tx_bytes), 500);
	assert_int_equal(atomic_load(&p->txq[0].tx_packets), 0);
	assert_int_equal(p->ops->wake_fd(p, 0), -1);
	char d[128];
	p->ops->describe(p, d, sizeof(d));
	assert_non_null(strstr(d, "2 queues"));
	port_free(p);

	p = port_new("null", "gen", "rx", "generate", NULL);
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	unsigned n = p->ops->rx(p, 0, &pool, pkts, 32);
	assert_int_equal(n, 32);
	assert_int_equal(pkts[0]->len, 60);
	assert_int_equal(atomic_load(&p->rxq[0].rx_packets), 32);
	assert_int_equal(atomic_load(&p->rxq[0].rx_bytes), 32 * 60);
	vnet_pkt_free_burst(pkts, n);
	assert_int_equal(pool.nfree, pool.count);
	port_free(p);
	vnet_pkt_pool_fini(&pool);
}

/* ---- vhost-user ---- */

static struct vnet_vhu_fe *fe_open(struct sw_port *p, const char *path, bool server,
				   unsigned qps)
{
	struct vnet_vhu_fe_config cfg = {.name = "fe", .path = path, .server = server,
					 .connect_timeout_ms = 5000, .queue_pairs = qps};
	struct vnet_vhu_fe *fe;
	assert_int_equal(vhu_port_fe_open(p, &cfg, &fe), 0);
	return fe;
}

static void fe_close(struct sw_port *p, struct vnet_vhu_fe *fe)
{
	assert_int_equal(vhu_port_fe_close(p, fe), 0);
}

static bool describe_has(struct sw_port *p, const char *s)
{
	char d[256];
	p->ops->describe(p, d, sizeof(d));
	return strstr(d, s) != NULL;
}

/* Services the port until describe() contains s. */
static bool service_until(struct sw_port *p, const char *s, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	while (now_ms() < end) {
		p->ops->service(p);
		if (describe_has(p, s))
			return true;
		usleep(2000);
	}
	return false;
}

/* Frames both ways on every queue pair. */
static void vhost_traffic(struct sw_port *p, struct vnet_vhu_fe *fe, unsigned qps,
			  struct vnet_pkt_pool *pool, uint32_t seq0)
{
	for (unsigned q = 0; q < qps; q++) {
		/* front-end → port rx */
		uint8_t f[300];
		struct iovec iov = {.iov_base = f, .iov_len = make_frame(f, 100 + q, seq0 + q)};
		uint64_t rx0 = atomic_load(&p->rxq[q].rx_packets);
		assert_int_equal(vnet_vhu_fe_tx_burst(fe, q, &iov, 1), 1);
		assert_true(port_rx_find(p, q, pool, seq0 + q, 0, NULL, NULL, 2000));
		assert_int_equal(atomic_load(&p->rxq[q].rx_packets), rx0 + 1);

		/* port tx → front-end */
		struct vnet_pkt *k = pkt_frame(pool, 200, seq0 + 100 + q);
		uint64_t tx0 = atomic_load(&p->txq[q].tx_packets);
		assert_int_equal(sw_port_tx(p, q, &k, 1), 1);
		vnet_pkt_free(k);
		assert_int_equal(atomic_load(&p->txq[q].tx_packets), tx0 + 1);
		struct vnet_vhu_fe_pkt got[8];
		bool found = false;
		for (uint64_t end = now_ms() + 2000; !found && now_ms() < end;) {
			int n = vnet_vhu_fe_rx_burst(fe, q, got, 8);
			assert_true(n >= 0);
			for (int i = 0; i < n; i++)
				if (frame_seq(got[i].data, got[i].len, 0) == seq0 + 100 + q) {
					assert_int_equal(got[i].len, 200);
					found = true;
				}
		}
		assert_true(found);
	}
}

struct tmpdir {
	char dir[64];
	char path[128];
};

static void tmpdir_make(struct tmpdir *t, const char *file)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/vnet-ports-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, file);
}

static void tmpdir_remove(struct tmpdir *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

static void test_vhost_server(void **state)
{
	(void)state;
	struct tmpdir td;
	tmpdir_make(&td, "vm1.sock");
	setenv("VNET_RUN_DIR", td.dir, 1);
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 256, 0), 0);
	int fds0 = count_fds();

	/* the default path: $VNET_RUN_DIR/<port>.sock, mode 0660 */
	struct sw_port *p = port_new("vhost-user", "vm1", "queues", "2", NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	assert_int_equal(p->nrxq, 2);
	struct stat st;
	assert_int_equal(lstat(td.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_true(describe_has(p, "listening"));
	assert_int_equal(p->ops->wake_fd(p, 0), -1);
	assert_true(p->ops->service_fd(p) >= 0);

	struct vnet_vhu_fe *fe = fe_open(p, td.path, false, 2);
	assert_true(service_until(p, "connected, 2/2 queue pairs enabled", 2000));
	assert_true(p->ops->wake_fd(p, 0) >= 0);
	assert_true(p->ops->wake_fd(p, 1) >= 0);
	vhost_traffic(p, fe, 2, &pool, 1000);

	/* idle sleep: armed, the guest's next frame makes the kick fd readable */
	assert_non_null(p->ops->arm_wake);
	assert_false(p->ops->arm_wake(p, 1, true));
	uint8_t wf[100];
	struct iovec wiov = {.iov_base = wf, .iov_len = make_frame(wf, 100, 77)};
	assert_int_equal(vnet_vhu_fe_tx_burst(fe, 1, &wiov, 1), 1);
	struct pollfd wp = {.fd = p->ops->wake_fd(p, 1), .events = POLLIN};
	assert_int_equal(poll(&wp, 1, 2000), 1);
	assert_true(p->ops->arm_wake(p, 1, true)); /* pending: do not sleep */
	assert_false(p->ops->arm_wake(p, 1, false));
	assert_int_equal(poll(&wp, 1, 0), 0);      /* drained */
	assert_true(port_rx_find(p, 1, &pool, 77, 0, NULL, NULL, 2000));

	/* a second front-end is refused while one is connected */
	int s2 = vnet_vhu_connect(td.path);
	assert_true(s2 >= 0);
	p->ops->service(p);
	struct pollfd pfd = {.fd = s2, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	char c;
	assert_int_equal(recv(s2, &c, 1, 0), 0); /* closed by the port */
	close(s2);
	assert_true(describe_has(p, "connected"));
	vhost_traffic(p, fe, 1, &pool, 2000);

	/* rx on a queue the port does not have */
	struct vnet_pkt *pk[4];
	assert_int_equal(p->ops->rx(p, 5, &pool, pk, 4), 0);

	fe_close(p, fe);
	assert_true(service_until(p, "listening", 2000));
	assert_int_equal(p->ops->wake_fd(p, 0), -1);
	/* tx while down: dropped and counted */
	struct vnet_pkt *k = pkt_frame(&pool, 64, 1);
	uint64_t d0 = atomic_load(&p->txq[0].tx_dropped);
	assert_int_equal(sw_port_tx(p, 0, &k, 1), 0);
	vnet_pkt_free(k);
	assert_int_equal(atomic_load(&p->txq[0].tx_dropped), d0 + 1);

	port_free(p);
	assert_int_equal(lstat(td.path, &st), -1); /* socket removed */
	assert_int_equal(count_fds(), fds0);
	assert_int_equal(pool.nfree, pool.count);
	vnet_pkt_pool_fini(&pool);
	unsetenv("VNET_RUN_DIR");
	tmpdir_remove(&td);
}

/* A local front-end reconnecting with garbage in a loop cannot flood the
 * log: the port's connect/disconnect lines and the library's refusals go
 * through one limit (VNET_LOG_LIMIT_BURST a minute per kind of line); every
 * connection is still dropped and the port keeps listening. */
static void test_vhost_bad_frontend_log_limited(void **state)
{
	(void)state;
	struct tmpdir td;
	tmpdir_make(&td, "vm1.sock");
	setenv("VNET_RUN_DIR", td.dir, 1);
	int fds0 = count_fds();
	struct sw_port *p = port_new("vhost-user", "vm1", NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	testlog_capture();
	vnet_log_set_level(VNET_LOG_INFO);
	for (int i = 0; i < 30; i++) {
		int s = vnet_vhu_connect(td.path);
		assert_true(s >= 0);
		/* a header claiming a payload larger than any request */
		uint32_t hdr[3] = {1 /* GET_FEATURES */, 1 /* version */, 1u << 20};
		assert_int_equal(send(s, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
		struct pollfd pfd = {.fd = s, .events = POLLIN};
		char c;
		bool closed = false;
		for (int t = 0; t < 200 && !closed; t++) {
			p->ops->service(p);
			closed = poll(&pfd, 1, 10) == 1 && recv(s, &c, 1, MSG_DONTWAIT) == 0;
		}
		assert_true(closed);
		close(s);
	}
	assert_true(service_until(p, "listening", 2000));
	/* 90 lines unlimited; each of the three kinds stops at the burst */
	assert_int_equal(testlog_count_containing("vm1: front-end connected"), VNET_LOG_LIMIT_BURST);
	assert_int_equal(testlog_count_containing("vm1: bad message"), VNET_LOG_LIMIT_BURST);
	assert_int_equal(testlog_count_containing("vm1: disconnected"), VNET_LOG_LIMIT_BURST);
	assert_int_equal(testlog_count_containing("vhost-user vm1:"), 3 * VNET_LOG_LIMIT_BURST);
	assert_int_equal(testlog_count_containing("left out"), 3);
	testlog_release();
	port_free(p);
	assert_int_equal(count_fds(), fds0);
	unsetenv("VNET_RUN_DIR");
	tmpdir_remove(&td);
}

static void test_vhost_socket_mode(void **state)
{
	(void)state;
	struct tmpdir td;
	tmpdir_make(&td, "x.sock");
	/* A group the socket would not get by default (root may give any). */
	gid_t want = geteuid() == 0 ? getgid() + 4242 : getgid();
	char gid[16];
	snprintf(gid, sizeof(gid), "%u", (unsigned)want);
	struct sw_port *p = port_new("vhost-user", "x", "path", td.path, "socket-mode", "0600",
				     "socket-group", gid, NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(lstat(td.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_gid, want);
	port_free(p);

	/* a symlink at the path is refused */
	assert_int_equal(symlink("/tmp/elsewhere", td.path), 0);
	p = port_new("vhost-user", "x", "path", td.path, NULL);
	assert_true(port_open(p, err, sizeof(err)) < 0);
	port_free(p);
	tmpdir_remove(&td);
}

static void test_vhost_client(void **state)
{
	(void)state;
	struct tmpdir td;
	tmpdir_make(&td, "fe.sock");
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 256, 0), 0);
	int fds0 = count_fds();
	struct sw_port *p = port_new("vhost-user", "vmc", "mode", "client", "path", td.path, NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	p->ops->service(p); /* nobody listens yet: retried later */
	assert_true(describe_has(p, "client"));
	assert_true(describe_has(p, "connecting"));
	assert_int_equal(p->ops->service_fd(p), -1);

	for (unsigned round = 0; round < 2; round++) {
		struct vnet_vhu_fe *fe = fe_open(p, td.path, true, 1);
		assert_true(service_until(p, "connected, 1/1 queue pairs enabled", 2000));
		vhost_traffic(p, fe, 1, &pool, 3000 + round * 10);
		fe_close(p, fe);
		assert_true(service_until(p, "connecting", 2000));
	}
	port_free(p);
	assert_int_equal(count_fds(), fds0);
	vnet_pkt_pool_fini(&pool);
	tmpdir_remove(&td);
}

/* A poll-mode thread hammering rx and tx while the front-end comes and goes. */
struct pmd {
	struct sw_port *p;
	atomic_bool stop;
	atomic_uint_fast64_t rx, tx;
	uint64_t loops;
};

static void *pmd_thread(void *arg)
{
	struct pmd *m = arg;
	struct vnet_pkt_pool pool;
	if (vnet_pkt_pool_init(&pool, 256, 0) < 0)
		return NULL;
	while (!atomic_load(&m->stop)) {
		struct vnet_pkt *pkts[32];
		unsigned n = m->p->ops->rx(m->p, 0, &pool, pkts, 32);
		atomic_fetch_add(&m->rx, n);
		if (n) {
			/* echo them back: exercises tx concurrently with teardown */
			atomic_fetch_add(&m->tx, sw_port_tx(m->p, 0, pkts, n));
			vnet_pkt_free_burst(pkts, n);
		} else {
			struct vnet_pkt *k = vnet_pkt_alloc(&pool);
			if (k) {
				k->len = (uint32_t)make_frame(k->data, 64, 9999);
				atomic_fetch_add(&m->tx, sw_port_tx(m->p, 0, &k, 1));
				vnet_pkt_free(k);
			}
		}
		m->loops++;
	}
	vnet_pkt_pool_fini(&pool);
	return NULL;
}

static void test_vhost_reconnect_under_load(void **state)
{
	(void)state;
	struct tmpdir td;
	tmpdir_make(&td, "vm2.sock");
	int fds0 = count_fds();
	struct sw_port *p = port_new("vhost-user", "vm2", "path", td.path, NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	struct pmd m = {.p = p};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pmd_thread, &m), 0);
	for (unsigned round = 0; round < 6; round++) {
		struct vnet_vhu_fe *fe = fe_open(p, td.path, false, 1);
		assert_true(service_until(p, "connected, 1/1", 2000));
		uint64_t rx0 = atomic_load(&m.rx);
		uint8_t f[128];
		for (uint32_t i = 0; i < 20; i++) {
			struct iovec iov = {.iov_base = f, .iov_len = make_frame(f, 80, i)};
			while (vnet_vhu_fe_tx_burst(fe, 0, &iov, 1) != 1)
				usleep(100);
			if (i % 4 == 0)
				p->ops->service(p);
		}
		for (uint64_t end = now_ms() + 2000; atomic_load(&m.rx) < rx0 + 20 && now_ms() < end;)
			usleep(1000);
		assert_true(atomic_load(&m.rx) >= rx0 + 20);
		/* drain what the port sent back, so the guest RX ring has room */
		struct vnet_vhu_fe_pkt got[64];
		for (int k = 0; k < 4; k++)
			vnet_vhu_fe_rx_burst(fe, 0, got, 64);
		if (round % 2) {
			fe_close(p, fe); /* orderly: GET_VRING_BASE, then hang-up */
		} else {
			/* abrupt: the socket goes away mid-traffic */
			close(fe->sock);
			fe->sock = -1;
			fe->connected = false;
			assert_true(service_until(p, "listening", 2000));
			vnet_vhu_fe_close(fe);
		}
		assert_true(service_until(p, "listening", 2000));
	}
	atomic_store(&m.stop, true);
	pthread_join(t, NULL);
	assert_true(m.loops > 0);
	assert_true(atomic_load(&m.tx) > 0);
	port_free(p);
	assert_int_equal(count_fds(), fds0);
	tmpdir_remove(&td);
}

/* ---- network namespaces (root) ---- */

struct netns {
	int orig, sw, peer;
};

static int ns_setup(void **state)
{
	static struct netns ns;
	*state = NULL;
	if (geteuid() != 0)
		return 0;
	ns.orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns.orig < 0 || unshare(CLONE_NEWNET) < 0)
		return 0;
	ns.sw = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	ns.peer = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (setns(ns.sw, CLONE_NEWNET) < 0)
		return -1;
	*state = &ns;
	return 0;
}

/* Back to the original namespace; the private ones die with their fds, and
 * every link in them with them. */
static int ns_teardown(void **state)
{
	struct netns *ns = *state;
	if (!ns)
		return 0;
	setns(ns->orig, CLONE_NEWNET);
	close(ns->sw);
	close(ns->peer);
	close(ns->orig);
	return 0;
}

static void ns_require(void **state)
{
	if (!*state) {
		print_message("needs root and network namespaces\n");
		skip();
	}
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command in the calling thread's network namespace. */
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void enter(int nsfd)
{
	assert_int_equal(setns(nsfd, CLONE_NEWNET), 0);
}

/* A raw socket on ifname in the current namespace, with VLAN aux data. */
static int peer_socket(const char *ifname)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(s >= 0);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)if_nametoindex(ifname)};
	assert_true(sll.sll_ifindex > 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
	int one = 1;
	assert_int_equal(setsockopt(s, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)), 0);
	return s;
}

/* Waits for our frame `seq` on the peer socket; *vlan gets the stripped tag (or -1). */
static bool peer_find(int s, uint32_t seq, size_t want_len, int *vlan)
{
	uint64_t end = now_ms() + 3000;
	while (now_ms() < end) {
		struct pollfd pfd = {.fd = s, .events = POLLIN};
		if (poll(&pfd, 1, 100) != 1)
			continue;
		uint8_t buf[2048];
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		} cb;
		struct sockaddr_ll from;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof(cb)};
		ssize_t r = recvmsg(s, &mh, 0);
		if (r <= 0 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (frame_seq(buf, (size_t)r, 0) != (long)seq)
			continue;
		assert_int_equal((size_t)r, want_len);
		*vlan = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
				continue;
			struct tpacket_auxdata aux;
			memcpy(&aux, CMSG_DATA(c), sizeof(aux));
			if (aux.tp_status & TP_STATUS_VLAN_VALID)
				*vlan = aux.tp_vlan_tci;
		}
		return true;
	}
	return false;
}

static void peer_send(int s, const uint8_t *f, size_t len)
{
	assert_int_equal(send(s, f, len, 0), (ssize_t)len);
}

static void test_tap_netns(void **state)
{
	ns_require(state);
	struct netns *ns = *state;
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 256, 0), 0);
	int fds0 = count_fds();

	/* created in the switch's namespace, then moved to the peer's: the fd
	 * keeps working wherever the interface lives */
	struct sw_port *p = port_new("tap", "swtap0", NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	assert_true(if_nametoindex("swtap0") > 0);
	assert_true(p->ops->wake_fd(p, 0) >= 0);
	assert_true(describe_has(p, "created"));
	assert_int_equal(sh("ip link set swtap0 netns /proc/%d/fd/%d", getpid(), ns->peer), 0);
	enter(ns->peer);
	assert_int_equal(sh("ip link set swtap0 up"), 0);
	int ps = peer_socket("swtap0");
	enter(ns->sw);

	/* port tx → the interface in the peer namespace */
	struct vnet_pkt *k = pkt_frame(&pool, 300, 11);
	assert_int_equal(sw_port_tx(p, 0, &k, 1), 1);
	vnet_pkt_free(k);
	int vlan;
	assert_true(peer_find(ps, 11, 300, &vlan));
	assert_int_equal(atomic_load(&p->txq[0].tx_packets), 1);
	assert_int_equal(atomic_load(&p->txq[0].tx_bytes), 300);

	/* peer → port rx */
	uint8_t f[1600];
	peer_send(ps, f, make_frame(f, 200, 12));
	uint8_t copy[2048];
	size_t clen = 0;
	assert_true(port_rx_find(p, 0, &pool, 12, 0, copy, &clen, 3000));
	assert_int_equal(clen, 200);
	assert_memory_equal(copy, f, 200);

	/* a frame larger than a packet buffer is dropped and counted */
	enter(ns->peer);
	assert_int_equal(sh("ip link set swtap0 mtu 4000"), 0);
	enter(ns->sw);
	uint8_t big[3000];
	peer_send(ps, big, make_frame(big, sizeof(big), 13));
	uint64_t d0 = atomic_load(&p->rxq[0].rx_dropped);
	assert_false(port_rx_find(p, 0, &pool, 13, 0, NULL, NULL, 500));
	assert_true(atomic_load(&p->rxq[0].rx_dropped) > d0);
	close(ps);
	port_free(p);
	enter(ns->peer);
	assert_int_equal(if_nametoindex("swtap0"), 0); /* we created it: gone */
	enter(ns->sw);

	/* attach to an existing (persistent) tap: left alone at close */
	assert_int_equal(sh("ip tuntap add dev ptap0 mode tap"), 0);
	p = port_new("tap", "pt", "name", "ptap0", NULL);
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	assert_true(describe_has(p, "attached"));
	port_free(p);
	assert_true(if_nametoindex("ptap0") > 0);
	assert_int_equal(sh("ip tuntap del dev ptap0 mode tap"), 0);

	/* multiqueue: one fd per queue */
	p = port_new("tap", "mq", "name", "mqtap0", "multiqueue", "3", NULL);
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	assert_int_equal(p->nrxq, 3);
	assert_true(p->ops->wake_fd(p, 2) >= 0);
	assert_int_equal(p->ops->wake_fd(p, 3), -1);
	port_free(p);

	assert_int_equal(count_fds(), fds0);
	assert_int_equal(pool.nfree, pool.count);
	vnet_pkt_pool_fini(&pool);
}

static uint16_t csum16(const uint8_t *d, size_t len, uint32_t sum)
{
	for (; len >= 2; d += 2, len -= 2)
		sum += (uint32_t)(d[0] << 8 | d[1]);
	if (len)
		sum += (uint32_t)d[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void test_afpacket_netns(void **state)
{
	ns_require(state);
	struct netns *ns = *state;
	struct vnet_pkt_pool pool;
	assert_int_equal(vnet_pkt_pool_init(&pool, 256, 0), 0);
	int fds0 = count_fds();

	assert_int_equal(sh("ip link add va type veth peer name vb netns /proc/%d/fd/%d", getpid(),
			    ns->peer),
			 0);
	assert_int_equal(sh("ip link set va address 02:00:00:00:00:01 up"), 0);
	enter(ns->peer);
	assert_int_equal(sh("ip link set vb up && ip addr add 10.99.0.2/24 dev vb && "
			    "ip neigh add 10.99.0.1 lladdr 02:00:00:00:00:01 dev vb"),
			 0);
	int ps = peer_socket("vb");
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* the peer's stack */
	assert_true(us >= 0);
	enter(ns->sw);

	struct sw_port *p = port_new("afpacket", "uplink", "iface", "va", "rx-frames", "64", NULL);
	char err[200];
	assert_int_equal(port_open(p, err, sizeof(err)), 0);
	assert_int_equal(p->nrxq, 1);
	assert_true(p->ops->wake_fd(p, 0) >= 0);
	assert_true(describe_has(p, "afpacket va"));

	/* port tx → peer */
	struct vnet_pkt *k = pkt_frame(&pool, 120, 21);
	assert_int_equal(sw_port_tx(p, 0, &k, 1), 1);
	vnet_pkt_free(k);
	int vlan;
	assert_true(peer_find(ps, 21, 120, &vlan));
	assert_int_equal(vlan, -1);

	/* a tagged frame leaves tagged */
	k = vnet_pkt_alloc(&pool);
	uint8_t f[1600];
	make_frame(f, 100, 22);
	memcpy(k->data, f, 12);
	memcpy(k->data + 12, "\x81\x00\x00\x14", 4);
	memcpy(k->data + 16, f + 12, 88);
	k->len = 104;
	assert_int_equal(sw_port_tx(p, 0, &k, 1), 1);
	vnet_pkt_free(k);
	assert_true(peer_find(ps, 22, 100, &vlan)); /* the kernel strips it into aux */
	assert_int_equal(vlan, 20);

	/* peer → port rx; our own tx never comes back */
	peer_send(ps, f, make_frame(f, 150, 23));
	uint8_t copy[2048];
	size_t clen = 0;
	assert_true(port_rx_find(p, 0, &pool, 23, 0, copy, &clen, 3000));
	assert_int_equal(clen, 150);
	assert_memory_equal(copy, f, 150);
	assert_false(port_rx_find(p, 0, &pool, 21, 0, NULL, NULL, 200));

	/* VLAN: stripped by the kernel on receive, re-inserted by the port */
	uint8_t tf[200];
	make_frame(f, 100, 24);
	memcpy(tf, f, 12);
	memcpy(tf + 12, "\x81\x00\x20\x0a", 4); /* PCP 1, VID 10 */
	memcpy(tf + 16, f + 12, 88);
	peer_send(ps, tf, 104);
	assert_true(port_rx_find(p, 0, &pool, 24, 4, copy, &clen, 3000));
	assert_int_equal(clen, 104);
	assert_memory_equal(copy, tf, 104);

	/* a UDP datagram from the peer's stack leaves veth with a partial
	 * checksum (tx offload); the port completes it */
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
	inet_pton(AF_INET, "10.99.0.1", &to.sin_addr);
	char payload[333];
	memset(payload, 'u', sizeof(payload));
	assert_int_equal(sendto(us, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)sizeof(payload));
	bool udp_ok = false;
	for (uint64_t end = now_ms() + 3000; !udp_ok && now_ms() < end;) {
		struct vnet_pkt *pkts[32];
		unsigned n = p->ops->rx(p, 0, &pool, pkts, 32);
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *d = pkts[i]->data;
			if (pkts[i]->len < 42 || d[12] != 0x08 || d[13] != 0x00 || d[23] != 17 ||
			    d[36] != 0x27 || d[37] != 0x0f)
				continue;
			size_t ulen = (size_t)(d[38] << 8 | d[39]);
			assert_int_equal(ulen, 8 + sizeof(payload));
			uint32_t pseudo = csum16(d + 26, 8, 0) + 17 + (uint32_t)ulen;
			assert_int_equal(csum16(d + 34, ulen, pseudo), 0xffff);
			udp_ok = true;
		}
		vnet_pkt_free_burst(pkts, n);
		if (!n)
			usleep(1000);
	}
	assert_true(udp_ok);

	/* burst larger than the TX ring: the rest is dropped and counted */
	struct vnet_pkt *burst[32];
	for (unsigned i = 0; i < 32; i++)
		burst[i] = pkt_frame(&pool, 64, 100 + i);
	uint64_t sent = 0;
	for (unsigned r = 0; r < 20; r++)
		sent += sw_port_tx(p, 0, burst, 32);
	vnet_pkt_free_burst(burst, 32);
	assert_int_equal(atomic_load(&p->txq[0].tx_packets) + atomic_load(&p->txq[0].tx_dropped) +
				 atomic_load(&p->txq[0].errors),
			 2 + 20 * 32);
	assert_true(sent > 0);
	p->ops->service(p);

	close(ps);
	close(us);
	port_free(p);
	assert_int_equal(sh("ip link del va"), 0);
	assert_int_equal(count_fds(), fds0);
	assert_int_equal(pool.nfree, pool.count);
	vnet_pkt_pool_fini(&pool);
}

int main(void)
{
	vnet_log_set_level(VNET_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_option_errors),
		cmocka_unit_test(test_null_port),
		cmocka_unit_test(test_vhost_server),
		cmocka_unit_test(test_vhost_bad_frontend_log_limited),
		cmocka_unit_test(test_vhost_socket_mode),
		cmocka_unit_test(test_vhost_client),
		cmocka_unit_test(test_vhost_reconnect_under_load),
		cmocka_unit_test_setup_teardown(test_tap_netns, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_afpacket_netns, ns_setup, ns_teardown),
	};
	const char *filter = getenv("PORTS_TEST_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
