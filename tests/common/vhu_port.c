/* vhu_port.c — see vhu_port.h. */
#include "vhu_port.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERVICE_MS 10000

struct fe_job {
	const struct vnet_vhu_fe_config *cfg;
	struct vnet_vhu_fe *fe; /* open: result; close: what to close */
	int rc;
	bool close;
	atomic_bool done;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *fe_thread(void *arg)
{
	struct fe_job *j = arg;
	if (j->close)
		vnet_vhu_fe_close(j->fe);
	else
		j->rc = vnet_vhu_fe_open(&j->fe, j->cfg);
	atomic_store(&j->done, true);
	return NULL;
}

/* Runs the job on a thread while servicing p here: 0, -ETIMEDOUT or -errno. */
static int fe_run(struct sw_port *p, struct fe_job *j)
{
	pthread_t t;
	atomic_init(&j->done, false);
	int e = pthread_create(&t, NULL, fe_thread, j);
	if (e)
		return -e;
	uint64_t end = now_ms() + SERVICE_MS;
	while (!atomic_load(&j->done) && now_ms() < end) {
		p->ops->service(p);
		int fd = p->ops->service_fd(p);
		if (fd >= 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			poll(&pfd, 1, 5);
		} else {
			usleep(2000);
		}
	}
	bool in_time = atomic_load(&j->done);
	pthread_join(t, NULL);
	return in_time ? 0 : -ETIMEDOUT;
}

int vhu_port_fe_open(struct sw_port *p, const struct vnet_vhu_fe_config *cfg,
		     struct vnet_vhu_fe **fe)
{
	struct fe_job j = {.cfg = cfg};
	int e = fe_run(p, &j);
	*fe = j.fe;
	if (e < 0)
		return e;
	if (j.rc == 0)
		p->ops->service(p); /* the last messages (enable, status) */
	return j.rc;
}

int vhu_port_fe_close(struct sw_port *p, struct vnet_vhu_fe *fe)
{
	struct fe_job j = {.fe = fe, .close = true};
	return fe_run(p, &j);
}
