// SPDX-License-Identifier: MIT
#include <errno.h>
#include <semaphore.h>
#include <signal.h>

#include "core/thread.h"

int thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int ret = pthread_attr_init(&attr);

	if (ret)
		return ret;
	ret = pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (!ret)
		ret = pthread_create(thread, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return ret;
}

/* On the creator's stack until the new thread has posted `done`. */
struct spawn {
	const struct thread_spec *spec;
	void *(*fn)(void *);
	void *arg;
	sem_t done;
	int rc;
	keel_error *err;
};

static void *spawn_main(void *p)
{
	struct spawn *s = p;
	const struct thread_spec *spec = s->spec;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;
	int rc = 0;

	if (spec->name)
		pthread_setname_np(pthread_self(), spec->name);
	if (spec->setup)
		rc = spec->setup(arg, &s->err);
	if (rc == 0) {
		rc = sandbox_enter(spec->sandbox, spec->cls, spec->name ? spec->name : "keel",
				   &s->err);
		if (rc < 0 && spec->undo)
			spec->undo(arg);
	}
	s->rc = rc;
	sem_post(&s->done);     /* `s` is the creator's again */
	return rc < 0 ? NULL : fn(arg);
}

int thread_spawn(pthread_t *thread, const struct thread_spec *spec, void *(*fn)(void *),
		 void *arg, keel_error **err)
{
	struct spawn s = { .spec = spec, .fn = fn, .arg = arg, .rc = -1 };
	sigset_t all, old;
	int ret;

	if (sem_init(&s.done, 0, 0) < 0)
		return err_errno(err, KEEL_ERR_NOMEM, errno, "cannot start thread %s",
				 spec->name ? spec->name : "");
	/* Born with every signal blocked; sandbox_enter() unblocks SIGSYS. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = thread_start(thread, spawn_main, &s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		sem_destroy(&s.done);
		return err_errno(err, KEEL_ERR_NOMEM, ret, "cannot start thread %s",
				 spec->name ? spec->name : "");
	}
	while (sem_wait(&s.done) < 0 && errno == EINTR)
		;
	sem_destroy(&s.done);
	if (s.rc < 0) {
		pthread_join(*thread, NULL);
		if (err && !*err)
			*err = s.err;
		else
			keel_error_free(s.err);
		return -1;
	}
	return 0;
}
