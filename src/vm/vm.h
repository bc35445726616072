/* SPDX-License-Identifier: MIT */
/*
 * The VM object behind keel_vm: its KVM descriptors, event thread, machine
 * and vCPUs, and the run state machine (vm/vm.c).  Private to vm/: devices
 * see their device context (core/devctx.h), never this.
 */
#ifndef KEEL_VM_VM_H
#define KEEL_VM_VM_H

#include <pthread.h>
#include <stdbool.h>

#include <keel/keel.h>

#include "config/config.h"
#include "kvm/kvm.h"

struct loop;
struct machine;
struct vcpu;

struct keel_vm {
	struct vm_config cfg;           /* private copy */
	struct kvm kvm;
	struct loop *loop;
	struct machine *machine;        /* memory, buses, devices (board/machine.c) */
	struct vcpu *vcpus;             /* cfg.cpus entries */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	keel_vm_state state;
	bool has_run;                   /* guest RAM holds a previous run */
	bool ended;                     /* the last run ended (keel_vm_wait) */
	keel_stop_reason reason;        /* why the current run ends */
	keel_error *stop_err;           /* details for abnormal ends */
	bool stop_requested;            /* vCPUs must leave KVM_RUN */
	bool pause_requested;
	unsigned int run_gen;           /* runs started: vCPU threads wait for the next */
	bool exiting;                   /* keel_vm_free(): vCPU threads end */
	int vcpus_running;              /* threads inside the run loop */
	int vcpus_parked;               /* of those, waiting while paused */
	int control_fd;                 /* eventfd: a run ended, handled on the loop */
	int state_fd;                   /* eventfd handed to the application */
	int notify_fd;                  /* eventfd: state changes to report */
	int stuck_fd;                   /* timerfd: time to ask whether the guest is stuck */
	unsigned int stuck_pending;     /* vCPUs yet to answer this round */
	unsigned int stuck_count;       /* of those that answered, stuck ones */
	int stuck_rounds;               /* consecutive rounds with every vCPU stuck */
	keel_vm_state notify_queue[32]; /* reported on the event thread, in order */
	int notify_head, notify_len;
	keel_vm_state_cb state_cb;
	void *state_cb_opaque;
};

#endif
