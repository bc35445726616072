/* SPDX-License-Identifier: MIT */
/*
 * Network back ends: where a NIC's Ethernet frames go.  NAT (slirp.c), TAP
 * (tap.c: an existing interface or one keel creates on a bridge) and
 * sockets (socket.c: datagram or length-prefixed stream framing).
 *
 * Threading: a back end is driven by exactly one thread, the NIC's I/O
 * thread.  That thread waits on poll_fd() (EPOLLIN) with the timeout from
 * timeout_ms(), then calls process(), which delivers received frames through
 * be->rx().  send() is called from the same thread.  No back-end function is
 * called from any other thread, except create/destroy while the NIC's
 * thread is not using it.
 */
#ifndef KEEL_NET_BACKEND_H
#define KEEL_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config/objects.h"
#include "core/error.h"

struct logger;
struct net_backend;

#define NET_MAX_FRAME 65562     /* 64 KiB of payload + Ethernet and VLAN headers */

struct net_backend_ops {
	/*
	 * Sends one Ethernet frame.  With vnet_hdr, iov starts with a 12-byte
	 * struct virtio_net_hdr_mrg_rxbuf.  Returns 0, or -1 when the frame
	 * was dropped (the back end logs and counts why).
	 */
	int (*send)(struct net_backend *be, const struct iovec *iov, int iovcnt);
	/* Descriptor the I/O thread waits on for EPOLLIN (-1: none). */
	int (*poll_fd)(struct net_backend *be);
	/* Milliseconds until process() must run anyway (timers); -1: none. */
	int (*timeout_ms)(struct net_backend *be);
	/* Reads what is ready and runs timers; frames go to be->rx(). */
	void (*process)(struct net_backend *be);
	/* NAT only (NULL elsewhere): port forwards while running. */
	int (*add_forward)(struct net_backend *be, const struct net_forward *f, keel_error **err);
	int (*remove_forward)(struct net_backend *be, const struct net_forward *f, keel_error **err);
	void (*destroy)(struct net_backend *be);
};

/*
 * Receives one frame for the guest (with vnet_hdr: header first).  Returns
 * false when the guest has no receive buffer: the back end then stops
 * reading (process() returns) and the frame is dropped only where the back
 * end cannot keep it (NAT: TCP retransmits).
 */
typedef bool (*net_rx_fn)(void *opaque, const struct iovec *iov, int iovcnt);

struct net_backend {
	const struct net_backend_ops *ops;
	const struct logger *log;       /* the VM's: back ends never see the VM */
	const char *name;       /* for messages, e.g. "virtio-net0" */
	bool vnet_hdr;          /* frames carry a virtio-net header (TAP IFF_VNET_HDR) */
	net_rx_fn rx;
	void *rx_opaque;
	uint64_t dropped;       /* frames dropped by the back end */
};

/*
 * Creates the back end for `att` (its ports bound, its TAP created, its
 * socket connected).  `mac` is the guest's, for NAT's DHCP.  Errors name
 * the attachment and, for TAP, the missing CAP_NET_ADMIN.
 */
struct net_backend *net_backend_create(const struct logger *log, const char *name,
				       const struct keel_network_attachment *att,
				       const uint8_t mac[6], net_rx_fn rx, void *rx_opaque,
				       keel_error **err);

/* Per-kind constructors (net_backend_create dispatches). */
struct net_backend *net_slirp_create(const struct logger *log, const char *name,
				     const struct keel_network_attachment *att,
				     const uint8_t mac[6], keel_error **err);
struct net_backend *net_tap_create(const struct logger *log, const char *name,
				   const struct keel_network_attachment *att, keel_error **err);
struct net_backend *net_socket_create(const struct logger *log, const char *name,
				      const struct keel_network_attachment *att, keel_error **err);

#endif
