/*
 * virtio-console guest, port 0 without VIRTIO_CONSOLE_F_MULTIPORT
 * (queue 0 receiveq, queue 1 transmitq). Protocol with the runner, which
 * holds the console's host side: the guest posts receive buffers and
 * prints READY on COM1; the host sends "WORD\n" (cmdline
 * console_expect=WORD); the guest checks it, then transmits
 * "CONSOLE-HELLO\n" and "ECHO WORD\n", which the runner checks.
 */
#include <keel/kit.h>
#include <keel/virtio.h>

#define VIRTIO_CONSOLE_F_SIZE		0
#define VIRTIO_CONSOLE_F_MULTIPORT	1
#define NRX	4
#define RXLEN	64

static struct virtio_dev *d;
static u8 *rxbuf[NRX];

static bool post_rx(int i)
{
	struct vbuf b = { rxbuf[i], RXLEN, true };
	int head = virtq_add(&d->vq[0], &b, 1, false);

	if (head < 0) {
		fail("console: cannot post receive buffer %d", i);
		return false;
	}
	return true;
}

static bool tx(const char *s)
{
	u32 n = strlen(s), len;
	char *buf = dma_alloc(n, 16);
	struct vbuf b = { buf, n, false };

	memcpy(buf, s, n);
	return virtq_run(&d->vq[1], &b, 1, false, &len, "console transmit");
}

void test_main(void)
{
	char want[64], got[128], line[160];
	u32 n = 0;
	u64 end;
	int i;
	bool eol = false;

	printf("keel virtio-console\n");
	if (!cmdline_str("console_expect", want, sizeof(want))) {
		fail("console_expect= missing from the command line");
		return;
	}
	d = virtio_find(VIRTIO_ID_CONSOLE, 0);
	if (!d) {
		fail("no virtio-console device found");
		return;
	}
	if (cmdline_str("transport", line, sizeof(line)))
		check(!strcmp(line, virtio_transport_name(d)),
		      "device on the expected transport", "%s, expected %s",
		      d->name, line);
	/* No MULTIPORT: port 0 only, no control queues. */
	if (!virtio_start(d, 0) || !virtq_setup(d, 0, 0) ||
	    !virtq_setup(d, 1, 0))
		return;
	if (d->dev_features & VIRTIO_BIT(VIRTIO_CONSOLE_F_MULTIPORT))
		printf("note: MULTIPORT offered, not accepted\n");
	for (i = 0; i < NRX; i++) {
		rxbuf[i] = dma_alloc(RXLEN, 64);
		if (!post_rx(i))
			return;
	}
	if (!virtio_driver_ok(d))
		return;
	virtq_kick(&d->vq[0]);
	pass("device ready: %s, rx/tx queue sizes %u/%u", d->name,
	     d->vq[0].size, d->vq[1].size);
	printf("READY\n");

	end = tsc_deadline(cmdline_u64_or("console_timeout", 60) * 1000000);
	while (!eol) {
		u32 id, len, k;

		if (!virtq_get(&d->vq[0], &id, &len)) {
			if (tsc_expired(end)) {
				got[n] = 0;
				fail("console receive: timed out after \"%s\"", got);
				return;
			}
			cpu_relax();
			continue;
		}
		if (id >= d->vq[0].size || len > RXLEN) {
			fail("console receive: used id %u len %u", id, len);
			return;
		}
		/* Find which buffer came back (descriptor id == slot here). */
		for (i = 0; i < NRX; i++)
			if (d->vq[0].desc[id].addr == (u64)(uintptr_t)rxbuf[i])
				break;
		if (i == NRX) {
			fail("console receive: unknown buffer (id %u)", id);
			return;
		}
		for (k = 0; k < len && !eol; k++) {
			char c = rxbuf[i][k];

			if (c == '\n')
				eol = true;
			else if (c != '\r' && n + 1 < sizeof(got))
				got[n++] = c;
		}
		if (!post_rx(i))
			return;
		virtq_kick(&d->vq[0]);
	}
	got[n] = 0;
	check(!strcmp(got, want), "console input line",
	      "got \"%s\", expected \"%s\"", got, want);
	if (tx("CONSOLE-HELLO\n"))
		pass("console transmit CONSOLE-HELLO");
	snprintf(line, sizeof(line), "ECHO %s\n", got);
	if (tx(line))
		pass("console transmit echo");
	printf("CONSOLE-SENT\n");
}
