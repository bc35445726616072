// SPDX-License-Identifier: MIT
/*
 * virtio-console (virtio 1.x, 5.3) with a single port and no optional
 * features: queue 0 receives (host to guest), queue 1 transmits.
 *
 * Output: on a transmit kick each chain's readable bytes go to the output
 * descriptor (a blocking write; a full non-blocking one is waited for a
 * little, then output is dropped while it stays full, as the UART does).
 *
 * Input is watched on the VM's event loop only while the guest has
 * receive buffers: readable input is read() straight into the next buffer.
 * With no buffer the watch is paused (one-shot, as the UART does, so a
 * hang-up fires once instead of spinning) until the guest kicks queue 0.
 * At end of input the watch is removed for good.
 *
 * Everything runs on the event loop, under vdev.lock; loop_add()/loop_del()
 * are never called with it held (the loop holds its own lock around
 * callbacks).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config/objects.h"
#include "core/loop.h"
#include "core/serial_io.h"
#include "core/devctx.h"
#include "core/util.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

#define CON_QUEUE_SIZE 256
#define CON_RXQ        0
#define CON_TXQ        1
#define CON_BATCH      256

/* struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr (all unused here). */
#define CON_CONFIG_SIZE 12

struct virtio_console {
	struct virtio_dev vdev;
	char name[32];
	int in_fd;                      /* -1: no input */
	struct serial_out out;
	bool in_registered;             /* in_fd is on the loop */
	bool rxk_watched, txk_watched;

	/* Under vdev.lock. */
	bool in_active;                 /* input not at its end */
	bool in_paused;                 /* watch masked: no receive buffer */
	struct virtq_chain chain;
};

static void in_watch(struct virtio_console *c, bool want)
{
	if (!c->in_registered || !c->in_active || want == !c->in_paused)
		return;
	if (loop_modify(c->vdev.ctx->loop, c->in_fd, want ? EPOLLIN : EPOLLONESHOT) == 0)
		c->in_paused = !want;
}

/* ---- output ---- */

static void con_output(struct virtio_console *c, const uint8_t *p, size_t len)
{
	if (serial_out_write(&c->out, p, len) < 0)
		log_msg(&c->vdev.ctx->log, KEEL_LOG_WARNING, "%s: output failed (%s); discarding output from now on",
		       c->name, strerror(errno));
}

static void con_tx(struct virtio_console *c)
{
	struct virtq *vq = &c->vdev.vqs[CON_TXQ];
	keel_error *err = NULL;
	bool pushed = false;
	unsigned int n = 0;

	pthread_mutex_lock(&c->vdev.lock);
	if (!c->vdev.started || !vq->enabled)
		goto out;
	for (;;) {
		virtq_disable_kicks(vq);
		while (n < CON_BATCH) {
			int ret = virtq_pop(vq, &c->chain, &err);

			if (ret < 0)
				goto out;
			if (ret == 0)
				break;
			for (unsigned int i = 0; i < c->chain.nr_out; i++)
				con_output(c, c->chain.iov[i].iov_base, c->chain.iov[i].iov_len);
			virtq_push(vq, c->chain.head, 0);
			pushed = true;
			n++;
		}
		if (n >= CON_BATCH) {
			efd_signal(c->vdev.kick_fd[CON_TXQ]);
			break;
		}
		if (!virtq_enable_kicks(vq))
			break;
	}
out:
	pthread_mutex_unlock(&c->vdev.lock);
	if (err)
		virtio_dev_fail(&c->vdev, err);
	else if (pushed)
		virtio_dev_notify(&c->vdev, CON_TXQ);
}

/* ---- input ---- */

static void con_input(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;
	struct virtq *vq = &c->vdev.vqs[CON_RXQ];
	keel_error *err = NULL;
	bool pushed = false, stop = false;
	int ret;

	pthread_mutex_lock(&c->vdev.lock);
	if (!c->in_active)
		goto out;
	if (!c->vdev.started || !vq->enabled) {
		in_watch(c, false);
		goto out;
	}
	ret = virtq_pop(vq, &c->chain, &err);
	if (ret == 0 && virtq_enable_kicks(vq))
		ret = virtq_pop(vq, &c->chain, &err);   /* buffers came meanwhile */
	if (ret < 0)
		goto out;
	if (ret == 0) {
		/* No buffer: wait for the guest's kick on the receive queue. */
		in_watch(c, false);
		goto out;
	}
	if (c->chain.nr_in) {
		/* The descriptor may be blocking: one read() after readiness. */
		ssize_t n = readv(c->in_fd, c->chain.iov + c->chain.nr_out, (int)c->chain.nr_in);

		if (n > 0) {
			virtq_push(vq, c->chain.head, (uint32_t)n);
		} else {
			if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				if (n < 0)
					log_msg(&c->vdev.ctx->log, KEEL_LOG_WARNING, "%s: reading input failed: %s",
					       c->name, strerror(errno));
				stop = true;
			}
			virtq_push(vq, c->chain.head, 0);
		}
	} else {
		virtq_push(vq, c->chain.head, 0);       /* nothing to write into */
	}
	pushed = true;
	if (stop)
		c->in_active = false;
out:
	pthread_mutex_unlock(&c->vdev.lock);
	/* Removing our own watch from its callback is allowed (see loop.h). */
	if (stop)
		loop_del(c->vdev.ctx->loop, c->in_fd);
	if (err)
		virtio_dev_fail(&c->vdev, err);
	else if (pushed)
		virtio_dev_notify(&c->vdev, CON_RXQ);
}

static void con_rx_kick(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;

	efd_drain(c->vdev.kick_fd[CON_RXQ]);
	pthread_mutex_lock(&c->vdev.lock);
	if (c->vdev.started)
		in_watch(c, true);      /* con_input() reads if there is input */
	pthread_mutex_unlock(&c->vdev.lock);
}

static void con_tx_kick(void *opaque, uint32_t events)
{
	struct virtio_console *c = opaque;

	efd_drain(c->vdev.kick_fd[CON_TXQ]);
	con_tx(c);
}

/* ---- device ---- */

static void con_config_read(struct virtio_dev *vdev, uint32_t offset, void *data, unsigned int len)
{
	memset(data, 0, len);   /* no size, one port, no emergency write */
}

static void con_config_write(struct virtio_dev *vdev, uint32_t offset, const void *data,
			     unsigned int len)
{
	/* emerg_wr needs VIRTIO_CONSOLE_F_EMERG_WRITE, not offered: ignored. */
}

/* With vdev.lock held. */
static int con_start(struct virtio_dev *vdev, keel_error **err)
{
	struct virtio_console *c = (struct virtio_console *)vdev;

	in_watch(c, true);
	/* Output queued (and kicks dropped) before DRIVER_OK goes out now. */
	efd_signal(vdev->kick_fd[CON_TXQ]);
	return 0;
}

static void con_stop(struct virtio_dev *vdev)
{
	in_watch((struct virtio_console *)vdev, false);
}

static void con_free(struct virtio_console *c)
{
	struct loop *loop = c->vdev.ctx->loop;

	pthread_mutex_lock(&c->vdev.lock);
	c->in_active = false;
	pthread_mutex_unlock(&c->vdev.lock);
	/* Each waits for a running callback, which then sees the device stopped. */
	if (c->in_registered)
		loop_del(loop, c->in_fd);
	if (c->rxk_watched)
		loop_del(loop, c->vdev.kick_fd[CON_RXQ]);
	if (c->txk_watched)
		loop_del(loop, c->vdev.kick_fd[CON_TXQ]);
	virtio_dev_fini(&c->vdev);
	free(c);
}

static void con_destroy(struct virtio_dev *vdev)
{
	con_free((struct virtio_console *)vdev);
}

static const struct virtio_dev_ops con_ops = {
	.config_read = con_config_read,
	.config_write = con_config_write,
	.start = con_start,
	.stop = con_stop,
	.destroy = con_destroy,
};

struct virtio_dev *virtio_console_create(struct devctx *ctx, int index,
					 const struct keel_console_device *cfg, keel_error **err)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	const struct keel_serial_attachment *att = cfg ? cfg->att : NULL;

	if (!c)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating a virtio-console device"),
		       NULL;
	snprintf(c->name, sizeof(c->name), "virtio-console%d", index);
	c->in_fd = att ? att->in_fd : -1;
	serial_out_init(&c->out, att ? att->out_fd : -1);
	if (virtio_dev_init(&c->vdev, ctx, c->name, VIRTIO_ID_CONSOLE, &con_ops,
			    (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC),
			    CON_CONFIG_SIZE, 2, CON_QUEUE_SIZE, err) < 0) {
		free(c);
		return NULL;
	}
	if (c->in_fd >= 0 && serial_in_pollable(c->in_fd)) {
		/* Paused (one-shot, nothing asked) until the driver is ready. */
		if (loop_add(ctx->loop, c->in_fd, EPOLLONESHOT, con_input, c, err) < 0)
			goto fail_prefix;
		c->in_registered = true;
		c->in_active = true;
		c->in_paused = true;
	}
	if (loop_add(ctx->loop, c->vdev.kick_fd[CON_RXQ], EPOLLIN, con_rx_kick, c, err) < 0)
		goto fail_prefix;
	c->rxk_watched = true;
	if (loop_add(ctx->loop, c->vdev.kick_fd[CON_TXQ], EPOLLIN, con_tx_kick, c, err) < 0)
		goto fail_prefix;
	c->txk_watched = true;
	return &c->vdev;
fail_prefix:
	err_prefix(err, "%s", c->name);
	con_free(c);
	return NULL;
}
