/*
 * scope_overhead: what one PROBE_SCOPE enter+exit costs, held against the floor of two
 * raw timestamp reads measured in the same process.
 *
 * Run it (BUILDDIR is your Meson build directory; the bench option is on by default):
 *
 *     meson test -C BUILDDIR --benchmark -v scope_overhead
 *     BUILDDIR/bench/scope_overhead [--rounds N] [--ms MS] [--cpu N]
 *     bench/instructions.sh BUILDDIR/bench/scope_overhead    (instructions, callgrind)
 *
 * Variants, each a noinline loop in its own translation unit (loops.c,
 * loops_disabled.c) whose body is the measured thing around a compiler barrier:
 *
 *   (a) floor     two raw rdtsc (clock_gettime on non-x86) and an add into a __thread
 *       empty     the barrier alone: what the loop itself costs
 *   (b) scope     PROBE_SCOPE("x") while recording (probe_start())
 *   (c) stopped   PROBE_SCOPE("x") while recording is stopped (probe_stop())
 *   (f) traced    PROBE_SCOPE("x") while recording and tracing (flight recorder)
 *   (d) disabled  PROBE_SCOPE("x") compiled with -DPROBE_DISABLE
 *   (e) threads   (b) on two threads at once against (b) on one, in scopes per second
 *   (g) siblings  inside one parent scope, calls of K = 1, 2, 8, 100, 1000 child scopes
 *                 in turn (direct calls), each against the same calls doing the floor's
 *                 work (a_K); K sites entered from one call site (g1): the library's
 *                 part; and (g2), the calls of (g) made through a table of functions
 *   (h) first touch  a new thread entering 10,000 distinct sites once each
 *
 * Method: the machine this runs on is a shared, noisy VM, so nothing is measured once.
 * (a)-(d) run pinned to one CPU, interleaved in rounds (the order rotates every round;
 * a variant with a floor of its own, (g) to (k), runs right beside it, in turn before
 * and after), each for about --ms milliseconds per round; (e) runs two worker threads
 * pinned to two CPUs in the same rounds. Each figure is the median over the rounds, and every ratio is
 * the median of the ratios taken within one round, so slow drift of the host cancels.
 *
 * It prints a Markdown table and exits 0 whether or not a target is met (it reports, it
 * does not gate): a missed target reads MISSED. A last check compares the calls the
 * library recorded for site "x" with the scopes run while recording. docs/bench.md says
 * how to read it all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#include "harness.h"

#include "loops.h"

#ifdef BENCH_HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#endif

#define MAX_ROUNDS BENCH_MAX_ROUNDS

/* Targets; docs/bench.md gives the reasons. */
#define TARGET_SCOPE_X_FLOOR 2.0 /* (b) at most this many floors */
#define TARGET_STOPPED_NS 1.5    /* (c) at most this many ns */
#define TARGET_DISABLED_X 1.2    /* (d) within this factor of the empty loop... */
#define TARGET_DISABLED_NS 0.1   /*     ...or within this many ns of it */
#define TARGET_THREADS_X 1.9     /* (e) 2 threads give at least this many times 1 */
#define TARGET_SIBLINGS_SPREAD 1.10 /* (g) slowest K at most this many times the fastest */
#define TARGET_FIRST_TOUCH_MS 10.0  /* (h) at most this many ms */
#define FIRST_TOUCH_SITES 10000

enum { REC_ANY, REC_ON, REC_OFF, REC_TRACE };

struct variant {
    const char *label;
    void (*loop)(uint64_t n);
    void (*loop_k)(unsigned k, uint64_t n); /* (g): instead of loop */
    unsigned k;
    int rec;                    /* REC_*: recording state the loop runs under */
    uint64_t n;                 /* iterations per batch, from calibration */
    double ns[MAX_ROUNDS];      /* ns per iteration, one per round */
    double x_floor[MAX_ROUNDS]; /* ns / (a)'s ns in the same round */
};

enum {
    V_FLOOR,
    V_EMPTY,
    V_SCOPE,
    V_STOPPED,
    V_DISABLED,
    V_TRACED,
    V_SIB,                      /* (g): NSIB scope variants, then NSIB floor variants */
    V_SIB_FLOOR = V_SIB + 5,
    V_SIB_ONE = V_SIB_FLOOR + 5, /* (g1): NSIB variants */
    V_SIB_TABLE = V_SIB_ONE + 5, /* (g2): NSIB scope variants, then NSIB floor variants */
    V_SIB_TABLE_FLOOR = V_SIB_TABLE + 5,
    V_DEPTH3 = V_SIB_TABLE_FLOOR + 5, /* (i), (j): and each one's floor after it */
    V_DEPTH3_FLOOR,
    V_REC,
    V_REC_FLOOR,
    V_JIT,                      /* (k): and its floor */
    V_JIT_FLOOR,
    V_COUNT
};
#define TARGET_NESTED_X 1.7 /* (i), (j): at most this many times their floor */
#define NESTED_SCOPES 3     /* scopes per iteration of (i) and (j) */
#define NSIB 5
static const unsigned sib_k[NSIB] = {1, 2, 8, 100, 1000};

#if defined(__x86_64__) || defined(__i386__)
#define FLOOR_LABEL "(a) floor: 2 × rdtsc + add into a __thread"
#else
#define FLOOR_LABEL "(a) floor: 2 × clock_gettime + add into a __thread"
#endif

static struct variant variants[V_COUNT] = {
    [V_FLOOR] = {.label = FLOOR_LABEL, .loop = loops_floor, .rec = REC_ANY},
    [V_EMPTY] = {.label = "empty loop iteration", .loop = loops_empty, .rec = REC_ANY},
    [V_SCOPE] = {.label = "(b) PROBE_SCOPE, recording",
                 .loop = loops_scope,
                 .rec = REC_ON},
    [V_STOPPED] = {.label = "(c) PROBE_SCOPE, stopped",
                   .loop = loops_scope,
                   .rec = REC_OFF},
    [V_DISABLED] = {.label = "(d) PROBE_SCOPE, -DPROBE_DISABLE",
                    .loop = loops_scope_disabled,
                    .rec = REC_ANY},
    [V_TRACED] = {.label = "(f) PROBE_SCOPE, recording and tracing (flight ring)",
                  .loop = loops_scope,
                  .rec = REC_TRACE},
#define SIB(i, ks, kv)                                                                   \
    [V_SIB + i] = {.label = "(g) K=" ks " siblings: a child scope",                       \
                   .loop_k = loops_siblings, .k = kv, .rec = REC_ON},                     \
    [V_SIB_FLOOR + i] = {.label = "(a_K) K=" ks ": a call doing the floor",              \
                         .loop_k = loops_siblings_floor, .k = kv, .rec = REC_ANY},        \
    [V_SIB_ONE + i] = {.label = "(g1) K=" ks " sites from one call site",                 \
                       .loop_k = loops_siblings_one_call_site, .k = kv, .rec = REC_ON},   \
    [V_SIB_TABLE + i] = {.label = "(g2) K=" ks " siblings through a function table",      \
                         .loop_k = loops_siblings_table, .k = kv, .rec = REC_ON},         \
    [V_SIB_TABLE_FLOOR + i] = {.label = "(a_K2) K=" ks ": the floor through the table",   \
                               .loop_k = loops_siblings_table_floor, .k = kv,             \
                               .rec = REC_ANY}
    SIB(0, "1", 1), SIB(1, "2", 2), SIB(2, "8", 8), SIB(3, "100", 100), SIB(4, "1000", 1000),
#undef SIB
    [V_DEPTH3] = {.label = "(i) depth 3: three nested scopes", .loop = loops_depth3,
                  .rec = REC_ON},
    [V_DEPTH3_FLOOR] = {.label = "(i) floor: three nested timestamp pairs",
                        .loop = loops_depth3_floor, .rec = REC_ANY},
    [V_REC] = {.label = "(j) recursion: a scope in a function calling itself 3 deep",
               .loop = loops_recurse, .rec = REC_ON},
    [V_REC_FLOOR] = {.label = "(j) floor: the same recursion, timestamps only",
                     .loop = loops_recurse_floor, .rec = REC_ANY},
    [V_JIT] = {.label = "(k) durations in random buckets: a scope around 0-63 steps",
               .loop = loops_jitter, .rec = REC_ON},
    [V_JIT_FLOOR] = {.label = "(k) floor: the same bodies, timestamps only",
                     .loop = loops_jitter_floor, .rec = REC_ANY},
};

struct options {
    unsigned rounds;
    double ms;
    int cpu;               /* -1: choose */
    uint64_t instructions; /* 0: normal run */
    const char *only;      /* with instructions: one variant only */
};

/* ---- small helpers ------------------------------------------------------------ */

static void
die(const char *what, int err)
{
    fprintf(stderr, "scope_overhead: %s: %s\n", what, probe_strerror(err));
    exit(1);
}

static void
set_recording(int rec)
{
    int err = 0;

    /* Tracing only for (f): every other variant runs with it off. */
    if (rec != REC_TRACE && probe_trace_is_active())
        probe_trace_stop();
    if (rec == REC_ON || rec == REC_TRACE)
        err = probe_start();
    else if (rec == REC_OFF)
        err = probe_stop();
    if (err == 0 && rec == REC_TRACE && !probe_trace_is_active())
        err = probe_trace_start(NULL);
    if (err < 0)
        die(rec == REC_OFF ? "probe_stop" : "probe_start", err);
}

/* ---- CPUs ----------------------------------------------------------------------- */

struct cpus {
    int pinned;    /* 1 if the main thread is pinned to bench_cpu */
    int bench_cpu; /* (a)-(d) and worker 0 */
    int other_cpu; /* worker 1; -1 if only one CPU is allowed */
};

static int
pin_thread(pthread_t thread, int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return -EINVAL;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(thread, sizeof(set), &set);
}

static struct cpus
cpus_choose(int want)
{
    struct cpus c = {0, -1, -1};
    cpu_set_t allowed;

    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return c;
    /* Default to the last allowed CPU: on small VMs CPU 0 tends to take more of the
     * interrupts. */
    for (int i = CPU_SETSIZE - 1; i >= 0 && c.bench_cpu < 0; i--)
        if (CPU_ISSET(i, &allowed) && (want < 0 || want == i))
            c.bench_cpu = i;
    for (int i = 0; i < CPU_SETSIZE && c.other_cpu < 0; i++)
        if (CPU_ISSET(i, &allowed) && i != c.bench_cpu)
            c.other_cpu = i;
    c.pinned = pin_thread(pthread_self(), c.bench_cpu) == 0;
    return c;
}

/* ---- (a)-(d): single-thread variants --------------------------------------------- */

/* Scopes run while recording, to check that (b) and (e) really recorded them all. */
static uint64_t scopes_recorded;
/* (h), per round: ms, and ns per site over (a)'s ns in the same round. */
static double first_touch_ms[MAX_ROUNDS], first_touch_x[MAX_ROUNDS];

static double
batch_ns(struct variant *v, uint64_t n)
{
    set_recording(v->rec);
    uint64_t t0 = bench_now_ns();
    if (v->loop_k)
        v->loop_k(v->k, n);
    else
        v->loop(n);
    uint64_t t1 = bench_now_ns();
    if (v->loop == loops_scope && (v->rec == REC_ON || v->rec == REC_TRACE))
        scopes_recorded += n;
    return (double)(t1 - t0) / (double)n;
}

/* Choose n so one batch takes about ms milliseconds. Called twice: once to warm up
 * (the thread's first scope, lazy binding, caches), once to measure. */
static double
batch_thunk(void *v, uint64_t n)
{
    return batch_ns(v, n);
}

static void
calibrate(struct variant *v, double ms)
{
    v->n = bench_calibrate(batch_thunk, v, 1000, ms);
}

/* ---- (e): threads ------------------------------------------------------------------ */

struct worker {
    pthread_t thread;
    int cpu;
    uint64_t n; /* scopes to run this turn; 0 sits it out */
    uint64_t t0, t1;
};

static struct worker workers[2];
static pthread_barrier_t workers_go, workers_done;
static int workers_quit;

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    if (w->cpu >= 0)
        (void)pin_thread(pthread_self(), w->cpu);
    (void)probe_thread_name(w == &workers[0] ? "bench-worker-0" : "bench-worker-1");
    for (;;) {
        pthread_barrier_wait(&workers_go);
        if (workers_quit)
            break;
        if (w->n) {
            w->t0 = bench_now_ns();
            loops_scope(w->n);
            w->t1 = bench_now_ns();
        }
        pthread_barrier_wait(&workers_done);
    }
    return NULL;
}

static int
workers_start(const struct cpus *c)
{
    int err;

    pthread_barrier_init(&workers_go, NULL, 3);
    pthread_barrier_init(&workers_done, NULL, 3);
    workers[0].cpu = c->bench_cpu;
    workers[1].cpu = c->other_cpu;
    for (int i = 0; i < 2; i++) {
        err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        if (err) {
            fprintf(stderr, "scope_overhead: pthread_create: %s\n", strerror(err));
            exit(1);
        }
    }
    return 0;
}

static void
workers_stop(void)
{
    workers_quit = 1;
    pthread_barrier_wait(&workers_go);
    for (int i = 0; i < 2; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_barrier_destroy(&workers_go);
    pthread_barrier_destroy(&workers_done);
}

/* Run n scopes on each of nthreads workers at once; ns of wall time per scope, all
 * threads together (so 1/throughput). */
static double
workers_run(int nthreads, uint64_t n)
{
    workers[0].n = n;
    workers[1].n = nthreads == 2 ? n : 0;
    pthread_barrier_wait(&workers_go);
    pthread_barrier_wait(&workers_done);
    scopes_recorded += n * (uint64_t)nthreads;
    uint64_t t0 = workers[0].t0, t1 = workers[0].t1;
    if (nthreads == 2) {
        t0 = workers[1].t0 < t0 ? workers[1].t0 : t0;
        t1 = workers[1].t1 > t1 ? workers[1].t1 : t1;
    }
    return (double)(t1 - t0) / ((double)n * nthreads);
}

/* ---- (h): first touch --------------------------------------------------------------- */

static void *
first_touch_main(void *arg)
{
    double *ms = arg;
    uint64_t t0 = bench_now_ns();

    loops_first_touch(FIRST_TOUCH_SITES); /* includes the thread's own first scope */
    *ms = (double)(bench_now_ns() - t0) / 1e6;
    return NULL;
}

/* A new thread (on the bench CPU) enters 10,000 sites it never entered: ms. */
static double
first_touch_run(const struct cpus *c)
{
    pthread_t th;
    double ms = 0;

    set_recording(REC_ON);
    if (pthread_create(&th, NULL, first_touch_main, &ms) != 0) {
        fprintf(stderr, "scope_overhead: pthread_create failed\n");
        exit(1);
    }
    if (c->pinned)
        (void)pin_thread(th, c->bench_cpu);
    pthread_join(th, NULL);
    return ms;
}

/* ---- the report -------------------------------------------------------------------- */

/* What the library recorded for site "x" against what ran while recording: a library
 * that dropped scopes would look cheaper than it is. */
static void
print_recorded_check(void)
{
    probe_snapshot *snap = probe_snapshot_take();
    const probe_site_info *x = snap ? probe_snapshot_find(snap, "x") : NULL;
    uint64_t calls = x ? x->calls : 0;

    if (calls == scopes_recorded)
        printf("Check: site \"x\" recorded all %llu scopes run while recording.\n",
               (unsigned long long)calls);
    else
        printf("WARNING: site \"x\" recorded %llu calls, but %llu scopes ran while "
               "recording: (b) and (e) did not time what they claim.\n",
               (unsigned long long)calls, (unsigned long long)scopes_recorded);
    probe_snapshot_free(snap);
}

static const char *met(int ok);

/* (i) and (j): three scopes per iteration, and (k): one, each against the same shape
 * doing the floor's work, the ratio taken within each round. (k) has no target: it
 * shows what a histogram bucket that changes at random costs (docs/bench.md). */
static void
print_nested(unsigned r)
{
    static const int cases[][3] = {{V_DEPTH3, V_DEPTH3_FLOOR, NESTED_SCOPES},
                                   {V_REC, V_REC_FLOOR, NESTED_SCOPES},
                                   {V_JIT, V_JIT_FLOOR, 1}};
    double x[MAX_ROUNDS];

    printf("\n| case | ns/scope (median) | floor ns/scope | × its floor | target | met? |\n");
    printf("|---|---:|---:|---:|---|---|\n");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const struct variant *v = &variants[cases[c][0]], *f = &variants[cases[c][1]];
        for (unsigned j = 0; j < r; j++)
            x[j] = v->ns[j] / f->ns[j];
        double xm = bench_median(x, r);
        printf("| %s | %.2f | %.2f | %.2f | ", v->label,
               bench_median(v->ns, r) / cases[c][2], bench_median(f->ns, r) / cases[c][2],
               xm);
        if (cases[c][0] == V_JIT)
            printf("— | — |\n");
        else
            printf("≤ %.1f× | %s |\n", TARGET_NESTED_X, met(xm <= TARGET_NESTED_X));
    }
}

static const char *
met(int ok)
{
    return ok ? "yes" : "MISSED";
}

/* The median over rounds of each K's ns against its floor's in the same round
 * (@floor < 0: the ns themselves), into @out; returns slowest ÷ fastest. */
static double
sib_ratios(int base, int floor, unsigned r, double out[NSIB])
{
    double x[MAX_ROUNDS], lo = 0, hi = 0;

    for (int i = 0; i < NSIB; i++) {
        for (unsigned j = 0; j < r; j++)
            x[j] = variants[base + i].ns[j] / (floor < 0 ? 1.0 : variants[floor + i].ns[j]);
        out[i] = bench_median(x, r);
        lo = i == 0 || out[i] < lo ? out[i] : lo;
        hi = i == 0 || out[i] > hi ? out[i] : hi;
    }
    return hi / lo;
}

/* (g) and (h): each K against its own floor and against K = 1, and the first touch. */
static void
print_siblings(unsigned r, const double *ft_ms, const double *ft_x)
{
    static double x_k1[NSIB][MAX_ROUNDS], one_k1[NSIB][MAX_ROUNDS];
    double x[NSIB], x_table[NSIB], one[NSIB];
    double spread = sib_ratios(V_SIB, V_SIB_FLOOR, r, x);
    double spread_table = sib_ratios(V_SIB_TABLE, V_SIB_TABLE_FLOOR, r, x_table);
    double spread_one = sib_ratios(V_SIB_ONE, -1, r, one);

    for (int i = 0; i < NSIB; i++)
        for (unsigned j = 0; j < r; j++) {
            x_k1[i][j] = (variants[V_SIB + i].ns[j] / variants[V_SIB_FLOOR + i].ns[j]) /
                         (variants[V_SIB].ns[j] / variants[V_SIB_FLOOR].ns[j]);
            one_k1[i][j] = variants[V_SIB_ONE + i].ns[j] / variants[V_SIB_ONE].ns[j];
        }
    printf("\n(g) A parent alternating between K child scopes, called directly: ns per child"
           " scope, against the same calls doing the floor's work (a_K) and against (a);"
           " (g1) K sites entered from one call site; (g2) the calls of (g) through a"
           " table of functions, against the floor called the same way (a_K2).\n\n");
    printf("| K | ns/scope (median) | a_K ns | × a_K | × (a) floor | × a_K, ÷ K=1 |"
           " (g1) ns | (g1) ÷ K=1 | (g2) ns | (g2) × a_K2 |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < NSIB; i++)
        printf("| %u | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f | %.3f | %.2f | %.2f |\n",
               sib_k[i], bench_median(variants[V_SIB + i].ns, r),
               bench_median(variants[V_SIB_FLOOR + i].ns, r), x[i],
               bench_median(variants[V_SIB + i].x_floor, r), bench_median(x_k1[i], r),
               one[i], bench_median(one_k1[i], r),
               bench_median(variants[V_SIB_TABLE + i].ns, r), x_table[i]);
    printf("\nSpread of × a_K over K: slowest ÷ fastest %.3f (target ≤ %.2f): %s.\n", spread,
           TARGET_SIBLINGS_SPREAD, met(spread <= TARGET_SIBLINGS_SPREAD));
    printf("The library's own part, K sites from one call site (g1): slowest ÷ fastest"
           " %.3f.\n", spread_one);
    printf("Through a function table (g2): slowest ÷ fastest %.3f; no target, the table's"
           " indirect call mispredicts at large K (docs/bench.md).\n", spread_table);
    printf("\n(h) First touch of %d sites on a new thread: %.2f ms (median; min %.2f, max"
           " %.2f), %.0f ns per site, %.1f× (a) per site; target ≤ %.0f ms: %s.\n",
           FIRST_TOUCH_SITES, bench_median(ft_ms, r), bench_quantile(ft_ms, r, 0),
           bench_quantile(ft_ms, r, 1), bench_median(ft_ms, r) * 1e6 / FIRST_TOUCH_SITES,
           bench_median(ft_x, r), TARGET_FIRST_TOUCH_MS,
           met(bench_median(ft_ms, r) <= TARGET_FIRST_TOUCH_MS));
}

static void
print_report(const struct options *o, const struct cpus *c, int threads,
             const double *t1_ns, const double *t2_ns, const double *t_ratio,
             const double *d_x_empty)
{
    unsigned r = o->rounds;
    char model[128];
    struct variant *v = variants;

    printf("## scope_overhead\n\n");
    printf("libprobe %d.%d.%d, %s, built %s; %s.\n", PROBE_VERSION_MAJOR,
           PROBE_VERSION_MINOR, PROBE_VERSION_PATCH, bench_cpu_model(model, sizeof(model)),
#ifdef __OPTIMIZE__
           "optimized",
#else
           "WITHOUT optimization (the figures mean little)",
#endif
           "gcc/clang " __VERSION__);
    if (c->pinned)
        printf("Pinned to CPU %d", c->bench_cpu);
    else
        printf("NOT pinned (sched_setaffinity failed)");
    if (threads)
        printf("; (e) workers on CPUs %d and %d", c->bench_cpu, c->other_cpu);
    printf(". Floor clock: %s. %u rounds, ~%.0f ms per variant per round; medians.\n\n",
           loops_floor_clock(), r, o->ms);

    double floor_ns = bench_median(v[V_FLOOR].ns, r);
    double scope_x = bench_median(v[V_SCOPE].x_floor, r);
    double stopped_ns = bench_median(v[V_STOPPED].ns, r);
    double d_x = bench_median(d_x_empty, r);
    double d_diff = bench_median(v[V_DISABLED].ns, r) - bench_median(v[V_EMPTY].ns, r);

    printf("| variant | ns/scope (median) | × floor | target | met? |\n");
    printf("|---|---:|---:|---|---|\n");
    printf("| %s | %.2f | 1.00 | — | — |\n", v[V_FLOOR].label, floor_ns);
    printf("| %s | %.2f | %.3f | — | — |\n", v[V_EMPTY].label, bench_median(v[V_EMPTY].ns, r),
           bench_median(v[V_EMPTY].x_floor, r));
    printf("| %s | %.2f | %.2f | ≤ %.1f× floor | %s |\n", v[V_SCOPE].label,
           bench_median(v[V_SCOPE].ns, r), scope_x, TARGET_SCOPE_X_FLOOR,
           met(scope_x <= TARGET_SCOPE_X_FLOOR));
    printf("| %s | %.2f | %.3f | ≤ %.1f ns | %s |\n", v[V_STOPPED].label, stopped_ns,
           bench_median(v[V_STOPPED].x_floor, r), TARGET_STOPPED_NS,
           met(stopped_ns <= TARGET_STOPPED_NS));
    printf("| %s | %.2f | %.3f | ≈ empty loop (%.2f× it) | %s |\n", v[V_DISABLED].label,
           bench_median(v[V_DISABLED].ns, r), bench_median(v[V_DISABLED].x_floor, r), d_x,
           met(d_x <= TARGET_DISABLED_X || d_diff <= TARGET_DISABLED_NS));
    printf("| %s | %.2f | %.2f | — (%.2f× (b)) | — |\n", v[V_TRACED].label,
           bench_median(v[V_TRACED].ns, r), bench_median(v[V_TRACED].x_floor, r),
           bench_median(v[V_TRACED].ns, r) / bench_median(v[V_SCOPE].ns, r));
    if (threads) {
        double ratio = bench_median(t_ratio, r);
        printf("| (e) scopes/s, 2 threads ÷ 1 thread | 1T %.2f, 2T %.2f all threads"
               " | %.2f× (ratio) | ≥ %.1f× | %s |\n",
               bench_median(t1_ns, r), bench_median(t2_ns, r), ratio, TARGET_THREADS_X,
               met(ratio >= TARGET_THREADS_X));
    } else {
        printf("| (e) scopes/s, 2 threads ÷ 1 thread | — | — | ≥ %.1f× |"
               " skipped: one CPU allowed |\n",
               TARGET_THREADS_X);
    }

    printf("\n");
    print_recorded_check();
    print_siblings(r, first_touch_ms, first_touch_x);
    print_nested(r);
    printf("\nSpread over the %u rounds, ns per iteration (min / p25 / median / p75 / "
           "max):\n\n",
           r);
    printf("| variant | min | p25 | median | p75 | max |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < V_COUNT; i++)
        printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", v[i].label,
               bench_quantile(v[i].ns, r, 0), bench_quantile(v[i].ns, r, 0.25), bench_median(v[i].ns, r),
               bench_quantile(v[i].ns, r, 0.75), bench_quantile(v[i].ns, r, 1));
    if (threads) {
        printf("| (e) 1 thread | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
               bench_quantile(t1_ns, r, 0), bench_quantile(t1_ns, r, 0.25), bench_median(t1_ns, r),
               bench_quantile(t1_ns, r, 0.75), bench_quantile(t1_ns, r, 1));
        printf("| (e) 2 threads, all | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
               bench_quantile(t2_ns, r, 0), bench_quantile(t2_ns, r, 0.25), bench_median(t2_ns, r),
               bench_quantile(t2_ns, r, 0.75), bench_quantile(t2_ns, r, 1));
        printf("| (e) ratio 2T÷1T | %.3f | %.3f | %.3f | %.3f | %.3f |\n",
               bench_quantile(t_ratio, r, 0), bench_quantile(t_ratio, r, 0.25), bench_median(t_ratio, r),
               bench_quantile(t_ratio, r, 0.75), bench_quantile(t_ratio, r, 1));
    }
}

/* ---- the two modes ----------------------------------------------------------------- */

#define PARTNER_NONE (-1)
#define PARTNER_LEAD (-2) /* @i is the floor of another variant, measured with it */

/* The floor that variant @i's ratio is taken against, measured right before or after
 * it in every round (in turn), so that a burst of the host's other work falls on
 * both sides of the ratio more often than on one; PARTNER_NONE or PARTNER_LEAD. */
static int
partner_of(int i)
{
    if (i >= V_SIB && i < V_SIB + NSIB)
        return V_SIB_FLOOR + (i - V_SIB);
    if (i >= V_SIB_TABLE && i < V_SIB_TABLE + NSIB)
        return V_SIB_TABLE_FLOOR + (i - V_SIB_TABLE);
    if (i == V_DEPTH3 || i == V_REC || i == V_JIT)
        return i + 1;
    if ((i >= V_SIB_FLOOR && i < V_SIB_FLOOR + NSIB) ||
        (i >= V_SIB_TABLE_FLOOR && i < V_SIB_TABLE_FLOOR + NSIB) || i == V_DEPTH3_FLOOR ||
        i == V_REC_FLOOR || i == V_JIT_FLOOR)
        return PARTNER_LEAD;
    return PARTNER_NONE;
}


static int
run_timed(const struct options *o)
{
    static double t1_ns[MAX_ROUNDS], t2_ns[MAX_ROUNDS], t_ratio[MAX_ROUNDS];
    static double d_x_empty[MAX_ROUNDS];
    struct cpus c = cpus_choose(o->cpu);
    int threads = c.other_cpu >= 0;

    if (o->cpu >= 0 && c.bench_cpu != o->cpu) {
        fprintf(stderr, "scope_overhead: CPU %d is not allowed for this process\n",
                o->cpu);
        return 2;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < V_COUNT; i++)
            calibrate(&variants[i], o->ms);

    /* (e) runs as many scopes per thread as (b) does in one batch. */
    uint64_t tn = variants[V_SCOPE].n;
    if (threads) {
        workers_start(&c);
        set_recording(REC_ON);
        (void)workers_run(1, tn / 4 + 1); /* warm-up: first scope of each thread */
        (void)workers_run(2, tn / 4 + 1);
    }

    for (unsigned r = 0; r < o->rounds; r++) {
        for (int k = 0; k < V_COUNT; k++) {
            int i = (int)((r + (unsigned)k) % V_COUNT), p = partner_of(i);
            if (p == PARTNER_LEAD)
                continue; /* runs beside the variant it is the floor of */
            struct variant *v = &variants[i], *f = p >= 0 ? &variants[p] : NULL;
            if (f && r % 2)
                f->ns[r] = batch_ns(f, f->n);
            v->ns[r] = batch_ns(v, v->n);
            if (f && !(r % 2))
                f->ns[r] = batch_ns(f, f->n);
        }
        for (int i = 0; i < V_COUNT; i++)
            variants[i].x_floor[r] = variants[i].ns[r] / variants[V_FLOOR].ns[r];
        d_x_empty[r] = variants[V_DISABLED].ns[r] / variants[V_EMPTY].ns[r];
        first_touch_ms[r] = first_touch_run(&c);
        first_touch_x[r] = first_touch_ms[r] * 1e6 / FIRST_TOUCH_SITES / variants[V_FLOOR].ns[r];
        if (threads) {
            set_recording(REC_ON);
            if (r % 2) {
                t2_ns[r] = workers_run(2, tn);
                t1_ns[r] = workers_run(1, tn);
            } else {
                t1_ns[r] = workers_run(1, tn);
                t2_ns[r] = workers_run(2, tn);
            }
            t_ratio[r] = t1_ns[r] / t2_ns[r];
        }
    }
    if (threads)
        workers_stop();

    print_report(o, &c, threads, t1_ns, t2_ns, t_ratio, d_x_empty);
    /* Keep the floor's sum alive. */
    volatile uint64_t sink = loops_floor_sum() + loops_sites_floor_sum();
    (void)sink;
    return 0;
}

/*
 * Exactly n iterations of each variant, for instruction counting under callgrind
 * (bench/instructions.sh). With <valgrind/callgrind.h>, each variant ends in a dump
 * named "bench:<variant>", so one run gives all of them; without it (or with --only),
 * the script takes the difference of two runs with different n.
 */
static int
run_instructions(uint64_t n, const char *only)
{
    static const struct {
        const char *name;
        int v;
    } names[] = {{"empty", V_EMPTY},
                 {"floor", V_FLOOR},
                 {"scope", V_SCOPE},
                 {"stopped", V_STOPPED},
                 {"disabled", V_DISABLED},
                 {"traced", V_TRACED},
                 {"sib1", V_SIB},
                 {"sib2", V_SIB + 1},
                 {"sib8", V_SIB + 2},
                 {"sib100", V_SIB + 3},
                 {"sib1000", V_SIB + 4},
                 {"depth3", V_DEPTH3},
                 {"recurse", V_REC},
                 {"jitter", V_JIT}};
    int want = -1;

    if (only) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcmp(only, names[i].name) == 0)
                want = names[i].v;
        if (want < 0) {
            fprintf(stderr, "scope_overhead: --only: unknown variant '%s'\n", only);
            return 2;
        }
    }
    /* Warm up: the thread's first scope and lazy binding are one-time costs. */
    for (int i = 0; i < V_COUNT; i++)
        batch_ns(&variants[i], 2 * LOOPS_SIBLINGS_MAX); /* (g): every child once */

#ifdef BENCH_HAVE_CALLGRIND_H
    printf("callgrind-requests: %s\n", only ? "unused" : "yes");
#else
    printf("callgrind-requests: no\n");
#endif
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct variant *v = &variants[names[i].v];
        if (want >= 0 && names[i].v != want)
            continue;
        set_recording(v->rec);
#ifdef BENCH_HAVE_CALLGRIND_H
        if (!only)
            CALLGRIND_ZERO_STATS;
#endif
        if (v->loop_k)
            v->loop_k(v->k, n);
        else
            v->loop(n);
#ifdef BENCH_HAVE_CALLGRIND_H
        if (!only) {
            char what[32];
            snprintf(what, sizeof(what), "bench:%s", names[i].name);
            CALLGRIND_DUMP_STATS_AT(what);
        }
#endif
    }
    volatile uint64_t sink = loops_floor_sum() + loops_sites_floor_sum();
    (void)sink;
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: scope_overhead [--rounds N] [--ms MS] [--cpu N]\n"
            "       scope_overhead --instructions N [--only VARIANT]\n"
            "  --rounds N        rounds of interleaved runs (default 15, at most %d)\n"
            "  --ms MS           milliseconds per variant per round (default 30)\n"
            "  --cpu N           pin (a)-(d) to CPU N (default: the last allowed)\n"
            "  --instructions N  run exactly N iterations of each variant, for\n"
            "                    callgrind (bench/instructions.sh); no timing\n"
            "  --only VARIANT    with --instructions: empty, floor, scope, stopped,\n"
            "                    disabled, traced, sib1, sib2, sib8, sib100,\n"
            "                    sib1000, depth3 or recurse\n",
            MAX_ROUNDS);
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s ? s : "", &end, 10);
    if (!s || errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    struct options o = {15, 30.0, -1, 0, NULL};
    uint64_t v;

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--rounds") == 0 && parse_u64(arg, &v) == 0 && v >= 1 &&
                   v <= MAX_ROUNDS) {
            o.rounds = (unsigned)v;
        } else if (strcmp(a, "--ms") == 0 && parse_u64(arg, &v) == 0 && v >= 1 &&
                   v <= 10000) {
            o.ms = (double)v;
        } else if (strcmp(a, "--cpu") == 0 && parse_u64(arg, &v) == 0 &&
                   v < CPU_SETSIZE) {
            o.cpu = (int)v;
        } else if (strcmp(a, "--instructions") == 0 && parse_u64(arg, &v) == 0 &&
                   v >= 1) {
            o.instructions = v;
        } else if (strcmp(a, "--only") == 0 && arg) {
            o.only = arg;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.only && !o.instructions) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.instructions)
        return run_instructions(o.instructions, o.only);
    return run_timed(&o);
}
