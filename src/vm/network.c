// SPDX-License-Identifier: MIT
/*
 * The network devices of a VM at run time (keel.h, "devices of a running
 * VM").  Each call finds the NIC in the machine's registry and hands the
 * request to its I/O thread (virtio/net.c), which serialises them: these
 * are safe from any thread, in any VM state (from a log callback on the
 * NIC's own thread they run directly).
 */
#include <stdio.h>
#include <string.h>

#include "board/machine.h"
#include "config/config.h"
#include "core/error.h"
#include "core/sandbox.h"
#include "virtio/net.h"
#include "vm/vm.h"

static struct virtio_net *find_nic(keel_vm *vm, unsigned int index, keel_error **err)
{
	if (!vm)
		return err_set(err, KEEL_ERR_INVALID, "no VM given"), NULL;
	return machine_nic(vm->machine, index, err);
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
	/* The new back end opens sockets or a TAP, maybe loads libslirp. */
	if (sandbox_refuse_filtered("keel_vm_set_network_attachment()", err) < 0)
		goto out;
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

/* A forward as the configuration holds one, checked as validation checks them. */
static int make_forward(struct net_forward *f, unsigned int index, keel_net_protocol proto,
			const char *host_addr, uint16_t host_port, uint16_t guest_port,
			bool need_guest_port, keel_error **err)
{
	char what[32];

	snprintf(what, sizeof(what), "network device %u", index);
	if (!host_addr)
		host_addr = "127.0.0.1";
	if (strlen(host_addr) >= sizeof(f->host_addr))
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: port forward host address '%s' is not an IPv4 address", what,
			       host_addr);
	*f = (struct net_forward){ .proto = proto, .host_port = host_port,
				   .guest_port = guest_port };
	strcpy(f->host_addr, host_addr);
	return net_forward_check(f, what, need_guest_port, err);
}

int keel_vm_add_port_forward(keel_vm *vm, unsigned int index, keel_net_protocol proto,
			     const char *host_addr, uint16_t host_port, uint16_t guest_port,
			     keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);
	struct net_forward f;

	if (!n || make_forward(&f, index, proto, host_addr, host_port, guest_port, true, err) < 0)
		return -1;
	return virtio_net_forward(n, true, &f, err);
}

int keel_vm_remove_port_forward(keel_vm *vm, unsigned int index, keel_net_protocol proto,
				const char *host_addr, uint16_t host_port, keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);
	struct net_forward f;

	if (!n || make_forward(&f, index, proto, host_addr, host_port, 0, false, err) < 0)
		return -1;
	return virtio_net_forward(n, false, &f, err);
}

int keel_vm_get_network_stats(keel_vm *vm, unsigned int index, uint64_t *tx_frames,
			      uint64_t *rx_frames, uint64_t *dropped, keel_error **err)
{
	struct virtio_net *n = find_nic(vm, index, err);

	return n ? virtio_net_get_stats(n, tx_frames, rx_frames, dropped, err) : -1;
}
