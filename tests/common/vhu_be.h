/*
 * vhu_be.h — libvnet's real vhost-user back-end (struct vnet_vhu_dev) served
 * by a thread of the test, for tests of a front-end (vnet_vhu_session,
 * vnet-vmm's net_vhost_user). The thread listens at a path and accepts one
 * front-end (or, with `connects`, connects to a front-end listening there),
 * then handles its messages until the test stops it or the connection ends.
 *
 *     struct vhu_be be;
 *     struct vnet_vhu_backend_config cfg = {.name = "be", .max_queue_pairs = 1,
 *                                           .io_timeout_ms = 500};
 *     vhu_be_start(&be, "/tmp/x.sock", false, &cfg);
 *     ... the front-end connects to /tmp/x.sock and sets the device up ...
 *     vhu_be_ring_state(&be, 1);       // VNET_VHU_RING_ENABLED
 *     vhu_be_stop(&be);                // the back-end hangs up
 *
 * Thread-safety: start and stop from one test thread. Between them the
 * back-end thread runs `dev`'s control side; the test may run its data
 * plane (vnet_vhu_ring_enter/exit) and read ring states (vhu_be_ring_state),
 * and read other fields of `dev` once the back-end acknowledged the request
 * that set them (REPLY_ACK).
 */
#ifndef VNET_TESTS_VHU_BE_H
#define VNET_TESTS_VHU_BE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "vnet/vhost_user_backend.h"

struct vhu_be {
	char path[108];
	bool connects;              /* the back-end connects (front-end in server mode) */
	struct vnet_vhu_backend_config cfg;
	struct vnet_vhu_dev dev;
	int lfd;                    /* listening socket (-1 when connecting) */
	pthread_t thread;
	atomic_bool stop, up, started;  /* up: dev initialised on a connection */
};

/*
 * Resets b, then starts its thread: listening at path (the socket created
 * here, so a front-end may connect at once) or, with `connects`, trying to
 * connect to path for up to 5 s; cfg is copied. 0 or -errno (on stderr).
 */
int vhu_be_start(struct vhu_be *b, const char *path, bool connects,
		 const struct vnet_vhu_backend_config *cfg);

/* Stops the thread (the back-end hangs up), closes and unlinks the
 * listening socket. Once per start; a no-op when not started. */
void vhu_be_stop(struct vhu_be *b);

/* The back-end's state of a ring. */
enum vnet_vhu_ring_state vhu_be_ring_state(struct vhu_be *b, unsigned ring);

#endif
