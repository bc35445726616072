// SPDX-License-Identifier: MIT
/*
 * Network back ends without a VM: socket framing (datagram and stream)
 * through send()/process() against the other end of a socketpair, partial
 * stream writes and reads, oversized frames, end of stream, Unix socket
 * connection errors; and, as root with /dev/net/tun, TAP and bridged
 * attachments in a private network namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/backend.h"
#include "check.h"
#include "fakevm.h"

static struct fake_vm *vm;
static int warnings;

/* What rx() received. */
static uint8_t got[16][NET_MAX_FRAME];
static size_t got_len[16];
static int nr_got;
static bool refuse;            /* rx() says "no buffer" */

static void log_cb(keel_log_level level, const char *msg, void *opaque)
{
	if (level <= KEEL_LOG_WARNING)
		warnings++;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "log: %s\n", msg);
}

static bool rx(void *opaque, const struct iovec *iov, int iovcnt)
{
	size_t off = 0;

	if (refuse || nr_got == 16)
		return false;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(got[nr_got] + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	got_len[nr_got++] = off;
	return true;
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

static struct net_backend *make_socket(int fd, keel_net_framing framing, keel_error **err)
{
	struct keel_network_attachment att = { .kind = NET_SOCKET, .fd = fd, .framing = framing };
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };

	return net_backend_create(&vm->ctx.log, "net-test", &att, mac, rx, NULL, err);
}

static void test_dgram(void)
{
	static uint8_t frame[NET_MAX_FRAME + 100], buf[NET_MAX_FRAME + 100];
	keel_error *err = NULL;
	struct net_backend *be;
	struct iovec iov[2];
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	be = make_socket(sv[0], KEEL_NET_DGRAM, &err);
	CHECK(be && !err);
	close(sv[0]);           /* the back end has its own descriptor */
	if (!be)
		return;
	CHECK(!be->vnet_hdr && be->ops->poll_fd(be) >= 0 && be->ops->timeout_ms(be) == -1);
	CHECK(!be->ops->add_forward);

	/* Guest -> peer: two pieces, one datagram. */
	fill(frame, 1500, 1);
	iov[0] = (struct iovec){ frame, 14 };
	iov[1] = (struct iovec){ frame + 14, 1486 };
	CHECK(be->ops->send(be, iov, 2) == 0);
	CHECK(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) == 1500 && !memcmp(buf, frame, 1500));

	/* Peer -> guest, the guest out of buffers for the second: kept, not lost. */
	nr_got = 0;
	fill(frame, 60, 2);
	CHECK(send(sv[1], frame, 60, 0) == 60);
	fill(frame + 100, 70, 3);
	CHECK(send(sv[1], frame + 100, 70, 0) == 70);
	be->ops->process(be);
	CHECK(nr_got == 2 && got_len[0] == 60 && got_len[1] == 70);
	CHECK(!memcmp(got[0], frame, 60) && !memcmp(got[1], frame + 100, 70));
	nr_got = 0;
	CHECK(send(sv[1], frame, 64, 0) == 64);
	refuse = true;
	be->ops->process(be);
	CHECK(nr_got == 0);
	refuse = false;
	be->ops->process(be);
	CHECK(nr_got == 1 && got_len[0] == 64 && !memcmp(got[0], frame, 64));

	/* Oversized both ways: dropped and counted. */
	nr_got = 0;
	iov[0] = (struct iovec){ frame, NET_MAX_FRAME + 1 };
	CHECK(be->ops->send(be, iov, 1) == -1 && be->dropped == 1);
	CHECK(send(sv[1], frame, NET_MAX_FRAME + 50, 0) == NET_MAX_FRAME + 50);
	CHECK(send(sv[1], frame, 80, 0) == 80);
	be->ops->process(be);
	CHECK(be->dropped == 2 && nr_got == 1 && got_len[0] == 80);

	/* The peer cannot take more: dropped (counted), never blocking. */
	{
		uint64_t before = be->dropped;
		int sent = 0, failed = 0;

		iov[0] = (struct iovec){ frame, 1500 };
		for (int i = 0; i < 2000; i++) {
			if (be->ops->send(be, iov, 1) == 0)
				sent++;
			else
				failed++;
		}
		CHECK(failed > 0 && be->dropped == before + (uint64_t)failed);
	}
	be->ops->destroy(be);
	close(sv[1]);

	/* SOCK_SEQPACKET: the end of the connection stops polling. */
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	be = make_socket(sv[0], KEEL_NET_DGRAM, &err);
	close(sv[0]);
	CHECK(be != NULL);
	if (be) {
		warnings = 0;
		close(sv[1]);
		be->ops->process(be);
		CHECK(be->ops->poll_fd(be) == -1 && warnings == 1);
		be->ops->destroy(be);
	}
}

/* Reads exactly len bytes (blocking). */
static bool read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)buf + done, len - done);

		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_stream(void)
{
	static uint8_t frame[NET_MAX_FRAME + 100], buf[200000];
	keel_error *err = NULL;
	struct net_backend *be;
	struct iovec iov[3];
	uint8_t hdr[4];
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	/* Wrong framing for the socket type. */
	be = make_socket(sv[0], KEEL_NET_DGRAM, &err);
	CHECK(!be);
	CHECK_ERR(err, KEEL_ERR_INVALID, "needs a SOCK_DGRAM or SOCK_SEQPACKET socket");
	be = make_socket(sv[0], KEEL_NET_STREAM, &err);
	CHECK(be && !err);
	close(sv[0]);
	if (!be)
		return;

	/* Guest -> peer: length prefix, then the frame. */
	fill(frame, 1000, 4);
	iov[0] = (struct iovec){ frame, 100 };
	iov[1] = (struct iovec){ frame + 100, 0 };
	iov[2] = (struct iovec){ frame + 100, 900 };
	CHECK(be->ops->send(be, iov, 3) == 0);
	CHECK(read_all(sv[1], hdr, 4) && hdr[0] == 0 && hdr[1] == 0 && hdr[2] == 3 && hdr[3] == 0xe8);
	CHECK(read_all(sv[1], buf, 1000) && !memcmp(buf, frame, 1000));

	/* Peer -> guest in pieces: a frame is delivered only once complete. */
	nr_got = 0;
	fill(frame, 300, 5);
	put_be32(buf, 300);
	memcpy(buf + 4, frame, 300);
	put_be32(buf + 304, 20);
	memcpy(buf + 308, frame, 20);
	CHECK(write(sv[1], buf, 2) == 2);
	be->ops->process(be);
	CHECK(nr_got == 0);
	CHECK(write(sv[1], buf + 2, 200) == 200);
	be->ops->process(be);
	CHECK(nr_got == 0);
	CHECK(write(sv[1], buf + 202, 328 - 202) == 328 - 202);
	refuse = true;
	be->ops->process(be);
	CHECK(nr_got == 0);
	refuse = false;
	be->ops->process(be);
	CHECK(nr_got == 2 && got_len[0] == 300 && got_len[1] == 20);
	CHECK(!memcmp(got[0], frame, 300) && !memcmp(got[1], frame, 20));

	/* An oversized frame is skipped whole; the next one arrives. */
	nr_got = 0;
	put_be32(buf, NET_MAX_FRAME + 1000);
	memset(buf + 4, 0xaa, NET_MAX_FRAME + 1000);
	put_be32(buf + 4 + NET_MAX_FRAME + 1000, 40);
	memcpy(buf + 8 + NET_MAX_FRAME + 1000, frame, 40);
	{
		size_t total = 8 + NET_MAX_FRAME + 1000 + 40, off = 0;

		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		while (off < total) {
			ssize_t n = write(sv[1], buf + off, total - off);

			if (n > 0)
				off += (size_t)n;
			be->ops->process(be);
		}
		be->ops->process(be);
		fcntl(sv[1], F_SETFL, 0);
	}
	CHECK(be->dropped == 1 && nr_got == 1 && got_len[0] == 40 && !memcmp(got[0], frame, 40));

	/* A peer that does not read: frames are buffered or dropped, never torn. */
	{
		int sndbuf = 4096, sent = 0, frames = 0;
		uint64_t before = be->dropped;
		size_t have = 0;

		setsockopt(be->ops->poll_fd(be), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		for (int i = 0; i < 20; i++) {
			fill(frame, 30000, (unsigned int)i);
			iov[0] = (struct iovec){ frame, 30000 };
			if (be->ops->send(be, iov, 1) == 0)
				sent++;
		}
		CHECK(be->dropped == before + (uint64_t)(20 - sent));
		if (be->ops->timeout_ms(be) <= 0)
			fprintf(stderr, "sent %d of 20 frames, none waiting\n", sent);
		CHECK(sent < 20 && be->ops->timeout_ms(be) > 0);  /* output waits: flush scheduled */
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		for (int k = 0; k < 100000 && frames < sent; k++) {
			ssize_t n = read(sv[1], buf + have, sizeof(buf) - have);

			if (n > 0)
				have += (size_t)n;
			be->ops->process(be);
			while (have >= 4) {
				uint32_t len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
					       (uint32_t)buf[2] << 8 | buf[3];

				CHECK(len == 30000);
				if (len != 30000 || have < 4 + len) {
					if (len != 30000)
						frames = sent;
					break;
				}
				memmove(buf, buf + 4 + len, have - 4 - len);
				have -= 4 + len;
				frames++;
			}
		}
		fcntl(sv[1], F_SETFL, 0);
		CHECK(frames == sent && sent > 0);
		CHECK(be->ops->timeout_ms(be) == -1);
	}

	/* End of stream: logged, polling stops. */
	warnings = 0;
	close(sv[1]);
	be->ops->process(be);
	CHECK(be->ops->poll_fd(be) == -1 && warnings == 1);
	iov[0] = (struct iovec){ frame, 100 };
	CHECK(be->ops->send(be, iov, 1) == -1);
	be->ops->destroy(be);
}

static void test_unix(void)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	char dir[] = "/tmp/keel-test-net.XXXXXX", path[128];
	struct keel_network_attachment att = { .kind = NET_UNIX, .fd = -1, .name = path };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	keel_error *err = NULL;
	struct net_backend *be;
	uint8_t frame[64], buf[128];
	struct iovec iov = { frame, sizeof(frame) };
	int l, c;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/passt.sock", dir);
	be = net_backend_create(&vm->ctx.log, "net-test", &att, mac, rx, NULL, &err);
	CHECK(!be);
	CHECK_ERR(err, KEEL_ERR_NOT_FOUND, "cannot connect to '");

	l = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, path);
	CHECK(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0);
	be = net_backend_create(&vm->ctx.log, "net-test", &att, mac, rx, NULL, &err);
	CHECK(be && !err);
	c = accept(l, NULL, NULL);
	CHECK(c >= 0);
	if (be && c >= 0) {
		fill(frame, sizeof(frame), 9);
		CHECK(be->ops->send(be, &iov, 1) == 0);
		CHECK(read_all(c, buf, 4 + sizeof(frame)) && buf[3] == sizeof(frame) &&
		      !memcmp(buf + 4, frame, sizeof(frame)));
		nr_got = 0;
		CHECK(write(c, buf, 4 + sizeof(frame)) == 4 + (ssize_t)sizeof(frame));
		be->ops->process(be);
		CHECK(nr_got == 1 && got_len[0] == sizeof(frame));
	}
	if (be)
		be->ops->destroy(be);
	close(c);
	close(l);
	unlink(path);
	rmdir(dir);
}

/* In a child, in a fresh network namespace: 0 pass, 77 skip, 1 fail. */
static int tap_child(void)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct keel_network_attachment tap = { .kind = NET_TAP, .fd = -1, .name = (char *)"keeltap0" };
	struct keel_network_attachment br = { .kind = NET_BRIDGED, .fd = -1, .name = (char *)"keelbr0" };
	struct keel_network_attachment nobr = { .kind = NET_BRIDGED, .fd = -1, .name = (char *)"nobr" };
	struct keel_network_attachment notbr = { .kind = NET_BRIDGED, .fd = -1, .name = (char *)"lo" };
	keel_error *err = NULL;
	struct net_backend *be, *be2;
	int s;

	check_failures = 0;
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: TAP tests: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 77;
	}
	/* A missing interface is an error, not created. */
	be = net_backend_create(&vm->ctx.log, "net-test", &tap, mac, rx, NULL, &err);
	CHECK(!be);
	CHECK_ERR(err, KEEL_ERR_NOT_FOUND, "TAP interface 'keeltap0' does not exist");
	CHECK(if_nametoindex("keeltap0") == 0);
	{
		struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
		int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "keeltap0");
		CHECK(fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, 1) == 0);
		if (fd >= 0)
			close(fd);
	}
	be = net_backend_create(&vm->ctx.log, "net-test", &tap, mac, rx, NULL, &err);
	CHECK(be && !err);
	if (be) {
		CHECK(be->vnet_hdr && if_nametoindex("keeltap0") != 0);
		/* Busy: a second attach of the same interface. */
		be2 = net_backend_create(&vm->ctx.log, "net-test", &tap, mac, rx, NULL, &err);
		CHECK(!be2);
		CHECK_ERR(err, KEEL_ERR_STATE, "in use");
		be->ops->destroy(be);
	}
	be = net_backend_create(&vm->ctx.log, "net-test", &nobr, mac, rx, NULL, &err);
	CHECK(!be);
	CHECK_ERR(err, KEEL_ERR_NOT_FOUND, "bridge 'nobr' does not exist");
	be = net_backend_create(&vm->ctx.log, "net-test", &notbr, mac, rx, NULL, &err);
	CHECK(!be);
	CHECK_ERR(err, KEEL_ERR_INVALID, "'lo' is not a bridge");

	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (ioctl(s, SIOCBRADDBR, "keelbr0") < 0) {
		printf("note: no bridge support (%s): bridged attachment not tested\n", strerror(errno));
	} else {
		be = net_backend_create(&vm->ctx.log, "net-test", &br, mac, rx, NULL, &err);
		CHECK(be && !err);
		if (err)
			fprintf(stderr, "%s\n", keel_error_get_message(err));
		struct ifreq ifr = { 0 };

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "keel0");
		CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP));
		if (be)
			be->ops->destroy(be);
		CHECK(if_nametoindex("keel0") == 0);     /* not persistent */
	}
	close(s);
	return check_failures ? 1 : 0;
}

static void test_tap(void)
{
	int status = 0;
	pid_t pid;

	if (access("/dev/net/tun", R_OK | W_OK) != 0 || geteuid() != 0) {
		printf("SKIP: TAP tests: need root and /dev/net/tun\n");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(tap_child());
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	CHECK(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77);
}

int main(void)
{
	vm = fake_vm_new(&(struct fake_vm_opts){ .log_cb = log_cb });
	test_dgram();
	test_stream();
	test_unix();
	test_tap();
	fake_vm_free(vm);
	return test_exit();
}
