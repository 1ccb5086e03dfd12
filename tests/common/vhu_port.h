/*
 * vhu_port.h — a guest for a switch vhost-user port in a test: libvnet's own
 * front-end (vnet_vhu_fe) opened or closed on a helper thread while the
 * calling thread services the port (sw_port_ops.service), since the
 * handshake needs both sides at once.
 *
 *     struct vnet_vhu_fe_config cfg = {.name = "fe", .path = path,
 *                                      .connect_timeout_ms = 5000};
 *     struct vnet_vhu_fe *fe;
 *     vhu_port_fe_open(port, &cfg, &fe);
 *     ... frames through vnet_vhu_fe_tx_burst / rx_burst and the port ...
 *     vhu_port_fe_close(port, fe);
 *
 * Thread-safety: call from the port's control thread (the one that may call
 * service); the front-end is then the caller's.
 */
#ifndef VNET_TESTS_VHU_PORT_H
#define VNET_TESTS_VHU_PORT_H

#include "switch/port.h"
#include "vnet/vhost_user_frontend.h"

/*
 * vnet_vhu_fe_open(fe, cfg) on a helper thread, servicing p meanwhile (for
 * up to 10 s, then waiting for the thread without), then, when it opened,
 * services p once more (the last messages: enable, status). Returns open's
 * result, or -ETIMEDOUT when it took longer than the 10 s (*fe is set
 * either way), or -errno when no thread could be created.
 */
int vhu_port_fe_open(struct sw_port *p, const struct vnet_vhu_fe_config *cfg,
		     struct vnet_vhu_fe **fe);

/* vnet_vhu_fe_close(fe) likewise (no service after it): 0, -ETIMEDOUT or -errno. */
int vhu_port_fe_close(struct sw_port *p, struct vnet_vhu_fe *fe);

#endif
