/* SPDX-License-Identifier: MIT */
/*
 * A small AML (ACPI Machine Language) builder: appends encoded terms to a
 * growable byte buffer, so the DSDT is produced by code instead of by iasl.
 *
 * Nothing is returned per call: the first failure (out of memory, a bad
 * name, a block too large) is recorded in the buffer, every later call does
 * nothing, and the caller checks aml_error() once at the end.
 *
 * Blocks that carry a PkgLength (Scope, Device, Method, Package, Buffer)
 * are written as open ... close: *_open() returns a mark and aml_close()
 * encodes the length once the body is known.
 */
#ifndef KEEL_ACPI_AML_H
#define KEEL_ACPI_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int err;                /* 0, or the first failure: -ENOMEM, -EINVAL, -E2BIG */
	char bad[40];           /* with -EINVAL: what was rejected, for the message */
};

/* The largest PkgLength AML can encode (28 bits), which bounds any block. */
#define AML_PKGLEN_MAX 0x0fffffffU

void aml_init(struct aml *a);
void aml_free(struct aml *a);
static inline int aml_error(const struct aml *a)
{
	return a->err;
}

/* Raw bytes. aml_grow() appends n zero bytes and returns their offset, or -1. */
long aml_grow(struct aml *a, size_t n);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/*
 * PkgLength of a body of `body` bytes (the encoding counts its own 1-4
 * bytes): writes it to out and returns how many bytes, or 0 if too large.
 */
int aml_pkglen_encode(uint8_t out[4], size_t body);

/* NameString: "PCI0", "\\_SB.PCI0", "^ISA.COM1"; segments are padded with '_'. */
void aml_name(struct aml *a, const char *path);

/* Data objects. */
void aml_int(struct aml *a, uint64_t v);        /* Zero, One or the shortest prefix */
void aml_ones(struct aml *a);
void aml_string(struct aml *a, const char *s);
void aml_buffer(struct aml *a, const void *data, size_t n);
void aml_eisaid(struct aml *a, const char *id); /* "PNP0A03" -> DWord 0x030ad041 */

/* Name(path, <object>): emits NameOp and the name; the caller emits the object. */
void aml_name_decl(struct aml *a, const char *path);
void aml_name_int(struct aml *a, const char *path, uint64_t v);
void aml_name_string(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

/* Blocks. */
size_t aml_scope_open(struct aml *a, const char *path);
size_t aml_device_open(struct aml *a, const char *path);
size_t aml_method_open(struct aml *a, const char *path, unsigned int nargs, bool serialized);
size_t aml_package_open(struct aml *a, unsigned int count);   /* count <= 255 */
void aml_close(struct aml *a, size_t mark);
/* Return(<object>): emits ReturnOp; the caller emits the object. */
void aml_return(struct aml *a);

/*
 * Resource descriptors (ACPI 6.4, 6.4.2 and 6.4.3), appended to a buffer of
 * their own and turned into a ResourceTemplate() by aml_resource_template().
 */
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *r, uint16_t mask);
void aml_res_interrupt(struct aml *r, bool edge, bool active_low, bool shared, uint32_t gsi);
void aml_res_memory32_fixed(struct aml *r, bool writable, uint32_t base, uint32_t len);
/* Address space descriptors below are MinFixed, MaxFixed, PosDecode. */
void aml_res_word_bus_number(struct aml *r, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max);   /* EntireRange, producer */
void aml_res_dword_memory(struct aml *r, bool producer, bool cacheable, uint32_t min,
			  uint32_t max);
void aml_res_qword_memory(struct aml *r, bool producer, bool cacheable, uint64_t min,
			  uint64_t max);
/*
 * Appends the EndTag (checksum 0: "treat as correct") to r, emits
 * Buffer(){r} into a, carries r's error over to a and frees r.
 */
void aml_resource_template(struct aml *a, struct aml *r);

#endif
