/* Build test: with -DPROBE_DISABLE, <probe/mem.h>'s macros are nothing and its
 * functions are inline stubs, so a program using them links without libprobe. */
#include <probe/probe.h>

#include <stdlib.h>

static int evaluated;

__attribute__((unused)) static size_t
size_of_doc(void)
{
    evaluated = 1;
    return 200;
}

__attribute__((unused)) static const char *
tag_name(void)
{
    evaluated = 1;
    return "parser";
}

int
main(void)
{
    void *doc = malloc(200);
    probe_mem_snapshot *a, *b, *d;

    PROBE_TRACK_ALLOC("Document", doc, size_of_doc());
    PROBE_TRACK_FREE("Document", doc);
    {
        PROBE_MEM_TAG(tag_name());
        free(malloc(16));
    }
    if (probe_mem_track_alloc("Document", doc, 200) != PROBE_EDISABLED ||
        probe_mem_track_free("Document", doc) != PROBE_EDISABLED)
        return 1;
    a = probe_mem_snapshot_take();
    b = probe_mem_snapshot_take();
    d = probe_mem_snapshot_diff(a, b);
    if (a || b || d || probe_mem_snapshot_tag_count(d) != 0 ||
        probe_mem_snapshot_tag(d, 0) || probe_mem_snapshot_find(d, "Document") ||
        probe_mem_snapshot_info(d) || probe_mem_summary_fd(d, 1) != PROBE_EDISABLED ||
        probe_snapshot_mem(NULL))
        return 1;
    probe_mem_snapshot_free(d);
    free(doc);
    return evaluated; /* the macros evaluate no argument */
}
