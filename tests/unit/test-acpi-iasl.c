// SPDX-License-Identifier: MIT
/*
 * The generated tables through ACPICA's own tools: every placed table is
 * disassembled with `iasl -d`, which must report no error and no warning,
 * and the disassembled DSDT must compile again with `iasl`.  Skips (77)
 * where iasl is missing (Debian: acpica-tools).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acpi/acpi.h"
#include "check.h"
#include "core/le.h"

#define TABLES_GPA 0x7ff00000ULL
#define RSDP_GPA   0x000f0000ULL
#define ROOM       0x40000

static const struct acpi_pci_route routes12[12] = {
	{ 1, 0, 16 }, { 1, 1, 17 }, { 1, 2, 18 }, { 1, 3, 19 },
	{ 2, 0, 17 }, { 2, 1, 18 }, { 2, 2, 19 }, { 2, 3, 16 },
	{ 3, 0, 18 }, { 3, 1, 19 }, { 3, 2, 16 }, { 3, 3, 17 },
};

static const struct acpi_mmio_dev mmio3[3] = {
	{ 0xd0000000, 0x200, 5 }, { 0xd0001000, 0x200, 6 }, { 0xd0002000, 0x200, 7 },
};

static const struct acpi_board boards[] = {
	{       /* the smallest: 1 vCPU, no ECAM, no serial port */
		.nr_cpus = 1, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000,
		.ioapic_id = 1, .pci_io_base = 0xc000, .pci_io_size = 0x4000,
		.pci_mem32_base = 0xc0000000, .pci_mem32_size = 0x10000000,
		.pm_base = 0x600, .sci_irq = 9, .rtc = true, .i8042 = true,
	},
	{       /* 4 vCPUs, ECAM, COM1 and COM2, 3 virtio-mmio, 12 routes, 64-bit window */
		.nr_cpus = 4, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000,
		.ioapic_id = 4, .ecam_base = 0xe0000000, .ecam_size = 0x100000,
		.pci_io_base = 0xc000, .pci_io_size = 0x4000,
		.pci_mem32_base = 0xc0000000, .pci_mem32_size = 0x10000000,
		.pci_mem64_base = 0x8000000000ULL, .pci_mem64_size = 0x8000000000ULL,
		.routes = routes12, .nr_routes = 12, .pm_base = 0xb000, .sci_irq = 9,
		.com_mask = 0x3, .rtc = true, .i8042 = true, .mmio = mmio3, .nr_mmio = 3,
		.oem_id = "KEELT", .oem_table_id = "TESTPC",
	},
	{       /* many vCPUs (cluster APIC flag), no legacy devices, 16 buses above 4 GiB */
		.nr_cpus = 200, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000,
		.ioapic_id = 200, .ecam_base = 0x4000000000ULL, .ecam_size = 0x1000000,
		.pci_io_base = 0x1000, .pci_io_size = 0x1000,
		.pci_mem32_base = 0x80000000, .pci_mem32_size = 0x40000000,
		.routes = routes12, .nr_routes = 4, .pm_base = 0x600, .sci_irq = 9,
	},
};

static int run(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int status;

	if (!p)
		return -1;
	while (n + 1 < outlen && fgets(out + n, (int)(outlen - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	while (fgetc(p) != EOF)
		;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool have_iasl(void)
{
	char out[256];

	return run("command -v iasl", out, sizeof(out)) == 0 && out[0];
}

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) {
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

/* Lines of text that contain one of the words (or start with it, if `start`). */
static int count_lines(const char *text, const char *const *words, int nwords, bool start)
{
	int n = 0;

	for (const char *line = text; *line; ) {
		const char *end = strchr(line, '\n');
		int len = end ? (int)(end - line) : (int)strlen(line);

		for (int i = 0; i < nwords; i++) {
			const char *hit = strstr(line, words[i]);

			if (hit && hit < line + len && (!start || hit == line)) {
				n++;
				break;
			}
		}
		line += len + (end ? 1 : 0);
	}
	return n;
}

static const char *const iasl_bad[] = { "Error", "Warning" };
/* What the disassembler writes into a .dsl about a broken table. */
static const char *const dsl_bad[] = { "Error", "Warning", "Incorrect", "Invalid", "****" };
static const char *const crs_any[] = { "Name (_CRS, " };
static const char *const crs_template[] = { "Name (_CRS, ResourceTemplate ()" };

static void disassemble(const char *dir, const char *name, int board)
{
	static char out[1 << 20];
	char cmd[1024];
	int rc;

	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -d %s.dat 2>&1", dir, name);
	rc = run(cmd, out, sizeof(out));
	/*
	 * iasl up to at least 20200925 takes a binary table's first four bytes
	 * for a name, and "RSD " is none: it cannot read a lone RSDP (test-acpi
	 * checks the RSDP field by field instead).
	 */
	if (!strcmp(name, "rsdp") && rc != 0 &&
	    strstr(out, "does not contain a valid ACPI table")) {
		printf("board %d: this iasl cannot disassemble an RSDP file; skipped\n", board);
		return;
	}
	if (rc != 0 || count_lines(out, iasl_bad, 2, false)) {
		fprintf(stderr, "board %d: iasl -d %s.dat: exit %d\n%s\n", board, name, rc, out);
		check_failures++;
		return;
	}
	snprintf(cmd, sizeof(cmd), "cat '%s/%s.dsl'", dir, name);
	rc = run(cmd, out, sizeof(out));
	if (rc != 0 || count_lines(out, dsl_bad, 5, false)) {
		fprintf(stderr, "board %d: %s.dsl says the table is broken:\n%s\n", board, name,
			out);
		check_failures++;
	}
	/*
	 * A _CRS buffer that is not a valid resource template is shown as a
	 * plain Buffer, silently: every one must decode as ResourceTemplate.
	 */
	if (!strcmp(name, "dsdt") && count_lines(out, crs_any, 1, false) !=
	    count_lines(out, crs_template, 1, false)) {
		fprintf(stderr, "board %d: a _CRS is not a valid resource template:\n%s\n", board,
			out);
		check_failures++;
	}
}

/*
 * The disassembled DSDT compiles again, without errors or warnings (iasl's
 * messages start a line with their level; remarks are shown, not fatal).
 */
static void recompile(const char *dir, int board)
{
	static const char *const bad[] = { "Error", "Warning" }, *const remark[] = { "Remark" };
	static char out[1 << 20];
	char cmd[1024];
	int rc, remarks;

	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -p dsdt-again dsdt.dsl 2>&1", dir);
	rc = run(cmd, out, sizeof(out));
	if (rc != 0 || !strstr(out, "Compilation successful") || count_lines(out, bad, 2, true)) {
		fprintf(stderr, "board %d: iasl dsdt.dsl: exit %d\n%s\n", board, rc, out);
		check_failures++;
		return;
	}
	remarks = count_lines(out, remark, 1, true);
	printf("board %d: the DSDT compiles again, %d remark(s)\n", board, remarks);
	if (remarks)
		printf("%s\n", out);
}

/* Host view of a guest address inside one of the two placed files. */
struct placed {
	struct acpi_placement at[ACPI_NR_FILES];
	size_t size[ACPI_NR_FILES];
};

static const uint8_t *host(const struct placed *pl, uint64_t gpa, size_t len)
{
	for (int f = 0; f < ACPI_NR_FILES; f++)
		if (gpa >= pl->at[f].gpa && gpa + len <= pl->at[f].gpa + pl->size[f])
			return pl->at[f].host + (gpa - pl->at[f].gpa);
	return NULL;
}

static int dump_table(const struct placed *pl, const char *dir, uint64_t gpa, const char *name,
		      int board)
{
	const uint8_t *h = host(pl, gpa, 8);
	char file[32];

	if (!h || !host(pl, gpa, get_le32(h + 4))) {
		fprintf(stderr, "board %d: %s at 0x%llx is outside the tables\n", board, name,
			(unsigned long long)gpa);
		check_failures++;
		return -1;
	}
	snprintf(file, sizeof(file), "%s.dat", name);
	if (write_file(dir, file, h, get_le32(h + 4))) {
		fprintf(stderr, "board %d: cannot write %s/%s\n", board, dir, file);
		check_failures++;
		return -1;
	}
	disassemble(dir, name, board);
	return 0;
}

static void check_board(int i, const struct acpi_board *b)
{
	static uint8_t rsdp[ROOM], tables[ROOM];
	struct acpi_tables t;
	struct placed pl = { .at = {
		[ACPI_FILE_RSDP] = { RSDP_GPA, rsdp, sizeof(rsdp) },
		[ACPI_FILE_TABLES] = { TABLES_GPA, tables, sizeof(tables) },
	} };
	keel_error *err = NULL;
	char dir[] = "/tmp/keel-acpi-XXXXXX", cmd[128];
	const uint8_t *xsdt, *fadt;
	uint32_t xlen;

	if (acpi_build(b, &t, &err) || acpi_place(&t, pl.at, &err)) {
		fprintf(stderr, "board %d: %s\n", i, keel_error_get_message(err));
		keel_error_free(err);
		check_failures++;
		return;
	}
	for (int f = 0; f < ACPI_NR_FILES; f++)
		pl.size[f] = t.size[f];
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		check_failures++;
		acpi_tables_free(&t);
		return;
	}
	/* iasl -d recognizes the RSDP by its signature, like any table. */
	if (write_file(dir, "rsdp.dat", rsdp, t.size[ACPI_FILE_RSDP]) == 0)
		disassemble(dir, "rsdp", i);
	dump_table(&pl, dir, get_le32(rsdp + 16), "rsdt", i);
	if (dump_table(&pl, dir, get_le64(rsdp + 24), "xsdt", i) == 0) {
		xsdt = host(&pl, get_le64(rsdp + 24), 36);
		xlen = get_le32(xsdt + 4);
		for (uint32_t off = 36; off + 8 <= xlen; off += 8) {
			uint64_t gpa = get_le64(xsdt + off);
			const uint8_t *h = host(&pl, gpa, 36);
			char name[8] = { 0 };

			if (!h)
				continue;
			for (int c = 0; c < 4; c++)
				name[c] = (char)(h[c] | 0x20);  /* "FACP" -> "facp" */
			dump_table(&pl, dir, gpa, name, i);
			if (!memcmp(h, "FACP", 4)) {
				fadt = h;
				dump_table(&pl, dir, get_le32(fadt + 36), "facs", i);
				if (dump_table(&pl, dir, get_le64(fadt + 140), "dsdt", i) == 0)
					recompile(dir, i);
			}
		}
	}
	if (check_failures) {
		printf("board %d: %u vCPUs: the tables are kept in %s\n", i, b->nr_cpus, dir);
	} else {
		printf("board %d: %u vCPUs: ok\n", i, b->nr_cpus);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	acpi_tables_free(&t);
}

int main(void)
{
	if (!have_iasl()) {
		printf("SKIP: iasl not found (Debian: apt-get install acpica-tools)\n");
		return 77;
	}
	for (size_t i = 0; i < sizeof(boards) / sizeof(boards[0]); i++)
		check_board((int)i, &boards[i]);
	return test_exit();
}
