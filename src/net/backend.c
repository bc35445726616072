// SPDX-License-Identifier: MIT
/* Network back ends: creation by attachment kind (see net/backend.h). */
#include "core/error.h"
#include "net/backend.h"

struct net_backend *net_backend_create(const struct logger *log, const char *name,
				       const struct keel_network_attachment *att,
				       const uint8_t mac[6], net_rx_fn rx, void *rx_opaque,
				       keel_error **err)
{
	struct net_backend *be;

	if (!att)
		return err_set(err, KEEL_ERR_INVALID, "%s: no network attachment", name), NULL;
	switch (att->kind) {
	case NET_NAT:
		be = net_slirp_create(log, name, att, mac, err);
		break;
	case NET_TAP:
	case NET_BRIDGED:
		be = net_tap_create(log, name, att, err);
		break;
	case NET_SOCKET:
	case NET_UNIX:
		be = net_socket_create(log, name, att, err);
		break;
	default:
		return err_set(err, KEEL_ERR_INVALID, "%s: unknown network attachment kind %d", name,
			       (int)att->kind), NULL;
	}
	if (!be)
		return NULL;
	be->log = log;
	be->name = name;
	be->rx = rx;
	be->rx_opaque = rx_opaque;
	return be;
}
