// SPDX-License-Identifier: MIT
/*
 * virtio-rng (virtio 1.x, 5.4): one request queue; each chain's writable
 * buffers are filled from the host's getrandom().  An optional rate limit
 * (bytes per second) is a token bucket holding one second's worth; when it
 * runs dry a timerfd on the VM's event loop resumes the work later.
 *
 * Everything runs on the event loop (kick eventfd, timer) under vdev.lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "config/objects.h"
#include "core/loop.h"
#include "core/devctx.h"
#include "core/util.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define RNG_QUEUE_SIZE   256
#define RNG_BATCH        256            /* chains per callback before yielding */
#define RNG_CHAIN_MAX    65536          /* bytes given to one request at most */
#define RNG_MIN_WAIT_NS  1000000        /* timer granularity: 1 ms */

struct virtio_rng {
	struct virtio_dev vdev;
	char name[32];
	uint64_t rate;                  /* bytes per second, 0: unlimited */
	int timer_fd;                   /* -1 without a rate limit */
	bool kick_watched, timer_watched;
	bool getrandom_warned;

	/* Under vdev.lock. */
	double tokens;
	struct timespec last;
	bool timer_armed;
	struct virtq_chain chain;
};

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

static void bucket_refill(struct virtio_rng *r)
{
	struct timespec now;

	if (!r->rate)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	r->tokens += (double)(ts_ns(&now) - ts_ns(&r->last)) * (double)r->rate / 1e9;
	if (r->tokens > (double)r->rate)
		r->tokens = (double)r->rate;
	r->last = now;
}

static void timer_set(struct virtio_rng *r, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ULL),
						.tv_nsec = (long)(ns % 1000000000ULL) } };

	if (r->timer_fd < 0)
		return;
	timerfd_settime(r->timer_fd, 0, &its, NULL);
	r->timer_armed = ns != 0;
}

/* Out of tokens: come back when a useful amount has accrued. */
static void timer_arm(struct virtio_rng *r)
{
	double want = r->rate < 64 ? (double)r->rate : 64.0;
	double ns = (want - r->tokens) * 1e9 / (double)r->rate;

	if (r->timer_armed)
		return;
	timer_set(r, ns < RNG_MIN_WAIT_NS ? RNG_MIN_WAIT_NS : (uint64_t)ns);
}

/* Fills up to `budget` bytes of the chain's writable buffers; returns bytes written. */
static uint32_t rng_fill(struct virtio_rng *r, uint64_t budget)
{
	const struct virtq_chain *c = &r->chain;
	uint64_t done = 0;

	for (unsigned int i = c->nr_out; i < c->nr_out + c->nr_in && done < budget; i++) {
		uint8_t *p = c->iov[i].iov_base;
		size_t left = c->iov[i].iov_len;

		if (left > budget - done)
			left = (size_t)(budget - done);
		while (left) {
			ssize_t n = getrandom(p, left, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (!r->getrandom_warned)
					log_msg(&r->vdev.ctx->log, KEEL_LOG_ERROR, "%s: getrandom() failed: %s",
					       r->name, strerror(errno));
				r->getrandom_warned = true;
				return (uint32_t)done;
			}
			p += n;
			left -= (size_t)n;
			done += (uint64_t)n;
		}
	}
	return (uint32_t)done;
}

static void rng_process(struct virtio_rng *r)
{
	struct virtq *vq = &r->vdev.vqs[0];
	keel_error *err = NULL;
	bool pushed = false;
	unsigned int n = 0;

	pthread_mutex_lock(&r->vdev.lock);
	if (!r->vdev.started || !vq->enabled)
		goto out;
	bucket_refill(r);
	for (;;) {
		virtq_disable_kicks(vq);
		while (n < RNG_BATCH) {
			uint64_t budget;
			int ret;

			if (r->rate && r->tokens < 1.0) {
				/* Kicks stay off: the timer resumes. */
				timer_arm(r);
				goto out;
			}
			ret = virtq_pop(vq, &r->chain, &err);
			if (ret < 0)
				goto out;
			if (ret == 0)
				break;
			budget = r->chain.in_len < RNG_CHAIN_MAX ? r->chain.in_len : RNG_CHAIN_MAX;
			if (r->rate && budget > (uint64_t)r->tokens)
				budget = (uint64_t)r->tokens;
			budget = rng_fill(r, budget);
			if (r->rate)
				r->tokens -= (double)budget;
			virtq_push(vq, r->chain.head, (uint32_t)budget);
			pushed = true;
			n++;
		}
		if (n >= RNG_BATCH) {
			/* Let the loop's other work in; continue on the next round. */
			efd_signal(r->vdev.kick_fd[0]);
			break;
		}
		if (!virtq_enable_kicks(vq))
			break;
	}
out:
	pthread_mutex_unlock(&r->vdev.lock);
	if (err)
		virtio_dev_fail(&r->vdev, err);
	else if (pushed)
		virtio_dev_notify(&r->vdev, 0);
}

static void rng_kick(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;

	efd_drain(r->vdev.kick_fd[0]);
	rng_process(r);
}

static void rng_timer(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;
	uint64_t v;

	if (read(r->timer_fd, &v, sizeof(v)) < 0) {
		/* Disarmed meanwhile. */
	}
	pthread_mutex_lock(&r->vdev.lock);
	r->timer_armed = false;
	pthread_mutex_unlock(&r->vdev.lock);
	rng_process(r);
}

/* With vdev.lock held. */
static int rng_start(struct virtio_dev *vdev, keel_error **err)
{
	struct virtio_rng *r = (struct virtio_rng *)vdev;

	r->tokens = (double)r->rate;
	clock_gettime(CLOCK_MONOTONIC, &r->last);
	/* Buffers queued (and kicks dropped) before DRIVER_OK are served now. */
	efd_signal(vdev->kick_fd[0]);
	return 0;
}

static void rng_stop(struct virtio_dev *vdev)
{
	struct virtio_rng *r = (struct virtio_rng *)vdev;

	timer_set(r, 0);
}

static void rng_free(struct virtio_rng *r)
{
	struct loop *loop = r->vdev.ctx->loop;

	if (r->kick_watched)
		loop_del(loop, r->vdev.kick_fd[0]);
	if (r->timer_watched)
		loop_del(loop, r->timer_fd);
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	virtio_dev_fini(&r->vdev);
	free(r);
}

static void rng_destroy(struct virtio_dev *vdev)
{
	rng_free((struct virtio_rng *)vdev);
}

static const struct virtio_dev_ops rng_ops = {
	.start = rng_start,
	.stop = rng_stop,
	.destroy = rng_destroy,
};

struct virtio_dev *virtio_rng_create(struct devctx *ctx, int index,
				     const struct keel_entropy_device *cfg, keel_error **err)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));

	if (!r)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating a virtio-rng device"),
		       NULL;
	snprintf(r->name, sizeof(r->name), "virtio-rng%d", index);
	r->rate = cfg ? cfg->rate_limit : 0;
	r->timer_fd = -1;
	if (virtio_dev_init(&r->vdev, ctx, r->name, VIRTIO_ID_RNG, &rng_ops,
			    (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC), 0, 1,
			    RNG_QUEUE_SIZE, err) < 0) {
		free(r);
		return NULL;
	}
	if (r->rate) {
		r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (r->timer_fd < 0) {
			err_errno(err, KEEL_ERR_IO, errno, "%s: cannot create a timer", r->name);
			goto fail;
		}
		if (loop_add(ctx->loop, r->timer_fd, EPOLLIN, rng_timer, r, err) < 0)
			goto fail_prefix;
		r->timer_watched = true;
	}
	if (loop_add(ctx->loop, r->vdev.kick_fd[0], EPOLLIN, rng_kick, r, err) < 0)
		goto fail_prefix;
	r->kick_watched = true;
	return &r->vdev;
fail_prefix:
	err_prefix(err, "%s", r->name);
fail:
	rng_free(r);
	return NULL;
}
