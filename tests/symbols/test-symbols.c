/* Symbolization of sampled frames beyond dladdr(3): this program is linked without
 * -rdynamic (as users build theirs), so dladdr() names none of its functions; the
 * sampler must find them, static or not, in the ELF .symtab (libprobe/sampler/
 * elfsym.c). Built at -O2 with frame pointers; the burners are noinline. */
#include <dlfcn.h>
#include <pthread.h>

#include "../common.h"

#include <probe/sampler.h>

#if defined(__clang__)
#define SYMBOLS_NOINLINE __attribute__((noinline))
#else
#define SYMBOLS_NOINLINE __attribute__((noinline, noclone))
#endif

#define BURN_NS 200000000u

static volatile uint64_t symbols_sink;

/* Not static, but not exported either (no -rdynamic): only .symtab names it. */
uint64_t symbols_global_burn(uint64_t ns);

static SYMBOLS_NOINLINE uint64_t
symbols_static_burn(uint64_t ns)
{
    uint64_t start = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t x = symbols_sink;

    while (test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - start < ns) {
        for (uint64_t i = 0; i < 200000; i++)
            x = x * 6364136223846793005u + i;
        symbols_sink = x;
    }
    return x;
}

SYMBOLS_NOINLINE uint64_t
symbols_global_burn(uint64_t ns)
{
    uint64_t start = test_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t x = symbols_sink;

    while (test_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - start < ns) {
        for (uint64_t i = 0; i < 200000; i++)
            x = x * 2862933555777941757u + i;
        symbols_sink = x;
    }
    return x;
}

/* The weight of the samples whose leaf frame is @name, and (if @ret_addr) the
 * address of one such leaf. */
static uint64_t
leaf_weight(const probe_snapshot *snap, const char *name, uint64_t *ret_addr)
{
    uint64_t w = 0;

    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        if (s->depth == 0 || strcmp(s->frames[s->depth - 1], name) != 0)
            continue;
        w += s->weight;
        if (ret_addr)
            *ret_addr = s->addresses[s->depth - 1];
    }
    return w;
}

/* Whether some sample has a frame named @name anywhere in its stack. */
static int
has_frame(const probe_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        for (unsigned k = 0; k < s->depth; k++)
            if (strcmp(s->frames[k], name) == 0)
                return 1;
    }
    return 0;
}

static void
dump_frames(const probe_snapshot *snap)
{
    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        fprintf(stderr, "%llu:", (unsigned long long)s->weight);
        for (unsigned k = 0; k < s->depth; k++)
            fprintf(stderr, " %s", s->frames[k]);
        fputc('\n', stderr);
    }
}

static probe_snapshot *
sample_burners(void)
{
    ck_assert_int_eq(probe_sampler_start(NULL), 0);
    symbols_global_burn(BURN_NS);
    symbols_static_burn(BURN_NS);
    ck_assert_int_eq(probe_sampler_stop(), 0);
    return test_snap();
}

START_TEST(symbols_names_static_and_global)
{
    probe_snapshot *snap = sample_burners();
    uint64_t static_addr = 0, global_addr = 0;
    uint64_t ws = leaf_weight(snap, "symbols_static_burn", &static_addr);
    uint64_t wg = leaf_weight(snap, "symbols_global_burn", &global_addr);

    if (!ws || !wg || getenv("SYMBOLS_DEBUG"))
        dump_frames(snap);
    /* ~200 samples each at 1 ms: nearly all of them in the loops, by name. */
    ck_assert_msg(ws >= 20, "symbols_static_burn is the leaf of %llu samples",
                  (unsigned long long)ws);
    ck_assert_msg(wg >= 20, "symbols_global_burn is the leaf of %llu samples",
                  (unsigned long long)wg);
    /* dladdr() alone cannot name them: the premise of this test. */
    Dl_info info;
    ck_assert_int_ne(dladdr((void *)(uintptr_t)static_addr, &info), 0);
    ck_assert_ptr_null(info.dli_sname);
    /* The frames' addresses are the sampled PCs, inside the functions named. */
    ck_assert_uint_ge(static_addr, (uintptr_t)&symbols_static_burn);
    ck_assert_uint_lt(static_addr, (uintptr_t)&symbols_static_burn + 4096);
    ck_assert_uint_ge(global_addr, (uintptr_t)&symbols_global_burn);
    ck_assert_uint_lt(global_addr, (uintptr_t)&symbols_global_burn + 4096);
    /* Their caller is named too, though it has no exported symbol either. */
    ck_assert(has_frame(snap, "symbols_names_static_and_global_fn") ||
              has_frame(snap, "sample_burners"));
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(symbols_names_static_in_module)
{
    const char *path = getenv("PROBE_SYMMOD");

    ck_assert_msg(path != NULL, "PROBE_SYMMOD is not set");

    void *mod = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(mod != NULL, "dlopen: %s", dlerror());

    uint64_t (*run)(uint64_t) = (uint64_t (*)(uint64_t))(uintptr_t)dlsym(mod, "symmod_run");
    ck_assert(run != NULL);
    ck_assert_int_eq(probe_sampler_start(NULL), 0);
    run(BURN_NS);
    ck_assert_int_eq(probe_sampler_stop(), 0);

    probe_snapshot *snap = test_snap();
    uint64_t w = leaf_weight(snap, "symmod_static_burn", NULL);

    if (!w || getenv("SYMBOLS_DEBUG"))
        dump_frames(snap);
    ck_assert_msg(w >= 20, "symmod_static_burn is the leaf of %llu samples",
                  (unsigned long long)w);
    ck_assert(has_frame(snap, "symmod_run"));
    probe_snapshot_free(snap);
    dlclose(mod);
}
END_TEST

/* Copy @from to @to (a module file), 0 on success. */
static int
copy_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    size_t n;
    int ok = in && out;

    while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* A module whose file is replaced on disk after it was loaded (a package upgrade)
 * must not be named from the new file: its frames keep their own names or become
 * "module+0xoffset", never the replacement's symbols. */
START_TEST(symbols_replaced_file_gives_no_wrong_names)
{
    const char *path = getenv("PROBE_SYMMOD");
    char copy[] = "/tmp/probe-symmod-XXXXXX";
    int fd = mkstemp(copy);

    ck_assert_msg(path != NULL, "PROBE_SYMMOD is not set");
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(copy_file(path, copy), 0);
    void *mod = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(mod != NULL, "dlopen: %s", dlerror());
    uint64_t (*run)(uint64_t) = (uint64_t (*)(uint64_t))(uintptr_t)dlsym(mod, "symmod_run");
    ck_assert(run != NULL);
    ck_assert_int_eq(probe_sampler_start(NULL), 0);
    run(BURN_NS / 2);
    ck_assert_int_eq(probe_sampler_stop(), 0);
    /* The upgrade: another ELF file, with symbols of its own, under the same name. */
    char replacement[] = "/tmp/probe-symmod-XXXXXX";
    ck_assert_int_ge(fd = mkstemp(replacement), 0);
    close(fd);
    const char *decoy = getenv("PROBE_SYMDECOY");
    ck_assert_msg(decoy != NULL, "PROBE_SYMDECOY is not set");
    ck_assert_int_eq(copy_file(decoy, replacement), 0);
    ck_assert_int_eq(rename(replacement, copy), 0);

    probe_snapshot *snap = test_snap();
    const char *base = strrchr(copy, '/') + 1;
    uint64_t in_module = 0;
    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *x = probe_snapshot_sample(snap, i);
        Dl_info info;
        if (x->depth == 0 || !dladdr((void *)(uintptr_t)x->addresses[x->depth - 1], &info) ||
            !info.dli_fname || strcmp(info.dli_fname, copy) != 0)
            continue;
        const char *leaf = x->frames[x->depth - 1];
        if (getenv("SYMBOLS_DEBUG"))
            fprintf(stderr, "replaced module leaf: %s (%llu)\n", leaf,
                    (unsigned long long)x->weight);
        in_module += x->weight;
        ck_assert_msg(strcmp(leaf, "symmod_static_burn") == 0 ||
                          (strncmp(leaf, base, strlen(base)) == 0 && strstr(leaf, "+0x")),
                      "a frame of the replaced module is named %s", leaf);
    }
    probe_snapshot_free(snap);
    dlclose(mod);
    unlink(copy);
    ck_assert_msg(in_module >= 10, "%llu samples in the module",
                  (unsigned long long)in_module);
}
END_TEST

/* Every frame is a name or "module+0xoffset": never empty, "??" or a bare address. */
START_TEST(symbols_unnamed_frames_keep_module)
{
    probe_snapshot *snap = sample_burners();

    ck_assert_uint_gt(probe_snapshot_sample_count(snap), 0);
    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        for (unsigned k = 0; k < s->depth; k++) {
            const char *f = s->frames[k];
            const char *plus = strstr(f, "+0x");

            ck_assert_msg(f[0] != '\0', "an empty frame name");
            ck_assert_msg(strcmp(f, "??") != 0 && strncmp(f, "0x", 2) != 0,
                          "frame \"%s\"", f);
            if (plus) {
                ck_assert_msg(plus > f, "frame \"%s\" has no module", f);
                ck_assert_msg(strspn(plus + 3, "0123456789abcdef") == strlen(plus + 3),
                              "frame \"%s\"", f);
            }
        }
    }
    probe_snapshot_free(snap);
}
END_TEST

static void *
snapshot_thread(void *arg)
{
    int *ok = arg;

    *ok = 1;
    for (int i = 0; i < 8; i++) {
        probe_snapshot *snap = probe_snapshot_take();

        if (!snap || !leaf_weight(snap, "symbols_static_burn", NULL) ||
            !leaf_weight(snap, "symbols_global_burn", NULL))
            *ok = 0;
        probe_snapshot_free(snap);
    }
    return NULL;
}

/* Snapshots taken from several threads at once share the symbol cache. */
START_TEST(symbols_concurrent_snapshots)
{
    pthread_t th[4];
    int ok[4];

    probe_snapshot_free(sample_burners());
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, snapshot_thread, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(ok[i], "thread %d's snapshots miss a name", i);
    }
}
END_TEST

static Suite *
symbols_suite(void)
{
    Suite *s = suite_create("symbols");
    TCase *tc = tcase_create("symtab");

    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, symbols_names_static_and_global);
    tcase_add_test(tc, symbols_names_static_in_module);
    tcase_add_test(tc, symbols_unnamed_frames_keep_module);
    tcase_add_test(tc, symbols_concurrent_snapshots);
    tcase_add_test(tc, symbols_replaced_file_gives_no_wrong_names);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(symbols_suite());
}
