// SPDX-License-Identifier: MIT
/* Turns a stopped vCPU's state into an error message a person can act on. */
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm/mem.h"
#include "x86/x86.h"

#define CODE_BYTES 16

/* Appends the instruction bytes at CS:RIP, translated by KVM. */
static int describe_code(int fd, const struct mem *mem, const struct kvm_regs *regs,
			 const struct kvm_sregs *sregs, char *buf, size_t size)
{
	struct kvm_translation tr = { .linear_address = sregs->cs.base + regs->rip };
	const uint8_t *code;
	int n;

	if (ioctl(fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return snprintf(buf, size, "; code at RIP: not mapped");
	n = snprintf(buf, size, "; code at RIP (gpa 0x%llx):",
		     (unsigned long long)tr.physical_address);
	for (int i = 0; i < CODE_BYTES && n < (int)size; i++) {
		code = mem_ptr(mem, tr.physical_address + i, 1);
		if (!code)
			break;
		n += snprintf(buf + n, size - n, " %02x", *code);
	}
	return n;
}

keel_error *x86_vcpu_error(int fd, const struct mem *mem, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	keel_error *err = NULL;
	char buf[1024];
	int n;

	if (ioctl(fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(fd, KVM_GET_SREGS, &sregs) < 0) {
		err_set(&err, KEEL_ERR_GUEST, "%s (vCPU registers unavailable)", what);
		return err;
	}
	n = snprintf(buf, sizeof(buf),
		     "RIP=0x%llx RSP=0x%llx RFLAGS=0x%llx RAX=0x%llx RBX=0x%llx RCX=0x%llx RDX=0x%llx "
		     "RSI=0x%llx RDI=0x%llx CS=0x%x(%s) CR0=0x%llx CR2=0x%llx CR3=0x%llx CR4=0x%llx EFER=0x%llx",
		     (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
		     (unsigned long long)regs.rflags, (unsigned long long)regs.rax,
		     (unsigned long long)regs.rbx, (unsigned long long)regs.rcx,
		     (unsigned long long)regs.rdx, (unsigned long long)regs.rsi,
		     (unsigned long long)regs.rdi, sregs.cs.selector,
		     sregs.cs.l ? "64-bit" : sregs.cs.db ? "32-bit" : "16-bit",
		     (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr2,
		     (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
		     (unsigned long long)sregs.efer);
	if (n < (int)sizeof(buf))
		describe_code(fd, mem, &regs, &sregs, buf + n, sizeof(buf) - n);
	err_set(&err, KEEL_ERR_GUEST, "%s: %s", what, buf);
	return err;
}
