// SPDX-License-Identifier: MIT
/* The vCPU run loop: KVM_RUN, exits dispatched to the buses, stop/pause. */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/devctx.h"
#include "core/thread.h"
#include "kvm/kvm.h"
#include "x86/vcpu.h"
#include "x86/x86.h"

/*
 * The signal that interrupts KVM_RUN.  Its handler does nothing: delivery
 * alone makes the ioctl return EINTR.  Documented in docs/api.md.
 */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 6)

static void kick_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void install_kick_handler(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

int vcpu_init(struct vcpu *vcpu, struct kvm *kvm, struct devctx *ctx, unsigned int id,
	      const struct vcpu_ops *ops, void *owner, keel_error **err)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->kvm = kvm;
	vcpu->ctx = ctx;
	vcpu->ops = ops;
	vcpu->owner = owner;
	vcpu->id = id;
	vcpu->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_CREATE_VCPU %u failed", id);
	vcpu->run_size = kvm->run_size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return err_errno(err, KEEL_ERR_KVM, errno, "cannot map vCPU %u's run area", id);
	}
	pthread_once(&kick_once, install_kick_handler);
	return x86_vcpu_setup(kvm, vcpu->fd, id, ctx->nr_cpus, err);
}

void vcpu_fini(struct vcpu *vcpu)
{
	vcpu_join(vcpu);
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd > 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static void vcpu_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	for (uint32_t i = 0; i < run->io.count; i++) {
		bus_access(vcpu->ctx->pio, run->io.port, data, run->io.size,
			   run->io.direction == KVM_EXIT_IO_OUT);
		data += run->io.size;
	}
}

static void vcpu_fail(struct vcpu *vcpu, keel_stop_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void vcpu_fail(struct vcpu *vcpu, keel_stop_reason reason, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	devctx_request_stop(vcpu->ctx, reason, x86_vcpu_error(vcpu->fd, vcpu->ctx->mem, what));
}

static void vcpu_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[256];
	int n;

	n = snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
		     run->internal.suberror,
		     run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
		     " (instruction emulation failed)" : "");
	for (uint32_t i = 0; i < run->internal.ndata && i < 4 && n < (int)sizeof(what); i++)
		n += snprintf(what + n, sizeof(what) - n, "%s0x%llx", i ? " " : ", data ",
			      (unsigned long long)run->internal.data[i]);
	vcpu_fail(vcpu, KEEL_STOP_INTERNAL_ERROR, "%s", what);
}

static void vcpu_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		devctx_request_stop(vcpu->ctx, KEEL_STOP_POWEROFF, NULL);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		devctx_request_stop(vcpu->ctx, KEEL_STOP_RESET, NULL);
		break;
	default:
		vcpu_fail(vcpu, KEEL_STOP_INTERNAL_ERROR, "guest reported system event %u",
			  vcpu->run->system_event.type);
	}
}

static const char *exit_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO", [KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT", [KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN", [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY", [KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR", [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI", [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_OSI] = "OSI", [KVM_EXIT_WATCHDOG] = "WATCHDOG",
		[KVM_EXIT_EPR] = "EPR", [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI", [KVM_EXIT_HYPERV] = "HYPERV",
		[KVM_EXIT_X86_RDMSR] = "X86_RDMSR", [KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
		[KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
		[KVM_EXIT_X86_BUS_LOCK] = "X86_BUS_LOCK",
	};

	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "?";
}

/* Handles one exit; returns false when the vCPU must stop running. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		bus_access(vcpu->ctx->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			   run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_HLT:      /* only without in-kernel LAPIC; re-entering waits */
		return true;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fail(vcpu, KEEL_STOP_TRIPLE_FAULT, "vCPU %u shut down (triple fault)", vcpu->id);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_fail(vcpu, KEEL_STOP_INTERNAL_ERROR,
			  "KVM could not enter the guest on vCPU %u (hardware entry failure reason 0x%llx)",
			  vcpu->id,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_internal_error(vcpu);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_system_event(vcpu);
		return false;
	default:
		/* Exits keel never enables (MSR filters, dirty ring, Hyper-V...). */
		vcpu_fail(vcpu, KEEL_STOP_INTERNAL_ERROR,
			  "unexpected KVM exit reason %u (KVM_EXIT_%s) on vCPU %u",
			  run->exit_reason, exit_reason_name(run->exit_reason), vcpu->id);
		return false;
	}
}

/* One run: KVM_RUN until the VM ends the run or an exit ends it. */
static void vcpu_run(struct vcpu *vcpu)
{
	/* A kick that came between runs asked nothing of this one. */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&vcpu->stuck_query, false, __ATOMIC_SEQ_CST);
	while (vcpu->ops->wait_runnable(vcpu->owner)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				if (__atomic_exchange_n(&vcpu->stuck_query, false, __ATOMIC_SEQ_CST))
					vcpu->ops->stuck(vcpu->owner, vcpu->id, x86_vcpu_stuck(vcpu->fd));
				continue;
			}
			vcpu_fail(vcpu, KEEL_STOP_INTERNAL_ERROR, "KVM_RUN failed on vCPU %u: %s",
				  vcpu->id, strerror(errno));
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	unsigned int gen = 0;
	sigset_t set;

	/* Born with every signal blocked (thread_spawn): only the kick comes in. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (vcpu->ops->wait_run(vcpu->owner, &gen)) {
		vcpu_run(vcpu);
		vcpu->ops->left(vcpu->owner);
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu, int sandbox, keel_error **err)
{
	char name[16];
	const struct thread_spec spec = { .name = name, .sandbox = sandbox, .cls = SANDBOX_VCPU };

	snprintf(name, sizeof(name), "keel-vcpu%u", vcpu->id);
	if (thread_spawn(&vcpu->thread, &spec, vcpu_thread, vcpu, err) < 0) {
		err_prefix(err, "vCPU %u", vcpu->id);
		return -1;
	}
	vcpu->thread_live = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->thread_live)
		return;
	/* Covers the window between checking requests and entering KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_query_stuck(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->stuck_query, true, __ATOMIC_SEQ_CST);
	vcpu_kick(vcpu);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (!vcpu->thread_live)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_live = false;
}
