// SPDX-License-Identifier: MIT
/*
 * Socket back ends: a connected socket the application provides
 * (NET_SOCKET, duplicated by the attachment) or a Unix stream socket keel
 * connects to when the back end is created (NET_UNIX, e.g. passt).
 *
 * Framing:
 *   KEEL_NET_DGRAM   one frame per datagram (SOCK_DGRAM, SOCK_SEQPACKET);
 *   KEEL_NET_STREAM  a 4-byte big-endian length, then the frame (QEMU
 *                    -netdev stream, passt), on a SOCK_STREAM socket.
 *
 * The socket's file flags are left alone (the application may share it):
 * every call passes MSG_DONTWAIT.  Sending never blocks the NIC: a datagram
 * the socket cannot take now (EAGAIN, ENOBUFS) is dropped and counted; on a
 * stream, a frame the socket takes only partly is finished from an output
 * buffer (flushed from process(), which timeout_ms() schedules while data
 * waits), and a frame that finds that buffer full is dropped and counted.
 * Receiving: a frame the NIC has no buffer for stays here (the datagram
 * held, the stream bytes unconsumed) and goes first next time.  Frames
 * longer than NET_MAX_FRAME are dropped and counted (a datagram is
 * truncated by the kernel; a stream's oversized frame is skipped).  When
 * the peer closes the connection (end of stream) the back end says so in
 * the log and stops polling; sends then fail and are counted as drops.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/util.h"
#include "core/log.h"
#include "net/backend.h"

#define SOCK_BATCH     64
#define STREAM_HDR     4
#define STREAM_BUF     (2 * (STREAM_HDR + NET_MAX_FRAME))
#define FLUSH_RETRY_MS 5

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

struct sock {
	struct net_backend be;
	int fd;
	bool stream;
	bool eof;
	bool send_warned;
	char what[128];                 /* for messages: "socket 5", "'/run/passt.sock'" */
	/* Receive: DGRAM: one datagram (held when `held`); STREAM: bytes [in_off, in_len). */
	uint8_t *in;
	size_t in_off, in_len;
	size_t held;
	bool has_held;
	uint64_t skip;                  /* STREAM: bytes of an oversized frame left to discard */
	/* Send (STREAM): bytes [out_off, out_len) waiting. */
	uint8_t *out;
	size_t out_off, out_len;
};

static inline struct sock *to_sock(struct net_backend *be)
{
	return container_of(be, struct sock, be);
}

static void send_failed(struct sock *s, int e)
{
	s->be.dropped++;
	if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || s->send_warned)
		return;
	s->send_warned = true;
	log_msg(s->be.log, KEEL_LOG_WARNING, "%s: sending to %s failed: %s (frames are dropped)",
	       s->be.name, s->what, strerror(e));
}

static size_t iov_flatten(const struct iovec *iov, int iovcnt, uint8_t *dst, size_t max)
{
	size_t done = 0;

	for (int i = 0; i < iovcnt && done < max; i++) {
		size_t l = iov[i].iov_len < max - done ? iov[i].iov_len : max - done;

		memcpy(dst + done, iov[i].iov_base, l);
		done += l;
	}
	return done;
}

/* STREAM: writes what waits; true when nothing is left. */
static bool flush_out(struct sock *s)
{
	while (s->out_off < s->out_len) {
		ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (n <= 0) {
			/* The connection is gone: what waits is lost. */
			send_failed(s, n < 0 ? errno : EPIPE);
			s->out_off = s->out_len = 0;
			return true;
		}
		s->out_off += (size_t)n;
	}
	s->out_off = s->out_len = 0;
	return true;
}

static int send_stream(struct sock *s, const struct iovec *iov, int iovcnt, size_t len)
{
	uint32_t be_len = htonl((uint32_t)len);
	struct iovec v[IOV_MAX];
	struct msghdr msg = { .msg_iov = v };
	size_t total = STREAM_HDR + len;
	ssize_t n;

	if (!flush_out(s) || iovcnt + 1 > IOV_MAX) {
		/* Behind already (or too many pieces): queue it whole, or drop it. */
		if (s->out_len + total > STREAM_BUF) {
			if (s->out_off) {
				memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
				s->out_len -= s->out_off;
				s->out_off = 0;
			}
			if (s->out_len + total > STREAM_BUF) {
				s->be.dropped++;
				return -1;
			}
		}
		memcpy(s->out + s->out_len, &be_len, STREAM_HDR);
		iov_flatten(iov, iovcnt, s->out + s->out_len + STREAM_HDR, len);
		s->out_len += total;
		flush_out(s);
		return 0;
	}
	v[0].iov_base = &be_len;
	v[0].iov_len = STREAM_HDR;
	memcpy(v + 1, iov, (size_t)iovcnt * sizeof(*iov));
	msg.msg_iovlen = (size_t)iovcnt + 1;
	do
		n = sendmsg(s->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		send_failed(s, errno);
		return -1;
	}
	if ((size_t)n < total) {
		/* The rest waits; the stream must not be left mid-frame. */
		size_t off = (size_t)n, k = 0;

		s->out_off = 0;
		s->out_len = 0;
		while (k < msg.msg_iovlen && off >= v[k].iov_len)
			off -= v[k++].iov_len;
		for (; k < msg.msg_iovlen; k++, off = 0) {
			memcpy(s->out + s->out_len, (uint8_t *)v[k].iov_base + off, v[k].iov_len - off);
			s->out_len += v[k].iov_len - off;
		}
	}
	return 0;
}

static int sock_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct sock *s = to_sock(be);
	size_t len = 0;
	ssize_t n;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > NET_MAX_FRAME) {
		be->dropped++;
		return -1;
	}
	if (s->stream)
		return send_stream(s, iov, iovcnt, len);
	if (iovcnt > IOV_MAX) {
		n = (ssize_t)iov_flatten(iov, iovcnt, s->out, len);
		do
			n = send(s->fd, s->out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
	} else {
		struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };

		do
			n = sendmsg(s->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0) {
		send_failed(s, errno);
		return -1;
	}
	return 0;
}

static int sock_poll_fd(struct net_backend *be)
{
	struct sock *s = to_sock(be);

	return s->eof ? -1 : s->fd;
}

static int sock_timeout_ms(struct net_backend *be)
{
	struct sock *s = to_sock(be);

	return s->out_off < s->out_len ? FLUSH_RETRY_MS : -1;
}

static void peer_closed(struct sock *s, int e)
{
	s->eof = true;
	if (e)
		log_msg(s->be.log, KEEL_LOG_WARNING, "%s: receiving from %s failed: %s; no more frames are received",
		       s->be.name, s->what, strerror(e));
	else
		log_msg(s->be.log, KEEL_LOG_WARNING, "%s: %s was closed by the peer; no more frames are received",
		       s->be.name, s->what);
}

static void process_dgram(struct sock *s)
{
	for (int i = 0; i < SOCK_BATCH; i++) {
		struct iovec iov;

		if (!s->has_held) {
			ssize_t n = recv(s->fd, s->in, NET_MAX_FRAME, MSG_DONTWAIT | MSG_TRUNC);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					peer_closed(s, errno);
				return;
			}
			if (n == 0 && !s->stream) {
				int type = 0;
				socklen_t l = sizeof(type);

				/* SOCK_SEQPACKET: end of connection; SOCK_DGRAM: an empty datagram. */
				if (getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
				    type != SOCK_DGRAM) {
					peer_closed(s, 0);
					return;
				}
			}
			if (n == 0 || n > NET_MAX_FRAME) {
				s->be.dropped++;
				continue;
			}
			s->held = (size_t)n;
			s->has_held = true;
		}
		iov.iov_base = s->in;
		iov.iov_len = s->held;
		if (!s->be.rx(s->be.rx_opaque, &iov, 1))
			return;
		s->has_held = false;
	}
}

static void process_stream(struct sock *s)
{
	int frames = 0;

	flush_out(s);
	while (frames < SOCK_BATCH) {
		size_t avail = s->in_len - s->in_off;

		if (s->skip && avail) {
			size_t k = s->skip < avail ? (size_t)s->skip : avail;

			s->in_off += k;
			s->skip -= k;
			continue;
		}
		if (!s->skip && avail >= STREAM_HDR) {
			uint32_t len;

			memcpy(&len, s->in + s->in_off, STREAM_HDR);
			len = ntohl(len);
			if (len == 0 || len > NET_MAX_FRAME) {
				s->be.dropped++;
				log_msg(s->be.log, KEEL_LOG_DEBUG, "%s: frame of %u bytes from %s dropped",
				       s->be.name, len, s->what);
				s->in_off += STREAM_HDR;
				s->skip = len;
				continue;
			}
			if (avail >= STREAM_HDR + (size_t)len) {
				struct iovec iov = { s->in + s->in_off + STREAM_HDR, len };

				if (!s->be.rx(s->be.rx_opaque, &iov, 1))
					return;         /* stays for next time */
				s->in_off += STREAM_HDR + len;
				frames++;
				continue;
			}
		}
		/* More bytes needed. */
		if (s->eof)
			return;
		if (s->in_off) {
			memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
			s->in_len -= s->in_off;
			s->in_off = 0;
		}
		ssize_t n = recv(s->fd, s->in + s->in_len, STREAM_BUF - s->in_len, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				peer_closed(s, errno);
			return;
		}
		if (n == 0) {
			peer_closed(s, 0);
			return;
		}
		s->in_len += (size_t)n;
	}
}

static void sock_process(struct net_backend *be)
{
	struct sock *s = to_sock(be);

	if (s->stream)
		process_stream(s);
	else
		process_dgram(s);
}

static void sock_destroy(struct net_backend *be)
{
	struct sock *s = to_sock(be);

	if (s->fd >= 0)
		close(s->fd);
	free(s->in);
	free(s->out);
	free(s);
}

static const struct net_backend_ops sock_ops = {
	.send = sock_send,
	.poll_fd = sock_poll_fd,
	.timeout_ms = sock_timeout_ms,
	.process = sock_process,
	.destroy = sock_destroy,
};

static int connect_unix(const char *path, keel_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(err, KEEL_ERR_INVALID,
			       "cannot connect to '%s': the path is longer than %zu bytes", path,
			       sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, KEEL_ERR_IO, errno, "cannot connect to '%s'", path);
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		close(fd);
		return err_errno(err, err_code_from_errno(e), e, "cannot connect to '%s'", path);
	}
	return fd;
}

struct net_backend *net_socket_create(const struct logger *log, const char *name,
				      const struct keel_network_attachment *att, keel_error **err)
{
	struct sock *s = calloc(1, sizeof(*s));
	int type = 0;
	socklen_t l = sizeof(type);

	if (!s)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating a socket back end"), NULL;
	s->be.ops = &sock_ops;
	s->fd = -1;
	s->in = malloc(STREAM_BUF);
	s->out = malloc(STREAM_BUF);
	if (!s->in || !s->out) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory creating a socket back end");
		goto fail;
	}
	if (att->kind == NET_UNIX) {
		snprintf(s->what, sizeof(s->what), "'%s'", att->name ? att->name : "");
		s->stream = true;
		if (!att->name) {
			err_set(err, KEEL_ERR_INVALID, "Unix socket attachment without a path");
			goto fail;
		}
		s->fd = connect_unix(att->name, err);
		if (s->fd < 0)
			goto fail;
	} else {
		snprintf(s->what, sizeof(s->what), "socket %d", att->fd);
		s->stream = att->framing == KEEL_NET_STREAM;
		if (att->fd < 0) {
			err_set(err, KEEL_ERR_INVALID, "socket attachment without a descriptor");
			goto fail;
		}
		if (getsockopt(att->fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0) {
			err_errno(err, KEEL_ERR_INVALID, errno, "socket attachment: descriptor %d is not a socket",
				  att->fd);
			goto fail;
		}
		if (s->stream ? type != SOCK_STREAM : (type != SOCK_DGRAM && type != SOCK_SEQPACKET)) {
			err_set(err, KEEL_ERR_INVALID,
				"socket attachment: %s framing needs a %s socket; descriptor %d is %s",
				s->stream ? "stream" : "datagram",
				s->stream ? "SOCK_STREAM" : "SOCK_DGRAM or SOCK_SEQPACKET", att->fd,
				type == SOCK_STREAM ? "SOCK_STREAM" : type == SOCK_DGRAM ? "SOCK_DGRAM" :
				type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "another kind");
			goto fail;
		}
		s->fd = fcntl(att->fd, F_DUPFD_CLOEXEC, 3);
		if (s->fd < 0) {
			err_errno(err, KEEL_ERR_IO, errno, "socket attachment: cannot duplicate descriptor %d",
				  att->fd);
			goto fail;
		}
	}
	log_msg(log, KEEL_LOG_DEBUG, "%s: %s, %s framing", name, s->what,
	       s->stream ? "stream" : "datagram");
	return &s->be;
fail:
	sock_destroy(&s->be);
	return NULL;
}
