// SPDX-License-Identifier: MIT
/*
 * The VM object: creation from a configuration, the run state machine and
 * its notifications.  Locking: vm->lock protects the state fields; vCPU
 * threads park on vm->cond (vcpu_wait_runnable); the end of a run is
 * handled on the VM's event thread (control_fd), which is also where state
 * callbacks run.  The machine itself is built by board/machine.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "board/machine.h"
#include "core/loop.h"
#include "core/sandbox.h"
#include "core/util.h"
#include "vm/vm.h"
#include "x86/vcpu.h"

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
		[KEEL_STOP_HALTED] = "guest halted",
	};

	if ((unsigned int)reason < sizeof(names) / sizeof(names[0]))
		return names[reason];
	return "unknown";
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

/* Called with vm->lock held. */
static void vm_kick_all(struct keel_vm *vm)
{
	if (!vm->vcpus)
		return;
	for (unsigned int i = 0; i < vm->cfg.cpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

/* Ends the current run with `reason` (first caller wins); see devctx_ops. */
static void vm_request_stop(struct keel_vm *vm, keel_stop_reason reason, keel_error *detail)
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

static void request_stop(void *owner, keel_stop_reason reason, keel_error *detail)
{
	vm_request_stop(owner, reason, detail);
}

static const struct devctx_ops vm_devctx_ops = { .request_stop = request_stop };

/* vcpu_ops: a vCPU thread waits here between runs. */
static bool vcpu_wait_run(void *owner, unsigned int *gen)
{
	struct keel_vm *vm = owner;
	bool go;

	pthread_mutex_lock(&vm->lock);
	while (vm->run_gen == *gen && !vm->exiting)
		pthread_cond_wait(&vm->cond, &vm->lock);
	go = !vm->exiting;
	*gen = vm->run_gen;
	pthread_mutex_unlock(&vm->lock);
	return go;
}

/* vcpu_ops: a vCPU thread waits here while the VM is paused. */
static bool vcpu_wait_runnable(void *owner)
{
	struct keel_vm *vm = owner;
	bool go;

	pthread_mutex_lock(&vm->lock);
	while (vm->pause_requested && !vm->stop_requested) {
		vm->vcpus_parked++;
		pthread_cond_broadcast(&vm->cond);
		pthread_cond_wait(&vm->cond, &vm->lock);
		vm->vcpus_parked--;
	}
	go = !vm->stop_requested;
	pthread_mutex_unlock(&vm->lock);
	return go;
}

/* vcpu_ops: the last vCPU thread to leave has the event thread end the run. */
static void vcpu_left(void *owner)
{
	struct keel_vm *vm = owner;

	pthread_mutex_lock(&vm->lock);
	if (--vm->vcpus_running == 0)
		efd_signal(vm->control_fd);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/*
 * A guest that halted every vCPU with interrupts off (Linux's "System
 * halted" without ACPI) can never run again: once a second each vCPU is
 * asked (vcpu_query_stuck), and when all of them say so in STUCK_ROUNDS
 * rounds in a row the run ends with KEEL_STOP_HALTED.
 */
#define STUCK_PERIOD_S  1
#define STUCK_ROUNDS    2

static void vcpu_stuck(void *owner, unsigned int id, bool stuck)
{
	struct keel_vm *vm = owner;
	bool halted = false;

	pthread_mutex_lock(&vm->lock);
	if (vm->stuck_pending) {
		vm->stuck_count += stuck;
		if (--vm->stuck_pending == 0) {
			if (vm->stuck_count < vm->cfg.cpus)
				vm->stuck_rounds = 0;
			else
				halted = ++vm->stuck_rounds >= STUCK_ROUNDS;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	if (halted)
		vm_request_stop(vm, KEEL_STOP_HALTED, NULL);
}

static void stuck_tick(void *opaque, uint32_t events)
{
	struct keel_vm *vm = opaque;

	efd_drain(vm->stuck_fd);        /* a timerfd reads like an eventfd */
	pthread_mutex_lock(&vm->lock);
	if (vm->state == KEEL_VM_RUNNING && !vm->pause_requested && !vm->stop_requested &&
	    !vm->stuck_pending) {
		vm->stuck_pending = vm->cfg.cpus;
		vm->stuck_count = 0;
		for (unsigned int i = 0; i < vm->cfg.cpus; i++)
			vcpu_query_stuck(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->lock);
}

static const struct vcpu_ops vm_vcpu_ops = {
	.wait_run = vcpu_wait_run,
	.wait_runnable = vcpu_wait_runnable,
	.left = vcpu_left,
	.stuck = vcpu_stuck,
};

/*
 * Starts a run on every vCPU thread; called with vm->lock held and the run
 * flags cleared.  The threads live from keel_vm_new() to keel_vm_free():
 * the event thread, which restarts a rebooting guest under its sandbox
 * filter, could not start new ones.
 */
static int vm_start_vcpus(struct keel_vm *vm, keel_error **err)
{
	(void)err;
	vm->vcpus_running = (int)vm->cfg.cpus;
	vm->run_gen++;
	pthread_cond_broadcast(&vm->cond);
	return 0;
}

static void vm_clear_run_flags(struct keel_vm *vm)
{
	vm->stuck_pending = vm->stuck_count = 0;
	vm->stuck_rounds = 0;
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

	pthread_mutex_lock(&vm->lock);
	restart = vm->cfg.reset_action == KEEL_RESET_RESTART && vm->state != KEEL_VM_STOPPING &&
		  (vm->reason == KEEL_STOP_RESET || vm->reason == KEEL_STOP_TRIPLE_FAULT);
	if (restart) {
		vm_clear_run_flags(vm);
		pthread_mutex_unlock(&vm->lock);
		if (machine_load(vm->machine, vm->vcpus, true, &err) == 0) {
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

static int vm_init(struct keel_vm *vm, const keel_config *cfg, keel_error **err)
{
	if (vm_config_copy(&vm->cfg, &cfg->c, err) < 0)
		return -1;
	if (make_efd(&vm->control_fd, err) || make_efd(&vm->state_fd, err) ||
	    make_efd(&vm->notify_fd, err))
		return -1;
	vm->stuck_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (vm->stuck_fd < 0 ||
	    timerfd_settime(vm->stuck_fd, 0, &(struct itimerspec){
				    .it_interval = { .tv_sec = STUCK_PERIOD_S },
				    .it_value = { .tv_sec = STUCK_PERIOD_S } }, NULL) < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "cannot create a timer");
	if (sandbox_prepare(vm->cfg.sandbox, err) < 0)
		return -1;
	if (kvm_open(&vm->kvm, err) < 0 || kvm_create_vm(&vm->kvm, err) < 0)
		return -1;
	if (!(vm->loop = loop_new(err)) || loop_start(vm->loop, vm->cfg.sandbox, err) < 0)
		return -1;
	if (loop_add(vm->loop, vm->control_fd, EPOLLIN, vm_control_cb, vm, err) < 0 ||
	    loop_add(vm->loop, vm->notify_fd, EPOLLIN, vm_notify_cb, vm, err) < 0 ||
	    loop_add(vm->loop, vm->stuck_fd, EPOLLIN, stuck_tick, vm, err) < 0)
		return -1;
	vm->machine = machine_new(&vm->cfg, &vm->kvm, vm->loop, &vm_devctx_ops, vm, err);
	if (!vm->machine)
		return -1;
	vm->vcpus = calloc(vm->cfg.cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating vCPUs");
	for (unsigned int i = 0; i < vm->cfg.cpus; i++) {
		vm->vcpus[i].fd = -1;
		if (vcpu_init(&vm->vcpus[i], &vm->kvm, machine_devctx(vm->machine), i, &vm_vcpu_ops,
			      vm, err) < 0)
			return -1;
	}
	if (machine_load(vm->machine, vm->vcpus, false, err) < 0)
		return -1;
	for (unsigned int i = 0; i < vm->cfg.cpus; i++)
		if (vcpu_start(&vm->vcpus[i], vm->cfg.sandbox, err) < 0)
			return -1;
	return 0;
}

keel_vm *keel_vm_new(const keel_config *cfg, keel_error **err)
{
	pthread_condattr_t cattr;
	keel_vm *vm;

	if (!cfg) {
		err_set(err, KEEL_ERR_INVALID, "no configuration given");
		return NULL;
	}
	if (sandbox_refuse_filtered("keel_vm_new()", err) < 0)
		return NULL;
	if (keel_config_validate(cfg, err) < 0)
		return NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a VM");
		return NULL;
	}
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm->control_fd = vm->state_fd = vm->notify_fd = vm->stuck_fd = -1;
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
		loop_del(vm->loop, vm->stuck_fd);
	}
	pthread_mutex_lock(&vm->lock);
	vm->exiting = true;             /* the vCPU threads end */
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (vm->vcpus)
		for (unsigned int i = 0; i < vm->cfg.cpus; i++)
			vcpu_fini(&vm->vcpus[i]);
	free(vm->vcpus);
	machine_free(vm->machine);
	loop_free(vm->loop);
	kvm_close(&vm->kvm);
	vm_config_fini(&vm->cfg);
	keel_error_free(vm->stop_err);
	if (vm->control_fd >= 0)
		close(vm->control_fd);
	if (vm->state_fd >= 0)
		close(vm->state_fd);
	if (vm->notify_fd >= 0)
		close(vm->notify_fd);
	if (vm->stuck_fd >= 0)
		close(vm->stuck_fd);
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

	/* The reload needs what the event thread's filter allows, no more. */
	if (sandbox_current() >= 0 && sandbox_current() != SANDBOX_EVENT)
		return sandbox_refuse_filtered("keel_vm_start()", err);
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

	ret = reload ? machine_load(vm->machine, vm->vcpus, true, err) : 0;

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

int keel_vm_request_stop(keel_vm *vm, keel_error **err)
{
	int ret;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != KEEL_VM_RUNNING && vm->state != KEEL_VM_PAUSED) {
		ret = state_error(vm, err, "request a stop of");
		pthread_mutex_unlock(&vm->lock);
		return ret;
	}
	pthread_mutex_unlock(&vm->lock);
	/* A paused guest sees the press when it resumes, as a real one would. */
	return machine_power_button(vm->machine, err);
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
