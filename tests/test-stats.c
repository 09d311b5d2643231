/* Compact per-thread statistics: the histogram's resolution, percentiles of known
 * durations (one thread, and merged from several), and the memory a site costs a
 * thread.
 *
 * Durations are given in clock ticks through thread_record_ticks() (the scope's own
 * entry and exit, with the exit's timestamp set), so that every call lands in a known
 * bucket whatever the load on the machine. Internal: links libprobe.a. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "common.h"

#include <probe/report.h>

#include "core/snapshot.h"
#include "core/stats.h"
#include "core/thread.h"

#define NSITES 10000
#define MAX_SITE_BYTES 256 /* the target: statistics of a site with a few durations */

static struct probe__site *
make_sites(unsigned n, const char *prefix)
{
    struct probe__site *v = calloc(n, sizeof(*v));

    ck_assert_ptr_nonnull(v);
    for (unsigned i = 0; i < n; i++) {
        char *name = malloc(32);
        ck_assert_ptr_nonnull(name);
        snprintf(name, 32, "%s%u", prefix, i);
        /* Kept for the life of the process: the registry describes them. */
        v[i] = (struct probe__site){PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, i + 1, 0, name,
                                    "make_sites", "test-stats.c"};
    }
    return v;
}

/* ---- the buckets ------------------------------------------------------------------ */

START_TEST(bucket_resolution)
{
    uint64_t v = 1;

    /* Every value from 0 to 4096, then a walk up by 1/7 to 2^48. */
    for (uint64_t x = 0; x <= 4096 || x < (1ull << 48); x = x <= 4096 ? x + 1 : x + x / 7) {
        unsigned b = stats_hist_bucket(x);
        uint64_t lo = stats_hist_lower(b), w = stats_hist_width(b), mid = lo + w / 2;
        ck_assert_uint_lt(b, STATS_HIST_BUCKETS);
        ck_assert_msg(lo <= x && x < lo + w, "%llu not in bucket %u [%llu, +%llu)",
                      (unsigned long long)x, b, (unsigned long long)lo,
                      (unsigned long long)w);
        /* The midpoint, which reports give, is within 12.5 % of the value. */
        uint64_t err = mid > x ? mid - x : x - mid;
        ck_assert_msg(err * 8 <= x, "%llu: midpoint %llu", (unsigned long long)x,
                      (unsigned long long)mid);
        v++;
    }
    ck_assert_uint_gt(v, 4096);
}
END_TEST

/* ---- percentiles ------------------------------------------------------------------ */

/* What the report gives for quantile @q of the durations counted in @hist: the
 * bucket's midpoint, clamped to [min, max], in ns. */
static uint64_t
expected_ns(const uint64_t *hist, uint64_t calls, uint64_t min, uint64_t max, double q,
            double npt)
{
    uint64_t want = (uint64_t)((double)calls * q + 0.999999), seen = 0;

    for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= want && seen) {
            uint64_t mid = stats_hist_lower(i) + stats_hist_width(i) / 2;
            mid = mid < min ? min : mid > max ? max : mid;
            return (uint64_t)((double)mid * npt);
        }
    }
    return (uint64_t)((double)max * npt);
}

static void
assert_within_resolution(uint64_t got_ns, uint64_t ticks, double npt, const char *what)
{
    double want = (double)ticks * npt, err = (double)got_ns - want;

    ck_assert_msg(err <= want / 8 + 1 && -err <= want / 8 + 1,
                  "%s: %llu ns, true value %.0f ns", what, (unsigned long long)got_ns, want);
}

START_TEST(percentiles_of_known_durations)
{
    struct probe__site *site = make_sites(1, "known");
    uint64_t hist[STATS_HIST_BUCKETS] = {0};
    static const struct {
        uint64_t ticks;
        unsigned n;
    } calls[] = {{1000, 50}, {5000, 40}, {20000, 9}, {300000, 1}};

    for (unsigned k = 0; k < 4; k++) {
        for (unsigned i = 0; i < calls[k].n; i++)
            thread_record_ticks(site, calls[k].ticks);
        hist[stats_hist_bucket(calls[k].ticks)] += calls[k].n;
    }
    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "known0");
    double npt = probe_snapshot_clock(snap)->ns_per_tick;

    ck_assert_uint_eq(si->calls, 100);
    ck_assert_uint_eq(si->min_ns, (uint64_t)(1000 * npt));
    ck_assert_uint_eq(si->max_ns, (uint64_t)(300000 * npt));
    assert_within_resolution(si->p50_ns, 1000, npt, "p50");
    assert_within_resolution(si->p90_ns, 5000, npt, "p90");
    assert_within_resolution(si->p99_ns, 20000, npt, "p99");
    ck_assert_uint_eq(si->p50_ns, expected_ns(hist, 100, 1000, 300000, 0.50, npt));
    ck_assert_uint_eq(si->p90_ns, expected_ns(hist, 100, 1000, 300000, 0.90, npt));
    ck_assert_uint_eq(si->p99_ns, expected_ns(hist, 100, 1000, 300000, 0.99, npt));
    ck_assert_uint_eq(probe_snapshot_losses(snap)->sites_dropped, 0);
    probe_snapshot_free(snap);
}
END_TEST

/* A histogram group that cannot be allocated: the call is counted, left out of the
 * histogram, and reported as stats_dropped in the losses, the JSON and the text. */
/* The report of @snap in @format, as a NUL-terminated string (caller frees). */
static char *
report_of(const probe_snapshot *snap, const char *format)
{
    FILE *f = tmpfile();

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(probe_snapshot_write_fd(snap, fileno(f), format), 0);
    long n = lseek(fileno(f), 0, SEEK_END);
    ck_assert_int_gt(n, 0);
    char *s = calloc(1, (size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(pread(fileno(f), s, (size_t)n, 0), n);
    fclose(f);
    return s;
}

/* probe_reset() zeroes the counts but keeps the groups where they are: calls after
 * it land in the same groups, and a snapshot still finds them. */
START_TEST(percentiles_after_reset)
{
    struct probe__site *site = make_sites(1, "reset");

    for (unsigned i = 0; i < 10; i++)
        thread_record_ticks(site, 1000); /* its group is taken before the reset */
    probe_reset();
    for (unsigned i = 0; i < 90; i++)
        thread_record_ticks(site, 1000);
    for (unsigned i = 0; i < 10; i++)
        thread_record_ticks(site, 100000);

    probe_snapshot *snap = test_snap();
    const probe_site_info *si = test_site(snap, "reset0");
    double npt = probe_snapshot_clock(snap)->ns_per_tick;

    ck_assert_uint_eq(si->calls, 100);
    ck_assert_uint_eq(si->min_ns, (uint64_t)(1000 * npt));
    ck_assert_uint_eq(si->max_ns, (uint64_t)(100000 * npt));
    assert_within_resolution(si->p50_ns, 1000, npt, "p50");
    assert_within_resolution(si->p90_ns, 1000, npt, "p90");
    assert_within_resolution(si->p99_ns, 100000, npt, "p99");
    probe_snapshot_free(snap);
}
END_TEST

/* Site @name's histogram in @snap, bucket by bucket, into @out. */
static void
hist_of(const probe_snapshot *snap, const char *name, uint64_t *out)
{
    const probe_site_info *si = test_site(snap, name);
    size_t i = 0;

    while (probe_snapshot_site(snap, i) != si)
        i++;
    memset(out, 0, STATS_HIST_BUCKETS * sizeof(*out));
    const struct snap_bucket *b;
    size_t n = snapshot_site_hist(snap, i, &b);
    for (size_t k = 0; k < n; k++)
        out[b[k].bucket] = b[k].count;
}

/* The exit counts a call in its path's node when the bucket is one of the two the
 * path counts there (cct_node.hot), and moves the counts to the site's groups when
 * it is not. Two sites of one chunk, each on two paths, stay in a bucket, move to the
 * next one and back, and cross all 24 groups (so some groups are in a pool segment),
 * with a reset in between: every bucket's count is exact. */
START_TEST(histogram_exact_when_buckets_change)
{
    struct probe__site *sites = make_sites(4, "hop"); /* 0, 1 parents; 2, 3 children */
    uint64_t want[2][STATS_HIST_BUCKETS] = {{0}}, got[STATS_HIST_BUCKETS];

    for (unsigned round = 0; round < 2; round++) {
        if (round == 1) {
            probe_reset();
            memset(want, 0, sizeof(want));
        }
        for (unsigned i = 0; i < 3000; i++) {
            /* Each path's v-th call: B, B, B + 1, B, then B moves on by 5. */
            unsigned child = i % 2, v = i / 4;
            unsigned b = ((v / 4) * 5 + round + (v % 4 == 2)) % STATS_HIST_BUCKETS;
            uint64_t ticks = stats_hist_lower(b) + (stats_hist_width(b) - 1) * (i % 3) / 2;
            probe__token tok = probe__scope_enter(&sites[i / 2 % 2]);
            ck_assert_int_gt(tok, 0);
            thread_record_ticks(&sites[2 + child], ticks);
            probe__scope_exit(tok);
            want[child][stats_hist_bucket(ticks)]++;
        }
    }
    probe_snapshot *snap = test_snap();
    for (unsigned child = 0; child < 2; child++) {
        uint64_t sum = 0;
        hist_of(snap, child ? "hop3" : "hop2", got);
        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
            ck_assert_msg(got[b] == want[child][b], "hop%u bucket %u: %llu, want %llu",
                          2 + child, b, (unsigned long long)got[b],
                          (unsigned long long)want[child][b]);
            sum += got[b];
        }
        ck_assert_uint_eq(sum, 1500);
        ck_assert_uint_eq(test_site(snap, child ? "hop3" : "hop2")->calls, 1500);
    }
    ck_assert_uint_eq(probe_snapshot_losses(snap)->stats_dropped, 0);
    probe_snapshot_free(snap);
}
END_TEST

/* A path counts its calls in two buckets in its node (cct_node.hot), and moves them
 * to the site's groups when a call lands in a third or the counts are full: two
 * buckets that alternate, one that fills the counts many times over, three in turn
 * (a move on every call), a new bucket just after the counts filled, and calls
 * longer than the last bucket all read exact, as does the site's total. */
START_TEST(histogram_exact_in_the_node_counts)
{
    struct probe__site *sites = make_sites(5, "slots");
    /* Site 0: two buckets in turn; 1: one bucket; 2: three in turn. */
    static const uint64_t pattern[3][3] = {{40, 1000, 0}, {5000, 0, 0}, {3, 300, 30000}};
    static const unsigned period[3] = {2, 1, 3};
    uint64_t want[5][STATS_HIST_BUCKETS] = {{0}}, got[STATS_HIST_BUCKETS];
    const unsigned calls = 3 * (1u << STATS_HOT_MAX_LOG) + 7;

    for (unsigned i = 0; i < calls; i++)
        for (unsigned k = 0; k < 3; k++) {
            uint64_t ticks = pattern[k][i % period[k]];
            thread_record_ticks(&sites[k], ticks);
            want[k][stats_hist_bucket(ticks)]++;
        }
    /* Site 3: a full count, then a call in a new bucket. */
    const unsigned full = 1u << STATS_HOT_MAX_LOG;
    for (unsigned i = 0; i < 2 * full + 2; i++) {
        uint64_t ticks = i % (full + 1) == full ? 1000 : 40;
        thread_record_ticks(&sites[3], ticks);
        want[3][stats_hist_bucket(ticks)]++;
    }
    /* Site 4: calls beyond the last bucket (2^49 ticks) in turn with one inside. */
    static const uint64_t longest[3] = {1ull << 50, 100, 1ull << 62};
    for (unsigned i = 0; i < 300; i++) {
        thread_record_ticks(&sites[4], longest[i % 3]);
        want[4][stats_hist_bucket(longest[i % 3])]++;
    }
    ck_assert_uint_eq(want[4][STATS_HIST_BUCKETS - 1], 200);
    probe_snapshot *snap = test_snap();
    for (unsigned k = 0; k < 5; k++) {
        char name[16];
        uint64_t sum = 0;
        snprintf(name, sizeof(name), "slots%u", k);
        hist_of(snap, name, got);
        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
            ck_assert_msg(got[b] == want[k][b], "%s bucket %u: %llu, want %llu", name, b,
                          (unsigned long long)got[b], (unsigned long long)want[k][b]);
            sum += got[b];
        }
        ck_assert_uint_eq(sum, k < 3 ? calls : k == 3 ? 2 * full + 2 : 300);
        ck_assert_uint_eq(test_site(snap, name)->calls, sum);
    }
    ck_assert_uint_eq(probe_snapshot_losses(snap)->stats_dropped, 0);
    probe_snapshot_free(snap);
}
END_TEST

/* A snapshot reads the site's groups before the nodes' counts, so that counts moved
 * meanwhile are never read twice: while a thread records calls whose every one
 * moves (three buckets in turn), no snapshot's histogram holds more calls than the
 * site's count, and once it stops, exactly as many. */
#define MOVER_SNAPSHOTS 1000

#define MOVER_STEP 100 /* calls the recorder makes between two snapshots, at least */

static struct probe__site *mover_site;
static int mover_stop;
static uint64_t mover_calls; /* so far, then all of them (release) */

static void *
mover_main(void *arg)
{
    static const uint64_t ticks[3] = {10, 1000, 100000};
    uint64_t n = 0;

    (void)arg;
    while (!__atomic_load_n(&mover_stop, __ATOMIC_ACQUIRE)) {
        thread_record_ticks(mover_site, ticks[n++ % 3]);
        __atomic_store_n(&mover_calls, n, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&mover_calls, n, __ATOMIC_RELEASE);
    return NULL;
}

/* Wait until the recorder made MOVER_STEP calls more than @since: on a loaded machine
 * it may not have run at all for a while. */
static void
mover_wait(uint64_t since)
{
    while (__atomic_load_n(&mover_calls, __ATOMIC_ACQUIRE) < since + MOVER_STEP)
        sched_yield();
}

/* Site "mover0"'s calls and histogram total in @snap (0, 0 before its first call). */
static void
mover_counts(const probe_snapshot *snap, uint64_t *calls, uint64_t *hist)
{
    uint64_t h[STATS_HIST_BUCKETS];

    *calls = *hist = 0;
    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++)
        if (strcmp(probe_snapshot_site(snap, i)->name, "mover0") == 0 &&
            probe_snapshot_site(snap, i)->calls) {
            hist_of(snap, "mover0", h);
            *calls = probe_snapshot_site(snap, i)->calls;
            for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
                *hist += h[b];
        }
}

START_TEST(histogram_never_read_twice_while_counts_move)
{
    pthread_t th;
    uint64_t calls, hist, grew = 0, last = 0;

    mover_site = make_sites(1, "mover");
    ck_assert_int_eq(pthread_create(&th, NULL, mover_main, NULL), 0);
    for (unsigned i = 0; i < MOVER_SNAPSHOTS; i++) {
        mover_wait(last); /* and it runs on while the snapshot is taken */
        probe_snapshot *snap = test_snap();
        mover_counts(snap, &calls, &hist);
        ck_assert_msg(hist <= calls, "snapshot %u: %llu calls in the histogram, %llu calls",
                      i, (unsigned long long)hist, (unsigned long long)calls);
        grew += calls > last;
        last = calls;
        probe_snapshot_free(snap);
    }
    __atomic_store_n(&mover_stop, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_uint_eq(grew, MOVER_SNAPSHOTS); /* each saw calls the last did not */

    probe_snapshot *snap = test_snap();
    mover_counts(snap, &calls, &hist);
    ck_assert_uint_eq(calls, __atomic_load_n(&mover_calls, __ATOMIC_ACQUIRE));
    ck_assert_uint_eq(hist, calls);
    probe_snapshot_free(snap);
}
END_TEST

/* A signal handler's call of the same site can run between any two instructions of
 * a call's exit, and would move the path's counts (cct_node.hot) if it ran on the
 * same path: every count still lands in its own bucket. The trap flag single-steps the interrupted calls,
 * so the handler runs at every instruction of them. x86-64 only; not under
 * ThreadSanitizer, which defers signals. */
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define TRAP_CALLS 20
#define TRAP_TICKS 3 /* the handler's calls: shorter than any real scope */

static struct probe__site *volatile trap_site;
static volatile sig_atomic_t trap_handled;

static void
trap_handler(int sig)
{
    (void)sig;
    if (!trap_site)
        return;
    thread_record_ticks(trap_site, TRAP_TICKS);
    trap_handled++;
}

/* The trap flag on and off; the stack's red zone is stepped over first. */
#define TRAP_FLAG(op)                                                                    \
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\tpushfq\n\t" op                           \
                     "\n\tpopfq\n\tlea 128(%%rsp), %%rsp" ::: "memory", "cc")

/* @site's histogram in @snap: the count in bucket @b, and the sum. */
static uint64_t
bucket_count(const probe_snapshot *snap, const char *site, unsigned b, uint64_t *sum)
{
    uint64_t h[STATS_HIST_BUCKETS];

    hist_of(snap, site, h);
    *sum = 0;
    for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++)
        *sum += h[i];
    return h[b];
}

START_TEST(histogram_exact_under_a_handler_on_the_same_path)
{
    struct probe__site *sites = make_sites(2, "trapped"); /* 0: scopes; 1: ticks */
    struct sigaction sa = {.sa_handler = trap_handler};
    sig_atomic_t handled[2];

    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGTRAP, &sa, NULL), 0);
    for (unsigned k = 0; k < 2; k++) {
        thread_record_ticks(&sites[k], TRAP_TICKS); /* the paths and groups exist */
        thread_record_ticks(&sites[k], 1000);
    }
    probe_reset();
    for (unsigned k = 0; k < 2; k++) {
        trap_handled = 0;
        for (int i = 0; i < TRAP_CALLS; i++) {
            trap_site = &sites[k];
            TRAP_FLAG("orq $0x100, (%%rsp)");
            if (k == 0)
                probe__scope_exit(probe__scope_enter(&sites[0])); /* the fast paths */
            else
                thread_record_ticks(&sites[1], 1000);
            TRAP_FLAG("andq $~0x100, (%%rsp)");
            trap_site = NULL;
        }
        handled[k] = trap_handled;
        ck_assert_int_gt(handled[k], TRAP_CALLS);
    }
    signal(SIGTRAP, SIG_DFL);

    probe_snapshot *snap = test_snap();
    uint64_t sum;
    ck_assert_uint_eq(bucket_count(snap, "trapped0", TRAP_TICKS, &sum), (uint64_t)handled[0]);
    ck_assert_uint_eq(sum, TRAP_CALLS + (uint64_t)handled[0]);
    ck_assert_uint_eq(test_site(snap, "trapped0")->calls, sum);
    ck_assert_uint_eq(bucket_count(snap, "trapped1", TRAP_TICKS, &sum), (uint64_t)handled[1]);
    ck_assert_uint_eq(bucket_count(snap, "trapped1", stats_hist_bucket(1000), &sum),
                      TRAP_CALLS);
    ck_assert_uint_eq(sum, TRAP_CALLS + (uint64_t)handled[1]);
    ck_assert_uint_eq(probe_snapshot_losses(snap)->unbalanced, 0);
    probe_snapshot_free(snap);
}
END_TEST
#endif

START_TEST(histogram_group_lost_is_reported)
{
    /* Three sites span at most two chunks, so one chunk holds at least two of them:
     * 48 groups or more, more than its 32 inline ones, so a segment is needed. */
    struct probe__site *sites = make_sites(3, "lossy");
    uint64_t calls = 0;

    thread_fail_allocs = 1;
    for (unsigned i = 0; i < 3; i++)
        for (unsigned k = 0; k < STATS_HIST_GROUPS; k++, calls++)
            thread_record_ticks(&sites[i], 1ull << (2 * k)); /* one call per group */
    ck_assert_uint_eq(thread_fail_allocs, 0);
    probe_snapshot *snap = test_snap();
    uint64_t seen = 0;
    for (unsigned i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "lossy%u", i);
        seen += test_site(snap, name)->calls;
    }
    ck_assert_uint_eq(seen, calls); /* the call itself is kept */
    ck_assert_uint_eq(probe_snapshot_losses(snap)->stats_dropped, 1);

    char *json = report_of(snap, "json"), *text = report_of(snap, "text");
    ck_assert_ptr_nonnull(strstr(json, "\"stats_dropped\":1"));
    ck_assert_ptr_nonnull(strstr(text, "warning: 1 calls left out of a histogram"));
    free(json);
    free(text);
    probe_snapshot_free(snap);
}
END_TEST

#define MERGE_THREADS 4
#define MERGE_CALLS 3000

static struct probe__site *merge_site;
static pthread_barrier_t recorded, done;

/* Durations spread over many groups, different on every thread. */
static uint64_t
merge_ticks(unsigned thread, unsigned i)
{
    uint64_t x = (uint64_t)(i * 2654435761u + thread * 97u) % 1000003u;
    return 1 + (x * x * (thread + 1)) % (1ull << (20 + 4 * thread));
}

static void *
merge_main(void *arg)
{
    unsigned k = (unsigned)(uintptr_t)arg;

    for (unsigned i = 0; i < MERGE_CALLS; i++)
        thread_record_ticks(merge_site, merge_ticks(k, i));
    pthread_barrier_wait(&recorded);
    pthread_barrier_wait(&done);
    return NULL;
}

static void
check_merged(const probe_snapshot *snap, const uint64_t *hist, uint64_t min, uint64_t max)
{
    const probe_site_info *si = test_site(snap, "merged0");
    double npt = probe_snapshot_clock(snap)->ns_per_tick;
    uint64_t calls = (uint64_t)MERGE_THREADS * MERGE_CALLS;
    static const double q[3] = {0.50, 0.90, 0.99};
    const uint64_t got[3] = {si->p50_ns, si->p90_ns, si->p99_ns};

    ck_assert_uint_eq(si->calls, calls);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_msg(got[i] == expected_ns(hist, calls, min, max, q[i], npt),
                      "q %.2f: %llu ns, buckets give %llu", q[i],
                      (unsigned long long)got[i],
                      (unsigned long long)expected_ns(hist, calls, min, max, q[i], npt));
}

/* The percentiles of several threads' calls, merged, are those of the union of their
 * buckets: while the threads live (folded from their states) and after they exit
 * (from the retired sums). */
START_TEST(merged_percentiles_exact)
{
    pthread_t th[MERGE_THREADS];
    uint64_t hist[STATS_HIST_BUCKETS] = {0}, min = UINT64_MAX, max = 0;

    merge_site = make_sites(1, "merged");
    for (unsigned k = 0; k < MERGE_THREADS; k++) {
        for (unsigned i = 0; i < MERGE_CALLS; i++) {
            uint64_t t = merge_ticks(k, i);
            hist[stats_hist_bucket(t)]++;
            min = t < min ? t : min;
            max = t > max ? t : max;
        }
    }
    unsigned groups = 0;
    for (unsigned g = 0; g < STATS_HIST_GROUPS; g++) {
        uint64_t n = 0;
        for (unsigned k = 0; k < STATS_HIST_GROUP; k++)
            n += hist[g * STATS_HIST_GROUP + k];
        groups += n != 0;
    }
    ck_assert_uint_ge(groups, 8); /* the case spans many groups */

    pthread_barrier_init(&recorded, NULL, MERGE_THREADS + 1);
    pthread_barrier_init(&done, NULL, MERGE_THREADS + 1);
    for (unsigned k = 0; k < MERGE_THREADS; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, merge_main, (void *)(uintptr_t)k), 0);
    pthread_barrier_wait(&recorded);
    probe_snapshot *snap = test_snap();
    check_merged(snap, hist, min, max);
    probe_snapshot_free(snap);
    pthread_barrier_wait(&done);
    for (unsigned k = 0; k < MERGE_THREADS; k++)
        pthread_join(th[k], NULL);
    snap = test_snap();
    check_merged(snap, hist, min, max);
    probe_snapshot_free(snap);
    pthread_barrier_destroy(&recorded);
    pthread_barrier_destroy(&done);
}
END_TEST

/* ---- memory ----------------------------------------------------------------------- */

static struct probe__site *mem_sites;

/* Every site three times, three durations in one group (512 to 2047 ticks). */
static void *
mem_main(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < NSITES; i++) {
        thread_record_ticks(&mem_sites[i], 600);
        thread_record_ticks(&mem_sites[i], 1000);
        thread_record_ticks(&mem_sites[i], 1900);
    }
    pthread_barrier_wait(&recorded);
    pthread_barrier_wait(&done);
    return NULL;
}

static void
check_memory(unsigned nthreads)
{
    pthread_t th[8];
    size_t before;

    mem_sites = make_sites(NSITES, "mem");
    before = thread_stats_bytes();
    pthread_barrier_init(&recorded, NULL, nthreads + 1);
    pthread_barrier_init(&done, NULL, nthreads + 1);
    for (unsigned k = 0; k < nthreads; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, mem_main, NULL), 0);
    pthread_barrier_wait(&recorded);
    size_t used = thread_stats_bytes() - before;
    double per_site = (double)used / ((double)nthreads * NSITES);
    printf("check_memory: %u thread(s) x %d sites: %zu bytes, %.1f per site\n", nthreads,
           NSITES, used, per_site);
    /* Before compact statistics: 1,656 bytes per site and thread. */
    ck_assert_msg(per_site <= MAX_SITE_BYTES, "%.1f bytes per site", per_site);
    ck_assert_msg(per_site >= sizeof(struct site_stats), "%.1f bytes per site: not counted?",
                  per_site);

    probe_snapshot *snap = test_snap();
    for (unsigned i = 0; i < NSITES; i += 997) {
        char name[32];
        snprintf(name, sizeof(name), "mem%u", i);
        const probe_site_info *si = test_site(snap, name);
        ck_assert_uint_eq(si->calls, 3u * nthreads);
        assert_within_resolution(si->p50_ns, 1000, probe_snapshot_clock(snap)->ns_per_tick,
                                 "p50");
    }
    ck_assert_uint_eq(probe_snapshot_losses(snap)->sites_dropped, 0);
    probe_snapshot_free(snap);
    pthread_barrier_wait(&done);
    for (unsigned k = 0; k < nthreads; k++)
        pthread_join(th[k], NULL);
    /* An exited thread's statistics are freed (folded into the retired sums). */
    ck_assert_uint_eq(thread_stats_bytes(), before);
    pthread_barrier_destroy(&recorded);
    pthread_barrier_destroy(&done);
}

START_TEST(memory_per_site_one_thread)
{
    check_memory(1);
}
END_TEST

START_TEST(memory_per_site_four_threads)
{
    check_memory(4);
}
END_TEST

static Suite *
stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("histogram");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, bucket_resolution);
    tcase_add_test(tc, percentiles_of_known_durations);
    tcase_add_test(tc, merged_percentiles_exact);
    tcase_add_test(tc, histogram_group_lost_is_reported);
    tcase_add_test(tc, percentiles_after_reset);
    tcase_add_test(tc, histogram_exact_when_buckets_change);
    tcase_add_test(tc, histogram_exact_in_the_node_counts);
    tcase_add_test(tc, histogram_never_read_twice_while_counts_move);
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
    tcase_add_test(tc, histogram_exact_under_a_handler_on_the_same_path);
#endif
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, memory_per_site_one_thread);
    tcase_add_test(tc, memory_per_site_four_threads);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(stats_suite());
}
