/* Tagged tracking (<probe/mem.h>): counts per tag, snapshots and their difference,
 * frees that go wrong, threads, fork, limits, and the reports' memory sections. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "common.h"

#define DOCS 1000
#define DOC_SIZE 200

/* Everything @fn writes to a descriptor, as a NUL-terminated string to free. */
static char *
capture(int (*fn)(const void *arg, int fd), const void *arg)
{
    int fd = memfd_create("mem-test", 0);
    off_t len;
    char *buf;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fn(arg, fd), 0);
    len = lseek(fd, 0, SEEK_END);
    ck_assert_int_ge(len, 0);
    buf = calloc(1, (size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)len, 0), len);
    close(fd);
    return buf;
}

static int
summary_to(const void *snap, int fd)
{
    return probe_mem_summary_fd(snap, fd);
}

static int
report_to(const void *format, int fd)
{
    return probe_report_fd(fd, format);
}

static void **
make_documents(void)
{
    void **docs = calloc(DOCS, sizeof(*docs));

    ck_assert_ptr_nonnull(docs);
    for (int i = 0; i < DOCS; i++) {
        docs[i] = malloc(DOC_SIZE);
        ck_assert_ptr_nonnull(docs[i]);
        PROBE_TRACK_ALLOC("Document", docs[i], DOC_SIZE);
    }
    return docs;
}

static void
free_documents(void **docs)
{
    for (int i = 0; i < DOCS; i++) {
        PROBE_TRACK_FREE("Document", docs[i]);
        free(docs[i]);
    }
    free(docs);
}

START_TEST(documents_live_then_freed_and_diff)
{
    void **docs = make_documents();
    probe_mem_snapshot *a = probe_mem_snapshot_take();
    const probe_mem_tag_info *t = probe_mem_snapshot_find(a, "Document");

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->live_count, DOCS);
    ck_assert_int_eq(t->live_bytes, DOCS * DOC_SIZE);
    ck_assert_uint_eq(t->allocs, DOCS);
    ck_assert_uint_eq(t->frees, 0);
    ck_assert_uint_eq(t->avg_bytes, DOC_SIZE);
    ck_assert_uint_eq(t->peak_bytes, DOCS * DOC_SIZE);
    ck_assert_int_eq(t->growth_count, DOCS); /* the first snapshot: from nothing */
    ck_assert(t->share == 1.0);

    free_documents(docs);
    probe_mem_snapshot *b = probe_mem_snapshot_take();
    t = probe_mem_snapshot_find(b, "Document");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->live_count, 0);
    ck_assert_int_eq(t->live_bytes, 0);
    ck_assert_uint_eq(t->frees, DOCS);
    ck_assert_uint_eq(t->peak_bytes, DOCS * DOC_SIZE);
    ck_assert_int_eq(t->growth_count, -DOCS);
    ck_assert_int_eq(t->growth_bytes, -DOCS * DOC_SIZE);
    ck_assert_uint_eq(t->untracked_frees + t->double_frees, 0);

    probe_mem_snapshot *d = probe_mem_snapshot_diff(a, b);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(probe_mem_snapshot_info(d)->is_diff, 1);
    t = probe_mem_snapshot_find(d, "Document");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->live_count, -DOCS);
    ck_assert_int_eq(t->live_bytes, -DOCS * DOC_SIZE);
    ck_assert_uint_eq(t->allocs, 0);
    ck_assert_uint_eq(t->frees, DOCS);

    /* The summary shows both, and the diff as a change. */
    char *text = capture(summary_to, a);
    ck_assert_msg(strstr(text, "Document") && strstr(text, "195.3 KiB") &&
                      strstr(text, "100.0%") && strstr(text, "+1000"),
                  "summary: %s", text);
    free(text);
    text = capture(summary_to, d);
    ck_assert_msg(strstr(text, "change between two snapshots") && strstr(text, "-1000") &&
                      strstr(text, "-195.3 KiB"),
                  "diff summary: %s", text);
    free(text);
    probe_mem_snapshot_free(a);
    probe_mem_snapshot_free(b);
    probe_mem_snapshot_free(d);
}
END_TEST

START_TEST(diff_lists_tags_of_either_side)
{
    probe_mem_snapshot *a, *b, *d;
    static char x, y;

    PROBE_TRACK_ALLOC("Old", &x, 10);
    a = probe_mem_snapshot_take();
    PROBE_TRACK_ALLOC("New", &y, 30);
    b = probe_mem_snapshot_take();
    d = probe_mem_snapshot_diff(a, b);
    ck_assert_uint_eq(probe_mem_snapshot_tag_count(d), 2);
    /* Largest growth first. */
    ck_assert_str_eq(probe_mem_snapshot_tag(d, 0)->name, "New");
    ck_assert_int_eq(probe_mem_snapshot_tag(d, 0)->live_bytes, 30);
    ck_assert_int_eq(probe_mem_snapshot_find(d, "Old")->live_bytes, 0);
    probe_mem_snapshot_free(d);
    /* Swapped: New went away. */
    d = probe_mem_snapshot_diff(b, a);
    ck_assert_int_eq(probe_mem_snapshot_find(d, "New")->live_count, -1);
    ck_assert_int_eq(probe_mem_snapshot_find(d, "New")->live_bytes, -30);
    probe_mem_snapshot_free(d);
    probe_mem_snapshot_free(a);
    probe_mem_snapshot_free(b);
}
END_TEST

START_TEST(bad_frees_are_counted_with_their_tag)
{
    static char tracked[64], stray[64];

    ck_assert_int_eq(probe_mem_track_alloc("Node", tracked, sizeof(tracked)), 0);
    ck_assert_int_eq(probe_mem_track_free("Node", tracked), 0);
    ck_assert_int_eq(probe_mem_track_free("Node", tracked), PROBE_EALREADY);
    /* Freed under another tag: still this object's double free. */
    ck_assert_int_eq(probe_mem_track_free("Edge", tracked), PROBE_EALREADY);
    ck_assert_int_eq(probe_mem_track_free("Edge", stray), PROBE_ENOENT);
    PROBE_TRACK_FREE("Edge", stray + 1);
    ck_assert_int_eq(probe_mem_track_free("Node", NULL), 0);

    probe_mem_snapshot *s = probe_mem_snapshot_take();
    const probe_mem_tag_info *node = probe_mem_snapshot_find(s, "Node");
    const probe_mem_tag_info *edge = probe_mem_snapshot_find(s, "Edge");
    ck_assert_uint_eq(node->double_frees, 2);
    ck_assert_uint_eq(node->untracked_frees, 0);
    ck_assert_uint_eq(node->frees, 1);
    ck_assert_int_eq(node->live_count, 0);
    ck_assert_int_eq(node->live_bytes, 0);
    ck_assert_uint_eq(edge->untracked_frees, 2);
    ck_assert_uint_eq(edge->double_frees, 0);
    char *text = capture(summary_to, s);
    ck_assert_msg(strstr(text, "2 double frees of tag Node") &&
                      strstr(text, "2 frees of untracked pointers under tag Edge"),
                  "summary: %s", text);
    free(text);
    probe_mem_snapshot_free(s);

    /* Tracked again at the same address (malloc reuses it): live once more. */
    ck_assert_int_eq(probe_mem_track_alloc("Node", tracked, 8), 0);
    ck_assert_int_eq(probe_mem_track_free("Node", tracked), 0);
}
END_TEST

START_TEST(same_pointer_tracked_twice_needs_two_frees)
{
    static char obj[16];

    PROBE_TRACK_ALLOC("Twice", obj, 16);
    PROBE_TRACK_ALLOC("Twice", obj, 16);
    ck_assert_int_eq(probe_mem_track_free("Twice", obj), 0);
    ck_assert_int_eq(probe_mem_track_free("Twice", obj), 0);
    ck_assert_int_eq(probe_mem_track_free("Twice", obj), PROBE_EALREADY);
    probe_mem_snapshot *s = probe_mem_snapshot_take();
    ck_assert_int_eq(probe_mem_snapshot_find(s, "Twice")->live_bytes, 0);
    ck_assert_uint_eq(probe_mem_snapshot_find(s, "Twice")->peak_bytes, 32);
    probe_mem_snapshot_free(s);
}
END_TEST

START_TEST(arguments_are_checked)
{
    static char obj;

    ck_assert_int_eq(probe_mem_track_alloc(NULL, &obj, 1), PROBE_EINVAL);
    ck_assert_int_eq(probe_mem_track_alloc("Arg", &obj, (size_t)1 << 48), PROBE_EINVAL);
    ck_assert_int_eq(probe_mem_track_alloc("Arg", NULL, 1), 0);
    ck_assert_int_eq(probe_mem_track_free(NULL, &obj), PROBE_EINVAL);
    errno = 0;
    ck_assert_ptr_null(probe_mem_snapshot_diff(NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(probe_mem_summary_fd(NULL, 1), PROBE_EINVAL);
    probe_mem_snapshot *s = probe_mem_snapshot_take();
    ck_assert_int_eq(probe_mem_summary_fd(s, -1), PROBE_EBADF);
    ck_assert_ptr_null(probe_mem_snapshot_tag(s, 99));
    ck_assert_ptr_null(probe_mem_snapshot_find(s, NULL));
    ck_assert_ptr_null(probe_mem_snapshot_info(NULL));
    ck_assert_uint_eq(probe_mem_snapshot_tag_count(NULL), 0);
    /* Neither a refused call nor a NULL pointer registered the tag. */
    ck_assert_ptr_null(probe_mem_snapshot_find(s, "Arg"));
    probe_mem_snapshot_free(s);
    probe_mem_snapshot_free(NULL);
}
END_TEST

/* ---- threads ------------------------------------------------------------------ */

#define THREADS 8
#define PER_THREAD 20000

static void *objs[THREADS][PER_THREAD];
static pthread_barrier_t barrier;

static size_t
obj_size(int t, int i)
{
    return (size_t)(8 * (1 + (t + i) % 7));
}

static void *
tracker(void *arg)
{
    int t = (int)(intptr_t)arg;
    int victim = (t + 1) % THREADS;

    for (int i = 0; i < PER_THREAD; i++) {
        objs[t][i] = malloc(obj_size(t, i));
        PROBE_TRACK_ALLOC("Shared", objs[t][i], obj_size(t, i));
    }
    pthread_barrier_wait(&barrier);
    /* Free three quarters of the next thread's objects: frees cross threads while
     * others still allocate and free. */
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 4 == 3)
            continue;
        PROBE_TRACK_FREE("Shared", objs[victim][i]);
    }
    return NULL;
}

START_TEST(eight_threads_give_exact_totals)
{
    pthread_t th[THREADS];
    int64_t live_bytes = 0, live = 0;
    uint64_t bytes = 0;

    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, tracker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            bytes += obj_size(t, i);
            if (i % 4 == 3) {
                live++;
                live_bytes += (int64_t)obj_size(t, i);
            }
        }
    }
    probe_mem_snapshot *s = probe_mem_snapshot_take();
    const probe_mem_tag_info *tag = probe_mem_snapshot_find(s, "Shared");
    ck_assert_uint_eq(tag->allocs, THREADS * PER_THREAD);
    ck_assert_uint_eq(tag->alloc_bytes, bytes);
    ck_assert_uint_eq(tag->frees, THREADS * PER_THREAD - live);
    ck_assert_int_eq(tag->live_count, live);
    ck_assert_int_eq(tag->live_bytes, live_bytes);
    ck_assert_uint_eq(tag->untracked_frees + tag->double_frees, 0);
    ck_assert_uint_eq(probe_mem_snapshot_info(s)->table_full, 0);
    ck_assert_uint_ge(tag->peak_bytes, (uint64_t)live_bytes);
    ck_assert_uint_le(tag->peak_bytes, bytes);
    probe_mem_snapshot_free(s);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            free(objs[t][i]);
    pthread_barrier_destroy(&barrier);
}
END_TEST

/* ---- fork ----------------------------------------------------------------------- */

START_TEST(forked_child_keeps_the_live_table)
{
    void **docs = make_documents();
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child holds copies of the parent's objects: they are live here too,
         * and freeing them is no untracked free. */
        probe_mem_snapshot *s = probe_mem_snapshot_take();
        const probe_mem_tag_info *t = probe_mem_snapshot_find(s, "Document");
        int ok = t && t->live_count == DOCS && t->live_bytes == DOCS * DOC_SIZE;
        probe_mem_snapshot_free(s);
        free_documents(docs);
        s = probe_mem_snapshot_take();
        t = probe_mem_snapshot_find(s, "Document");
        ok = ok && t->live_count == 0 && t->untracked_frees == 0 && t->double_frees == 0;
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    /* The parent's figures are its own. */
    probe_mem_snapshot *s = probe_mem_snapshot_take();
    ck_assert_int_eq(probe_mem_snapshot_find(s, "Document")->live_count, DOCS);
    probe_mem_snapshot_free(s);
    free_documents(docs);
}
END_TEST

/* ---- limits ------------------------------------------------------------------- */

START_TEST(full_pointer_table_is_counted)
{
    enum { N = 5000 };
    char *block = malloc(N);
    int refused = 0;

    ck_assert_ptr_nonnull(block);
    setenv("PROBE_MEM_TABLE", "1000", 1); /* rounded up to 1024 slots */
    for (int i = 0; i < N; i++) {
        int rc = probe_mem_track_alloc("Small", block + i, 1);
        ck_assert(rc == 0 || rc == PROBE_ENOSPC);
        refused += rc == PROBE_ENOSPC;
    }
    probe_mem_snapshot *s = probe_mem_snapshot_take();
    const probe_mem_info *info = probe_mem_snapshot_info(s);
    const probe_mem_tag_info *t = probe_mem_snapshot_find(s, "Small");
    ck_assert_uint_eq(info->table_slots, 1024);
    ck_assert_uint_le(t->allocs, 1024);
    ck_assert_int_gt(refused, N - 1024 - 1);
    ck_assert_uint_eq(info->table_full, (uint64_t)refused);
    ck_assert_uint_eq(t->allocs + info->table_full, N);
    char *text = capture(summary_to, s);
    ck_assert_msg(strstr(text, "allocations not tracked"), "summary: %s", text);
    free(text);
    probe_mem_snapshot_free(s);
    free(block);
}
END_TEST

START_TEST(tags_beyond_the_limit_are_counted)
{
    char name[32];
    static char obj[PROBE_MEM_MAX_TAGS + 10];

    for (int i = 0; i < PROBE_MEM_MAX_TAGS + 10; i++) {
        snprintf(name, sizeof(name), "tag%d", i);
        int rc = probe_mem_track_alloc(name, &obj[i], 1);
        ck_assert_int_eq(rc, i < PROBE_MEM_MAX_TAGS ? 0 : PROBE_ENOSPC);
    }
    probe_mem_snapshot *s = probe_mem_snapshot_take();
    ck_assert_uint_eq(probe_mem_snapshot_tag_count(s), PROBE_MEM_MAX_TAGS);
    ck_assert_uint_eq(probe_mem_snapshot_info(s)->tags_dropped, 10);
    ck_assert_int_eq(probe_mem_snapshot_info(s)->live_count, PROBE_MEM_MAX_TAGS);
    probe_mem_snapshot_free(s);
}
END_TEST

/* ---- reports ------------------------------------------------------------------ */

START_TEST(reports_have_no_memory_section_before_any_tag)
{
    {
        PROBE_SCOPE("mem_test_scope"); /* something else to report */
    }
    probe_snapshot *snap = probe_snapshot_take();

    ck_assert_ptr_null(probe_snapshot_mem(snap));
    probe_snapshot_free(snap);
    char *json = capture(report_to, "json");
    ck_assert_msg(strstr(json, "\"memory\":null"), "json: %s", json);
    free(json);
}
END_TEST

START_TEST(reports_carry_the_memory_summary)
{
    void **docs = make_documents();
    probe_mem_snapshot *base = probe_mem_snapshot_take();

    PROBE_TRACK_ALLOC("Node", docs, 48);
    probe_snapshot *snap = probe_snapshot_take();
    const probe_mem_snapshot *m = probe_snapshot_mem(snap);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(probe_mem_snapshot_find(m, "Document")->live_bytes, DOCS * DOC_SIZE);
    ck_assert_int_eq(probe_mem_snapshot_find(m, "Document")->growth_count, 0);
    ck_assert_int_eq(probe_mem_snapshot_find(m, "Node")->growth_bytes, 48);
    probe_snapshot_free(snap);

    char *text = capture(report_to, "text");
    ck_assert_msg(strstr(text, "Memory (tagged objects):") && strstr(text, "Document") &&
                      strstr(text, "Node"),
                  "text: %s", text);
    free(text);
    char *json = capture(report_to, "json");
    ck_assert_msg(strstr(json, "\"memory\":{") &&
                      strstr(json, "{\"tag\":\"Document\",\"live_count\":1000,"
                                   "\"live_bytes\":200000,\"peak_bytes\":200000"),
                  "json: %s", json);
    free(json);

    /* A report leaves the growth baseline where the last take put it. */
    probe_mem_snapshot *again = probe_mem_snapshot_take();
    ck_assert_int_eq(probe_mem_snapshot_find(again, "Node")->growth_count, 1);
    probe_mem_snapshot_free(again);
    probe_mem_snapshot_free(base);
    PROBE_TRACK_FREE("Node", docs);
    free_documents(docs);
}
END_TEST

static Suite *
mem_suite(void)
{
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("tags");

    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, documents_live_then_freed_and_diff);
    tcase_add_test(tc, diff_lists_tags_of_either_side);
    tcase_add_test(tc, bad_frees_are_counted_with_their_tag);
    tcase_add_test(tc, same_pointer_tracked_twice_needs_two_frees);
    tcase_add_test(tc, arguments_are_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, eight_threads_give_exact_totals);
    tcase_add_test(tc, forked_child_keeps_the_live_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, full_pointer_table_is_counted);
    tcase_add_test(tc, tags_beyond_the_limit_are_counted);
    suite_add_tcase(s, tc);

    tc = tcase_create("reports");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, reports_have_no_memory_section_before_any_tag);
    tcase_add_test(tc, reports_carry_the_memory_summary);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(mem_suite());
}
