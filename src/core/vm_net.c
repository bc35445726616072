// SPDX-License-Identifier: MIT
/*
 * The network devices of a VM at run time (keel.h, "devices of a running
 * VM").  Each call finds the NIC and hands the request to its I/O thread
 * (virtio/net.c), which serialises them: these are safe from any thread,
 * in any VM state (from a log callback on the NIC's own thread they run
 * directly).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/vm.h"
#include "virtio/net.h"

static struct virtio_net *find_nic(keel_vm *vm, unsigned int index, keel_error **err)
{
	if (!vm)
		return err_set(err, KEEL_ERR_INVALID, "no VM given"), NULL;
	if (index >= (unsigned int)vm->nr_nics || index >= VM_MAX_NICS || !vm->nics[index])
		return err_set(err, KEEL_ERR_INVALID, "no network device %u (the VM has %d)", index,
			       vm->nr_nics), NULL;
	return vm->nics[index];
}

int keel_vm_set_network_attachment(keel_vm *vm, unsigned int index, keel_network_attachment *att,
				   keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);
	char what[32];
	int rc = -1;

	if (!n)
		goto out;
	if (!att) {
		err_set(err, KEEL_ERR_INVALID, "network device %u: no attachment given", index);
		goto out;
	}
	snprintf(what, sizeof(what), "network device %u", index);
	if (net_attachment_validate(att, what, err) < 0)
		goto out;
	rc = virtio_net_set_attachment(n, att, err);
out:
	keel_network_attachment_free(att);
	return rc;
}

int keel_vm_set_network_link(keel_vm *vm, unsigned int index, bool up, keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);

	return n ? virtio_net_set_link(n, up, err) : -1;
}

static int make_forward(struct net_forward *f, keel_net_protocol proto, const char *host_addr,
			uint16_t host_port, uint16_t guest_port, keel_error **err)
{
	struct in_addr a;

	if (!host_addr)
		host_addr = "127.0.0.1";
	if (proto != KEEL_NET_TCP && proto != KEEL_NET_UDP)
		return err_set(err, KEEL_ERR_INVALID, "unknown port forward protocol %d", (int)proto);
	if (strlen(host_addr) >= sizeof(f->host_addr) || inet_pton(AF_INET, host_addr, &a) != 1)
		return err_set(err, KEEL_ERR_INVALID,
			       "port forward host address '%s' is not an IPv4 address", host_addr);
	if (!host_port)
		return err_set(err, KEEL_ERR_INVALID, "port forward with host port 0");
	memset(f, 0, sizeof(*f));
	f->proto = proto;
	strcpy(f->host_addr, host_addr);
	f->host_port = host_port;
	f->guest_port = guest_port;
	return 0;
}

int keel_vm_add_port_forward(keel_vm *vm, unsigned int index, keel_net_protocol proto,
			     const char *host_addr, uint16_t host_port, uint16_t guest_port,
			     keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);
	struct net_forward f;

	if (!n || make_forward(&f, proto, host_addr, host_port, guest_port, err) < 0)
		return -1;
	if (!guest_port)
		return err_set(err, KEEL_ERR_INVALID, "port forward with guest port 0");
	return virtio_net_forward(n, true, &f, err);
}

int keel_vm_remove_port_forward(keel_vm *vm, unsigned int index, keel_net_protocol proto,
				const char *host_addr, uint16_t host_port, keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);
	struct net_forward f;

	if (!n || make_forward(&f, proto, host_addr, host_port, 0, err) < 0)
		return -1;
	return virtio_net_forward(n, false, &f, err);
}

int keel_vm_get_network_stats(keel_vm *vm, unsigned int index, uint64_t *tx_frames,
			      uint64_t *rx_frames, uint64_t *dropped, keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);

	return n ? virtio_net_get_stats(n, tx_frames, rx_frames, dropped, err) : -1;
}
