/* SPDX-License-Identifier: MIT */
/* The VM object as devices and the vCPU loop see it. */
#ifndef KEEL_CORE_VM_H
#define KEEL_CORE_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <keel/keel.h>

#include "core/config.h"
#include "kvm/irq.h"
#include "kvm/kvm.h"
#include "kvm/mem.h"

struct bus;
struct loop;
struct vcpu;
struct virtio_net;
struct x86_platform_state;
struct pci_host;

#define VM_MAX_NICS CFG_MAX_NICS                  /* network devices per VM */

/*
 * Every emulated device embeds one of these; the VM resets the devices on a
 * guest reset and destroys them with the VM, in reverse order of creation.
 */
struct vdev {
	const char *name;
	void (*reset)(struct vdev *dev);    /* may be NULL */
	void (*destroy)(struct vdev *dev);
	struct vdev *next;
};

struct keel_vm {
	struct vm_config cfg;           /* private copy */
	struct kvm kvm;
	struct mem mem;
	struct bus *pio;
	struct bus *mmio;
	struct loop *loop;
	struct irq_routing irq;         /* KVM GSI routes (MSI) */
	struct pci_host *pci;
	unsigned int nr_virtio_mmio;    /* virtio-mmio devices attached (virtio/mmio.c) */
	struct vdev *devs;              /* newest first */
	struct vcpu *vcpus;             /* cfg.cpus entries */
	struct virtio_net *nics[VM_MAX_NICS];   /* by index (virtio/net.c); NULL once destroyed */
	int nr_nics;

	struct x86_platform_state *power_on;  /* irqchip/PIT state for resets */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	keel_vm_state state;
	bool has_run;                   /* guest RAM holds a previous run */
	bool ended;                     /* the last run ended (keel_vm_wait) */
	keel_stop_reason reason;        /* why the current run ends */
	keel_error *stop_err;           /* details for abnormal ends */
	bool stop_requested;            /* vCPUs must leave KVM_RUN */
	bool pause_requested;
	int vcpus_running;              /* threads inside the run loop */
	int vcpus_parked;               /* of those, waiting while paused */
	int control_fd;                 /* eventfd: a run ended, handled on the loop */
	int state_fd;                   /* eventfd handed to the application */
	int notify_fd;                  /* eventfd: state changes to report */
	keel_vm_state notify_queue[32]; /* reported on the event thread, in order */
	int notify_head, notify_len;
	keel_vm_state_cb state_cb;
	void *state_cb_opaque;
};

void vm_add_vdev(struct keel_vm *vm, struct vdev *dev);
/* Sends a message to the application's log callback, if any. */
void vm_log(struct keel_vm *vm, keel_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * For messages a guest can trigger at will: at most `burst` (0 counts as 1)
 * a second.  One owner thread per limiter.
 */
struct log_ratelimit {
	unsigned int burst;
	uint64_t window_ns;     /* start of the current one-second window */
	unsigned int count;     /* logged in this window */
	unsigned int suppressed;
};
/* vm_log() through a limiter; the next message logged says how many it dropped. */
void vm_log_limited(struct keel_vm *vm, struct log_ratelimit *rl, keel_log_level level,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Drives an interrupt line (GSI) of the in-kernel irqchip. */
void vm_irq_line(struct keel_vm *vm, unsigned int gsi, int level);
/*
 * Ends the current run with `reason` (first caller wins); `detail` is kept
 * for keel_vm_wait() and ownership passes to the VM.  Safe from any thread.
 */
void vm_request_stop(struct keel_vm *vm, keel_stop_reason reason, keel_error *detail);

#endif
