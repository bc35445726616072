/* SPDX-License-Identifier: MIT */
/* A vCPU: its KVM descriptor, its thread and its run loop. */
#ifndef KEEL_X86_VCPU_H
#define KEEL_X86_VCPU_H

#include <pthread.h>
#include <stdbool.h>

#include "core/error.h"

struct devctx;
struct kvm;
struct kvm_run;

/*
 * What the VM core answers for its vCPU threads: the run state machine
 * stays in the core (vm/vm.c), the run loop here.
 */
struct vcpu_ops {
	/*
	 * Between runs: blocks until the run after `*gen` starts (true, *gen
	 * updated) or the VM goes away (false: the thread ends).
	 */
	bool (*wait_run)(void *owner, unsigned int *gen);
	/* Blocks while the VM is paused; false when the vCPU must leave its loop. */
	bool (*wait_runnable)(void *owner);
	/* The thread leaves the run (the last one to leave ends it). */
	void (*left)(void *owner);
	/* Answer to vcpu_query_stuck(): whether the vCPU waits for good (x86_vcpu_stuck). */
	void (*stuck)(void *owner, unsigned int id, bool stuck);
};

struct vcpu {
	struct kvm *kvm;
	struct devctx *ctx;     /* buses for exits, guest memory, stop requests */
	const struct vcpu_ops *ops;
	void *owner;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	int run_size;
	pthread_t thread;
	bool thread_live;       /* started and not yet joined */
	bool stuck_query;       /* vcpu_query_stuck() asked (atomic) */
};

/* vCPU `id` at power-on (x86_vcpu_setup); its thread starts in vcpu_start(). */
int vcpu_init(struct vcpu *vcpu, struct kvm *kvm, struct devctx *ctx, unsigned int id,
	      const struct vcpu_ops *ops, void *owner, keel_error **err);
/* Joins the thread (ops->wait_run must have said false) and releases the vCPU. */
void vcpu_fini(struct vcpu *vcpu);
/*
 * Starts the vCPU's thread (keel-vcpuN, sandboxed per `sandbox`), which
 * lives until the VM goes: it waits in ops->wait_run between runs, so no
 * thread is started when the guest reboots (a filtered thread could not).
 */
int vcpu_start(struct vcpu *vcpu, int sandbox, keel_error **err);
/* Makes the vCPU leave KVM_RUN soon (it then looks at the VM's requests). */
void vcpu_kick(struct vcpu *vcpu);
/* Kicks the vCPU, which then answers through ops->stuck from its thread. */
void vcpu_query_stuck(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

#endif
