/* vhu_be.c — see vhu_be.h. */
#include "vhu_be.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BE_WAIT_TRIES 500  /* x 10 ms: how long the thread waits for its peer */

static void *be_thread(void *arg)
{
	struct vhu_be *b = arg;
	int sock = -1;
	for (int i = 0; i < BE_WAIT_TRIES && sock < 0 && !atomic_load(&b->stop); i++) {
		if (b->connects) {
			sock = vnet_vhu_connect(b->path);
			if (sock < 0)
				usleep(10000);
		} else {
			struct pollfd p = {.fd = b->lfd, .events = POLLIN};
			if (poll(&p, 1, 10) == 1)
				sock = vnet_vhu_accept(b->lfd);
		}
	}
	if (sock < 0)
		return NULL;
	if (vnet_vhu_dev_init(&b->dev, &b->cfg, sock) < 0) {
		close(sock);
		return NULL;
	}
	atomic_store(&b->up, true);
	while (!atomic_load(&b->stop)) {
		struct pollfd p = {.fd = b->dev.sock, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		int r = vnet_vhu_dev_handle(&b->dev);
		if (r < 0 && r != -EAGAIN)
			break;
	}
	vnet_vhu_dev_fini(&b->dev);
	return NULL;
}

int vhu_be_start(struct vhu_be *b, const char *path, bool connects,
		 const struct vnet_vhu_backend_config *cfg)
{
	struct vnet_vhu_backend_config c = *cfg; /* cfg may be b's own */
	char p[sizeof(b->path)];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	memset(b, 0, sizeof(*b));
	memcpy(b->path, p, sizeof(p));
	b->connects = connects;
	b->cfg = c;
	b->lfd = -1;
	if (!connects) {
		char err[128];
		b->lfd = vnet_vhu_listen(b->path, 0600, err, sizeof(err));
		if (b->lfd < 0) {
			int e = b->lfd;
			fprintf(stderr, "vhu_be: listen at %s: %s\n", b->path, err);
			b->lfd = -1;
			return e;
		}
	}
	int e = pthread_create(&b->thread, NULL, be_thread, b);
	if (e) {
		fprintf(stderr, "vhu_be: pthread_create: %s\n", strerror(e));
		if (b->lfd >= 0) {
			close(b->lfd);
			unlink(b->path);
			b->lfd = -1;
		}
		return -e;
	}
	atomic_store(&b->started, true);
	return 0;
}

void vhu_be_stop(struct vhu_be *b)
{
	if (!atomic_exchange(&b->started, false))
		return;
	atomic_store(&b->stop, true);
	pthread_join(b->thread, NULL);
	if (b->lfd >= 0) {
		close(b->lfd);
		unlink(b->path);
		b->lfd = -1;
	}
}

enum vnet_vhu_ring_state vhu_be_ring_state(struct vhu_be *b, unsigned ring)
{
	return (enum vnet_vhu_ring_state)atomic_load(&b->dev.rings[ring].state);
}
