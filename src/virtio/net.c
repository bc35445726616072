// SPDX-License-Identifier: MIT
/*
 * virtio-net (virtio 1.x, 5.1): one receive queue (0) and one transmit
 * queue (1) over a network back end (net/backend.h: NAT, TAP, sockets).
 *
 * Features: VERSION_1, EVENT_IDX, INDIRECT_DESC, MAC, STATUS, MRG_RXBUF;
 * with a back end that carries virtio-net headers (TAP with IFF_VNET_HDR)
 * also CSUM, GUEST_CSUM, HOST_TSO4/6 and GUEST_TSO4/6: the header and the
 * offloaded frame pass through unchanged, and the TAP's offloads follow
 * what the driver accepted.  Other back ends get no offloads.  The offer is
 * made once, from the attachment the device is created with; when a later
 * attachment change goes from TAP to another kind the driver keeps its
 * offloads: frames that need a checksum get it in software, segmentation
 * offload frames (GSO) are dropped and counted.
 *
 * Threading: each device has one I/O thread from creation to destruction
 * (keel-netN, or keel-natN with a NAT attachment: the sandbox's filters
 * differ).  It waits (epoll) on the TX and RX kick eventfds, the back end's poll_fd()
 * (with its timeout_ms()), and a control eventfd, and is the only thread
 * that touches the back end and, while the device is started, the queues.
 * Everything else reaches it through the control channel: a list of
 * requests under ctl_lock, each answered through ctl_cond:
 *   - ops->start / ops->stop (vCPU thread, vdev->lock held): the thread
 *     starts / stops processing the queues; after stop returns the thread
 *     no longer touches guest memory.  The thread never takes vdev->lock.
 *   - attachment changes: the new back end is created on the caller's
 *     thread (errors returned, the old attachment kept), the thread swaps
 *     and hands the old one back to the caller, which destroys it (a
 *     bridged TAP leaves its bridge through a socket, which the thread's
 *     filter forbids), then takes the link down for VIRTIO_NET_RELINK_MS
 *     and up again (a config interrupt each time) so that the guest
 *     renews its DHCP lease.  When the new attachment needs another
 *     filter (NAT to TAP or back) with the sandbox on, the thread is
 *     replaced: the caller starts a new one with the new filter, held
 *     until the old one has made the swap and ended (handoff); requests
 *     queued meanwhile go to the new thread;
 *   - link up/down, port forwards (NAT only), statistics.
 * Interrupts are raised with virtio_dev_notify() (lock-free) and
 * transport->notify_config; a broken ring is handed to the VM's event
 * loop, which calls virtio_dev_fail() (as virtio-blk does: that function
 * stops the device, which waits for this thread).
 *
 * While the device is not started (no driver, reset), or the link is down,
 * received frames are read and dropped so the back end does not back up;
 * transmit frames are dropped while the link is down.
 *
 * TX: every chain is [12-byte header][Ethernet frame] in readable buffers;
 * it is sent from the guest's buffers (no copy) and returned with length 0.
 * A chain shorter than the header, a frame shorter than an Ethernet header
 * (14 bytes) or longer than NET_MAX_FRAME, or a header asking for an
 * offload that was not offered is dropped and counted (`dropped`), with a
 * warning at most once a second per device.
 *
 * RX: the back end calls net_rx() with a frame; it is copied into the
 * receive buffers: with MRG_RXBUF into as many chains as it needs
 * (num_buffers in the header of the first), all published in one used
 * index update; without it into one chain (a frame that does not fit is
 * dropped and counted).  No buffer: the chains taken are given back (the
 * avail index is rewound), net_rx() returns false, the back end keeps or
 * drops the frame, and the thread stops polling the back end until the
 * guest kicks the receive queue.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/thread.h"
#include "core/util.h"
#include "core/devctx.h"
#include "net/backend.h"
#include "net/tap.h"
#include "virtio/devices.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

#define RXQ 0
#define TXQ 1
#define TX_BATCH 256            /* chains per turn before looking at the rest */

/* epoll tags */
#define EV_CTL 1
#define EV_TX  2
#define EV_RX  3
#define EV_BE  4

struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

enum ctl_op {
	CTL_START,
	CTL_STOP,
	CTL_SWAP,
	CTL_LINK,
	CTL_ADD_FWD,
	CTL_DEL_FWD,
	CTL_STATS,
	CTL_EXIT,
};

struct ctl_req {
	enum ctl_op op;
	struct net_backend *be;         /* CTL_SWAP: the new one */
	struct net_backend *old;        /* CTL_SWAP: the one replaced, for the caller */
	bool handoff;                   /* CTL_SWAP: the thread ends after it */
	bool up;                        /* CTL_LINK */
	const struct net_forward *fwd;  /* CTL_*_FWD */
	int rc;
	keel_error *err;
	uint64_t stats[3];
	bool done;
	struct ctl_req *next;
};

struct virtio_net {
	struct virtio_dev vdev;
	int index;
	char name[32];
	uint8_t mac[6];
	bool offloads;                  /* CSUM/TSO offered */
	uint16_t status;                /* config status (atomic): LINK_UP */

	/* Owned by the I/O thread (or the caller when !threaded). */
	struct net_backend *be;
	bool active;                    /* started: queues in use */
	bool failed;                    /* a ring broke: queues left alone */
	bool user_link;                 /* link as the application wants it */
	bool relinking;                 /* down for a while after an attachment change */
	struct timespec relink_at;
	bool rx_blocked;                /* no receive buffer: wait for a kick */
	bool rx_retry;                  /* buffers arrived while blocking: try again */
	bool rx_pushed;
	bool tx_pending;
	bool exit;
	int watched_fd;                 /* back-end fd in epoll, -1: none */
	uint64_t tx_frames, rx_frames, dropped, be_dropped;
	struct log_ratelimit warn_rl;   /* guest-triggered warnings */
	struct virtq_chain *chain;      /* scratch for virtq_pop() */
	uint8_t *scratch;               /* software checksum (TAP -> other) */

	/* The thread and its control channel. */
	bool threaded;
	pthread_t thread;               /* under ctl_lock */
	bool thread_running;
	enum sandbox_class cls;         /* the thread's filter */
	bool held;                      /* a new thread waits for the old one to end */
	pthread_mutex_t swap_lock;      /* one attachment change at a time */
	int epfd;
	int ctl_fd;
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_cond;
	struct ctl_req *ctl_head, **ctl_tail;

};

static inline struct virtio_net *to_net(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_net, vdev);
}

struct virtio_dev *virtio_net_vdev(struct virtio_net *n)
{
	return &n->vdev;
}

void virtio_net_get_mac(const struct virtio_net *n, uint8_t mac[6])
{
	memcpy(mac, n->mac, 6);
}

/* A warning about the guest's frames: at most one a second per device. */
#define net_warn(n, fmt, ...) \
	log_limited(&(n)->vdev.ctx->log, &(n)->warn_rl, KEEL_LOG_WARNING, "%s: " fmt, (n)->name, \
		       ##__VA_ARGS__)

/* ------------------------------------------------------------ config space */

static bool link_up(const struct virtio_net *n)
{
	return n->user_link && !n->relinking;
}

static void update_status(struct virtio_net *n, bool notify)
{
	uint16_t st = link_up(n) ? VIRTIO_NET_S_LINK_UP : 0;
	uint16_t old = __atomic_exchange_n(&n->status, st, __ATOMIC_SEQ_CST);

	if (old == st || !notify || !n->active)
		return;
	__atomic_fetch_add(&n->vdev.config_generation, 1, __ATOMIC_SEQ_CST);
	if (n->vdev.transport)
		n->vdev.transport->notify_config(&n->vdev);
}

static void net_config_read(struct virtio_dev *vdev, uint32_t offset, void *data,
			    unsigned int len)
{
	struct virtio_net *n = to_net(vdev);
	uint8_t c[VIRTIO_NET_CONFIG_SIZE];
	uint16_t v;

	memcpy(c, n->mac, 6);
	v = htole16(__atomic_load_n(&n->status, __ATOMIC_SEQ_CST));
	memcpy(c + 6, &v, 2);
	v = htole16(1);                         /* max_virtqueue_pairs */
	memcpy(c + 8, &v, 2);
	v = htole16(1500);                      /* mtu (VIRTIO_NET_F_MTU not offered) */
	memcpy(c + 10, &v, 2);
	memset(data, 0, len);
	if (offset < sizeof(c))
		memcpy(data, c + offset, len < sizeof(c) - offset ? len : sizeof(c) - offset);
}

static void net_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
			     unsigned int len)
{
	/* The MAC is read-only in virtio 1.x (no CTRL_MAC_ADDR). */
	log_msg(&vdev->ctx->log, KEEL_LOG_DEBUG, "%s: ignored write of %u byte(s) at config offset %u",
	       vdev->name, len, offset);
}

/* ------------------------------------------------------------- failures */

/* As blk_fail(): through the event thread from the I/O thread. */
static void net_fail(struct virtio_net *n, keel_error *err)
{
	n->failed = true;
	if (n->threaded)
		virtio_dev_fail_async(&n->vdev, err);
	else
		virtio_dev_fail(&n->vdev, err);
}

/* ------------------------------------------------------------ iov helpers */

/* Copies `len` bytes from src (at src_off) to dst (at dst_off); returns bytes copied. */
static size_t iov_to_iov(const struct iovec *dst, unsigned int dn, size_t dst_off,
			 const struct iovec *src, unsigned int sn, size_t src_off, size_t len)
{
	unsigned int di = 0, si = 0;
	size_t done = 0;

	while (di < dn && dst_off >= dst[di].iov_len)
		dst_off -= dst[di++].iov_len;
	while (si < sn && src_off >= src[si].iov_len)
		src_off -= src[si++].iov_len;
	while (done < len && di < dn && si < sn) {
		size_t a = dst[di].iov_len - dst_off, b = src[si].iov_len - src_off;
		size_t c = a < b ? a : b;

		if (c > len - done)
			c = len - done;
		memcpy((uint8_t *)dst[di].iov_base + dst_off, (const uint8_t *)src[si].iov_base + src_off,
		       c);
		done += c;
		dst_off += c;
		src_off += c;
		if (dst_off == dst[di].iov_len) {
			di++;
			dst_off = 0;
		}
		if (si < sn && src_off == src[si].iov_len) {
			si++;
			src_off = 0;
		}
	}
	return done;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;

	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* ------------------------------------------------------------------- TX */

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* NEEDS_CSUM for a back end without headers: the frame is copied and completed. */
static int tx_soft_csum(struct virtio_net *n, const struct virtq_chain *c, const struct net_hdr *h,
			size_t frame_len, struct iovec *out)
{
	uint16_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);
	uint32_t sum = 0;
	uint16_t v;

	if ((size_t)start + off + 2 > frame_len)
		return -1;
	virtq_chain_read(c, VIRTIO_NET_HDR_SIZE, n->scratch, frame_len);
	for (size_t i = start; i + 1 < frame_len; i += 2)
		sum += (uint32_t)(n->scratch[i] << 8 | n->scratch[i + 1]);
	if ((frame_len - start) & 1)
		sum += (uint32_t)n->scratch[frame_len - 1] << 8;
	v = csum_fold(sum);
	n->scratch[start + off] = (uint8_t)(v >> 8);
	n->scratch[start + off + 1] = (uint8_t)v;
	out->iov_base = n->scratch;
	out->iov_len = frame_len;
	return 0;
}

static void tx_one(struct virtio_net *n, const struct virtq_chain *c)
{
	struct iovec iov[VIRTQ_MAX_CHAIN];
	struct net_hdr h;
	uint64_t frame_len;
	size_t skip = VIRTIO_NET_HDR_SIZE;
	int cnt = 0;

	if (c->out_len < VIRTIO_NET_HDR_SIZE) {
		n->dropped++;
		net_warn(n, "transmit chain of %llu bytes is shorter than the %d-byte header: dropped",
			 (unsigned long long)c->out_len, VIRTIO_NET_HDR_SIZE);
		return;
	}
	frame_len = c->out_len - VIRTIO_NET_HDR_SIZE;
	if (frame_len < 14 || frame_len > NET_MAX_FRAME) {
		n->dropped++;
		net_warn(n, "transmit frame of %llu bytes (valid: 14 to %d): dropped",
			 (unsigned long long)frame_len, NET_MAX_FRAME);
		return;
	}
	virtq_chain_read(c, 0, &h, sizeof(h));
	if (!link_up(n))
		return;                 /* no link: lost, as on a cable */
	if (n->be->vnet_hdr) {
		if (!n->offloads && (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM ||
				     h.gso_type != VIRTIO_NET_HDR_GSO_NONE))
			goto bad_offload;
		if (n->be->ops->send(n->be, c->iov, (int)c->nr_out) == 0)
			n->tx_frames++;
		return;
	}
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		if (!n->offloads)
			goto bad_offload;
		n->dropped++;
		net_warn(n, "segmentation offload frame (gso_type %u) on an attachment without offloads: dropped",
			 h.gso_type);
		return;
	}
	if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!n->offloads)
			goto bad_offload;
		if (tx_soft_csum(n, c, &h, (size_t)frame_len, iov) < 0) {
			n->dropped++;
			net_warn(n, "checksum at %u+%u outside the %llu-byte frame: dropped",
				 le16toh(h.csum_start), le16toh(h.csum_offset),
				 (unsigned long long)frame_len);
			return;
		}
		if (n->be->ops->send(n->be, iov, 1) == 0)
			n->tx_frames++;
		return;
	}
	for (unsigned int i = 0; i < c->nr_out; i++) {
		size_t l = c->iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		iov[cnt].iov_base = (uint8_t *)c->iov[i].iov_base + skip;
		iov[cnt].iov_len = l - skip;
		skip = 0;
		cnt++;
	}
	if (n->be->ops->send(n->be, iov, cnt) == 0)
		n->tx_frames++;
	return;
bad_offload:
	n->dropped++;
	net_warn(n, "transmit header asks for an offload that was not offered (flags 0x%x, gso_type %u): dropped",
		 h.flags, h.gso_type);
}

static void process_tx(struct virtio_net *n)
{
	struct virtq *vq = &n->vdev.vqs[TXQ];
	unsigned int done = 0;
	bool pushed = false;

	n->tx_pending = false;
	if (!n->active || n->failed || !vq->enabled || vq->broken)
		return;
	for (;;) {
		virtq_disable_kicks(vq);
		for (;;) {
			keel_error *err = NULL;
			int rc;

			if (done == TX_BATCH) {
				n->tx_pending = true;   /* the rest on the next turn */
				goto out;
			}
			rc = virtq_pop(vq, n->chain, &err);
			if (rc < 0) {
				err_prefix(&err, "transmit queue");
				net_fail(n, err);
				goto out;
			}
			if (!rc)
				break;
			tx_one(n, n->chain);
			virtq_push(vq, n->chain->head, 0);
			pushed = true;
			done++;
		}
		if (!virtq_enable_kicks(vq))
			break;
	}
out:
	if (pushed)
		virtio_dev_notify(&n->vdev, TXQ);
}

/* ------------------------------------------------------------------- RX */

static bool net_rx(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct virtio_net *n = opaque;
	struct virtq *vq = &n->vdev.vqs[RXQ];
	bool mrg = virtio_has_feature(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
	struct iovec hdr_iov[VIRTIO_NET_HDR_SIZE];
	unsigned int hdr_niov = 0, nbuf = 0;
	struct net_hdr h = { 0 };
	size_t total = iov_total(iov, iovcnt), src_off = 0, payload, copied = 0;
	uint16_t nb;

	if (!n->active || n->failed || !link_up(n) || !vq->enabled || vq->broken)
		return true;            /* nobody to give it to: dropped */
	if (n->be->vnet_hdr) {
		if (total < VIRTIO_NET_HDR_SIZE) {
			n->dropped++;
			return true;
		}
		iov_to_iov(&(struct iovec){ &h, sizeof(h) }, 1, 0, iov, (unsigned int)iovcnt, 0,
			   sizeof(h));
		src_off = VIRTIO_NET_HDR_SIZE;
		if (!n->offloads || !virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_CSUM)) {
			h.flags = 0;
			h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
		}
	}
	payload = total - src_off;
	if (payload > NET_MAX_FRAME) {
		n->dropped++;
		return true;
	}
	while (copied < payload || !nbuf) {
		const struct virtq_chain *c = n->chain;
		keel_error *err = NULL;
		const struct iovec *w;
		size_t room, hdr_room = 0, chunk;
		int rc = virtq_pop(vq, n->chain, &err);

		if (rc < 0) {
			err_prefix(&err, "receive queue");
			net_fail(n, err);
			return true;
		}
		if (!rc) {
			if (nbuf && nbuf == vq->cfg.size)
				goto too_small;
			/*
			 * Not enough: the chains taken are given back, and the
			 * next buffer the driver adds (past those) kicks us.
			 */
			virtq_unpop(vq, (uint16_t)nbuf);
			n->rx_blocked = true;
			if (virtq_enable_kicks_ahead(vq, (uint16_t)nbuf))
				n->rx_retry = true;
			return false;
		}
		w = c->iov + c->nr_out;
		room = c->in_len;
		if (!nbuf) {
			if (room < VIRTIO_NET_HDR_SIZE) {
				/* Unusable: returned empty so the driver recycles it. */
				virtq_push(vq, c->head, 0);
				n->rx_pushed = true;
				n->dropped++;
				net_warn(n, "receive buffer of %llu bytes is smaller than the %d-byte header",
					 (unsigned long long)room, VIRTIO_NET_HDR_SIZE);
				return true;
			}
			/* Where the header goes, to set num_buffers last. */
			for (unsigned int i = 0; i < c->nr_in && hdr_room < VIRTIO_NET_HDR_SIZE; i++) {
				size_t l = w[i].iov_len;

				if (l > VIRTIO_NET_HDR_SIZE - hdr_room)
					l = VIRTIO_NET_HDR_SIZE - hdr_room;
				if (!l)
					continue;
				hdr_iov[hdr_niov].iov_base = w[i].iov_base;
				hdr_iov[hdr_niov++].iov_len = l;
				hdr_room += l;
			}
			room -= VIRTIO_NET_HDR_SIZE;
		}
		chunk = payload - copied < room ? payload - copied : room;
		iov_to_iov(w, c->nr_in, hdr_room, iov, (unsigned int)iovcnt, src_off + copied, chunk);
		copied += chunk;
		/* Published below, all at once, or given back. */
		virtq_fill(vq, c->head, (uint32_t)(chunk + hdr_room), (uint16_t)nbuf);
		nbuf++;
		if (copied < payload && (!mrg || nbuf == vq->cfg.size))
			goto too_small;
	}
	nb = htole16((uint16_t)nbuf);
	h.num_buffers = nb;
	iov_to_iov(hdr_iov, hdr_niov, 0, &(struct iovec){ &h, sizeof(h) }, 1, 0, sizeof(h));
	virtq_flush(vq, (uint16_t)nbuf);
	n->rx_frames++;
	n->rx_pushed = true;
	return true;
too_small:
	virtq_unpop(vq, (uint16_t)nbuf);
	n->dropped++;
	net_warn(n, "received frame of %zu bytes does not fit the receive buffers%s: dropped",
		 payload, mrg ? "" : " (no mergeable buffers)");
	return true;
}

/* --------------------------------------------------------- control channel */

static void set_offloads(struct virtio_net *n)
{
	unsigned int f = 0;

	if (!n->be->vnet_hdr)
		return;
	if (n->active && n->offloads) {
		if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_CSUM))
			f |= NET_TAP_OFFLOAD_CSUM;
		if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO4))
			f |= NET_TAP_OFFLOAD_TSO4;
		if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO6))
			f |= NET_TAP_OFFLOAD_TSO6;
	}
	net_tap_set_offload(n->be, f);
}

static void be_unwatch(struct virtio_net *n)
{
	if (n->watched_fd >= 0 && n->threaded)
		epoll_ctl(n->epfd, EPOLL_CTL_DEL, n->watched_fd, NULL);
	n->watched_fd = -1;
}

static void ctl_exec(struct virtio_net *n, struct ctl_req *r)
{
	r->rc = 0;
	switch (r->op) {
	case CTL_START:
		n->active = true;
		n->failed = false;
		n->rx_blocked = false;
		n->rx_retry = true;     /* buffers added before DRIVER_OK */
		n->tx_pending = true;
		set_offloads(n);
		break;
	case CTL_STOP:
		n->active = false;
		n->rx_blocked = false;
		set_offloads(n);
		break;
	case CTL_SWAP: {
		struct net_backend *old = n->be;

		be_unwatch(n);
		n->be_dropped += old->dropped;
		n->be = r->be;
		r->old = old;
		if (r->handoff)
			n->exit = true;
		set_offloads(n);
		n->rx_retry = true;
		if (n->user_link) {
			struct timespec *t = &n->relink_at;

			n->relinking = true;
			clock_gettime(CLOCK_MONOTONIC, t);
			t->tv_nsec += (long)VIRTIO_NET_RELINK_MS * 1000000L;
			t->tv_sec += t->tv_nsec / 1000000000L;
			t->tv_nsec %= 1000000000L;
			update_status(n, true);
		}
		break;
	}
	case CTL_LINK:
		n->user_link = r->up;
		update_status(n, true);
		if (r->up)
			n->rx_retry = true;
		break;
	case CTL_ADD_FWD:
	case CTL_DEL_FWD: {
		int (*fn)(struct net_backend *, const struct net_forward *, keel_error **) =
			r->op == CTL_ADD_FWD ? n->be->ops->add_forward : n->be->ops->remove_forward;

		if (!fn)
			r->rc = err_set(&r->err, KEEL_ERR_UNSUPPORTED,
					"network device %d is not attached to NAT", n->index);
		else
			r->rc = fn(n->be, r->fwd, &r->err);
		break;
	}
	case CTL_STATS:
		r->stats[0] = n->tx_frames;
		r->stats[1] = n->rx_frames;
		r->stats[2] = n->dropped + n->be_dropped + n->be->dropped;
		break;
	case CTL_EXIT:
		n->exit = true;
		break;
	}
}

/* Runs `r` on the I/O thread (or here without one) and waits for it. */
static int ctl_call(struct virtio_net *n, struct ctl_req *r, keel_error **err)
{
	bool here;

	r->done = false;
	r->err = NULL;
	r->next = NULL;
	pthread_mutex_lock(&n->ctl_lock);
	here = !n->threaded || !n->thread_running || pthread_equal(pthread_self(), n->thread);
	if (!here) {
		*n->ctl_tail = r;
		n->ctl_tail = &r->next;
	}
	pthread_mutex_unlock(&n->ctl_lock);
	if (here) {
		/* No thread, or on it (a log callback calling back): run here. */
		ctl_exec(n, r);
	} else {
		efd_signal(n->ctl_fd);
		pthread_mutex_lock(&n->ctl_lock);
		while (!r->done)
			pthread_cond_wait(&n->ctl_cond, &n->ctl_lock);
		pthread_mutex_unlock(&n->ctl_lock);
	}
	if (r->err) {
		if (err && !*err)
			*err = r->err;
		else
			keel_error_free(r->err);
	}
	return r->rc;
}

static void ctl_run(struct virtio_net *n)
{
	struct ctl_req *list;

	efd_drain(n->ctl_fd);
	pthread_mutex_lock(&n->ctl_lock);
	list = n->ctl_head;
	n->ctl_head = NULL;
	n->ctl_tail = &n->ctl_head;
	pthread_mutex_unlock(&n->ctl_lock);
	while (list) {
		struct ctl_req *r = list;

		list = r->next;
		ctl_exec(n, r);
		pthread_mutex_lock(&n->ctl_lock);
		r->done = true;
		if (r->op == CTL_SWAP && r->handoff && list) {
			/* Handed off: the rest is the next thread's. */
			struct ctl_req **last = &list;

			while (*last)
				last = &(*last)->next;
			*last = n->ctl_head;
			if (!n->ctl_head)
				n->ctl_tail = last;
			n->ctl_head = list;
			list = NULL;
		}
		pthread_cond_broadcast(&n->ctl_cond);
		pthread_mutex_unlock(&n->ctl_lock);
	}
}

/* ------------------------------------------------------------ the I/O loop */

static void be_process(struct virtio_net *n)
{
	n->be->ops->process(n->be);
	if (n->rx_pushed) {
		n->rx_pushed = false;
		if (n->active)
			virtio_dev_notify(&n->vdev, RXQ);
	}
}

/* Work that needs no waiting: relink timer, retried receive, transmit. */
static void run_pending(struct virtio_net *n)
{
	if (n->relinking) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > n->relink_at.tv_sec ||
		    (now.tv_sec == n->relink_at.tv_sec && now.tv_nsec >= n->relink_at.tv_nsec)) {
			n->relinking = false;
			update_status(n, true);
			n->rx_retry = true;
		}
	}
	if (n->rx_retry) {
		struct virtq *vq = &n->vdev.vqs[RXQ];

		n->rx_retry = false;
		n->rx_blocked = false;
		/* Kicks are wanted only while waiting for buffers (rx_wait). */
		if (n->active && !n->failed)
			virtq_disable_kicks(vq);
		be_process(n);
	}
	if (n->tx_pending)
		process_tx(n);
}

void virtio_net_poll(struct virtio_net *n)
{
	n->tx_pending = true;
	n->rx_retry = true;
	run_pending(n);
}

static int wait_timeout(struct virtio_net *n)
{
	int t = n->be->ops->timeout_ms(n->be);

	if (n->tx_pending || n->rx_retry)
		return 0;
	if (n->relinking) {
		struct timespec now;
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (n->relink_at.tv_sec - now.tv_sec) * 1000L +
		     (n->relink_at.tv_nsec - now.tv_nsec) / 1000000L + 1;
		if (ms < 0)
			ms = 0;
		if (t < 0 || ms < t)
			t = (int)ms;
	}
	return t;
}

static void be_watch(struct virtio_net *n)
{
	int fd = n->rx_blocked && n->active ? -1 : n->be->ops->poll_fd(n->be);

	if (fd == n->watched_fd)
		return;
	be_unwatch(n);
	if (fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_BE };

		if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
			n->watched_fd = fd;
	}
}

static void *net_thread(void *opaque)
{
	struct virtio_net *n = opaque;

	pthread_mutex_lock(&n->ctl_lock);
	while (n->held)                 /* the thread this one replaces still runs */
		pthread_cond_wait(&n->ctl_cond, &n->ctl_lock);
	pthread_mutex_unlock(&n->ctl_lock);
	ctl_run(n);                     /* what was queued meanwhile */
	while (!n->exit) {
		struct epoll_event evs[8];
		int timeout, nev;
		uint64_t deadline = 0;
		bool be_ready = false;

		be_watch(n);
		timeout = wait_timeout(n);
		if (timeout > 0)
			deadline = (uint64_t)mono_ns() + (uint64_t)timeout * 1000000ULL;
		nev = epoll_wait(n->epfd, evs, ARRAY_SIZE(evs), timeout);
		if (nev < 0) {
			if (errno == EINTR)
				continue;
			log_msg(&n->vdev.ctx->log, KEEL_LOG_ERROR, "%s: epoll_wait failed: %s", n->name,
			       strerror(errno));
			break;
		}
		for (int i = 0; i < nev; i++) {
			switch (evs[i].data.u64) {
			case EV_CTL:
				ctl_run(n);
				break;
			case EV_TX:
				efd_drain(n->vdev.kick_fd[TXQ]);
				n->tx_pending = true;
				break;
			case EV_RX:
				efd_drain(n->vdev.kick_fd[RXQ]);
				if (n->rx_blocked)
					n->rx_retry = true;
				break;
			case EV_BE:
				be_ready = true;
				break;
			}
		}
		if (n->exit)
			break;
		if (timeout == 0 || (timeout > 0 && (uint64_t)mono_ns() >= deadline))
			be_ready = true;
		if (be_ready && !n->rx_retry)
			be_process(n);
		run_pending(n);
	}
	return NULL;
}

/* ---------------------------------------------------------------- device ops */

static int net_start(struct virtio_dev *vdev, keel_error **err)
{
	struct ctl_req r = { .op = CTL_START };

	return ctl_call(to_net(vdev), &r, err);
}

static void net_stop(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	struct ctl_req r = { .op = CTL_STOP };

	ctl_call(n, &r, NULL);
}

/* The filter a back end needs on the NIC's thread. */
static enum sandbox_class att_class(const struct keel_network_attachment *att)
{
	return att->kind == NET_NAT ? SANDBOX_NAT : SANDBOX_NET;
}

/*
 * Starts the I/O thread with filter `cls`; a `held` one waits for
 * release_thread() before it touches anything (a handoff).
 */
static int start_thread(struct virtio_net *n, enum sandbox_class cls, bool held, pthread_t *t,
			keel_error **err)
{
	char name[16];
	const struct thread_spec spec = { .name = name, .sandbox = n->vdev.ctx->sandbox, .cls = cls };

	snprintf(name, sizeof(name), "keel-%s%d", cls == SANDBOX_NAT ? "nat" : "net", n->index);
	n->held = held;
	if (thread_spawn(t, &spec, net_thread, n, err) < 0) {
		n->held = false;
		err_prefix(err, "%s: cannot start its I/O thread", n->name);
		return -1;
	}
	return 0;
}

static void net_free(struct virtio_net *n)
{
	if (n->thread_running) {
		struct ctl_req r = { .op = CTL_EXIT };

		pthread_mutex_lock(&n->swap_lock);     /* no handoff half done */
		ctl_call(n, &r, NULL);
		pthread_join(n->thread, NULL);
		n->thread_running = false;
		pthread_mutex_unlock(&n->swap_lock);
	}
	if (n->be)
		n->be->ops->destroy(n->be);
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->ctl_fd >= 0)
		close(n->ctl_fd);
	pthread_mutex_destroy(&n->ctl_lock);
	pthread_cond_destroy(&n->ctl_cond);
	pthread_mutex_destroy(&n->swap_lock);
	free(n->chain);
	free(n->scratch);
	free(n);
}

static void net_destroy(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);

	virtio_dev_quiesce(vdev);
	net_stop(vdev);
	virtio_dev_fini(vdev);
	net_free(n);
}

static const struct virtio_dev_ops net_ops = {
	.config_read = net_config_read,
	.config_write = net_config_write,
	.start = net_start,
	.stop = net_stop,
	.destroy = net_destroy,
};

static int epoll_add(struct virtio_net *n, int fd, uint64_t tag, keel_error **err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "%s: cannot watch a descriptor", n->name);
	return 0;
}

struct virtio_net *virtio_net_new(struct devctx *ctx, int index,
				  const struct keel_network_device *cfg, const uint8_t mac[6],
				  bool threaded, keel_error **err)
{
	struct virtio_net *n;
	uint64_t features;

	if (!cfg || !cfg->att)
		return err_set(err, KEEL_ERR_INVALID, "network device %d has no attachment", index),
		       NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating network device %d",
			       index), NULL;
	n->index = index;
	n->epfd = n->ctl_fd = n->watched_fd = -1;
	n->user_link = true;
	n->status = VIRTIO_NET_S_LINK_UP;
	n->threaded = threaded;
	n->ctl_tail = &n->ctl_head;
	pthread_mutex_init(&n->ctl_lock, NULL);
	pthread_cond_init(&n->ctl_cond, NULL);
	pthread_mutex_init(&n->swap_lock, NULL);
	snprintf(n->name, sizeof(n->name), "virtio-net%d", index);
	memcpy(n->mac, mac, 6);

	n->chain = malloc(sizeof(*n->chain));
	n->scratch = malloc(NET_MAX_FRAME);
	n->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!n->chain || !n->scratch || n->ctl_fd < 0 || n->epfd < 0) {
		err_set(err, KEEL_ERR_NOMEM, "%s: out of memory", n->name);
		goto fail;
	}
	n->be = net_backend_create(&ctx->log, n->name, cfg->att, n->mac, net_rx, n, err);
	if (!n->be) {
		err_prefix(err, "network device %d", index);
		goto fail;
	}
	n->offloads = n->be->vnet_hdr;
	features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) |
		   (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_NET_F_MAC) |
		   (1ULL << VIRTIO_NET_F_STATUS) | (1ULL << VIRTIO_NET_F_MRG_RXBUF);
	if (n->offloads)
		features |= (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			    (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
			    (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6);
	if (virtio_dev_init(&n->vdev, ctx, n->name, VIRTIO_ID_NET, &net_ops, features,
			    VIRTIO_NET_CONFIG_SIZE, 2, VIRTIO_NET_QUEUE_SIZE, err) < 0)
		goto fail;
	set_offloads(n);
	if (threaded) {
		if (epoll_add(n, n->ctl_fd, EV_CTL, err) < 0 ||
		    epoll_add(n, n->vdev.kick_fd[TXQ], EV_TX, err) < 0 ||
		    epoll_add(n, n->vdev.kick_fd[RXQ], EV_RX, err) < 0)
			goto fail_vdev;
		n->cls = att_class(cfg->att);
		if (start_thread(n, n->cls, false, &n->thread, err) < 0)
			goto fail_vdev;
		n->thread_running = true;
	}
	log_msg(&ctx->log, KEEL_LOG_DEBUG, "%s: MAC %02x:%02x:%02x:%02x:%02x:%02x%s", n->name, n->mac[0],
	       n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
	       n->offloads ? ", checksum and segmentation offloads" : "");
	return n;
fail_vdev:
	virtio_dev_fini(&n->vdev);
fail:
	net_free(n);
	return NULL;
}

void virtio_net_free(struct virtio_net *n)
{
	if (n)
		net_destroy(&n->vdev);
}

int virtio_net_set_attachment(struct virtio_net *n, const struct keel_network_attachment *att,
			      keel_error **err)
{
	struct ctl_req r = { .op = CTL_SWAP };
	enum sandbox_class cls = att_class(att);
	pthread_t next, prev;
	int rc;

	r.be = net_backend_create(&n->vdev.ctx->log, n->name, att, n->mac, net_rx, n, err);
	if (!r.be) {
		err_prefix(err, "network device %d", n->index);
		return -1;
	}
	pthread_mutex_lock(&n->swap_lock);
	r.handoff = n->threaded && n->thread_running && cls != n->cls &&
		    n->vdev.ctx->sandbox != KEEL_SANDBOX_OFF;
	/* The new thread first: if it cannot start, nothing has changed. */
	if (r.handoff && start_thread(n, cls, true, &next, err) < 0) {
		pthread_mutex_unlock(&n->swap_lock);
		r.be->ops->destroy(r.be);
		return -1;
	}
	rc = ctl_call(n, &r, err);
	if (r.handoff) {
		pthread_mutex_lock(&n->ctl_lock);
		prev = n->thread;
		pthread_mutex_unlock(&n->ctl_lock);
		pthread_join(prev, NULL);
		pthread_mutex_lock(&n->ctl_lock);
		n->thread = next;
		n->cls = cls;
		n->exit = false;
		n->held = false;
		pthread_cond_broadcast(&n->ctl_cond);
		pthread_mutex_unlock(&n->ctl_lock);
		efd_signal(n->ctl_fd);
	}
	pthread_mutex_unlock(&n->swap_lock);
	if (r.old)
		r.old->ops->destroy(r.old);
	return rc;
}

int virtio_net_set_link(struct virtio_net *n, bool up, keel_error **err)
{
	struct ctl_req r = { .op = CTL_LINK, .up = up };

	return ctl_call(n, &r, err);
}

int virtio_net_forward(struct virtio_net *n, bool add, const struct net_forward *f,
		       keel_error **err)
{
	struct ctl_req r = { .op = add ? CTL_ADD_FWD : CTL_DEL_FWD, .fwd = f };

	return ctl_call(n, &r, err);
}

int virtio_net_get_stats(struct virtio_net *n, uint64_t *tx_frames, uint64_t *rx_frames,
			 uint64_t *dropped, keel_error **err)
{
	struct ctl_req r = { .op = CTL_STATS };

	if (ctl_call(n, &r, err) < 0)
		return -1;
	if (tx_frames)
		*tx_frames = r.stats[0];
	if (rx_frames)
		*rx_frames = r.stats[1];
	if (dropped)
		*dropped = r.stats[2];
	return 0;
}
