/* SPDX-License-Identifier: MIT */
/* A vCPU: its KVM descriptor, its thread and its run loop. */
#ifndef KEEL_KVM_VCPU_H
#define KEEL_KVM_VCPU_H

#include <pthread.h>
#include <stdbool.h>

#include "core/error.h"

struct keel_vm;
struct kvm_run;

struct vcpu {
	struct keel_vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	int run_size;
	pthread_t thread;
	bool thread_live;       /* started and not yet joined */
};

int vcpu_init(struct vcpu *vcpu, struct keel_vm *vm, unsigned int id, keel_error **err);
void vcpu_fini(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu, keel_error **err);
/* Makes the vCPU leave KVM_RUN soon (it then looks at the VM's requests). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

#endif
