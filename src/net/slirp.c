// SPDX-License-Identifier: MIT
/*
 * NAT back end over libslirp: DHCP, DNS forwarding and connections to the
 * host's network, all in user space.
 *
 * Everything runs on the NIC's I/O thread (see backend.h).  libslirp wants
 * a poll() loop; the I/O thread waits on a single descriptor, so slirp's
 * sockets are mirrored into an epoll instance of our own: timeout_ms()
 * (called right before the wait) asks slirp which sockets it wants and
 * updates the epoll set, process() learns their readiness with a zero
 * timeout epoll_wait() and hands it to slirp_pollfds_poll().
 *
 * Frames slirp produces while send() feeds it one (ARP and DHCP replies,
 * TCP acknowledgements) are queued and delivered by the next process(),
 * so be->rx() only ever runs inside process(); an eventfd in the epoll set
 * wakes the I/O thread for them.
 *
 * libslirp (and with it glib and libm) is not linked: it is dlopen()ed the
 * first time a NAT back end is created, so VMs without one neither load
 * nor relocate it (see slirp_lib below).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "net/backend.h"

#define NAT_DEFAULT_SUBNET "10.0.2.0/24"
#define NAT_HOST_OFF 2          /* gateway: the host as the guest sees it */
#define NAT_DNS_OFF 3
#define NAT_GUEST_OFF 15        /* first (and usually only) DHCP lease */
#define NAT_MAX_PENDING 512     /* frames queued during send() */
#define NAT_EVENTFD_TAG UINT64_MAX

/* ---- libslirp, loaded on first use ---- */

#define SLIRP_SONAME "libslirp.so.0"

/*
 * The libslirp functions this file calls, resolved with dlsym(); the types
 * come from <slirp/libslirp.h>, so they cannot drift from the header.
 *
 * This is keel's only global mutable state, and it is acceptable: it is a
 * process-wide cache of a shared library's symbols, which are the same for
 * every VM and for the life of the process.  slirp_lib_load() writes it
 * exactly once, under pthread_once(), and everything reads it only after
 * slirp_lib_get() returned, i.e. after pthread_once() (which synchronizes
 * with the initialization), so it is read-only wherever it is used.  The
 * library is never dlclose()d: back ends may still run its code, and a
 * later NAT back end reuses the handle.
 */
static struct {
	const char *error;      /* NULL: loaded; else why not (points into errbuf) */
	char errbuf[256];
	__typeof__(slirp_new) *new;
	__typeof__(slirp_cleanup) *cleanup;
	__typeof__(slirp_pollfds_fill) *pollfds_fill;
	__typeof__(slirp_pollfds_poll) *pollfds_poll;
	__typeof__(slirp_input) *input;
	__typeof__(slirp_handle_timer) *handle_timer;
	__typeof__(slirp_add_hostfwd) *add_hostfwd;
	__typeof__(slirp_remove_hostfwd) *remove_hostfwd;
} slirp_lib;

static pthread_once_t slirp_lib_once = PTHREAD_ONCE_INIT;

static void slirp_lib_fail(void)
{
	const char *why = dlerror();

	if (!why)
		why = "unknown error";
	/* dlopen()'s message usually starts with the name already. */
	if (!strncmp(why, SLIRP_SONAME ": ", strlen(SLIRP_SONAME ": ")))
		why += strlen(SLIRP_SONAME ": ");
	snprintf(slirp_lib.errbuf, sizeof(slirp_lib.errbuf), "%s", why);
	slirp_lib.error = slirp_lib.errbuf;
}

static void slirp_lib_load(void)
{
	void *h = dlopen(SLIRP_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		slirp_lib_fail();
		return;
	}
	/* POSIX: dlsym()'s void * holds a function's address (copied, not cast). */
#define SLIRP_SYM(name)                                                   \
	do {                                                              \
		void *p = dlsym(h, "slirp_" #name);                       \
		if (!p) {                                                 \
			slirp_lib_fail();                                 \
			dlclose(h);                                       \
			return;                                           \
		}                                                         \
		memcpy(&slirp_lib.name, &p, sizeof(p));                   \
	} while (0)
	SLIRP_SYM(new);
	SLIRP_SYM(cleanup);
	SLIRP_SYM(pollfds_fill);
	SLIRP_SYM(pollfds_poll);
	SLIRP_SYM(input);
	SLIRP_SYM(handle_timer);
	SLIRP_SYM(add_hostfwd);
	SLIRP_SYM(remove_hostfwd);
#undef SLIRP_SYM
	slirp_lib.error = NULL;
}

/* Loads libslirp once per process; 0, or -1 with `err` set. */
static int slirp_lib_get(const char *name, keel_error **err)
{
	pthread_once(&slirp_lib_once, slirp_lib_load);
	if (slirp_lib.error)
		return err_set(err, KEEL_ERR_UNSUPPORTED,
			       "%s: NAT networking needs libslirp (" SLIRP_SONAME
			       ": %s); install the libslirp0 package",
			       name, slirp_lib.error);
	return 0;
}

struct nat_timer {
	struct nat_timer *next;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms;      /* slirp's clock (CLOCK_MONOTONIC in ms) */
	bool armed;
};

/* One descriptor slirp asked for in a slirp_pollfds_fill(). */
struct nat_pollfd {
	int fd;                 /* -1: closed since */
	uint32_t events;        /* EPOLL* */
	uint32_t revents;       /* from the last epoll_wait() */
};

/* What we know about one descriptor number (indexed by fd). */
struct nat_fdstate {
	uint32_t gen;           /* == nat.gen: in the current fill, at pfds[idx] */
	int idx;
	uint32_t events;        /* as registered */
	bool registered;        /* in the inner epoll set */
};

struct nat_frame {
	struct nat_frame *next;
	size_t len;
	uint8_t data[];
};

struct nat {
	struct net_backend be;
	Slirp *slirp;
	int epfd;
	int evfd;               /* readable while frames are pending */

	/*
	 * pfds: the current fill (index: what add_poll returned); prev: the
	 * one before, whose descriptors may still be registered.
	 */
	struct nat_pollfd *pfds, *prev;
	int nr_pfds, cap_pfds, nr_prev, cap_prev;
	uint32_t gen;                   /* fill generation */
	bool filled;                    /* pfds are from a fill not yet polled */
	struct nat_fdstate *fds;
	int nr_fds;
	int fill_err;                   /* errno of a failed epoll_ctl() in a fill */

	struct nat_timer *timers;

	bool in_send;
	struct nat_frame *pend_head, **pend_tail;
	int nr_pend;

	struct in_addr guest;           /* the DHCP address, forwards' target */
	uint8_t *txbuf;                 /* send(): the flattened frame */
};

static struct nat *to_nat(struct net_backend *be)
{
	return (struct nat *)be;
}

/* ---- SIGPIPE ---- */

/*
 * libslirp writes to host sockets with plain send(); a peer that went away
 * would raise SIGPIPE and kill the application.  keel is a library and must
 * not change signal dispositions, so SIGPIPE is blocked instead, once per
 * thread that runs libslirp (the NIC's own I/O thread, which keel owns) and
 * left blocked: a write then fails with EPIPE, and a SIGPIPE left pending on
 * that thread is never delivered.  Once, not around every call: that cost
 * four system calls per frame.
 */
static void sigpipe_block_thread(void)
{
	static __thread bool blocked;
	sigset_t set;

	if (blocked)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	blocked = true;
}

/* ---- frames to the guest ---- */

static void deliver(struct nat *n, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	/* No guest buffer: drop; slirp's TCP retransmits. */
	if (!n->be.rx(n->be.rx_opaque, &iov, 1))
		n->be.dropped++;
}

static void queue_frame(struct nat *n, const void *buf, size_t len)
{
	struct nat_frame *f;
	uint64_t one = 1;

	if (n->nr_pend >= NAT_MAX_PENDING || !(f = malloc(sizeof(*f) + len))) {
		n->be.dropped++;
		return;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, buf, len);
	*n->pend_tail = f;
	n->pend_tail = &f->next;
	/* One write per batch: the counter cannot overflow, so this cannot fail. */
	if (!n->nr_pend++)
		(void)!write(n->evfd, &one, sizeof(one));
}

static void drain_pending(struct nat *n)
{
	struct nat_frame *f;
	uint64_t v;

	(void)!read(n->evfd, &v, sizeof(v));    /* EAGAIN: nothing was signalled */
	while ((f = n->pend_head)) {
		n->pend_head = f->next;
		if (!n->pend_head)
			n->pend_tail = &n->pend_head;
		n->nr_pend--;
		deliver(n, f->data, f->len);
		free(f);
	}
}

/* ---- libslirp callbacks ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct nat *n = opaque;

	if (n->in_send)
		queue_frame(n, buf, len);
	else
		deliver(n, buf, len);
	return len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct nat *n = opaque;

	log_msg(n->be.log, KEEL_LOG_WARNING, "%s: NAT: guest error: %s", n->be.name, msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return mono_ns();
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct nat *n = opaque;
	struct nat_timer *t = calloc(1, sizeof(*t));

	if (!t) {
		/* libslirp cannot fail here; its timer (IPv6 RA) will not run. */
		log_msg(n->be.log, KEEL_LOG_ERROR, "%s: NAT: out of memory for a timer", n->be.name);
		return NULL;
	}
	t->id = id;
	t->cb_opaque = cb_opaque;
	t->next = n->timers;
	n->timers = t;
	return t;
}

/* Only for libslirp builds that ignore timer_new_opaque; never armed. */
static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct nat *n = opaque;

	log_msg(n->be.log, KEEL_LOG_WARNING, "%s: NAT: libslirp asked for an unsupported timer",
	       n->be.name);
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct nat *n = opaque;

	for (struct nat_timer **p = &n->timers; *p; p = &(*p)->next)
		if (*p == timer) {
			*p = ((struct nat_timer *)timer)->next;
			free(timer);
			return;
		}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct nat_timer *t = timer;

	if (!t)
		return;
	t->expire_ms = expire_ms;
	t->armed = true;
}

/* The state of `fd`, growing the table; NULL when out of memory. */
static struct nat_fdstate *fd_state(struct nat *n, int fd)
{
	if (fd < 0)
		return NULL;
	if (fd >= n->nr_fds) {
		int nr = fd + 64;
		struct nat_fdstate *t = realloc(n->fds, nr * sizeof(*t));

		if (!t)
			return NULL;
		memset(t + n->nr_fds, 0, (nr - n->nr_fds) * sizeof(*t));
		n->fds = t;
		n->nr_fds = nr;
	}
	return &n->fds[fd];
}

/* Lookup without growing. */
static struct nat_fdstate *fd_known(struct nat *n, int fd)
{
	return fd >= 0 && fd < n->nr_fds ? &n->fds[fd] : NULL;
}

/* A new socket: whatever we knew about this descriptor number is stale. */
static void cb_register_poll_fd(int fd, void *opaque)
{
	struct nat_fdstate *st = fd_known(opaque, fd);

	if (st)
		st->registered = false; /* the next fill adds it (or modifies) */
}

/* Called before slirp closes `fd`: take it out of the epoll set now. */
static void cb_unregister_poll_fd(int fd, void *opaque)
{
	struct nat *n = opaque;
	struct nat_fdstate *st = fd_known(n, fd);

	if (!st)
		return;
	if (st->registered)
		epoll_ctl(n->epfd, EPOLL_CTL_DEL, fd, NULL);
	st->registered = false;
	/* An index from the last fill must not report another socket's events. */
	if (st->gen == n->gen)
		n->pfds[st->idx].fd = -1;
	st->gen = 0;
}

static void cb_notify(void *opaque)
{
}

static const SlirpCb nat_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- poll integration ---- */

static uint32_t to_epoll(int ev)
{
	return (ev & SLIRP_POLL_IN ? EPOLLIN : 0) | (ev & SLIRP_POLL_OUT ? EPOLLOUT : 0) |
	       (ev & SLIRP_POLL_PRI ? EPOLLPRI : 0);
}

static int from_epoll(uint32_t ev)
{
	return (ev & EPOLLIN ? SLIRP_POLL_IN : 0) | (ev & EPOLLOUT ? SLIRP_POLL_OUT : 0) |
	       (ev & EPOLLPRI ? SLIRP_POLL_PRI : 0) | (ev & EPOLLERR ? SLIRP_POLL_ERR : 0) |
	       (ev & EPOLLHUP ? SLIRP_POLL_HUP : 0);
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct nat *n = opaque;
	struct nat_fdstate *st = fd_state(n, fd);
	uint32_t ev = to_epoll(events);
	struct nat_pollfd *p;

	if (!st) {
		n->fill_err = ENOMEM;
		return -1;      /* slirp then never asks for its events */
	}
	/* The same descriptor twice: merge (one epoll registration per fd). */
	if (st->gen == n->gen) {
		n->pfds[st->idx].events |= ev;
		return st->idx;
	}
	if (n->nr_pfds == n->cap_pfds) {
		int cap = n->cap_pfds ? 2 * n->cap_pfds : 16;

		p = realloc(n->pfds, cap * sizeof(*p));
		if (!p) {
			n->fill_err = ENOMEM;
			return -1;
		}
		n->pfds = p;
		n->cap_pfds = cap;
	}
	p = &n->pfds[n->nr_pfds];
	p->fd = fd;
	p->events = ev;
	p->revents = 0;
	st->gen = n->gen;
	st->idx = n->nr_pfds;
	return n->nr_pfds++;
}

static int epoll_set(struct nat *n, int op, int fd, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.u64 = (uint64_t)fd };
	int r = epoll_ctl(n->epfd, op, fd, &e);

	if (r < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
		r = epoll_ctl(n->epfd, EPOLL_CTL_MOD, fd, &e);
	else if (r < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
		r = epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &e);
	return r;
}

/* Asks slirp what to wait for and mirrors it into the epoll set. */
static uint32_t nat_fill(struct nat *n)
{
	uint32_t timeout = UINT32_MAX;
	struct nat_pollfd *t;
	int c;

	/* The current set becomes the previous one. */
	t = n->prev, n->prev = n->pfds, n->pfds = t;
	c = n->cap_prev, n->cap_prev = n->cap_pfds, n->cap_pfds = c;
	n->nr_prev = n->nr_pfds;
	n->nr_pfds = 0;
	if (!++n->gen)
		n->gen = 1;     /* 0 marks "in no fill" */
	n->fill_err = 0;
	slirp_lib.pollfds_fill(n->slirp, &timeout, cb_add_poll, n);
	n->filled = true;

	for (int i = 0; i < n->nr_pfds; i++) {
		struct nat_pollfd *p = &n->pfds[i];
		struct nat_fdstate *st = &n->fds[p->fd];

		if (st->registered && st->events == p->events)
			continue;
		if (epoll_set(n, st->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd,
			      p->events) < 0) {
			n->fill_err = errno;
			st->registered = false;
			continue;
		}
		st->registered = true;
		st->events = p->events;
	}
	/* Everything registered was in the previous fill: drop what left. */
	for (int i = 0; i < n->nr_prev; i++) {
		struct nat_fdstate *st = fd_known(n, n->prev[i].fd);

		if (st && st->registered && st->gen != n->gen) {
			epoll_ctl(n->epfd, EPOLL_CTL_DEL, n->prev[i].fd, NULL);
			st->registered = false;
		}
	}
	if (n->fill_err) {
		/* Poll again soon rather than sleep on an incomplete set. */
		log_msg(n->be.log, KEEL_LOG_WARNING, "%s: NAT: cannot watch a socket: %s",
		       n->be.name, strerror(n->fill_err));
		if (timeout > 10)
			timeout = 10;
	}
	return timeout;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct nat *n = opaque;

	if (idx < 0 || idx >= n->nr_pfds || n->pfds[idx].fd < 0)
		return 0;
	return from_epoll(n->pfds[idx].revents);
}

static void run_timers(struct nat *n)
{
	int64_t now = mono_ns() / 1000000;
	struct nat_timer *t;

again:
	for (t = n->timers; t; t = t->next)
		if (t->armed && t->expire_ms <= now) {
			/* The handler may re-arm or free timers: rescan after it. */
			t->armed = false;
			slirp_lib.handle_timer(n->slirp, t->id, t->cb_opaque);
			goto again;
		}
}

/* ---- back-end operations ---- */

static int nat_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct nat *n = to_nat(be);
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > NET_MAX_FRAME - len) {
			be->dropped++;
			log_msg(be->log, KEEL_LOG_DEBUG, "%s: NAT: dropped an oversized frame",
			       be->name);
			return -1;
		}
		memcpy(n->txbuf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	if (len < 14) {
		be->dropped++;
		log_msg(be->log, KEEL_LOG_DEBUG, "%s: NAT: dropped a runt frame (%zu bytes)",
		       be->name, len);
		return -1;
	}
	sigpipe_block_thread();
	n->in_send = true;
	slirp_lib.input(n->slirp, n->txbuf, (int)len);
	n->in_send = false;
	return 0;
}

static int nat_poll_fd(struct net_backend *be)
{
	return to_nat(be)->epfd;
}

static int nat_timeout_ms(struct net_backend *be)
{
	struct nat *n = to_nat(be);
	uint32_t timeout = nat_fill(n);
	int64_t now, left;

	if (n->nr_pend)
		return 0;
	now = mono_ns() / 1000000;
	for (struct nat_timer *t = n->timers; t; t = t->next) {
		if (!t->armed)
			continue;
		left = t->expire_ms - now;
		if (left < 0)
			left = 0;
		if ((uint64_t)left < timeout)
			timeout = (uint32_t)left;
	}
	return timeout > INT_MAX ? -1 : (int)timeout;
}

static void nat_process(struct net_backend *be)
{
	struct nat *n = to_nat(be);
	struct epoll_event ev[64];
	int nr;

	drain_pending(n);
	if (!n->filled)
		nat_fill(n);
	for (int i = 0; i < n->nr_pfds; i++)
		n->pfds[i].revents = 0;
	nr = epoll_wait(n->epfd, ev, 64, 0);
	for (int i = 0; i < nr; i++) {
		int fd = (int)ev[i].data.u64;
		struct nat_fdstate *st;

		if (ev[i].data.u64 == NAT_EVENTFD_TAG)
			continue;
		st = fd_known(n, fd);
		if (st && st->gen == n->gen && n->pfds[st->idx].fd == fd)
			n->pfds[st->idx].revents = ev[i].events;
	}
	/*
	 * More than 64 ready: the rest stay ready (level-triggered) and are
	 * handled by the next round, which the I/O thread starts at once.
	 */
	sigpipe_block_thread();
	slirp_lib.pollfds_poll(n->slirp, nr < 0, cb_get_revents, n);
	n->filled = false;
	run_timers(n);
}

static const char *proto_name(keel_net_protocol p)
{
	return p == KEEL_NET_UDP ? "udp" : "tcp";
}

static int nat_add_forward(struct net_backend *be, const struct net_forward *f, keel_error **err)
{
	struct nat *n = to_nat(be);
	struct in_addr host;
	int e;

	if (inet_pton(AF_INET, f->host_addr, &host) != 1)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: NAT: port forward host address '%s' is not an IPv4 address",
			       be->name, f->host_addr);
	errno = 0;
	if (!slirp_lib.add_hostfwd(n->slirp, f->proto == KEEL_NET_UDP, host, f->host_port,
				   n->guest, f->guest_port))
		return 0;
	e = errno;
	if (e == EADDRINUSE || !e)
		return err_set(err, e ? KEEL_ERR_STATE : KEEL_ERR_IO,
			       "%s: NAT: cannot forward %s %s:%u to guest port %u: host port in use%s",
			       be->name, proto_name(f->proto), f->host_addr, f->host_port,
			       f->guest_port, e ? "" : "?");
	return err_errno(err, err_code_from_errno(e), e,
			 "%s: NAT: cannot forward %s %s:%u to guest port %u", be->name,
			 proto_name(f->proto), f->host_addr, f->host_port, f->guest_port);
}

static int nat_remove_forward(struct net_backend *be, const struct net_forward *f,
			      keel_error **err)
{
	struct nat *n = to_nat(be);
	struct in_addr host;

	if (inet_pton(AF_INET, f->host_addr, &host) != 1)
		return err_set(err, KEEL_ERR_INVALID,
			       "%s: NAT: port forward host address '%s' is not an IPv4 address",
			       be->name, f->host_addr);
	if (slirp_lib.remove_hostfwd(n->slirp, f->proto == KEEL_NET_UDP, host, f->host_port) < 0)
		return err_set(err, KEEL_ERR_NOT_FOUND, "%s: NAT: no port forward of %s %s:%u",
			       be->name, proto_name(f->proto), f->host_addr, f->host_port);
	return 0;
}

static void nat_destroy(struct net_backend *be)
{
	struct nat *n = to_nat(be);
	struct nat_frame *f;

	if (!n)
		return;
	if (n->slirp)
		slirp_lib.cleanup(n->slirp);
	while (n->timers) {
		struct nat_timer *t = n->timers;

		n->timers = t->next;
		free(t);
	}
	while ((f = n->pend_head)) {
		n->pend_head = f->next;
		free(f);
	}
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->evfd >= 0)
		close(n->evfd);
	free(n->pfds);
	free(n->prev);
	free(n->fds);
	free(n->txbuf);
	free(n);
}

static const struct net_backend_ops nat_ops = {
	.send = nat_send,
	.poll_fd = nat_poll_fd,
	.timeout_ms = nat_timeout_ms,
	.process = nat_process,
	.add_forward = nat_add_forward,
	.remove_forward = nat_remove_forward,
	.destroy = nat_destroy,
};

static struct in_addr host_at(struct in_addr net, uint32_t off)
{
	return (struct in_addr){ .s_addr = htonl(ntohl(net.s_addr) + off) };
}

struct net_backend *net_slirp_create(const struct logger *log, const char *name,
				     const struct keel_network_attachment *att,
				     const uint8_t mac[6], keel_error **err)
{
	SlirpConfig cfg = { .version = 4 };
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = NAT_EVENTFD_TAG };
	struct in_addr net = { 0 }, mask = { 0 };
	struct nat *n;

	if (nat_subnet_parse(att->subnet ? att->subnet : NAT_DEFAULT_SUBNET, name, &net, &mask,
			     err) < 0)
		return NULL;
	if (slirp_lib_get(name, err) < 0)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->txbuf = malloc(NET_MAX_FRAME))) {
		free(n);
		err_set(err, KEEL_ERR_NOMEM, "%s: NAT: out of memory", name);
		return NULL;
	}
	n->be.ops = &nat_ops;
	n->be.log = log;
	n->be.name = name;
	n->pend_tail = &n->pend_head;
	n->evfd = -1;
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0) {
		err_errno(err, err_code_from_errno(errno), errno, "%s: NAT: epoll_create1", name);
		goto fail;
	}
	n->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->evfd < 0) {
		err_errno(err, err_code_from_errno(errno), errno, "%s: NAT: eventfd", name);
		goto fail;
	}
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->evfd, &e) < 0) {
		err_errno(err, err_code_from_errno(errno), errno, "%s: NAT: epoll_ctl", name);
		goto fail;
	}

	n->guest = host_at(net, NAT_GUEST_OFF);
	cfg.restricted = 0;
	cfg.in_enabled = true;
	cfg.vnetwork = net;
	cfg.vnetmask = mask;
	cfg.vhost = host_at(net, NAT_HOST_OFF);
	cfg.vdhcp_start = n->guest;
	cfg.vnameserver = host_at(net, NAT_DNS_OFF);
	cfg.in6_enabled = false;
	cfg.disable_host_loopback = false;      /* the gateway address reaches 127.0.0.1 */
	cfg.enable_emu = false;
	n->slirp = slirp_lib.new(&cfg, &nat_callbacks, n);
	if (!n->slirp) {
		err_set(err, KEEL_ERR_INVALID, "%s: NAT: libslirp refused the configuration",
			name);
		goto fail;
	}
	(void)mac;      /* slirp learns the guest's MAC from its frames */

	for (int i = 0; i < att->nr_forwards; i++)
		if (nat_add_forward(&n->be, &att->forwards[i], err) < 0)
			goto fail;
	return &n->be;
fail:
	nat_destroy(&n->be);
	return NULL;
}
