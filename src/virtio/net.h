/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio/net.c): the device over a network back end
 * (net/backend.h).  Internal interface for the machine builder and the
 * runtime calls (vm/network.c), the unit tests and the fuzzer.
 */
#ifndef KEEL_VIRTIO_NET_H
#define KEEL_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "config/objects.h"
#include "core/error.h"

struct devctx;
struct virtio_dev;
struct virtio_net;

/* Feature bits (virtio 1.x, 5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP    1

/* struct virtio_net_hdr (with num_buffers: always 12 bytes in virtio 1.x). */
#define VIRTIO_NET_HDR_SIZE          12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM  1
#define VIRTIO_NET_HDR_F_DATA_VALID  2
#define VIRTIO_NET_HDR_GSO_NONE      0
#define VIRTIO_NET_HDR_GSO_TCPV4     1
#define VIRTIO_NET_HDR_GSO_UDP       3
#define VIRTIO_NET_HDR_GSO_TCPV6     4
#define VIRTIO_NET_HDR_GSO_ECN       0x80

#define VIRTIO_NET_QUEUE_SIZE   256
#define VIRTIO_NET_CONFIG_SIZE  12      /* mac, status, max_virtqueue_pairs, mtu */
#define VIRTIO_NET_RELINK_MS    500     /* link down this long when the attachment changes */

/*
 * Creates NIC number `index` with MAC address `mac` and its back end (so a
 * bad attachment fails here).  `threaded`: the device's I/O thread runs
 * from now until virtio_net_free(); without it (fuzzer) nothing runs until
 * virtio_net_poll() is called and the control functions below act directly
 * on the caller's thread.
 */
struct virtio_net *virtio_net_new(struct devctx *ctx, int index,
				  const struct keel_network_device *cfg, const uint8_t mac[6],
				  bool threaded, keel_error **err);
void virtio_net_free(struct virtio_net *n);
struct virtio_dev *virtio_net_vdev(struct virtio_net *n);
void virtio_net_get_mac(const struct virtio_net *n, uint8_t mac[6]);

/* Thread-safe control (the public keel_vm_* network functions). */
int virtio_net_set_attachment(struct virtio_net *n, const struct keel_network_attachment *att,
			      keel_error **err);
int virtio_net_set_link(struct virtio_net *n, bool up, keel_error **err);
int virtio_net_forward(struct virtio_net *n, bool add, const struct net_forward *f,
		       keel_error **err);
int virtio_net_get_stats(struct virtio_net *n, uint64_t *tx_frames, uint64_t *rx_frames,
			 uint64_t *dropped, keel_error **err);

/* Without the thread: one turn of the I/O loop (TX queue, back end), no waiting. */
void virtio_net_poll(struct virtio_net *n);

#endif
