/*
 * Polled virtio-net driver (virtio 1.x, section 5.1) over the kit's virtio
 * layer, PCI or MMIO: queue 0 receiveq (2 KiB device-writable buffers,
 * one descriptor each), queue 1 transmitq (12-byte header + frame in one
 * buffer). Features: VERSION_1, MAC, STATUS and MRG_RXBUF (cmdline
 * net_mrg=0 leaves it out); no offloads. With VERSION_1 the header is
 * always 12 bytes; num_buffers is only meaningful with MRG_RXBUF.
 */
#include <keel/kit.h>
#include <keel/net.h>

struct vnet vnet;

static struct virtq *rxq, *txq;
static u8 *rxbuf[VIRTQ_MAX_SIZE];	/* buffer posted under each head */
static u8 *txbuf[VIRTQ_MAX_SIZE];
static u8 *txbig;			/* for frames beyond 2 KiB */
#define TXBIG_LEN	(72 * 1024)
static u8 rxasm[64 * 1024];		/* merged-buffer reassembly */

static bool post_rx(u8 *buf)
{
	struct vbuf b = { buf, VNET_RXBUF, true };
	int head = virtq_add(rxq, &b, 1, false);

	if (head < 0)
		return false;
	rxbuf[head] = buf;
	return true;
}

bool vnet_init(void)
{
	struct virtio_dev *d;
	char want[16];
	u64 feat;
	int i;

	d = virtio_find(VIRTIO_ID_NET, 0);
	if (!d) {
		fail("no virtio-net device found");
		return false;
	}
	if (cmdline_str("transport", want, sizeof(want)))
		check(!strcmp(want, virtio_transport_name(d)),
		      "device on the expected transport", "%s, expected %s",
		      d->name, want);
	feat = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS);
	if (cmdline_u64_or("net_mrg", 1))
		feat |= VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (!virtio_start(d, feat))
		return false;
	vnet.dev = d;
	vnet.mrg_rxbuf = d->features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	vnet.has_status = d->features & VIRTIO_BIT(VIRTIO_NET_F_STATUS);
	if (d->features & VIRTIO_BIT(VIRTIO_NET_F_MAC)) {
		for (i = 0; i < 6; i++)
			vnet.mac[i] = virtio_cfg8(d, i);
	} else {
		/* No MAC from the device: a locally administered one. */
		static const u8 m[6] = { 0x02, 0x4b, 0x45, 0x45, 0x4c, 0x01 };
		memcpy(vnet.mac, m, 6);
	}
	if (!virtq_setup(d, 0, (u16)cmdline_u64_or("net_rxq", 0)) ||
	    !virtq_setup(d, 1, (u16)cmdline_u64_or("net_txq", 0)))
		return false;
	rxq = &d->vq[0];
	txq = &d->vq[1];
	vnet.rxq_size = rxq->size;
	vnet.txq_size = txq->size;
	for (i = 0; i < txq->size; i++)
		txbuf[i] = dma_alloc(VNET_RXBUF, 64);
	/* Fill the receive ring before DRIVER_OK (allowed, 3.1.1 step 7). */
	for (i = 0; i < rxq->size; i++)
		if (!post_rx(dma_alloc(VNET_RXBUF, 64))) {
			fail("virtio-net: cannot post rx buffer %d", i);
			return false;
		}
	if (!virtio_driver_ok(d))
		return false;
	virtq_kick(rxq);
	printf("virtio-net: %s mac %02x:%02x:%02x:%02x:%02x:%02x mrg_rxbuf=%d "
	       "status=%d rxq=%u txq=%u\n", d->name, vnet.mac[0], vnet.mac[1],
	       vnet.mac[2], vnet.mac[3], vnet.mac[4], vnet.mac[5],
	       vnet.mrg_rxbuf, vnet.has_status, rxq->size, txq->size);
	return true;
}

int vnet_link_status(void)
{
	if (!vnet.has_status)
		return -1;
	return virtio_cfg16(vnet.dev, 6);
}

static void tx_reclaim(void)
{
	while (virtq_get(txq, NULL, NULL))
		;
}

bool vnet_tx_drain(u64 us)
{
	u64 end = tsc_deadline(us);

	for (;;) {
		tx_reclaim();
		if (txq->num_free == txq->size)
			return true;
		if (tsc_expired(end))
			return false;
		cpu_relax();
	}
}

bool vnet_send_raw(const struct virtio_net_hdr *h, const void *frame, u32 len)
{
	struct vbuf b;
	u64 end;
	u8 *buf;
	int head;

	if (!txq)
		return false;
	if (VNET_HDR_LEN + len > VNET_RXBUF) {
		if (VNET_HDR_LEN + len > TXBIG_LEN)
			return false;
		if (!txbig)
			txbig = dma_alloc(TXBIG_LEN, 4096);
		if (!vnet_tx_drain(5000000))
			return false;
		buf = txbig;
	} else {
		end = tsc_deadline(5000000);
		for (;;) {
			tx_reclaim();
			if (txq->num_free)
				break;
			if (tsc_expired(end))
				return false;
			cpu_relax();
		}
		buf = txbuf[txq->free_head];
	}
	memcpy(buf, h, VNET_HDR_LEN);
	memcpy(buf + VNET_HDR_LEN, frame, len);
	b = (struct vbuf){ buf, VNET_HDR_LEN + len, false };
	head = virtq_add(txq, &b, 1, false);
	if (head < 0)
		return false;
	virtq_kick(txq);
	vnet.tx_frames++;
	if (buf == txbig)
		return vnet_tx_drain(5000000);
	return true;
}

bool vnet_send(const void *frame, u32 len)
{
	static const struct virtio_net_hdr h;

	return vnet_send_raw(&h, frame, len);
}

u32 vnet_recv(void *out, u32 max)
{
	struct virtio_net_hdr *h;
	u32 id, len, total, nbuf, i, n;
	u8 *buf;

	tx_reclaim();
	if (!virtq_get(rxq, &id, &len))
		return 0;
	buf = rxbuf[id];
	h = (struct virtio_net_hdr *)buf;
	if (len > VNET_RXBUF)
		len = VNET_RXBUF;
	nbuf = vnet.mrg_rxbuf ? h->num_buffers : 1;
	if (len < VNET_HDR_LEN) {
		post_rx(buf);
		virtq_kick(rxq);
		vnet.rx_dropped++;
		return 0;
	}
	total = len - VNET_HDR_LEN;
	memcpy(rxasm, buf + VNET_HDR_LEN, total);
	post_rx(buf);
	for (i = 1; i < nbuf; i++) {
		if (!virtq_wait(rxq, &id, &len, 1000000)) {
			fail("virtio-net: merged rx: buffer %u of %u missing",
			     i + 1, nbuf);
			break;
		}
		buf = rxbuf[id];
		if (len > VNET_RXBUF)
			len = VNET_RXBUF;
		n = len;
		if (total + n > sizeof(rxasm))
			n = sizeof(rxasm) - total;
		memcpy(rxasm + total, buf, n);
		total += n;
		post_rx(buf);
	}
	virtq_kick(rxq);
	vnet.rx_frames++;
	if (total > max)
		total = max;
	memcpy(out, rxasm, total);
	return total;
}
