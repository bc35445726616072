// SPDX-License-Identifier: MIT
/* Configuration objects for network devices and their attachments. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/error.h"

static keel_network_attachment *att_new(enum net_kind kind, const char *name, keel_error **err)
{
	keel_network_attachment *att = calloc(1, sizeof(*att));

	if (att) {
		att->kind = kind;
		att->fd = -1;
		if (name && !(att->name = strdup(name))) {
			free(att);
			att = NULL;
		}
	}
	if (!att)
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a network attachment");
	return att;
}

keel_network_attachment *keel_nat_attachment_new(keel_error **err)
{
	return att_new(NET_NAT, NULL, err);
}

void keel_nat_attachment_set_subnet(keel_network_attachment *att, const char *cidr)
{
	char *n = cidr ? strdup(cidr) : NULL;

	if (cidr && !n)
		return;
	free(att->subnet);
	att->subnet = n;
}

void keel_nat_attachment_add_port_forward(keel_network_attachment *att, keel_net_protocol proto,
					  const char *host_addr, uint16_t host_port,
					  uint16_t guest_port)
{
	struct net_forward *n, f = { .proto = proto, .host_port = host_port,
				     .guest_port = guest_port };

	if (!host_addr)
		host_addr = "127.0.0.1";
	if (strlen(host_addr) >= sizeof(f.host_addr)) {
		att->bad_forward = true;        /* reported by validation */
		return;
	}
	strcpy(f.host_addr, host_addr);
	n = realloc(att->forwards, (att->nr_forwards + 1) * sizeof(*n));
	if (!n) {
		att->bad_forward = true;
		return;
	}
	att->forwards = n;
	att->forwards[att->nr_forwards++] = f;
}

static keel_network_attachment *named_att(enum net_kind kind, const char *what, const char *name,
					  keel_error **err)
{
	if (!name || !*name) {
		err_set(err, KEEL_ERR_INVALID, "%s: no name given", what);
		return NULL;
	}
	return att_new(kind, name, err);
}

keel_network_attachment *keel_tap_attachment_new(const char *ifname, keel_error **err)
{
	return named_att(NET_TAP, "TAP attachment", ifname, err);
}

keel_network_attachment *keel_bridged_attachment_new(const char *bridge, keel_error **err)
{
	return named_att(NET_BRIDGED, "bridged attachment", bridge, err);
}

keel_network_attachment *keel_unix_socket_attachment_new(const char *path, keel_error **err)
{
	return named_att(NET_UNIX, "Unix socket attachment", path, err);
}

keel_network_attachment *keel_socket_attachment_new(int fd, keel_net_framing framing,
						    keel_error **err)
{
	keel_network_attachment *att;
	int dup_fd;

	if (framing != KEEL_NET_DGRAM && framing != KEEL_NET_STREAM) {
		err_set(err, KEEL_ERR_INVALID, "socket attachment: unknown framing %d", framing);
		return NULL;
	}
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0) {
		err_errno(err, KEEL_ERR_INVALID, errno, "socket attachment: descriptor %d", fd);
		return NULL;
	}
	att = att_new(NET_SOCKET, NULL, err);
	if (!att) {
		close(dup_fd);
		return NULL;
	}
	att->fd = dup_fd;
	att->framing = framing;
	return att;
}

void keel_network_attachment_free(keel_network_attachment *att)
{
	if (!att)
		return;
	if (att->fd >= 0)
		close(att->fd);
	free(att->subnet);
	free(att->forwards);
	free(att->name);
	free(att);
}

keel_network_attachment *net_attachment_dup(const keel_network_attachment *src, keel_error **err)
{
	keel_network_attachment *att = att_new(src->kind, src->name, err);

	if (!att)
		return NULL;
	att->framing = src->framing;
	att->bad_forward = src->bad_forward;
	if (src->subnet && !(att->subnet = strdup(src->subnet)))
		goto oom;
	if (src->nr_forwards) {
		att->forwards = malloc(src->nr_forwards * sizeof(*att->forwards));
		if (!att->forwards)
			goto oom;
		memcpy(att->forwards, src->forwards, src->nr_forwards * sizeof(*att->forwards));
		att->nr_forwards = src->nr_forwards;
	}
	if (src->fd >= 0 && (att->fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		err_errno(err, KEEL_ERR_IO, errno, "cannot duplicate the network socket");
		keel_network_attachment_free(att);
		return NULL;
	}
	return att;
oom:
	keel_network_attachment_free(att);
	err_set(err, KEEL_ERR_NOMEM, "out of memory copying a network attachment");
	return NULL;
}

int nat_subnet_parse(const char *cidr, const char *what, struct in_addr *net,
		     struct in_addr *mask, keel_error **err)
{
	char addr[32];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;
	char *end;
	long bits;

	if (!slash || (size_t)(slash - cidr) >= sizeof(addr))
		return err_set(err, KEEL_ERR_INVALID, "%s: subnet '%s' is not A.B.C.D/N", what, cidr);
	memcpy(addr, cidr, slash - cidr);
	addr[slash - cidr] = '\0';
	errno = 0;
	bits = strtol(slash + 1, &end, 10);
	/* The guest is the network's .15: a /28 would make it the broadcast. */
	if (inet_pton(AF_INET, addr, &a) != 1 || errno || *end || end == slash + 1 || bits < 8 ||
	    bits > 27)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: subnet '%s' is not A.B.C.D/N with 8 <= N <= 27 (the guest gets host .15)",
			       what, cidr);
	mask->s_addr = htonl(~0u << (32 - bits));
	net->s_addr = a.s_addr & mask->s_addr;
	return 0;
}

int net_forward_check(const struct net_forward *f, const char *what, bool need_guest_port,
		      keel_error **err)
{
	struct in_addr a;

	if (f->proto != KEEL_NET_TCP && f->proto != KEEL_NET_UDP)
		return err_set(err, KEEL_ERR_INVALID, "%s: unknown port forward protocol %d", what,
			       (int)f->proto);
	if (inet_pton(AF_INET, f->host_addr, &a) != 1)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: port forward host address '%s' is not an IPv4 address", what,
			       f->host_addr);
	if (!f->host_port || (need_guest_port && !f->guest_port))
		return err_set(err, KEEL_ERR_INVALID, "%s: port forward with port 0 (%u -> %u)", what,
			       f->host_port, f->guest_port);
	return 0;
}

int net_attachment_validate(const keel_network_attachment *att, const char *what,
			    keel_error **err)
{
	if (att->bad_forward)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: a port forward has an invalid host address or could not be stored",
			       what);
	if (att->subnet) {
		struct in_addr net, mask;

		if (nat_subnet_parse(att->subnet, what, &net, &mask, err) < 0)
			return -1;
	}
	for (int i = 0; i < att->nr_forwards; i++) {
		const struct net_forward *f = &att->forwards[i];

		if (net_forward_check(f, what, true, err) < 0)
			return -1;
		for (int j = 0; j < i; j++)
			if (att->forwards[j].proto == f->proto &&
			    att->forwards[j].host_port == f->host_port &&
			    !strcmp(att->forwards[j].host_addr, f->host_addr))
				return err_set(err, KEEL_ERR_INVALID,
					       "%s: host port %s %s:%u is forwarded twice", what,
					       f->proto == KEEL_NET_TCP ? "tcp" : "udp",
					       f->host_addr, f->host_port);
	}
	if ((att->kind == NET_TAP || att->kind == NET_BRIDGED) && strlen(att->name) >= IFNAMSIZ)
		return err_set(err, KEEL_ERR_INVALID, "%s: interface name '%s' is longer than %d bytes",
			       what, att->name, IFNAMSIZ - 1);
	if (att->kind == NET_NAT && att->name)
		return err_set(err, KEEL_ERR_INVALID, "%s: NAT takes no name", what);
	return 0;
}

/* ---- devices ---- */

keel_network_device *keel_virtio_network_device_new(keel_network_attachment *att, keel_error **err)
{
	keel_network_device *dev;

	if (!att) {
		err_set(err, KEEL_ERR_INVALID, "virtio-net: no network attachment given");
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		keel_network_attachment_free(att);
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a virtio-net device");
		return NULL;
	}
	dev->att = att;
	return dev;
}

void keel_virtio_network_device_set_mac(keel_network_device *dev, const uint8_t mac[6])
{
	memcpy(dev->mac, mac, 6);
	dev->has_mac = true;
}

void keel_network_device_free(keel_network_device *dev)
{
	if (!dev)
		return;
	keel_network_attachment_free(dev->att);
	free(dev);
}

keel_network_device *net_device_dup(const keel_network_device *src, keel_error **err)
{
	keel_network_attachment *att = net_attachment_dup(src->att, err);
	keel_network_device *dev = att ? keel_virtio_network_device_new(att, err) : NULL;

	if (dev) {
		memcpy(dev->mac, src->mac, 6);
		dev->has_mac = src->has_mac;
	}
	return dev;
}
