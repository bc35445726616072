// SPDX-License-Identifier: MIT
/*
 * i8042 PS/2 controller with a keyboard that answers commands (it never
 * produces keystrokes) and an auxiliary port with no device plugged in.
 *
 * What Linux's i8042 driver does at boot and what it sees here:
 *  - self-test (0xAA) -> 0x55, CTR read/write, kbd/aux interface tests -> 0;
 *  - the aux loopback (0xD3) works and raises IRQ 12 when enabled, so the
 *    AUX port is found; bytes sent to the (absent) mouse with 0xD4 are
 *    answered at once by 0xFE with the timeout status bit, which fails the
 *    mouse probe without delay;
 *  - the keyboard answers reset, identify, LEDs, scan code set, ...
 *
 * The output buffer is a small queue; its head is what port 0x60 returns.
 * IRQ 1 (keyboard byte at the head, CTR KBDINT) and IRQ 12 (aux byte at the
 * head, CTR AUXINT) follow the output-buffer-full state, as the real chip's
 * interrupt outputs do; the ISA lines are edge-triggered, so every byte that
 * reaches the head after a read gives a new edge.
 *
 * Pulsing output line 0 (command 0xFE, or 0xF0-0xFF with bit 0 clear) or
 * writing the output port with bit 0 clear resets the machine.
 *
 * Accesses come from vCPU threads only; one mutex covers the state.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "dev/i8042.h"
#include "kvm/kvm.h"

#define I8042_DATA_PORT         0x60
#define I8042_CMD_PORT          0x64

#define I8042_IRQ_KBD           1
#define I8042_IRQ_AUX           12

/* Status register. */
#define STR_OBF                 0x01
#define STR_IBF                 0x02
#define STR_SYS                 0x04
#define STR_CMD                 0x08    /* last write went to the command port */
#define STR_KEYLOCK             0x10    /* 1: keyboard not inhibited */
#define STR_AUXDATA             0x20
#define STR_TIMEOUT             0x40
#define STR_PARITY              0x80

/* Controller configuration byte (CTR). */
#define CTR_KBDINT              0x01
#define CTR_AUXINT              0x02
#define CTR_SYS                 0x04
#define CTR_KBDDIS              0x10
#define CTR_AUXDIS              0x20
#define CTR_XLATE               0x40

/* Output port. */
#define OUTP_RESET              0x01    /* 0: CPU held in reset */
#define OUTP_A20                0x02

#define CTR_POWER_ON            (CTR_KBDINT | CTR_SYS)
#define OUTP_POWER_ON           (OUTP_RESET | OUTP_A20)

/* Controller commands. */
#define CMD_READ_CTR            0x20
#define CMD_WRITE_CTR           0x60
#define CMD_AUX_DISABLE         0xa7
#define CMD_AUX_ENABLE          0xa8
#define CMD_AUX_TEST            0xa9
#define CMD_SELF_TEST           0xaa
#define CMD_KBD_TEST            0xab
#define CMD_KBD_DISABLE         0xad
#define CMD_KBD_ENABLE          0xae
#define CMD_READ_INPUT          0xc0
#define CMD_READ_OUTPUT         0xd0
#define CMD_WRITE_OUTPUT        0xd1
#define CMD_WRITE_KBD_OBUF      0xd2
#define CMD_WRITE_AUX_OBUF      0xd3
#define CMD_WRITE_AUX           0xd4
#define CMD_A20_DISABLE         0xdd
#define CMD_A20_ENABLE          0xdf
#define CMD_READ_TEST           0xe0
#define CMD_PULSE_FIRST         0xf0

/* Keyboard commands and replies. */
#define KBD_CMD_SET_LEDS        0xed
#define KBD_CMD_ECHO            0xee
#define KBD_CMD_SCANCODE_SET    0xf0
#define KBD_CMD_IDENTIFY        0xf2
#define KBD_CMD_SET_RATE        0xf3
#define KBD_CMD_ENABLE          0xf4
#define KBD_CMD_DISABLE         0xf5
#define KBD_CMD_SET_DEFAULT     0xf6
#define KBD_CMD_RESET           0xff
#define KBD_REPLY_ACK           0xfa
#define KBD_REPLY_RESEND        0xfe
#define KBD_REPLY_POST_OK       0xaa

#define I8042_QUEUE_SIZE        16

/* Flags of a queued byte: the status bits it shows at the head. */
#define Q_AUX                   STR_AUXDATA
#define Q_TIMEOUT               STR_TIMEOUT

struct i8042 {
	struct vdev vdev;
	struct bus_dev data_dev;
	struct bus_dev cmd_dev;
	struct devctx *ctx;

	pthread_mutex_t lock;
	uint8_t ctr;
	uint8_t outport;
	bool last_was_cmd;
	uint8_t pending_cmd;    /* controller command waiting for its data byte */
	uint8_t kbd_pending;    /* keyboard command waiting for its argument */
	bool kbd_scanning;
	uint8_t kbd_set;        /* scan code set */
	uint8_t last_read;

	struct {
		uint8_t byte, flags;
	} queue[I8042_QUEUE_SIZE];
	unsigned int head, count;
	int irq_kbd_level, irq_aux_level;
};

static void i8042_queue(struct i8042 *k, uint8_t byte, uint8_t flags)
{
	if (k->count == I8042_QUEUE_SIZE)
		return;         /* overflow: the byte is lost, as on hardware */
	k->queue[(k->head + k->count) % I8042_QUEUE_SIZE].byte = byte;
	k->queue[(k->head + k->count) % I8042_QUEUE_SIZE].flags = flags;
	k->count++;
}

static uint8_t i8042_head_flags(const struct i8042 *k)
{
	return k->count ? k->queue[k->head].flags : 0;
}

static void i8042_update_irq(struct i8042 *k)
{
	bool aux = i8042_head_flags(k) & Q_AUX;
	int kbd_level = k->count && !aux && (k->ctr & CTR_KBDINT);
	int aux_level = k->count && aux && (k->ctr & CTR_AUXINT);

	if (kbd_level != k->irq_kbd_level) {
		k->irq_kbd_level = kbd_level;
		kvm_irq_line(k->ctx->kvm, I8042_IRQ_KBD, kbd_level);
	}
	if (aux_level != k->irq_aux_level) {
		k->irq_aux_level = aux_level;
		kvm_irq_line(k->ctx->kvm, I8042_IRQ_AUX, aux_level);
	}
}

static uint8_t i8042_status(const struct i8042 *k)
{
	uint8_t st = STR_KEYLOCK | i8042_head_flags(k);

	if (k->count)
		st |= STR_OBF;
	if (k->ctr & CTR_SYS)
		st |= STR_SYS;
	if (k->last_was_cmd)
		st |= STR_CMD;
	return st;
}

/* A byte from the keyboard, through the controller's set 2 -> 1 translation. */
static void i8042_kbd_reply(struct i8042 *k, uint8_t byte, bool translatable)
{
	if (translatable && (k->ctr & CTR_XLATE)) {
		switch (byte) {
		case 0x01: byte = 0x43; break;
		case 0x02: byte = 0x41; break;
		case 0x03: byte = 0x3f; break;
		case 0x83: byte = 0x41; break;
		}
	}
	i8042_queue(k, byte, 0);
}

static void i8042_kbd_defaults(struct i8042 *k)
{
	k->kbd_scanning = true;
	k->kbd_set = 2;
	k->kbd_pending = 0;
}

/* A byte written to port 0x60 with no controller command pending. */
static void i8042_kbd_write(struct i8042 *k, uint8_t val)
{
	/* An argument, unless the keyboard gets a new command instead. */
	if (k->kbd_pending && val < KBD_CMD_SET_LEDS) {
		uint8_t cmd = k->kbd_pending;

		k->kbd_pending = 0;
		if (cmd == KBD_CMD_SCANCODE_SET && val == 0) {
			i8042_kbd_reply(k, KBD_REPLY_ACK, false);
			i8042_kbd_reply(k, k->kbd_set, true);
			return;
		}
		if (cmd == KBD_CMD_SCANCODE_SET && val <= 3)
			k->kbd_set = val;
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		return;
	}
	k->kbd_pending = 0;
	switch (val) {
	case KBD_CMD_RESET:
		i8042_kbd_defaults(k);
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		i8042_kbd_reply(k, KBD_REPLY_POST_OK, false);
		break;
	case KBD_CMD_IDENTIFY:
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		i8042_kbd_reply(k, 0xab, false);
		i8042_kbd_reply(k, 0x83, true);
		break;
	case KBD_CMD_ECHO:
		i8042_kbd_reply(k, KBD_CMD_ECHO, false);
		break;
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_SCANCODE_SET:
	case KBD_CMD_SET_RATE:
		k->kbd_pending = val;
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		break;
	case KBD_CMD_ENABLE:
		k->kbd_scanning = true;
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		break;
	case KBD_CMD_DISABLE:
		k->kbd_scanning = false;
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		break;
	case KBD_CMD_SET_DEFAULT:
		i8042_kbd_defaults(k);
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		break;
	default:
		i8042_kbd_reply(k, KBD_REPLY_ACK, false);
		break;
	}
}

/* Returns true when the machine must reset. */
static bool i8042_data_write(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->pending_cmd;

	k->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		k->ctr = val;
		break;
	case CMD_WRITE_OUTPUT:
		k->outport = val;
		if (!(val & OUTP_RESET))
			return true;
		break;
	case CMD_WRITE_KBD_OBUF:
		i8042_queue(k, val, 0);
		break;
	case CMD_WRITE_AUX_OBUF:
		i8042_queue(k, val, Q_AUX);
		break;
	case CMD_WRITE_AUX:
		/* No device on the aux port: the transfer times out. */
		i8042_queue(k, KBD_REPLY_RESEND, Q_AUX | Q_TIMEOUT);
		break;
	default:
		i8042_kbd_write(k, val);
		break;
	}
	return false;
}

/* Returns true when the machine must reset. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	if (cmd >= CMD_PULSE_FIRST)
		return !(cmd & 0x01);   /* low bits 0: pulse those output lines */
	switch (cmd) {
	case CMD_READ_CTR:
		i8042_queue(k, k->ctr, 0);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPUT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		k->pending_cmd = cmd;
		break;
	case CMD_AUX_DISABLE:
		k->ctr |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ctr &= ~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		i8042_queue(k, 0x00, 0);
		break;
	case CMD_SELF_TEST:
		k->ctr |= CTR_SYS;
		i8042_queue(k, 0x55, 0);
		break;
	case CMD_KBD_DISABLE:
		k->ctr |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ctr &= ~CTR_KBDDIS;
		break;
	case CMD_READ_INPUT:
		i8042_queue(k, 0x80, 0);        /* keyboard not inhibited */
		break;
	case CMD_READ_OUTPUT:
		i8042_queue(k, k->outport, 0);
		break;
	case CMD_A20_DISABLE:
		k->outport &= ~OUTP_A20;
		break;
	case CMD_A20_ENABLE:
		k->outport |= OUTP_A20;
		break;
	case CMD_READ_TEST:
		i8042_queue(k, 0x00, 0);
		break;
	default:
		if (cmd > CMD_READ_CTR && cmd < CMD_WRITE_CTR)
			i8042_queue(k, 0x00, 0);        /* other controller RAM bytes */
		/* Others (controller RAM writes, vendor commands): ignored. */
		break;
	}
	return false;
}

static struct i8042 *data_to_i8042(struct bus_dev *dev)
{
	return (struct i8042 *)((char *)dev - offsetof(struct i8042, data_dev));
}

static struct i8042 *cmd_to_i8042(struct bus_dev *dev)
{
	return (struct i8042 *)((char *)dev - offsetof(struct i8042, cmd_dev));
}

static void i8042_read(struct i8042 *k, bool data_port, uint8_t *out, unsigned int len)
{
	memset(out, 0xff, len);
	if (!len)
		return;
	pthread_mutex_lock(&k->lock);
	if (data_port) {
		if (k->count) {
			k->last_read = k->queue[k->head].byte;
			k->head = (k->head + 1) % I8042_QUEUE_SIZE;
			k->count--;
		}
		out[0] = k->last_read;
	} else {
		out[0] = i8042_status(k);
	}
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(struct i8042 *k, bool data_port, const uint8_t *in, unsigned int len)
{
	bool reset;

	if (!len)
		return;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = !data_port;
	reset = data_port ? i8042_data_write(k, in[0]) : i8042_command(k, in[0]);
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		devctx_request_stop(k->ctx, KEEL_STOP_RESET, NULL);
}

static void i8042_data_read(struct bus_dev *dev, uint64_t offset, void *data, unsigned int len)
{
	i8042_read(data_to_i8042(dev), true, data, len);
}

static void i8042_data_write_op(struct bus_dev *dev, uint64_t offset, const void *data,
				unsigned int len)
{
	i8042_write(data_to_i8042(dev), true, data, len);
}

static void i8042_cmd_read(struct bus_dev *dev, uint64_t offset, void *data, unsigned int len)
{
	i8042_read(cmd_to_i8042(dev), false, data, len);
}

static void i8042_cmd_write(struct bus_dev *dev, uint64_t offset, const void *data,
			    unsigned int len)
{
	i8042_write(cmd_to_i8042(dev), false, data, len);
}

static const struct bus_dev_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write_op,
};

static const struct bus_dev_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

static void i8042_power_on(struct i8042 *k)
{
	k->ctr = CTR_POWER_ON;
	k->outport = OUTP_POWER_ON;
	k->last_was_cmd = false;
	k->pending_cmd = 0;
	k->last_read = 0;
	k->head = 0;
	k->count = 0;
	i8042_kbd_defaults(k);
}

static void i8042_reset(struct vdev *vdev)
{
	struct i8042 *k = (struct i8042 *)vdev;

	pthread_mutex_lock(&k->lock);
	i8042_power_on(k);
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_destroy(struct vdev *vdev)
{
	struct i8042 *k = (struct i8042 *)vdev;

	bus_del(k->ctx->pio, &k->data_dev);
	bus_del(k->ctx->pio, &k->cmd_dev);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int i8042_create(struct devctx *ctx, keel_error **err)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory creating the i8042");
	ret = pthread_mutex_init(&k->lock, NULL);
	if (ret) {
		free(k);
		return err_errno(err, KEEL_ERR_NOMEM, ret, "cannot create the i8042");
	}
	k->ctx = ctx;
	k->vdev.name = "i8042";
	k->vdev.reset = i8042_reset;
	k->vdev.destroy = i8042_destroy;
	k->data_dev.ops = &i8042_data_ops;
	k->data_dev.name = "i8042-data";
	k->cmd_dev.ops = &i8042_cmd_ops;
	k->cmd_dev.name = "i8042-command";
	i8042_power_on(k);

	if (bus_add(ctx->pio, &k->data_dev, I8042_DATA_PORT, 1, err))
		goto fail;
	if (bus_add(ctx->pio, &k->cmd_dev, I8042_CMD_PORT, 1, err)) {
		bus_del(ctx->pio, &k->data_dev);
		goto fail;
	}
	devctx_add(ctx, &k->vdev);
	return 0;
fail:
	pthread_mutex_destroy(&k->lock);
	free(k);
	return -1;
}
