/*
 * The "html" formatter's bound: a report with 10,000 scope sites (10,000 call-tree
 * paths) and 65,536 sampled stacks, 24 frames deep over 10,000 function names, must
 * give a page under 20 MB. The stacks come from a stand-in for the sampler's collect
 * hook (core/samples.h), so this is linked with libprobe.a. The page is kept as
 * format-html-bound.html in $PROBE_TEST_OUTDIR for bench/html_paint.py, which times
 * its first paint in headless Chromium (timing is not asserted here).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/probe.h>
#include <probe/report.h>

#include "core/samples.h"

#define BOUND_SITES 10000
#define BOUND_TOP 100                /* top-level scopes; the rest nest under them */
#define BOUND_STACKS 65536
#define BOUND_DEPTH 24
#define BOUND_NAMES 10000
#define BOUND_FRAMES 20000           /* addresses: two per name */
#define BOUND_THREADS 4
#define BOUND_PAGE_MAX (20u << 20)

static struct probe__site sites[BOUND_SITES];
static char site_names[BOUND_SITES][32];
static char frame_names[BOUND_NAMES][48];

struct bound_set {
    struct sample_set set;
    const char *names[BOUND_STACKS][BOUND_DEPTH];
    size_t ids[BOUND_STACKS][BOUND_DEPTH];
};

static void
bound_free(struct sample_set *s)
{
    free(s->v);
    free(s->frames);
    free(s);
}

/* 65,536 distinct stacks, spread over four threads, from a fixed pseudo-random walk. */
static struct sample_set *
bound_collect(void)
{
    struct bound_set *b = calloc(1, sizeof(*b));
    uint64_t rnd = 88172645463325252u;

    ck_assert_ptr_nonnull(b);
    b->set.v = calloc(BOUND_STACKS, sizeof(*b->set.v));
    b->set.frames = calloc(BOUND_FRAMES, sizeof(*b->set.frames));
    ck_assert(b->set.v && b->set.frames);
    b->set.n = BOUND_STACKS;
    b->set.nframes = BOUND_FRAMES;
    b->set.free = bound_free;
    b->set.info.interval_ns = 1000000;
    b->set.info.signals = b->set.info.expirations = BOUND_STACKS;
    for (size_t i = 0; i < BOUND_FRAMES; i++) {
        b->set.frames[i].address = 0x400000 + 16 * i;
        b->set.frames[i].function = frame_names[i % BOUND_NAMES];
        b->set.frames[i].mapping = PROBE_NO_MAPPING;
    }
    for (size_t i = 0; i < BOUND_STACKS; i++) {
        probe_sample_info *x = &b->set.v[i];

        for (unsigned d = 0; d < BOUND_DEPTH; d++) {
            /* Shared roots, diverging below: as real programs' stacks. */
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            size_t f = d < 4 ? d : d == BOUND_DEPTH - 1 ? i % BOUND_FRAMES : rnd % BOUND_FRAMES;
            b->ids[i][d] = f;
            b->names[i][d] = b->set.frames[f].function;
        }
        x->tid = 1000 + i % BOUND_THREADS;
        x->weight = 1 + i % 7;
        x->cpu_ns = x->weight * 1000000;
        x->signals = 1;
        x->depth = BOUND_DEPTH;
        x->frames = b->names[i];
        x->frame_ids = b->ids[i];
    }
    return &b->set;
}

/* By hand: ASan's strstr() measures the whole rest of the page at every call. */
static size_t
count(const char *from, const char *to, const char *needle)
{
    size_t n = 0, len = strlen(needle);

    for (const char *p = from; p + len <= to; p++)
        if (*p == *needle && memcmp(p, needle, len) == 0)
            n++, p += len - 1;
    return n;
}

START_TEST(html_page_stays_under_20_mb)
{
    for (size_t i = 0; i < BOUND_NAMES; i++)
        snprintf(frame_names[i], sizeof(frame_names[i]), "module_%02zu::function_%05zu",
                 i % 37, i);
    for (size_t i = 0; i < BOUND_SITES; i++) {
        snprintf(site_names[i], sizeof(site_names[i]), "scope_%05zu", i);
        sites[i] = (struct probe__site){PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, (uint32_t)i + 1,
                                        0, site_names[i], "bound", "bound.c"};
    }
    probe_reset();
    for (size_t i = BOUND_TOP; i < BOUND_SITES; i++) { /* each under one top scope */
        probe__token outer = probe__scope_enter(&sites[i % BOUND_TOP]);
        probe__scope_exit(probe__scope_enter(&sites[i]));
        probe__scope_exit(outer);
    }
    sampler_collect_hook = bound_collect;

    probe_snapshot *snap = probe_snapshot_take();
    ck_assert_ptr_nonnull(snap);
    ck_assert_uint_eq(probe_snapshot_sample_count(snap), BOUND_STACKS);
    ck_assert_uint_ge(probe_snapshot_site_count(snap), BOUND_SITES);
    ck_assert_uint_ge(probe_snapshot_node_count(snap), BOUND_SITES);

    char *page = NULL;
    size_t len = 0;
    int r = probe_snapshot_format(snap, "html", &page, &len);
    ck_assert_msg(r == 0, "format: %s", probe_strerror(r));
    probe_snapshot_free(snap);
    fprintf(stderr, "page: %zu bytes (%.1f MB) for %d sites, %d stacks\n", len,
            len / 1048576.0, BOUND_SITES, BOUND_STACKS);
    ck_assert_uint_lt(len, BOUND_PAGE_MAX);

    /* Everything is in it: one row per site and per stack, every name once. */
    const char *sites_at = strstr(page, "\"sites\":["), *nodes_at = strstr(page, "\"nodes\":[");
    const char *frames_at = strstr(page, "\"frames\":["), *stacks_at = strstr(page, "\"stacks\":[");
    ck_assert(sites_at && nodes_at && frames_at && stacks_at);
    ck_assert_uint_ge(count(sites_at, nodes_at, "\"scope_"), BOUND_SITES);
    ck_assert_uint_eq(count(frames_at, stacks_at, "\"module_"), BOUND_NAMES);
    ck_assert_uint_eq(count(stacks_at, page + len, "\n["), BOUND_STACKS);

    const char *dir = getenv("PROBE_TEST_OUTDIR");
    if (dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/format-html-bound.html", dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(page, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
    }
    free(page);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("format-html-bound");
    TCase *tc = tcase_create("bound");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, html_page_stays_under_20_mb);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
