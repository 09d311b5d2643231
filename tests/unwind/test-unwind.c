/* DWARF CFI unwinding (libprobe/sampler/cfi.c): stacks of code built without frame
 * pointers. This file is compiled with -O2 -fomit-frame-pointer and linked with
 * -rdynamic, so that the chain outer -> middle -> inner has no frame records and
 * dladdr() names its functions.
 *
 * Two levels: the sampler's stacks of a CPU loop (through the SIGPROF handler), and
 * cfi_step() itself, on a context captured with getcontext() in a known chain
 * (cfi.c linked in again as a test-only static library). */
#include <dlfcn.h>
#include <pthread.h>
#include <ucontext.h>

#include "common.h"

#include <probe/report.h>
#include <probe/sampler.h>

#ifdef UNWIND_TEST_CFI
#include "stack/cfi.h"
#endif

/* Exported (not static) so that dladdr() names them; noinline, and work after each
 * call so that none is a tail call. */
uint64_t unwind_test_inner(uint64_t n);
uint64_t unwind_test_middle(uint64_t n);
uint64_t unwind_test_outer(uint64_t ns);

volatile uint64_t unwind_test_sink;

__attribute__((noinline)) uint64_t
unwind_test_inner(uint64_t n)
{
    uint64_t x = unwind_test_sink;
    for (uint64_t i = 0; i < n; i++)
        x = x * 6364136223846793005u + i;
    return x;
}

/* alloca() makes GCC and Clang address the frame by rbp: a CFA in rbp, rbp saved. */
__attribute__((noinline)) uint64_t
unwind_test_middle(uint64_t n)
{
    volatile uint64_t *pad = __builtin_alloca(16 + (n & 8));
    pad[0] = n;
    uint64_t r = unwind_test_inner(n);
    unwind_test_sink = r + pad[0];
    return r;
}

/* Calls middle until about @ns of thread CPU time went by. */
__attribute__((noinline)) uint64_t
unwind_test_outer(uint64_t ns)
{
    uint64_t end = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) + ns, r = 0, rounds = 0;

    do {
        r += unwind_test_middle(200000);
        rounds++;
    } while (test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) < end);
    unwind_test_sink = r + rounds;
    return r;
}

/* Does @x have @names[0..n) among its frames, in that order (root first)? */
static int
has_chain(const probe_sample_info *x, const char *const *names, unsigned n)
{
    unsigned k = 0;

    for (unsigned f = 0; f < x->depth && k < n; f++) {
        if (x->frames[f] && strcmp(x->frames[f], names[k]) == 0)
            k++;
    }
    return k == n;
}

START_TEST(unwind_sampled_stacks_without_frame_pointers)
{
    static const char *const chain[] = {"unwind_test_outer", "unwind_test_middle",
                                        "unwind_test_inner"};
    uint64_t tid = test_gettid(), leaf = 0, whole = 0;

    probe_thread_name("main");
    ck_assert_int_eq(probe_sampler_start(NULL), 0);
    unwind_test_outer(300000000u);
    ck_assert_int_eq(probe_sampler_stop(), 0);

    probe_snapshot *snap = test_snap();
    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *x = probe_snapshot_sample(snap, i);
        if (x->tid != tid || x->depth == 0 ||
            strcmp(x->frames[x->depth - 1], "unwind_test_inner") != 0)
            continue;
        leaf += x->weight;
        if (has_chain(x, chain, 3))
            whole += x->weight;
        else if (getenv("UNWIND_DEBUG")) {
            fprintf(stderr, "broken stack (weight %llu):",
                    (unsigned long long)x->weight);
            for (unsigned f = 0; f < x->depth; f++)
                fprintf(stderr, " %s", x->frames[f]);
            fputc('\n', stderr);
        }
    }
    probe_snapshot_free(snap);
    fprintf(stderr, "samples in inner: weight %llu, %llu with outer;middle;inner\n",
            (unsigned long long)leaf, (unsigned long long)whole);
    /* ~300 ms at 1 ms: some 75 to 300 samples, most of them in inner. */
    ck_assert_uint_ge(leaf, 20);
    ck_assert_msg(whole * 10 >= leaf * 8, "only %llu of %llu have the whole chain",
                  (unsigned long long)whole, (unsigned long long)leaf);
}
END_TEST

#ifdef UNWIND_TEST_CFI
/* ---- cfi_step() on a captured context ---------------------------------------- */

uint64_t unwind_cfi_inner(uint64_t n);
uint64_t unwind_cfi_middle(uint64_t n);
uint64_t unwind_cfi_outer(uint64_t n);

#define CFI_TEST_MAX 64

/* What unwind_cfi_inner() saw: its context, and cfi_step()'s walk from it. */
static struct {
    int refresh;                /* call cfi_refresh() first */
    uintptr_t hi_at_sp;         /* unwind with the stack ending at the sp */
    ucontext_t uc;
    struct cfi_regs first;      /* the context's registers */
    enum cfi_result first_rc;   /* the first step's result */
    struct cfi_regs after;      /* the registers after it */
    uintptr_t pcs[CFI_TEST_MAX];
    unsigned n;
    enum cfi_result last;       /* what ended the walk */
} cap;

static void
stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t a;
    void *addr;
    size_t size;

    ck_assert_int_eq(pthread_getattr_np(pthread_self(), &a), 0);
    ck_assert_int_eq(pthread_attr_getstack(&a, &addr, &size), 0);
    pthread_attr_destroy(&a);
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
}

/* Walk from the captured context with cfi_step() alone, into @cap. */
static __attribute__((noinline)) void
cfi_walk(void)
{
    uintptr_t lo, hi;
    struct cfi_regs r = {
        .pc = (uintptr_t)cap.uc.uc_mcontext.gregs[REG_RIP],
        .sp = (uintptr_t)cap.uc.uc_mcontext.gregs[REG_RSP],
        .fp = (uintptr_t)cap.uc.uc_mcontext.gregs[REG_RBP],
    };

    stack_bounds(&lo, &hi);
    if (cap.hi_at_sp)
        hi = r.sp;
    cap.first = r;
    cap.n = 0;
    cap.pcs[cap.n++] = r.pc;
    cap.last = CFI_STEPPED;
    for (unsigned k = 0; cap.n < CFI_TEST_MAX; k++) {
        cap.last = cfi_step(&r, k > 0, lo, hi);
        if (k == 0) {
            cap.first_rc = cap.last;
            cap.after = r;
        }
        if (cap.last != CFI_STEPPED)
            break;
        cap.pcs[cap.n++] = r.pc;
    }
}

__attribute__((noinline)) uint64_t
unwind_cfi_inner(uint64_t n)
{
    uint64_t x = unwind_test_sink + n;

    if (cap.refresh)
        cfi_refresh();
    getcontext(&cap.uc); /* rip: just after this call, in this function */
    cfi_walk();
    return x * 3;
}

__attribute__((noinline)) uint64_t
unwind_cfi_middle(uint64_t n)
{
    volatile uint64_t *pad = __builtin_alloca(16 + (n & 8));
    pad[0] = n;
    uint64_t r = unwind_cfi_inner(n);
    return r + pad[0];
}

__attribute__((noinline)) uint64_t
unwind_cfi_outer(uint64_t n)
{
    uint64_t a = unwind_test_sink ^ n, b = a * 7;
    uint64_t r = unwind_cfi_middle(a);
    unwind_test_sink = r + b;
    return r ^ a;
}

/* The name dladdr() gives the function holding @pc (a return address if @ret). */
static const char *
name_of(uintptr_t pc, int ret)
{
    Dl_info info;

    if (!dladdr((void *)(pc - (ret ? 1 : 0)), &info) || !info.dli_sname)
        return "?";
    return info.dli_sname;
}

START_TEST(cfi_walks_a_captured_chain_to_main)
{
    int found_main = 0;

    cap.refresh = 1;
    unwind_cfi_outer(5);
    for (unsigned i = 0; i < cap.n; i++)
        fprintf(stderr, "#%u %#lx %s\n", i, (unsigned long)cap.pcs[i],
                name_of(cap.pcs[i], i > 0));
    ck_assert_uint_ge(cap.n, 5);
    ck_assert_str_eq(name_of(cap.pcs[0], 0), "unwind_cfi_inner");
    ck_assert_str_eq(name_of(cap.pcs[1], 1), "unwind_cfi_middle");
    ck_assert_str_eq(name_of(cap.pcs[2], 1), "unwind_cfi_outer");
    for (unsigned i = 3; i < cap.n; i++)
        found_main |= strcmp(name_of(cap.pcs[i], 1), "main") == 0;
    ck_assert_msg(found_main, "main is not among the %u frames", cap.n);
    /* Through libcheck and libc to _start, whose return address is undefined. */
    ck_assert_int_eq(cap.last, CFI_END);
    /* Each frame strictly above the last: the first step's sp is inner's CFA. */
    ck_assert_uint_gt(cap.after.sp, cap.first.sp);
}
END_TEST

START_TEST(cfi_needs_a_refresh)
{
    cap.refresh = 0; /* no table recorded in this process */
    unwind_cfi_outer(5);
    ck_assert_int_eq(cap.first_rc, CFI_NONE);
    ck_assert_uint_eq(cap.n, 1);
    ck_assert_int_eq(cfi_has_table((uintptr_t)unwind_cfi_inner), 0);
    cfi_refresh();
    ck_assert_int_eq(cfi_has_table((uintptr_t)unwind_cfi_inner), 1);
}
END_TEST

START_TEST(cfi_reads_nothing_above_the_stack)
{
    cap.refresh = 1;
    cap.hi_at_sp = 1; /* the return address lies above the stack's end */
    unwind_cfi_outer(5);
    ck_assert_int_eq(cap.first_rc, CFI_FAILED);
    ck_assert_uint_eq(cap.n, 1);
    /* Untouched when the step fails. */
    ck_assert_uint_eq(cap.after.pc, cap.first.pc);
    ck_assert_uint_eq(cap.after.sp, cap.first.sp);
    ck_assert_uint_eq(cap.after.fp, cap.first.fp);
}
END_TEST

START_TEST(cfi_knows_no_code_outside_modules)
{
    uintptr_t lo, hi;
    uint64_t word = 0;
    struct cfi_regs r = {0x1000, (uintptr_t)&word, 0};

    cfi_refresh();
    stack_bounds(&lo, &hi);
    ck_assert_int_eq(cfi_step(&r, 0, lo, hi), CFI_NONE);
    r.pc = (uintptr_t)&word; /* the stack is no module's code */
    ck_assert_int_eq(cfi_step(&r, 1, lo, hi), CFI_NONE);
    ck_assert_int_eq(cfi_has_table((uintptr_t)&cap), 0); /* data, not code */
}
END_TEST
#endif

static Suite *
unwind_suite(void)
{
    Suite *s = suite_create("unwind");
    TCase *tc = tcase_create("unwind");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, unwind_sampled_stacks_without_frame_pointers);
#ifdef UNWIND_TEST_CFI
    tcase_add_test(tc, cfi_walks_a_captured_chain_to_main);
    tcase_add_test(tc, cfi_needs_a_refresh);
    tcase_add_test(tc, cfi_reads_nothing_above_the_stack);
    tcase_add_test(tc, cfi_knows_no_code_outside_modules);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(unwind_suite());
}
