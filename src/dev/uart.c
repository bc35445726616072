// SPDX-License-Identifier: MIT
/*
 * 16550A UART (what Linux's 8250 driver detects as "16550A"): 16-byte
 * receive FIFO, loopback, modem status, interrupt identification.
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the
 * output descriptor, so THR and the transmitter are always empty (LSR THRE
 * and TEMT always set).  Input is read from the input descriptor on the VM's
 * event loop only while the receive FIFO has room, so the guest never loses
 * a byte to an overrun: the watch is paused while the FIFO is full, and
 * resumed when the guest reads from it.
 *
 * Locking: the vCPU threads (port accesses) and the event thread (input)
 * both use the device; one mutex covers all of its state.  Lock order:
 * loop lock (held around callbacks) -> uart lock, so nothing here calls
 * loop_add()/loop_del() with the uart lock held.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "core/serial_io.h"
#include "dev/uart.h"
#include "kvm/kvm.h"

#define UART_NR_REGS    8
#define UART_FIFO_SIZE  16

/* Register offsets. */
#define UART_RX         0       /* in, DLAB=0 */
#define UART_TX         0       /* out, DLAB=0 */
#define UART_DLL        0       /* DLAB=1 */
#define UART_IER        1       /* DLAB=0 */
#define UART_DLM        1       /* DLAB=1 */
#define UART_IIR        2       /* in */
#define UART_FCR        2       /* out */
#define UART_LCR        3
#define UART_MCR        4
#define UART_LSR        5
#define UART_MSR        6
#define UART_SCR        7

#define UART_IER_RDI    0x01    /* receiver data available */
#define UART_IER_THRI   0x02    /* transmitter holding register empty */
#define UART_IER_RLSI   0x04    /* receiver line status */
#define UART_IER_MSI    0x08    /* modem status */
#define UART_IER_MASK   0x0f    /* bits 4-7 do not exist on a 16550A */

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI    0x00
#define UART_IIR_THRI   0x02
#define UART_IIR_RDI    0x04
#define UART_IIR_RLSI   0x06
#define UART_IIR_CTI    0x0c    /* character timeout */
#define UART_IIR_FIFO   0xc0    /* FIFOs enabled (16550A) */

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLR_RX 0x02
#define UART_FCR_CLR_TX 0x04
#define UART_FCR_DMA    0x08
#define UART_FCR_TRIG   0xc0
#define UART_FCR_KEEP   (UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIG)

#define UART_LCR_DLAB   0x80

#define UART_MCR_DTR    0x01
#define UART_MCR_RTS    0x02
#define UART_MCR_OUT1   0x04
#define UART_MCR_OUT2   0x08
#define UART_MCR_LOOP   0x10
#define UART_MCR_MASK   0x1f

#define UART_LSR_DR     0x01
#define UART_LSR_OE     0x02
#define UART_LSR_PE     0x04
#define UART_LSR_FE     0x08
#define UART_LSR_BI     0x10
#define UART_LSR_THRE   0x20
#define UART_LSR_TEMT   0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS   0x01
#define UART_MSR_DDSR   0x02
#define UART_MSR_TERI   0x04
#define UART_MSR_DDCD   0x08
#define UART_MSR_CTS    0x10
#define UART_MSR_DSR    0x20
#define UART_MSR_RI     0x40
#define UART_MSR_DCD    0x80
#define UART_MSR_DELTAS 0x0f

struct uart {
	struct vdev vdev;
	struct bus_dev bdev;
	struct devctx *ctx;
	unsigned int irq;
	int in_fd;              /* -1: no input (or not pollable) */
	struct serial_out out;

	pthread_mutex_t lock;
	bool in_registered;     /* in_fd was put on the event loop */
	bool in_watched;        /* ... and still is */
	bool in_paused;         /* ... with its events masked */
	int irq_level;

	uint8_t ier, fcr, lcr, mcr, lsr_errors, msr, scr, dll, dlm;
	bool thr_ipending;      /* THR-empty interrupt pending */
	uint8_t rbr_last;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned int rx_head, rx_count;
};

static const struct {
	uint16_t base;
	uint8_t irq;
	const char *name;
} uart_ports[] = {
	{ 0x3f8, 4, "com1" },
	{ 0x2f8, 3, "com2" },
	{ 0x3e8, 4, "com3" },
	{ 0x2e8, 3, "com4" },
};

static bool uart_fifo_enabled(const struct uart *u)
{
	return u->fcr & UART_FCR_ENABLE;
}

static unsigned int uart_rx_capacity(const struct uart *u)
{
	return uart_fifo_enabled(u) ? UART_FIFO_SIZE : 1;
}

static unsigned int uart_rx_trigger(const struct uart *u)
{
	static const unsigned int levels[4] = { 1, 4, 8, 14 };

	return levels[u->fcr >> 6];
}

static uint8_t uart_lsr(const struct uart *u)
{
	uint8_t lsr = UART_LSR_THRE | UART_LSR_TEMT | u->lsr_errors;

	if (u->rx_count)
		lsr |= UART_LSR_DR;
	return lsr;
}

/* The pending interrupt of highest priority, as IIR reports it. */
static uint8_t uart_iir(const struct uart *u)
{
	uint8_t iir = UART_IIR_NO_INT;

	if ((u->ier & UART_IER_RLSI) && u->lsr_errors)
		iir = UART_IIR_RLSI;
	else if ((u->ier & UART_IER_RDI) && u->rx_count)
		/* Below the trigger level: the timeout fires at once. */
		iir = (uart_fifo_enabled(u) && u->rx_count < uart_rx_trigger(u)) ?
			UART_IIR_CTI : UART_IIR_RDI;
	else if ((u->ier & UART_IER_THRI) && u->thr_ipending)
		iir = UART_IIR_THRI;
	else if ((u->ier & UART_IER_MSI) && (u->msr & UART_MSR_DELTAS))
		iir = UART_IIR_MSI;
	if (uart_fifo_enabled(u))
		iir |= UART_IIR_FIFO;
	return iir;
}

static void uart_update_irq(struct uart *u)
{
	int level = !(uart_iir(u) & UART_IIR_NO_INT);

	if (level != u->irq_level) {
		u->irq_level = level;
		kvm_irq_line(u->ctx->kvm, u->irq, level);
	}
}

/*
 * Input is watched only while it can be stored: FIFO not full and not in
 * loopback (which disconnects the serial input).
 */
static void uart_update_watch(struct uart *u)
{
	bool want;

	if (!u->in_watched)
		return;
	want = !(u->mcr & UART_MCR_LOOP) && u->rx_count < uart_rx_capacity(u);
	if (want == !u->in_paused)
		return;
	/*
	 * epoll reports a hang-up even with no events asked for: a paused
	 * watch is one-shot so that it fires at most once (and is ignored)
	 * instead of spinning until the guest makes room.
	 */
	if (loop_modify(u->ctx->loop, u->in_fd, want ? EPOLLIN : EPOLLONESHOT) == 0)
		u->in_paused = !want;
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

/* Stores a received byte; false (and OE set) when there is no room. */
static bool uart_rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_count >= uart_rx_capacity(u)) {
		u->lsr_errors |= UART_LSR_OE;
		return false;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = c;
	u->rx_count++;
	return true;
}

static uint8_t uart_rx_pop(struct uart *u)
{
	if (u->rx_count) {
		u->rbr_last = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
		u->rx_count--;
	}
	return u->rbr_last;
}

/* Recomputes MSR's line bits from MCR (loopback) and sets the deltas. */
static void uart_update_msr(struct uart *u)
{
	uint8_t old = u->msr, lines;

	if (u->mcr & UART_MCR_LOOP) {
		lines = 0;
		if (u->mcr & UART_MCR_DTR)
			lines |= UART_MSR_DSR;
		if (u->mcr & UART_MCR_RTS)
			lines |= UART_MSR_CTS;
		if (u->mcr & UART_MCR_OUT1)
			lines |= UART_MSR_RI;
		if (u->mcr & UART_MCR_OUT2)
			lines |= UART_MSR_DCD;
	} else {
		/* A console is always there and ready. */
		lines = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	}
	u->msr = lines | (old & UART_MSR_DELTAS);
	if ((old ^ lines) & UART_MSR_CTS)
		u->msr |= UART_MSR_DCTS;
	if ((old ^ lines) & UART_MSR_DSR)
		u->msr |= UART_MSR_DDSR;
	if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
		u->msr |= UART_MSR_TERI;
	if ((old ^ lines) & UART_MSR_DCD)
		u->msr |= UART_MSR_DDCD;
}

static void uart_output(struct uart *u, uint8_t c)
{
	if (serial_out_write(&u->out, &c, 1) < 0)
		log_msg(&u->ctx->log, KEEL_LOG_WARNING, "%s: output failed (%s); discarding output from now on",
		       u->vdev.name, strerror(errno));
}

static void uart_transmit(struct uart *u, uint8_t c)
{
	if (u->mcr & UART_MCR_LOOP)
		uart_rx_push(u, c);
	else
		uart_output(u, c);
	/* Sent at once: THR is empty again. */
	u->thr_ipending = true;
}

static uint8_t uart_read_reg(struct uart *u, unsigned int reg)
{
	uint8_t val = 0;

	switch (reg) {
	case UART_RX:
		if (u->lcr & UART_LCR_DLAB) {
			val = u->dll;
		} else {
			val = uart_rx_pop(u);
			uart_update_watch(u);
		}
		break;
	case UART_IER:
		val = (u->lcr & UART_LCR_DLAB) ? u->dlm : u->ier;
		break;
	case UART_IIR:
		val = uart_iir(u);
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((val & 0x0f) == UART_IIR_THRI)
			u->thr_ipending = false;
		break;
	case UART_LCR:
		val = u->lcr;
		break;
	case UART_MCR:
		val = u->mcr;
		break;
	case UART_LSR:
		val = uart_lsr(u);
		u->lsr_errors = 0;
		break;
	case UART_MSR:
		val = u->msr;
		u->msr &= ~UART_MSR_DELTAS;
		break;
	case UART_SCR:
		val = u->scr;
		break;
	}
	return val;
}

static void uart_write_reg(struct uart *u, unsigned int reg, uint8_t val)
{
	uint8_t changed;

	switch (reg) {
	case UART_TX:
		if (u->lcr & UART_LCR_DLAB)
			u->dll = val;
		else
			uart_transmit(u, val);
		break;
	case UART_IER:
		if (u->lcr & UART_LCR_DLAB) {
			u->dlm = val;
			break;
		}
		changed = (u->ier ^ val) & UART_IER_MASK;
		u->ier = val & UART_IER_MASK;
		/* Enabling THRI with THR empty raises it (Linux tests this). */
		if (changed & UART_IER_THRI)
			u->thr_ipending = u->ier & UART_IER_THRI;
		break;
	case UART_FCR:
		if (!(val & UART_FCR_ENABLE)) {
			/* Disabling the FIFOs clears them; other bits need ENABLE. */
			if (uart_fifo_enabled(u))
				uart_rx_clear(u);
			u->fcr = 0;
		} else {
			if (!uart_fifo_enabled(u) || (val & UART_FCR_CLR_RX))
				uart_rx_clear(u);
			u->fcr = val & UART_FCR_KEEP;
		}
		uart_update_watch(u);
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		u->mcr = val & UART_MCR_MASK;
		uart_update_msr(u);
		uart_update_watch(u);
		break;
	case UART_LSR:
	case UART_MSR:
		/* Factory test registers: writes ignored. */
		break;
	case UART_SCR:
		u->scr = val;
		break;
	}
}

static struct uart *bdev_to_uart(struct bus_dev *dev)
{
	return (struct uart *)((char *)dev - offsetof(struct uart, bdev));
}

/* Wider accesses are split into byte accesses, as on the ISA bus. */
static void uart_bus_read(struct bus_dev *dev, uint64_t offset, void *data, unsigned int len)
{
	struct uart *u = bdev_to_uart(dev);
	uint8_t *p = data;

	pthread_mutex_lock(&u->lock);
	for (unsigned int i = 0; i < len; i++)
		p[i] = offset + i < UART_NR_REGS ? uart_read_reg(u, offset + i) : 0xff;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_bus_write(struct bus_dev *dev, uint64_t offset, const void *data,
			   unsigned int len)
{
	struct uart *u = bdev_to_uart(dev);
	const uint8_t *p = data;

	pthread_mutex_lock(&u->lock);
	for (unsigned int i = 0; i < len; i++)
		if (offset + i < UART_NR_REGS)
			uart_write_reg(u, offset + i, p[i]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct bus_dev_ops uart_ops = {
	.read = uart_bus_read,
	.write = uart_bus_write,
};

/* Event thread: input is readable (or hung up). */
static void uart_input(void *opaque, uint32_t events)
{
	struct uart *u = opaque;
	struct loop *loop = u->ctx->loop;
	int fd = u->in_fd;
	uint8_t buf[UART_FIFO_SIZE];
	bool stop = false;
	unsigned int room;
	ssize_t n;

	pthread_mutex_lock(&u->lock);
	if (!u->in_watched)
		goto out;
	room = uart_rx_capacity(u) - u->rx_count;
	if (room && !(u->mcr & UART_MCR_LOOP)) {
		/* The descriptor may be blocking: one read() after readiness. */
		n = read(u->in_fd, buf, room);
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				uart_rx_push(u, buf[i]);
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			stop = true;    /* end of input, or it broke */
		}
	}
	/*
	 * Otherwise nothing can be stored now (the watch is paused, or about
	 * to be): even on a hang-up, unread bytes wait for the guest.
	 */
	if (stop)
		u->in_watched = false;
	else
		uart_update_watch(u);
	uart_update_irq(u);
out:
	pthread_mutex_unlock(&u->lock);
	/* Removing our own watch from its callback is allowed (see loop.h). */
	if (stop)
		loop_del(loop, fd);
}

/* Power-on register values. */
static void uart_power_on(struct uart *u)
{
	u->ier = 0;
	u->fcr = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr_errors = 0;
	u->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	u->scr = 0;
	u->dll = 0x0c;          /* 9600 baud */
	u->dlm = 0;
	u->thr_ipending = false;
	u->rbr_last = 0;
	uart_rx_clear(u);
}

static void uart_reset(struct vdev *vdev)
{
	struct uart *u = (struct uart *)vdev;

	pthread_mutex_lock(&u->lock);
	uart_power_on(u);
	uart_update_watch(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_destroy(struct vdev *vdev)
{
	struct uart *u = (struct uart *)vdev;

	bus_del(u->ctx->pio, &u->bdev);
	pthread_mutex_lock(&u->lock);
	u->in_watched = false;
	pthread_mutex_unlock(&u->lock);
	/*
	 * Waits for a running input callback (which then sees in_watched
	 * false); a no-op when the callback already removed the watch.
	 */
	if (u->in_registered)
		loop_del(u->ctx->loop, u->in_fd);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int uart_create(struct devctx *ctx, int index, const struct keel_serial_attachment *att,
		keel_error **err)
{
	struct uart *u;
	int ret;

	if (index < 0 || index >= (int)(sizeof(uart_ports) / sizeof(uart_ports[0])))
		return err_set(err, KEEL_ERR_INVALID, "serial port index %d out of range (0-3)",
			       index);
	u = calloc(1, sizeof(*u));
	if (!u)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating %s",
			       uart_ports[index].name);
	ret = pthread_mutex_init(&u->lock, NULL);
	if (ret) {
		free(u);
		return err_errno(err, KEEL_ERR_NOMEM, ret, "cannot create %s",
				 uart_ports[index].name);
	}
	u->ctx = ctx;
	u->irq = uart_ports[index].irq;
	u->in_fd = att ? att->in_fd : -1;
	serial_out_init(&u->out, att ? att->out_fd : -1);
	u->vdev.name = uart_ports[index].name;
	u->vdev.reset = uart_reset;
	u->vdev.destroy = uart_destroy;
	u->bdev.ops = &uart_ops;
	u->bdev.name = uart_ports[index].name;
	uart_power_on(u);

	if (bus_add(ctx->pio, &u->bdev, uart_ports[index].base, UART_NR_REGS, err))
		goto fail;
	if (u->in_fd >= 0 && serial_in_pollable(u->in_fd)) {
		u->in_watched = true;
		if (loop_add(ctx->loop, u->in_fd, EPOLLIN, uart_input, u, err)) {
			bus_del(ctx->pio, &u->bdev);
			goto fail;
		}
		u->in_registered = true;
	}
	devctx_add(ctx, &u->vdev);
	return 0;
fail:
	err_prefix(err, "%s", uart_ports[index].name);
	pthread_mutex_destroy(&u->lock);
	free(u);
	return -1;
}
