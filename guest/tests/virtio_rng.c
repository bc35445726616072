/*
 * virtio-rng guest: several entropy requests (one and two descriptors),
 * each must return data that is not all zero and differs from the others.
 * cmdline: transport=pci|mmio (optional).
 */
#include <keel/kit.h>
#include <keel/virtio.h>

#define NREQ	6
#define LEN	64

void test_main(void)
{
	struct virtio_dev *d;
	struct virtq *vq;
	u8 *buf[NREQ];
	u32 len[NREQ];
	char want[16];
	int i, j;

	printf("keel virtio-rng\n");
	d = virtio_find(VIRTIO_ID_RNG, 0);
	if (!d) {
		fail("no virtio-rng device found");
		return;
	}
	if (cmdline_str("transport", want, sizeof(want)))
		check(!strcmp(want, virtio_transport_name(d)),
		      "device on the expected transport", "%s, expected %s",
		      d->name, want);
	if (!virtio_start(d, 0) || !virtq_setup(d, 0, 0) || !virtio_driver_ok(d))
		return;
	vq = &d->vq[0];
	pass("device ready: %s, queue size %u", d->name, vq->size);
	for (i = 0; i < NREQ; i++) {
		struct vbuf b[2];
		char what[32];
		int n = 1;

		buf[i] = dma_alloc(LEN, 64);
		snprintf(what, sizeof(what), "entropy request %d", i);
		if (i % 2) {	/* two device-writable descriptors */
			b[0] = (struct vbuf){ buf[i], LEN / 2, true };
			b[1] = (struct vbuf){ buf[i] + LEN / 2, LEN / 2, true };
			n = 2;
		} else {
			b[0] = (struct vbuf){ buf[i], LEN, true };
		}
		len[i] = 0;
		if (!virtq_run(vq, b, n, false, &len[i], what))
			return;
		if (len[i] == 0 || len[i] > LEN) {
			fail("%s: used len %u (buffer %u)", what, len[i], LEN);
			return;
		}
		/* Short reads are allowed: top the buffer up. */
		while (len[i] < LEN) {
			u32 more = 0;

			b[0] = (struct vbuf){ buf[i] + len[i], LEN - len[i], true };
			if (!virtq_run(vq, b, 1, false, &more, what))
				return;
			if (!more || more > LEN - len[i]) {
				fail("%s: used len %u", what, more);
				return;
			}
			len[i] += more;
		}
		for (j = 0; j < LEN && !buf[i][j]; j++)
			;
		check(j < LEN, what, "%u bytes, %02x%02x%02x%02x...", len[i],
		      buf[i][0], buf[i][1], buf[i][2], buf[i][3]);
	}
	for (i = 0; i < NREQ; i++)
		for (j = 0; j < i; j++)
			if (!memcmp(buf[i], buf[j], LEN)) {
				fail("requests %d and %d returned the same bytes",
				     j, i);
				return;
			}
	pass("all %d requests differ", NREQ);
	virtio_reset(d);
}
