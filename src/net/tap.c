// SPDX-License-Identifier: MIT
/*
 * TAP back ends: NET_TAP attaches to an interface by name (created by the
 * kernel if it does not exist yet, as QEMU does); NET_BRIDGED creates a
 * fresh interface "keelN", brings it up and adds it to the Linux bridge
 * (it goes away when closed: it is not persistent).  Both need
 * CAP_NET_ADMIN; without it creation fails and keel does not fall back to
 * another network.
 *
 * Frames carry a 12-byte virtio-net header (IFF_VNET_HDR, TUNSETVNETHDRSZ
 * 12): the NIC passes its guest's headers through, and tells us through
 * net_tap_set_offload() which offloaded frames the guest accepts.
 *
 * send() is one writev(); a full TAP queue (EAGAIN) or an interface that is
 * down drops the frame (counted).  process() reads up to 64 frames a call;
 * when the NIC has no buffer for one it is kept (one frame) and delivered
 * first next time: nothing read is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "core/util.h"
#include "core/log.h"
#include "net/backend.h"
#include "net/tap.h"

#define TAP_HDR   12
#define TAP_BATCH 64

struct tap {
	struct net_backend be;
	int fd;
	char ifname[IFNAMSIZ];
	char bridge[IFNAMSIZ];          /* NET_BRIDGED: the bridge we joined */
	uint8_t *buf;                   /* NET_MAX_FRAME + header */
	size_t held;                    /* bytes of a frame kept in buf, 0: none */
	unsigned int offloads;
	bool send_warned;
};

static inline struct tap *to_tap(struct net_backend *be)
{
	return container_of(be, struct tap, be);
}

static int tap_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct tap *t = to_tap(be);
	ssize_t n;

	do
		n = writev(t->fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	be->dropped++;
	if (errno != EAGAIN && !t->send_warned) {
		t->send_warned = true;
		log_msg(be->log, KEEL_LOG_WARNING, "%s: writing to TAP interface '%s' failed: %s (frames are dropped)",
		       be->name, t->ifname, strerror(errno));
	}
	return -1;
}

static int tap_poll_fd(struct net_backend *be)
{
	return to_tap(be)->fd;
}

static int tap_timeout_ms(struct net_backend *be)
{
	return -1;
}

static void tap_process(struct net_backend *be)
{
	struct tap *t = to_tap(be);

	for (int i = 0; i < TAP_BATCH; i++) {
		struct iovec iov;
		ssize_t n;

		if (!t->held) {
			n = read(t->fd, t->buf, NET_MAX_FRAME + TAP_HDR);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return;
			t->held = (size_t)n;
		}
		iov.iov_base = t->buf;
		iov.iov_len = t->held;
		if (!be->rx(be->rx_opaque, &iov, 1))
			return;         /* kept for next time */
		t->held = 0;
	}
}

static void tap_destroy(struct net_backend *be)
{
	struct tap *t = to_tap(be);

	if (t->bridge[0]) {
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct ifreq ifr = { 0 };

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->bridge);
		ifr.ifr_ifindex = (int)if_nametoindex(t->ifname);
		if (s >= 0 && ifr.ifr_ifindex)
			ioctl(s, SIOCBRDELIF, &ifr);
		if (s >= 0)
			close(s);
	}
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
	free(t);
}

void net_tap_set_offload(struct net_backend *be, unsigned int offloads)
{
	struct tap *t;
	unsigned int f = 0;

	if (!be || be->ops->destroy != tap_destroy)
		return;
	t = to_tap(be);
	if (offloads & NET_TAP_OFFLOAD_CSUM) {
		f |= TUN_F_CSUM;
		if (offloads & NET_TAP_OFFLOAD_TSO4)
			f |= TUN_F_TSO4;
		if (offloads & NET_TAP_OFFLOAD_TSO6)
			f |= TUN_F_TSO6;
	}
	if (f == t->offloads)
		return;
	if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)f) < 0) {
		log_msg(be->log, KEEL_LOG_WARNING, "%s: TAP interface '%s': cannot set offloads 0x%x: %s",
		       be->name, t->ifname, f, strerror(errno));
		return;
	}
	t->offloads = f;
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.poll_fd = tap_poll_fd,
	.timeout_ms = tap_timeout_ms,
	.process = tap_process,
	.destroy = tap_destroy,
};

static int cap_error(keel_error **err, const char *what, const char *name)
{
	return err_set(err, KEEL_ERR_PERMISSION,
		       "%s '%s': attaching needs CAP_NET_ADMIN (run as root or grant the capability); keel does not fall back to another network",
		       what, name);
}

/* Adds the TAP to the bridge and brings it up. */
static int join_bridge(struct tap *t, const char *bridge, keel_error **err)
{
	struct ifreq ifr = { 0 };
	int s, rc = -1;

	if (!if_nametoindex(bridge))
		return err_set(err, KEEL_ERR_NOT_FOUND, "bridge '%s' does not exist", bridge);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "bridge '%s': cannot open a socket", bridge);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	ifr.ifr_ifindex = (int)if_nametoindex(t->ifname);
	if (ioctl(s, SIOCBRADDIF, &ifr) < 0) {
		if (errno == EPERM || errno == EACCES)
			cap_error(err, "bridge", bridge);
		else if (errno == EOPNOTSUPP || errno == EINVAL)
			err_set(err, KEEL_ERR_INVALID, "'%s' is not a bridge", bridge);
		else
			err_errno(err, err_code_from_errno(errno), errno,
				  "cannot add TAP interface '%s' to bridge '%s'", t->ifname, bridge);
		goto out;
	}
	snprintf(t->bridge, sizeof(t->bridge), "%s", bridge);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "TAP interface '%s': cannot read its flags",
			  t->ifname);
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "TAP interface '%s': cannot bring it up",
			  t->ifname);
		goto out;
	}
	rc = 0;
out:
	close(s);
	return rc;
}

struct net_backend *net_tap_create(const struct logger *log, const char *name,
				   const struct keel_network_attachment *att, keel_error **err)
{
	bool bridged = att->kind == NET_BRIDGED;
	const char *what = bridged ? "bridge" : "TAP interface";
	struct ifreq ifr = { 0 };
	struct tap *t;
	int hdr = TAP_HDR;

	if (!att->name || !*att->name || strlen(att->name) >= IFNAMSIZ)
		return err_set(err, KEEL_ERR_INVALID, "%s: bad interface name '%s'", what,
			       att->name ? att->name : ""), NULL;
	t = calloc(1, sizeof(*t));
	if (t)
		t->buf = malloc(NET_MAX_FRAME + TAP_HDR);
	if (!t || !t->buf) {
		free(t);
		return err_set(err, KEEL_ERR_NOMEM, "%s '%s': out of memory", what, att->name), NULL;
	}
	t->be.ops = &tap_ops;
	t->be.vnet_hdr = true;
	/* TUNSETIFF would create a missing one: a typo must not become a new interface. */
	if (!bridged && !if_nametoindex(att->name)) {
		err_set(err, KEEL_ERR_NOT_FOUND,
			"TAP interface '%s' does not exist (create it: ip tuntap add dev %s mode tap; or use bridge=BRIDGE, for which keel creates one)",
			att->name, att->name);
		t->fd = -1;
		goto fail;
	}
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		int e = errno;

		if (e == EPERM || e == EACCES)
			cap_error(err, what, att->name);
		else
			err_errno(err, err_code_from_errno(e), e, "%s '%s': cannot open /dev/net/tun",
				  what, att->name);
		goto fail;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridged ? "keel%d" : att->name);
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;

		if (e == EPERM || e == EACCES)
			cap_error(err, what, att->name);
		else if (e == EBUSY)
			err_set(err, KEEL_ERR_STATE, "TAP interface '%s' is in use by another process",
				att->name);
		else if (e == EINVAL && !bridged)
			err_set(err, KEEL_ERR_INVALID,
				"'%s' cannot be attached as a TAP interface (it exists and is not a TAP with these flags)",
				att->name);
		else
			err_errno(err, err_code_from_errno(e), e, "%s '%s': TUNSETIFF failed", what,
				  att->name);
		goto fail;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(t->fd, TUNSETOFFLOAD, 0UL) < 0) {
		err_errno(err, KEEL_ERR_UNSUPPORTED, errno,
			  "TAP interface '%s': cannot set up virtio-net headers", t->ifname);
		goto fail;
	}
	if (bridged && join_bridge(t, att->name, err) < 0)
		goto fail;
	log_msg(log, KEEL_LOG_DEBUG, "%s: TAP interface '%s'%s%s", name, t->ifname,
	       bridged ? " on bridge " : "", bridged ? att->name : "");
	return &t->be;
fail:
	tap_destroy(&t->be);
	return NULL;
}
