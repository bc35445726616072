/* SPDX-License-Identifier: MIT */
/* Copying and validating configurations (config/). */
#ifndef KEEL_CONFIG_CONFIG_H
#define KEEL_CONFIG_CONFIG_H

#include "config/objects.h"

/* Deep copy (descriptors are duplicated); on failure `dst` is left empty. */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src, keel_error **err);
void vm_config_fini(struct vm_config *cfg);
int vm_config_validate(const struct vm_config *cfg, keel_error **err);

struct keel_serial_attachment *serial_attachment_dup(const struct keel_serial_attachment *src,
						     keel_error **err);

/* UEFI (config/efi.c): firmware, store and their fit; a flash volume file's size. */
int efi_validate(const struct keel_boot_loader *bl, keel_error **err);
int efi_volume_check(const char *what, const char *path, bool writable, uint64_t *size,
		     keel_error **err);

/* Device configurations (config/devices.c). */
int dev_list_add(struct dev_list *l, void *item);
int devices_copy(struct vm_config *dst, const struct vm_config *src, keel_error **err);
void devices_fini(struct vm_config *cfg);
int devices_validate(const struct vm_config *cfg, keel_error **err);

/* Network configuration objects (config/network.c). */
struct keel_network_attachment *net_attachment_dup(const struct keel_network_attachment *src,
						   keel_error **err);
int net_attachment_validate(const struct keel_network_attachment *att, const char *what,
			    keel_error **err);
/*
 * A port forward's protocol, IPv4 host address and ports (the guest port
 * may be 0 where it is not used: removing a forward).  `what` names the
 * device in the message.
 */
int net_forward_check(const struct net_forward *f, const char *what, bool need_guest_port,
		      keel_error **err);
struct keel_network_device *net_device_dup(const struct keel_network_device *src,
					   keel_error **err);
/* A NAT subnet "A.B.C.D/N" (8 <= N <= 27) into network and mask. */
struct in_addr;
int nat_subnet_parse(const char *cidr, const char *what, struct in_addr *net,
		     struct in_addr *mask, keel_error **err);

#endif
