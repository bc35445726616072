// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm/kvm.h"
#include "x86/layout.h"

struct kvm_cap_need {
	int cap;
	const char *name;
	const char *why;
};

static const struct kvm_cap_need needed_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel interrupt controllers" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel timer (PIT)" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 guests" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID set-up" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "pausing vCPUs" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "multiprocessor start-up" },
};

static int kvm_get_cpuid(struct kvm *kvm, keel_error **err)
{
	for (int nent = 64; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

		if (!c)
			return err_set(err, KEEL_ERR_NOMEM, "out of memory reading CPUID");
		c->nent = nent;
		if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_SUPPORTED_CPUID failed");
	}
	return err_set(err, KEEL_ERR_KVM, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

int kvm_open(struct kvm *kvm, keel_error **err)
{
	int ret;

	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	kvm->sys_fd = open(KVM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		int e = errno;

		if (e == ENOENT || e == ENODEV || e == ENXIO)
			return err_errno(err, KEEL_ERR_KVM, e,
					 "KVM is not available: cannot open %s (is the kvm module loaded and does this machine support virtualization?)",
					 KVM_DEVICE_PATH);
		return err_errno(err, e == EACCES ? KEEL_ERR_PERMISSION : KEEL_ERR_KVM, e,
				 "cannot open %s%s", KVM_DEVICE_PATH,
				 e == EACCES ? " (add the user to the 'kvm' group)" : "");
	}
	ret = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		err_set(err, KEEL_ERR_KVM, "%s speaks KVM API version %d, keel needs %d",
			KVM_DEVICE_PATH, ret, KVM_API_VERSION);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(needed_caps) / sizeof(needed_caps[0]); i++) {
		if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, needed_caps[i].cap) <= 0) {
			err_set(err, KEEL_ERR_KVM, "KVM lacks %s, which keel needs for %s",
				needed_caps[i].name, needed_caps[i].why);
			goto fail;
		}
	}
	kvm->run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size <= 0) {
		err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_VCPU_MMAP_SIZE failed");
		goto fail;
	}
	ret = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (ret <= 0)
		ret = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = ret > 0 ? (unsigned int)ret : 4;     /* KVM's documented default */
	if (kvm_get_cpuid(kvm, err) < 0)
		goto fail;
	return 0;
fail:
	close(kvm->sys_fd);
	kvm->sys_fd = -1;
	return -1;
}

unsigned int kvm_phys_bits(const struct kvm *kvm)
{
	for (uint32_t i = 0; kvm->cpuid && i < kvm->cpuid->nent; i++)
		if (kvm->cpuid->entries[i].function == 0x80000008 &&
		    (kvm->cpuid->entries[i].eax & 0xff) >= 32)
			return kvm->cpuid->entries[i].eax & 0xff;
	return 36;      /* what the architecture promises without the leaf */
}

int kvm_create_vm(struct kvm *kvm, keel_error **err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;

	kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	if (kvm->vm_fd < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_CREATE_VM failed");
	if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_TSS_ADDR failed");
	if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_IDENTITY_MAP_ADDR failed");
	if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_CREATE_IRQCHIP failed");
	if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_CREATE_PIT2 failed");
	return 0;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	free(kvm->cpuid);
	kvm->cpuid = NULL;
	kvm->vm_fd = kvm->sys_fd = -1;
}

int kvm_set_memory(struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
		   bool read_only, keel_error **err)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = read_only ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno,
				 "KVM_SET_USER_MEMORY_REGION slot %u (0x%llx+0x%llx) failed", slot,
				 (unsigned long long)gpa, (unsigned long long)size);
	return 0;
}

int kvm_irq_line(struct kvm *kvm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (kvm->vm_fd < 0)
		return -1;
	return ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq);
}
