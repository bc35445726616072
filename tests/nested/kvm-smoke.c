/* kvm-smoke: minimal /dev/kvm self-test, meant to run inside the nested L1
 * (tests/nested/run-in-l1 -- tests/nested/kvm-smoke).
 *
 * Tests (each prints "PASS name ..." or "FAIL name ..."):
 *   api        KVM_GET_API_VERSION == 12, KVM_CREATE_VM
 *   caps       KVM_CHECK_EXTENSION: IOEVENTFD, IRQFD, NR_VCPUS, MAX_VCPUS, ...
 *   realmode   16-bit guest: out 'A' to 0x3f8 -> KVM_EXIT_IO, hlt -> KVM_EXIT_HLT
 *   irqchip    KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_IRQFD, KVM_IOEVENTFD
 *              (guest write to the ioeventfd port signals the eventfd)
 *   longmode   PVH-style 32-bit protected-mode entry, guest enables PAE +
 *              EFER.LME + paging, far-jumps to 64-bit code, outs a 64-bit value
 *   smp        2 vCPUs in one VM, each runs to KVM_EXIT_HLT
 *   exitcost   N port writes (each a KVM_EXIT_IO to userspace) and N CPUIDs
 *              (handled in the kernel) -> microseconds per exit
 * Usage: kvm-smoke [-n N] [-t SECS] [-o TESTS]
 *   -n N      iterations for exitcost (default 10000)
 *   -t SECS   per-test watchdog: a stuck KVM_RUN is reported as FAIL (default 20)
 *   -o LIST   only run tests whose names appear in LIST (e.g. "realmode,longmode")
 * Exit status: 0 if every test passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define PASS(name, ...) do { printf("PASS %-9s ", name); printf(__VA_ARGS__); printf("\n"); } while (0)
#define FAIL(name, ...) do { printf("FAIL %-9s ", name); printf(__VA_ARGS__); printf("\n"); failures++; } while (0)

/* ---- guest code ------------------------------------------------------- */
/* Each blob is assembled here and copied to guest physical GUEST_CODE. */
#define GUEST_CODE 0x1000
#define GUEST_MEM  (4u << 20)

#define BLOB(name) extern const uint8_t name##_start[], name##_end[]
BLOB(rm_hello); BLOB(rm_outloop); BLOB(rm_cpuidloop); BLOB(rm_ioev); BLOB(pm_to_lm);

__asm__(
    ".pushsection .rodata.guest, \"a\"\n"
    /* real mode: print 'A' on COM1, halt */
    ".code16\n"
    "rm_hello_start:\n"
    "  mov $0x3f8, %dx\n"
    "  mov $'A', %al\n"
    "  out %al, (%dx)\n"
    "  hlt\n"
    "rm_hello_end:\n"
    /* real mode: %si port writes to 0x10, then hlt */
    "rm_outloop_start:\n"
    "  mov $0x10, %dx\n"
    "1: out %al, (%dx)\n"
    "  dec %esi\n"
    "  jnz 1b\n"
    "  hlt\n"
    "rm_outloop_end:\n"
    /* real mode: %esi CPUIDs (in-kernel exits), then hlt */
    "rm_cpuidloop_start:\n"
    "1: xor %eax, %eax\n"
    "  cpuid\n"
    "  dec %esi\n"
    "  jnz 1b\n"
    "  hlt\n"
    "rm_cpuidloop_end:\n"
    /* real mode: write the ioeventfd port 0x500, then port 0x10 (exit) */
    "rm_ioev_start:\n"
    "  mov $0x500, %dx\n"
    "  mov $1, %al\n"
    "  out %al, (%dx)\n"
    "  mov $0x10, %dx\n"
    "  out %al, (%dx)\n"
    "  hlt\n"
    "rm_ioev_end:\n"
    /* 32-bit protected mode (PVH-like entry: flat CS/DS, paging off,
     * %ebx = PML4 address prepared by the host) -> long mode */
    ".code32\n"
    "pm_to_lm_start:\n"
    "  mov $0x11, %dx\n"                /* progress markers: out 1..5 to 0x11 */
    "  mov $1, %al\n"
    "  out %al, (%dx)\n"
    "  mov %ebx, %cr3\n"
    "  mov %cr4, %eax\n"
    "  or $0x20, %eax\n"                 /* CR4.PAE */
    "  mov %eax, %cr4\n"
    "  mov $0xc0000080, %ecx\n"          /* EFER */
    "  rdmsr\n"
    "  or $0x100, %eax\n"                /* EFER.LME */
    "  wrmsr\n"
    "  mov $0x11, %dx\n"
    "  mov $2, %al\n"
    "  out %al, (%dx)\n"
    "  mov %cr0, %eax\n"
    "  or $0x80000001, %eax\n"           /* CR0.PG | PE */
    "  mov %eax, %cr0\n"
    "  mov $3, %al\n"
    "  out %al, (%dx)\n"
    "  ljmp $0x18, $(lm64 - pm_to_lm_start + 0x1000)\n"
    ".code64\n"
    "lm64:\n"
    "  mov $4, %al\n"
    "  out %al, (%dx)\n"
    "  mov $0x20, %ax\n"
    "  mov %ax, %ds\n"
    "  mov %ax, %ss\n"
    "  movabs $0x123456789abcdef0, %rax\n"
    "  mov %rax, 0x3000\n"               /* 64-bit store, host checks it */
    "  mov $0x3f8, %dx\n"
    "  mov $'L', %al\n"
    "  out %al, (%dx)\n"
    "  hlt\n"
    "pm_to_lm_end:\n"
    ".code64\n"
    ".popsection\n");

/* ---- helpers ------------------------------------------------------------ */
static int kvm;
static long run_size;

struct vm {
    int fd;
    uint8_t *mem;
};
struct vcpu {
    int fd;
    struct kvm_run *run;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int vm_create(struct vm *vm)
{
    vm->fd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm->fd < 0)
        return -1;
    vm->mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->mem == MAP_FAILED)
        return -1;
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM,
        .userspace_addr = (uintptr_t)vm->mem,
    };
    return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static void vm_destroy(struct vm *vm)
{
    munmap(vm->mem, GUEST_MEM);
    close(vm->fd);
}

static int vcpu_create(struct vm *vm, struct vcpu *v, int id)
{
    v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
    if (v->fd < 0)
        return -1;
    v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    return v->run == MAP_FAILED ? -1 : 0;
}

static void vcpu_destroy(struct vcpu *v)
{
    munmap(v->run, run_size);
    close(v->fd);
}

static void load(struct vm *vm, const uint8_t *s, const uint8_t *e)
{
    memcpy(vm->mem + GUEST_CODE, s, e - s);
}

/* Real mode at CS:IP = 0:GUEST_CODE */
static int setup_realmode(struct vcpu *v, uint64_t rsi)
{
    struct kvm_sregs sregs;
    if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return -1;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
        return -1;
    struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2, .rsi = rsi };
    return ioctl(v->fd, KVM_SET_REGS, &regs);
}

static const char *exit_name(uint32_t r)
{
    switch (r) {
    case KVM_EXIT_IO: return "KVM_EXIT_IO";
    case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
    case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    default: return "other";
    }
}

static volatile sig_atomic_t timed_out;
static void on_alarm(int sig) { (void)sig; timed_out = 1; }

/* KVM_RUN; gives up (ETIMEDOUT) once the per-test alarm fired */
static int vcpu_run(struct vcpu *v)
{
    int r;
    for (;;) {
        r = ioctl(v->fd, KVM_RUN, 0);
        if (r >= 0 || errno != EINTR)
            return r;
        if (timed_out) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

static uint8_t io_byte(struct vcpu *v)
{
    return *((uint8_t *)v->run + v->run->io.data_offset);
}

static void dump(struct vcpu *v)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return;
    printf("     rip=0x%llx rax=0x%llx rsi=0x%llx rflags=0x%llx cs=0x%x/base 0x%llx "
           "cr0=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx\n",
           (unsigned long long)r.rip, (unsigned long long)r.rax, (unsigned long long)r.rsi,
           (unsigned long long)r.rflags, s.cs.selector, (unsigned long long)s.cs.base,
           (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
           (unsigned long long)s.efer);
}

/* ---- tests ---------------------------------------------------------------- */
static void test_caps(void)
{
    static const struct { int cap; const char *name; } caps[] = {
        { KVM_CAP_IOEVENTFD, "IOEVENTFD" },
        { KVM_CAP_IRQFD, "IRQFD" },
        { KVM_CAP_NR_VCPUS, "NR_VCPUS" },
        { KVM_CAP_MAX_VCPUS, "MAX_VCPUS" },
        { KVM_CAP_IRQCHIP, "IRQCHIP" },
        { KVM_CAP_PIT2, "PIT2" },
        { KVM_CAP_USER_MEMORY, "USER_MEMORY" },
        { KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
        { KVM_CAP_EXT_CPUID, "EXT_CPUID" },
        { KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
        { KVM_CAP_SPLIT_IRQCHIP, "SPLIT_IRQCHIP" },
        { KVM_CAP_X2APIC_API, "X2APIC_API" },
    };
    char buf[512];
    int n = 0, ok = 1;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        int r = ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap);
        n += snprintf(buf + n, sizeof(buf) - n, "%s=%d ", caps[i].name, r);
        if (r <= 0 && i < 6)
            ok = 0;
    }
    if (ok)
        PASS("caps", "%s", buf);
    else
        FAIL("caps", "%s", buf);
}

static void test_realmode(void)
{
    struct vm vm;
    struct vcpu v;
    if (vm_create(&vm) < 0 || ioctl(vm.fd, KVM_SET_TSS_ADDR, 0xfffbd000) < 0 ||
        vcpu_create(&vm, &v, 0) < 0) {
        FAIL("realmode", "setup: %s", strerror(errno));
        return;
    }
    load(&vm, rm_hello_start, rm_hello_end);
    if (setup_realmode(&v, 0) < 0) {
        FAIL("realmode", "set regs: %s", strerror(errno));
        return;
    }
    char got[256] = "";
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        if (vcpu_run(&v) < 0) {
            FAIL("realmode", "KVM_RUN: %s after %s", strerror(errno), got);
            dump(&v);
            return;
        }
        size_t l = strlen(got);
        if (v.run->exit_reason == KVM_EXIT_IO) {
            snprintf(got + l, sizeof(got) - l, "%s(port=0x%x,%s,size=%d,data='%c') ",
                     exit_name(v.run->exit_reason), v.run->io.port,
                     v.run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
                     v.run->io.size, io_byte(&v));
            ok = v.run->io.port == 0x3f8 && io_byte(&v) == 'A';
            continue;
        }
        snprintf(got + l, sizeof(got) - l, "%s", exit_name(v.run->exit_reason));
        if (v.run->exit_reason == KVM_EXIT_HLT && ok) {
            PASS("realmode", "%s", got);
            goto out;
        }
        break;
    }
    FAIL("realmode", "%s (exit_reason=%u)", got, v.run->exit_reason);
    dump(&v);
out:
    vcpu_destroy(&v);
    vm_destroy(&vm);
}

static void test_irqchip(void)
{
    struct vm vm;
    struct vcpu v;
    if (vm_create(&vm) < 0 || ioctl(vm.fd, KVM_SET_TSS_ADDR, 0xfffbd000) < 0) {
        FAIL("irqchip", "setup: %s", strerror(errno));
        return;
    }
    if (ioctl(vm.fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        FAIL("irqchip", "KVM_CREATE_IRQCHIP: %s", strerror(errno));
        return;
    }
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm.fd, KVM_CREATE_PIT2, &pit) < 0) {
        FAIL("irqchip", "KVM_CREATE_PIT2: %s", strerror(errno));
        return;
    }
    int irqfd = eventfd(0, EFD_CLOEXEC);
    struct kvm_irqfd ifd = { .fd = irqfd, .gsi = 5 };
    if (ioctl(vm.fd, KVM_IRQFD, &ifd) < 0) {
        FAIL("irqchip", "KVM_IRQFD: %s", strerror(errno));
        return;
    }
    uint64_t one = 1;
    if (write(irqfd, &one, 8) != 8) { /* inject GSI 5 edge (masked in PIC, harmless) */
        FAIL("irqchip", "irqfd write: %s", strerror(errno));
        return;
    }
    int iofd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct kvm_ioeventfd iev = { .addr = 0x500, .len = 1, .fd = iofd,
                                 .flags = KVM_IOEVENTFD_FLAG_PIO };
    if (ioctl(vm.fd, KVM_IOEVENTFD, &iev) < 0) {
        FAIL("irqchip", "KVM_IOEVENTFD: %s", strerror(errno));
        return;
    }
    if (vcpu_create(&vm, &v, 0) < 0) {
        FAIL("irqchip", "KVM_CREATE_VCPU: %s", strerror(errno));
        return;
    }
    load(&vm, rm_ioev_start, rm_ioev_end);
    if (setup_realmode(&v, 0) < 0 || vcpu_run(&v) < 0) {
        FAIL("irqchip", "run: %s", strerror(errno));
        return;
    }
    uint64_t cnt = 0;
    ssize_t rd = read(iofd, &cnt, 8);
    if (v.run->exit_reason == KVM_EXIT_IO && v.run->io.port == 0x10 && rd == 8 && cnt == 1)
        PASS("irqchip", "CREATE_IRQCHIP, CREATE_PIT2, IRQFD(gsi 5) ok; ioeventfd on port 0x500 "
             "fired (count=%llu), then %s(port=0x%x)", (unsigned long long)cnt,
             exit_name(v.run->exit_reason), v.run->io.port);
    else
        FAIL("irqchip", "exit %s port=0x%x, ioeventfd read=%zd count=%llu",
             exit_name(v.run->exit_reason), v.run->io.port, rd, (unsigned long long)cnt);
    vcpu_destroy(&v);
    vm_destroy(&vm);
    close(irqfd);
    close(iofd);
}

static void test_longmode(void)
{
    struct vm vm;
    struct vcpu v;
    if (vm_create(&vm) < 0 || ioctl(vm.fd, KVM_SET_TSS_ADDR, 0xfffbd000) < 0 ||
        vcpu_create(&vm, &v, 0) < 0) {
        FAIL("longmode", "setup: %s", strerror(errno));
        return;
    }
    /* GDT at 0x500: null, (unused), 32-bit code 0x10, 64-bit code 0x18, data 0x20 */
    uint64_t *gdt = (uint64_t *)(vm.mem + 0x500);
    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = 0x00cf9b000000ffffULL; /* code32: base 0, limit 4G, D=1 */
    gdt[3] = 0x00af9b000000ffffULL; /* code64: L=1 */
    gdt[4] = 0x00cf93000000ffffULL; /* data */
    /* identity map the first 1 GiB with 2 MiB pages: PML4 0x8000, PDPT 0x9000, PD 0xa000 */
    uint64_t *pml4 = (uint64_t *)(vm.mem + 0x8000);
    uint64_t *pdpt = (uint64_t *)(vm.mem + 0x9000);
    uint64_t *pd = (uint64_t *)(vm.mem + 0xa000);
    pml4[0] = 0x9000 | 3;
    pdpt[0] = 0xa000 | 3;
    for (int i = 0; i < 512; i++)
        pd[i] = ((uint64_t)i << 21) | 0x83;
    load(&vm, pm_to_lm_start, pm_to_lm_end);

    /* Without KVM_SET_CPUID2 the vCPU has no LM bit and EFER.LME #GPs. */
    struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = { .c.nent = 256 };
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0 ||
        ioctl(v.fd, KVM_SET_CPUID2, &cpuid) < 0) {
        FAIL("longmode", "KVM_GET_SUPPORTED_CPUID/KVM_SET_CPUID2: %s", strerror(errno));
        goto out;
    }

    struct kvm_sregs s;
    if (ioctl(v.fd, KVM_GET_SREGS, &s) < 0) {
        FAIL("longmode", "KVM_GET_SREGS: %s", strerror(errno));
        return;
    }
    struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x10,
                                .type = 11, .present = 1, .dpl = 0, .db = 1, .s = 1,
                                .l = 0, .g = 1 };
    struct kvm_segment data = code;
    data.selector = 0x20;
    data.type = 3;
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.gdt.base = 0x500;
    s.gdt.limit = 5 * 8 - 1;
    s.cr0 = 0x11; /* PE | ET */
    s.cr4 = 0;
    s.efer = 0;
    if (ioctl(v.fd, KVM_SET_SREGS, &s) < 0) {
        FAIL("longmode", "KVM_SET_SREGS: %s", strerror(errno));
        return;
    }
    struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2, .rbx = 0x8000, .rsp = 0x7000 };
    if (ioctl(v.fd, KVM_SET_REGS, &regs) < 0) {
        FAIL("longmode", "KVM_SET_REGS: %s", strerror(errno));
        return;
    }
    int r, step = 0;
    while ((r = vcpu_run(&v)) == 0 && v.run->exit_reason == KVM_EXIT_IO && v.run->io.port == 0x11)
        step = io_byte(&v);
    if (r < 0 || v.run->exit_reason != KVM_EXIT_IO || io_byte(&v) != 'L') {
        FAIL("longmode", "r=%d %s exit_reason=%u after progress step %d/4", r,
             r < 0 ? strerror(errno) : "", v.run->exit_reason, step);
        dump(&v);
        goto out;
    }
    r = vcpu_run(&v);
    ioctl(v.fd, KVM_GET_SREGS, &s);
    uint64_t val;
    memcpy(&val, vm.mem + 0x3000, 8);
    if (r == 0 && v.run->exit_reason == KVM_EXIT_HLT && (s.efer & 0x400) && s.cs.l &&
        val == 0x123456789abcdef0ULL)
        PASS("longmode", "KVM_EXIT_IO('L') then KVM_EXIT_HLT; EFER=0x%llx (LMA) CS.L=1 "
             "CR0=0x%llx CR4=0x%llx, 64-bit store ok",
             (unsigned long long)s.efer, (unsigned long long)s.cr0, (unsigned long long)s.cr4);
    else
        FAIL("longmode", "r=%d reason=%u efer=0x%llx cs.l=%d val=0x%llx", r,
             v.run->exit_reason, (unsigned long long)s.efer, s.cs.l, (unsigned long long)val);
out:
    vcpu_destroy(&v);
    vm_destroy(&vm);
}

static void test_smp(void)
{
    struct vm vm;
    struct vcpu v[2];
    if (vm_create(&vm) < 0 || ioctl(vm.fd, KVM_SET_TSS_ADDR, 0xfffbd000) < 0 ||
        vcpu_create(&vm, &v[0], 0) < 0 || vcpu_create(&vm, &v[1], 1) < 0) {
        FAIL("smp", "setup: %s", strerror(errno));
        return;
    }
    load(&vm, rm_cpuidloop_start, rm_cpuidloop_end);
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        if (setup_realmode(&v[i], 100) < 0 || vcpu_run(&v[i]) < 0 ||
            v[i].run->exit_reason != KVM_EXIT_HLT)
            ok = 0;
    }
    if (ok)
        PASS("smp", "2 vCPUs in one VM each ran to KVM_EXIT_HLT");
    else
        FAIL("smp", "exit reasons %u %u", v[0].run->exit_reason, v[1].run->exit_reason);
    vcpu_destroy(&v[0]);
    vcpu_destroy(&v[1]);
    vm_destroy(&vm);
}

static void test_exitcost(long n)
{
    struct vm vm;
    struct vcpu v;
    if (vm_create(&vm) < 0 || ioctl(vm.fd, KVM_SET_TSS_ADDR, 0xfffbd000) < 0 ||
        vcpu_create(&vm, &v, 0) < 0) {
        FAIL("exitcost", "setup: %s", strerror(errno));
        return;
    }
    /* userspace exits: n x (out -> KVM_EXIT_IO -> KVM_RUN) */
    load(&vm, rm_outloop_start, rm_outloop_end);
    setup_realmode(&v, n);
    long ios = 0;
    double t0 = now();
    for (;;) {
        if (vcpu_run(&v) < 0) {
            FAIL("exitcost", "KVM_RUN: %s", strerror(errno));
            goto out;
        }
        if (v.run->exit_reason == KVM_EXIT_IO)
            ios++;
        else
            break;
    }
    double t_io = now() - t0;
    if (v.run->exit_reason != KVM_EXIT_HLT || ios != n) {
        FAIL("exitcost", "io loop: %ld exits, last %s", ios, exit_name(v.run->exit_reason));
        goto out;
    }
    /* in-kernel exits: n x CPUID */
    load(&vm, rm_cpuidloop_start, rm_cpuidloop_end);
    setup_realmode(&v, n);
    t0 = now();
    int r = vcpu_run(&v);
    double t_cpuid = now() - t0;
    if (r < 0 || v.run->exit_reason != KVM_EXIT_HLT) {
        FAIL("exitcost", "cpuid loop: %s", exit_name(v.run->exit_reason));
        goto out;
    }
    PASS("exitcost", "%ld PIO exits to userspace: %.3f s (%.1f us/exit); "
         "%ld CPUID exits in kernel: %.3f s (%.1f us/exit)",
         n, t_io, t_io * 1e6 / n, n, t_cpuid, t_cpuid * 1e6 / n);
out:
    vcpu_destroy(&v);
    vm_destroy(&vm);
}

int main(int argc, char **argv)
{
    long n = 10000;
    unsigned timeout_s = 20;
    const char *only = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:o:")) != -1) {
        switch (opt) {
        case 'n': n = strtol(optarg, NULL, 0); break;
        case 't': timeout_s = strtoul(optarg, NULL, 0); break;
        case 'o': only = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-n ITER] [-t SECS_PER_TEST] [-o TEST,TEST...]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        FAIL("api", "open /dev/kvm: %s", strerror(errno));
        return 1;
    }
    int ver = ioctl(kvm, KVM_GET_API_VERSION, 0);
    run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    int vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (ver == KVM_API_VERSION && vmfd >= 0 && run_size > 0)
        PASS("api", "KVM_GET_API_VERSION=%d KVM_CREATE_VM ok, vcpu mmap size %ld", ver, run_size);
    else {
        FAIL("api", "version %d, create_vm %d (%s)", ver, vmfd, strerror(errno));
        return 1;
    }
    close(vmfd);
    struct sigaction sa = { .sa_handler = on_alarm };
    sigaction(SIGALRM, &sa, NULL);
    static const struct { const char *name; void (*fn)(void); } tests[] = {
        { "caps", test_caps }, { "realmode", test_realmode }, { "irqchip", test_irqchip },
        { "longmode", test_longmode }, { "smp", test_smp }, { "exitcost", NULL },
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (only && !strstr(only, tests[i].name))
            continue;
        timed_out = 0;
        alarm(timeout_s);
        if (tests[i].fn)
            tests[i].fn();
        else
            test_exitcost(n);
        alarm(0);
    }
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
