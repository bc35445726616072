// SPDX-License-Identifier: MIT
/*
 * The VM object: creation from a configuration, the run state machine and
 * its notifications.  Locking: vm->lock protects the state fields; vCPU
 * threads park on vm->cond; the end of a run is handled on the VM's event
 * thread (control_fd), which is also where state callbacks run.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "boot/boot.h"
#include "bus/bus.h"
#include "core/loop.h"
#include "core/util.h"
#include "core/vm.h"
#include "dev/legacy.h"
#include "kvm/vcpu.h"
#include "pci/pci.h"
#include "virtio/devices.h"
#include "x86/layout.h"
#include "x86/x86.h"

#define KEEL_VERSION "0.1.0"

const char *keel_version(void)
{
	return KEEL_VERSION;
}

const char *keel_vm_state_name(keel_vm_state state)
{
	static const char *const names[] = {
		[KEEL_VM_STOPPED] = "stopped", [KEEL_VM_STARTING] = "starting",
		[KEEL_VM_RUNNING] = "running", [KEEL_VM_PAUSED] = "paused",
		[KEEL_VM_STOPPING] = "stopping", [KEEL_VM_ERROR] = "error",
	};

	if ((unsigned int)state < sizeof(names) / sizeof(names[0]))
		return names[state];
	return "unknown";
}

const char *keel_stop_reason_name(keel_stop_reason reason)
{
	static const char *const names[] = {
		[KEEL_STOP_NONE] = "none", [KEEL_STOP_POWEROFF] = "guest powered off",
		[KEEL_STOP_RESET] = "guest reset", [KEEL_STOP_TRIPLE_FAULT] = "triple fault",
		[KEEL_STOP_INTERNAL_ERROR] = "internal error",
		[KEEL_STOP_REQUESTED] = "stopped by request",
	};

	if ((unsigned int)reason < sizeof(names) / sizeof(names[0]))
		return names[reason];
	return "unknown";
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* Only fails when the counter would overflow: already signalled. */
	}
}

static void efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing pending. */
	}
}

/* Called with vm->lock held. */
static void vm_set_state(struct keel_vm *vm, keel_vm_state st)
{
	enum { QLEN = sizeof(vm->notify_queue) / sizeof(vm->notify_queue[0]) };

	if (vm->state == st)
		return;
	vm->state = st;
	if (vm->notify_len == QLEN) {   /* a callback this far behind sees the latest */
		vm->notify_head = (vm->notify_head + 1) % QLEN;
		vm->notify_len--;
	}
	vm->notify_queue[(vm->notify_head + vm->notify_len++) % QLEN] = st;
	efd_signal(vm->state_fd);
	efd_signal(vm->notify_fd);
	pthread_cond_broadcast(&vm->cond);
}

static void vm_notify_cb(void *opaque, uint32_t events)
{
	enum { QLEN = sizeof(((struct keel_vm *)0)->notify_queue) / sizeof(keel_vm_state) };
	struct keel_vm *vm = opaque;

	efd_drain(vm->notify_fd);
	for (;;) {
		keel_vm_state_cb cb;
		keel_vm_state st;
		void *cb_opaque;

		pthread_mutex_lock(&vm->lock);
		if (!vm->notify_len) {
			pthread_mutex_unlock(&vm->lock);
			return;
		}
		st = vm->notify_queue[vm->notify_head];
		vm->notify_head = (vm->notify_head + 1) % QLEN;
		vm->notify_len--;
		cb = vm->state_cb;
		cb_opaque = vm->state_cb_opaque;
		pthread_mutex_unlock(&vm->lock);
		if (cb)
			cb(vm, st, cb_opaque);
	}
}

void vm_log(struct keel_vm *vm, keel_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!vm->cfg.log_cb || level > vm->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm->cfg.log_cb(level, msg, vm->cfg.log_opaque);
}

void vm_log_limited(struct keel_vm *vm, struct log_ratelimit *rl, keel_log_level level,
		    const char *fmt, ...)
{
	uint64_t now;
	char msg[1024];
	va_list ap;

	if (!vm->cfg.log_cb || level > vm->cfg.log_level)
		return;
	now = (uint64_t)mono_ns();
	if (!rl->window_ns || now - rl->window_ns >= 1000000000ULL) {
		rl->window_ns = now;
		rl->count = 0;
	}
	if (rl->count >= (rl->burst ? rl->burst : 1)) {
		rl->suppressed++;
		return;
	}
	rl->count++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		vm_log(vm, level, "%s (%u similar message(s) suppressed)", msg, rl->suppressed);
	else
		vm_log(vm, level, "%s", msg);
	rl->suppressed = 0;
}

void vm_add_vdev(struct keel_vm *vm, struct vdev *dev)
{
	dev->next = vm->devs;
	vm->devs = dev;
}

void vm_irq_line(struct keel_vm *vm, unsigned int gsi, int level)
{
	kvm_irq_line(&vm->kvm, gsi, level);
}

/* Called with vm->lock held. */
static void vm_kick_all(struct keel_vm *vm)
{
	if (!vm->vcpus)
		return;
	for (unsigned int i = 0; i < vm->cfg.cpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

void vm_request_stop(struct keel_vm *vm, keel_stop_reason reason, keel_error *detail)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->reason == KEEL_STOP_NONE) {
		vm->reason = reason;
		vm->stop_err = detail;
		detail = NULL;
	}
	vm->stop_requested = true;
	vm_kick_all(vm);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	keel_error_free(detail);
}

/*
 * The kernel command line: the configured one, plus what the machine must
 * tell a Linux guest (virtio-mmio devices have no bus to be found on).
 */
static int vm_cmdline(struct keel_vm *vm, char *buf, size_t len, keel_error **err)
{
	size_t n = (size_t)snprintf(buf, len, "%s", vm->cfg.boot->cmdline);

	if (n >= len || virtio_mmio_cmdline(vm, buf + n, len - n) < 0)
		return err_set(err, KEEL_ERR_TOO_LARGE,
			       "kernel command line with the virtio-mmio devices exceeds %zu bytes",
			       len - 1);
	return 0;
}

/*
 * Puts guest RAM and the vCPUs in their power-on state with the boot
 * loader's image loaded.  `reload` is set when a previous run left state.
 */
static int vm_load(struct keel_vm *vm, bool reload, keel_error **err)
{
	const struct keel_boot_loader *bl = vm->cfg.boot;
	struct mp_pci_irq pci_irqs[PCI_MAX_SLOTS];
	struct boot_entry entry;
	char *cmdline;
	int ret;
	int nr_pci;

	if (reload) {
		mem_clear(&vm->mem);
		if (x86_platform_restore(vm, vm->power_on, err) < 0)
			return -1;
		for (struct vdev *d = vm->devs; d; d = d->next)
			if (d->reset)
				d->reset(d);
		for (unsigned int i = 0; i < vm->cfg.cpus; i++)
			if (x86_vcpu_setup(&vm->vcpus[i], vm->cfg.cpus, err) < 0)
				return -1;
	}
	x86_write_boot_tables(&vm->mem);
	nr_pci = pci_intx_routes(vm, pci_irqs, PCI_MAX_SLOTS);
	if (mptable_write(&vm->mem, vm->cfg.cpus, pci_irqs, nr_pci, err) < 0)
		return -1;
	cmdline = malloc(LAYOUT_CMDLINE_MAX);
	if (!cmdline)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory building the command line");
	ret = vm_cmdline(vm, cmdline, LAYOUT_CMDLINE_MAX, err);
	if (ret == 0)
		ret = boot_load_files(&vm->mem, bl->kernel, bl->initrd, cmdline, &entry, err);
	free(cmdline);
	if (ret < 0)
		return -1;
	if (x86_vcpu_set_entry(&vm->vcpus[0], &entry, err) < 0)
		return -1;
	for (unsigned int i = 1; i < vm->cfg.cpus; i++)
		if (x86_vcpu_set_waiting(&vm->vcpus[i], err) < 0)
			return -1;
	return 0;
}

/*
 * Starts every vCPU thread; called with vm->lock held and the run flags
 * cleared.  On failure the started threads are told to stop.
 */
static int vm_start_vcpus(struct keel_vm *vm, keel_error **err)
{
	vm->vcpus_running = (int)vm->cfg.cpus;
	for (unsigned int i = 0; i < vm->cfg.cpus; i++) {
		if (vcpu_start(&vm->vcpus[i], err) < 0) {
			vm->vcpus_running -= (int)(vm->cfg.cpus - i);
			vm->stop_requested = true;
			if (vm->reason == KEEL_STOP_NONE)
				vm->reason = KEEL_STOP_INTERNAL_ERROR;
			if (vm->vcpus_running == 0)
				efd_signal(vm->control_fd);
			return -1;
		}
	}
	return 0;
}

static void vm_clear_run_flags(struct keel_vm *vm)
{
	vm->stop_requested = false;
	vm->pause_requested = false;
	vm->reason = KEEL_STOP_NONE;
	keel_error_free(vm->stop_err);
	vm->stop_err = NULL;
	vm->ended = false;
}

/* Called with vm->lock held: the run is over. */
static void vm_end_run(struct keel_vm *vm)
{
	bool failed = vm->reason == KEEL_STOP_INTERNAL_ERROR ||
		      vm->reason == KEEL_STOP_TRIPLE_FAULT;

	vm->ended = true;
	vm->stop_requested = false;
	vm->pause_requested = false;
	vm_set_state(vm, failed ? KEEL_VM_ERROR : KEEL_VM_STOPPED);
}

/*
 * Runs on the event thread once every vCPU thread has left its loop:
 * restarts the guest after a reset if so configured, or ends the run.
 */
static void vm_collect(struct keel_vm *vm)
{
	keel_error *err = NULL;
	bool restart;

	pthread_mutex_lock(&vm->lock);
	if (vm->ended || vm->vcpus_running > 0 || vm->state == KEEL_VM_STARTING) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	pthread_mutex_unlock(&vm->lock);
	for (unsigned int i = 0; i < vm->cfg.cpus; i++)
		vcpu_join(&vm->vcpus[i]);

	pthread_mutex_lock(&vm->lock);
	restart = vm->cfg.reset_action == KEEL_RESET_RESTART && vm->state != KEEL_VM_STOPPING &&
		  (vm->reason == KEEL_STOP_RESET || vm->reason == KEEL_STOP_TRIPLE_FAULT);
	if (restart) {
		vm_clear_run_flags(vm);
		pthread_mutex_unlock(&vm->lock);
		if (vm_load(vm, true, &err) == 0) {
			pthread_mutex_lock(&vm->lock);
			if (!vm->stop_requested && vm_start_vcpus(vm, &err) == 0) {
				pthread_mutex_unlock(&vm->lock);
				return;
			}
			pthread_mutex_unlock(&vm->lock);
		}
		if (err)
			err_prefix(&err, "cannot restart the guest after a reset");
		pthread_mutex_lock(&vm->lock);
		if (vm->vcpus_running > 0) {
			/* Some threads started: the last one to leave ends the run. */
			pthread_mutex_unlock(&vm->lock);
			keel_error_free(err);
			return;
		}
		if (vm->reason == KEEL_STOP_NONE || vm->reason == KEEL_STOP_INTERNAL_ERROR) {
			vm->reason = err ? KEEL_STOP_INTERNAL_ERROR : KEEL_STOP_REQUESTED;
			keel_error_free(vm->stop_err);
			vm->stop_err = err;
			err = NULL;
		}
	}
	vm_end_run(vm);
	pthread_mutex_unlock(&vm->lock);
	keel_error_free(err);
}

static void vm_control_cb(void *opaque, uint32_t events)
{
	struct keel_vm *vm = opaque;

	efd_drain(vm->control_fd);
	vm_collect(vm);
}

static int make_efd(int *fd, keel_error **err)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "cannot create an eventfd");
	return 0;
}

static int vm_create_devices(struct keel_vm *vm, keel_error **err)
{
	if (irq_routing_init(&vm->irq, &vm->kvm, err) < 0 || pci_host_create(vm, err) < 0)
		return -1;
	for (int i = 0; i < vm->cfg.nr_serial; i++)
		if (uart_create(vm, i, vm->cfg.serial[i], err) < 0)
			return -1;
	if (i8042_create(vm, err) < 0 || rtc_create(vm, err) < 0 || port80_create(vm, err) < 0)
		return -1;
	for (int i = 0; i < vm->cfg.disks.nr; i++)
		if (virtio_blk_create(vm, vm->cfg.disks.items[i], err) < 0)
			return -1;
	for (int i = 0; i < vm->cfg.rngs.nr; i++)
		if (virtio_rng_create(vm, vm->cfg.rngs.items[i], err) < 0)
			return -1;
	for (int i = 0; i < vm->cfg.consoles.nr; i++)
		if (virtio_console_create(vm, vm->cfg.consoles.items[i], err) < 0)
			return -1;
	for (int i = 0; i < vm->cfg.nics.nr; i++)
		if (virtio_net_create(vm, i, vm->cfg.nics.items[i], err) < 0)
			return -1;
	return 0;
}

static int vm_create_memory(struct keel_vm *vm, keel_error **err)
{
	if (mem_init(&vm->mem, vm->cfg.mem_size, vm->cfg.hugepages, err) < 0)
		return -1;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		struct mem_region *r = &vm->mem.region[i];

		if (kvm_set_memory(&vm->kvm, (uint32_t)i, r->gpa, r->size, r->host, err) < 0)
			return -1;
	}
	return 0;
}

static int vm_init(struct keel_vm *vm, const keel_config *cfg, keel_error **err)
{
	if (vm_config_copy(&vm->cfg, &cfg->c, err) < 0)
		return -1;
	if (make_efd(&vm->control_fd, err) || make_efd(&vm->state_fd, err) ||
	    make_efd(&vm->notify_fd, err))
		return -1;
	if (kvm_open(&vm->kvm, err) < 0 || kvm_create_vm(&vm->kvm, err) < 0)
		return -1;
	if (vm_create_memory(vm, err) < 0)
		return -1;
	if (!(vm->pio = bus_new("port I/O", err)) || !(vm->mmio = bus_new("MMIO", err)))
		return -1;
	if (!(vm->loop = loop_new(err)) || loop_start(vm->loop, err) < 0)
		return -1;
	if (loop_add(vm->loop, vm->control_fd, EPOLLIN, vm_control_cb, vm, err) < 0 ||
	    loop_add(vm->loop, vm->notify_fd, EPOLLIN, vm_notify_cb, vm, err) < 0)
		return -1;
	if (vm_create_devices(vm, err) < 0)
		return -1;
	vm->vcpus = calloc(vm->cfg.cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating vCPUs");
	for (unsigned int i = 0; i < vm->cfg.cpus; i++) {
		vm->vcpus[i].fd = -1;
		if (vcpu_init(&vm->vcpus[i], vm, i, err) < 0)
			return -1;
	}
	if (!(vm->power_on = x86_platform_save(vm, err)))
		return -1;
	return vm_load(vm, false, err);
}

keel_vm *keel_vm_new(const keel_config *cfg, keel_error **err)
{
	pthread_condattr_t cattr;
	keel_vm *vm;

	if (!cfg) {
		err_set(err, KEEL_ERR_INVALID, "no configuration given");
		return NULL;
	}
	if (keel_config_validate(cfg, err) < 0)
		return NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a VM");
		return NULL;
	}
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm->mem.fd = -1;
	vm->control_fd = vm->state_fd = vm->notify_fd = -1;
	vm->state = KEEL_VM_STOPPED;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);   /* keel_vm_wait() deadlines */
	pthread_cond_init(&vm->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	if (vm_init(vm, cfg, err) < 0) {
		keel_vm_free(vm);
		return NULL;
	}
	return vm;
}

static bool vm_is_live(keel_vm_state st)
{
	return st == KEEL_VM_STARTING || st == KEEL_VM_RUNNING || st == KEEL_VM_PAUSED ||
	       st == KEEL_VM_STOPPING;
}

void keel_vm_free(keel_vm *vm)
{
	if (!vm)
		return;
	if (vm_is_live(keel_vm_get_state(vm)))
		keel_vm_stop(vm, NULL);
	if (vm->loop) {
		loop_del(vm->loop, vm->control_fd);
		loop_del(vm->loop, vm->notify_fd);
	}
	while (vm->devs) {
		struct vdev *d = vm->devs;

		vm->devs = d->next;
		d->destroy(d);
	}
	loop_free(vm->loop);
	if (vm->vcpus)
		for (unsigned int i = 0; i < vm->cfg.cpus; i++)
			vcpu_fini(&vm->vcpus[i]);
	free(vm->vcpus);
	x86_platform_state_free(vm->power_on);
	irq_routing_fini(&vm->irq);
	bus_free(vm->pio);
	bus_free(vm->mmio);
	mem_fini(&vm->mem);
	kvm_close(&vm->kvm);
	vm_config_fini(&vm->cfg);
	keel_error_free(vm->stop_err);
	if (vm->control_fd >= 0)
		close(vm->control_fd);
	if (vm->state_fd >= 0)
		close(vm->state_fd);
	if (vm->notify_fd >= 0)
		close(vm->notify_fd);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static int state_error(keel_vm *vm, keel_error **err, const char *op)
{
	return err_set(err, KEEL_ERR_STATE, "cannot %s the VM: it is %s", op,
		       keel_vm_state_name(vm->state));
}

int keel_vm_start(keel_vm *vm, keel_error **err)
{
	bool reload;
	int ret;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != KEEL_VM_STOPPED && vm->state != KEEL_VM_ERROR) {
		ret = state_error(vm, err, "start");
		pthread_mutex_unlock(&vm->lock);
		return ret;
	}
	reload = vm->has_run;
	vm->has_run = true;
	vm_clear_run_flags(vm);
	vm_set_state(vm, KEEL_VM_STARTING);
	pthread_mutex_unlock(&vm->lock);

	ret = reload ? vm_load(vm, true, err) : 0;

	pthread_mutex_lock(&vm->lock);
	if (ret == 0 && vm->stop_requested)
		ret = err_set(err, KEEL_ERR_STATE, "the VM was stopped while starting");
	if (ret == 0)
		ret = vm_start_vcpus(vm, err);
	if (ret == 0) {
		vm_set_state(vm, KEEL_VM_RUNNING);
	} else if (vm->vcpus_running == 0) {
		if (vm->reason == KEEL_STOP_NONE)
			vm->reason = KEEL_STOP_REQUESTED;
		vm_end_run(vm);
	} else {
		/* Threads that did start stop now; the event thread ends the run. */
		vm_set_state(vm, KEEL_VM_STOPPING);
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

int keel_vm_pause(keel_vm *vm, keel_error **err)
{
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != KEEL_VM_RUNNING) {
		ret = state_error(vm, err, "pause");
		goto out;
	}
	vm->pause_requested = true;
	vm_kick_all(vm);
	while (vm->vcpus_parked < vm->vcpus_running && !vm->stop_requested)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->stop_requested) {
		vm->pause_requested = false;
		ret = err_set(err, KEEL_ERR_STATE, "the VM stopped while being paused");
		goto out;
	}
	vm_set_state(vm, KEEL_VM_PAUSED);
out:
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

int keel_vm_resume(keel_vm *vm, keel_error **err)
{
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != KEEL_VM_PAUSED) {
		ret = state_error(vm, err, "resume");
	} else {
		vm->pause_requested = false;
		pthread_cond_broadcast(&vm->cond);
		vm_set_state(vm, KEEL_VM_RUNNING);
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

int keel_vm_stop(keel_vm *vm, keel_error **err)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm_is_live(vm->state)) {
		int ret = state_error(vm, err, "stop");

		pthread_mutex_unlock(&vm->lock);
		return ret;
	}
	vm->pause_requested = false;
	vm_set_state(vm, KEEL_VM_STOPPING);
	pthread_mutex_unlock(&vm->lock);

	vm_request_stop(vm, KEEL_STOP_REQUESTED, NULL);

	pthread_mutex_lock(&vm->lock);
	if (vm->loop && loop_on_thread(vm->loop)) {
		/* Called from a state callback: the event thread is ours. */
		while (vm->vcpus_running > 0)
			pthread_cond_wait(&vm->cond, &vm->lock);
		pthread_mutex_unlock(&vm->lock);
		vm_collect(vm);
		return 0;
	}
	while (!vm->ended)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

keel_vm_state keel_vm_get_state(keel_vm *vm)
{
	keel_vm_state st;

	pthread_mutex_lock(&vm->lock);
	st = vm->state;
	pthread_mutex_unlock(&vm->lock);
	return st;
}

void keel_vm_set_state_callback(keel_vm *vm, keel_vm_state_cb cb, void *opaque)
{
	pthread_mutex_lock(&vm->lock);
	vm->state_cb = cb;
	vm->state_cb_opaque = opaque;
	pthread_mutex_unlock(&vm->lock);
}

int keel_vm_get_state_fd(keel_vm *vm)
{
	return vm->state_fd;
}

keel_stop_reason keel_vm_wait(keel_vm *vm, int timeout_ms, keel_error **err)
{
	keel_stop_reason reason = KEEL_STOP_NONE;
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms > 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&vm->lock);
	if (!vm->has_run) {
		err_set(err, KEEL_ERR_STATE, "cannot wait for the VM: it has not been started");
		goto out;
	}
	while (!vm->ended && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&vm->cond, &vm->lock);
		else if (pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (vm->ended) {
		reason = vm->reason;
		if (err && vm->stop_err)
			*err = err_dup(vm->stop_err);
	}
out:
	pthread_mutex_unlock(&vm->lock);
	return reason;
}
