/*
 * Command line and memory map from either boot protocol, copied into our
 * own buffers early so later tests may reuse low memory freely.
 */
#include <keel/kit.h>

#define MAX_CMDLINE	4096
#define MAX_REGIONS	128
#define LOW_4G		0x100000000ULL

static char cmd[MAX_CMDLINE];
static struct mem_region regions[MAX_REGIONS];
static int nregions;

static u32 rd32(u64 base, u32 off) { return *(u32 *)(uintptr_t)(base + off); }
static u8 rd8(u64 base, u32 off) { return *(u8 *)(uintptr_t)(base + off); }

static void copy_cmdline(u64 pa)
{
	const char *s = (const char *)(uintptr_t)pa;
	int i;

	if (!pa || pa >= LOW_4G)
		return;
	for (i = 0; i < MAX_CMDLINE - 1 && s[i]; i++)
		cmd[i] = s[i];
	cmd[i] = 0;
}

static void add_region(u64 addr, u64 size, u32 type)
{
	if (nregions < MAX_REGIONS) {
		regions[nregions].addr = addr;
		regions[nregions].size = size;
		regions[nregions].type = type;
		nregions++;
	}
}

static void load_pvh(u64 pa)
{
	const struct hvm_start_info *si = (void *)(uintptr_t)pa;
	const struct hvm_memmap_entry *mm;
	u32 i;

	if (si->magic != HVM_START_MAGIC)
		return;
	copy_cmdline(si->cmdline_paddr);
	if (si->version < 1 || !si->memmap_paddr || si->memmap_paddr >= LOW_4G)
		return;
	mm = (void *)(uintptr_t)si->memmap_paddr;
	for (i = 0; i < si->memmap_entries; i++)
		add_region(mm[i].addr, mm[i].size, mm[i].type);
}

static void load_bootparams(u64 bp)
{
	const struct e820_entry *e = (void *)(uintptr_t)(bp + BP_E820_TABLE);
	u64 ptr = rd32(bp, BP_CMD_LINE_PTR) |
		  (u64)rd32(bp, BP_EXT_CMD_LINE_PTR) << 32;
	int i, n = rd8(bp, BP_E820_ENTRIES);

	copy_cmdline(ptr);
	for (i = 0; i < n && i < BP_E820_MAX; i++)
		add_region(e[i].addr, e[i].size, e[i].type);
}

void bootinfo_init(void)
{
	if (!boot_info || boot_info >= LOW_4G)
		return;
	if (boot_kind == BOOT_PVH)
		load_pvh(boot_info);
	else
		load_bootparams(boot_info);
}

const char *boot_kind_name(void)
{
	switch (boot_kind) {
	case BOOT_PVH: return "pvh";
	case BOOT_BZ32: return "bzimage-32";
	case BOOT_BZ64: return "bzimage-64";
	}
	return "unknown";
}

const char *cmdline(void)
{
	return cmd;
}

/* Find "key=" at a word start; return pointer to its value. */
static const char *find_key(const char *key)
{
	size_t len = strlen(key);
	const char *p = cmd;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, len) && p[len] == '=')
			return p + len + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

bool cmdline_str(const char *key, char *buf, size_t n)
{
	const char *v = find_key(key);
	size_t i = 0;

	if (!v)
		return false;
	for (; v[i] && v[i] != ' ' && i + 1 < n; i++)
		buf[i] = v[i];
	buf[i] = 0;
	return true;
}

bool cmdline_u64(const char *key, u64 *val)
{
	const char *v = find_key(key), *end;

	if (!v)
		return false;
	*val = strtou64(v, &end);
	return end != v;
}

u64 cmdline_u64_or(const char *key, u64 def)
{
	u64 v;

	return cmdline_u64(key, &v) ? v : def;
}

int memmap_count(void)
{
	return nregions;
}

const struct mem_region *memmap_get(int i)
{
	return &regions[i];
}

u64 memmap_ram_total(void)
{
	u64 t = 0;
	int i;

	for (i = 0; i < nregions; i++)
		if (regions[i].type == E820_RAM)
			t += regions[i].size;
	return t;
}
