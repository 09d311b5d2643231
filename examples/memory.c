/*
 * memory: count your own objects by tag, and see what grew. Copy it, then build it
 * with
 *
 *     cc -O2 memory.c $(pkg-config --cflags --libs probe) -o memory
 *     ./memory              # summaries on stdout, then a text report
 *     ./memory json         # the summaries, then the report as JSON ("memory")
 *
 * Each object is tagged where it is allocated and untagged where it is freed. A
 * snapshot freezes the figures; the difference of two shows what grew in between,
 * like objgraph's show_growth. The tracking costs about as much as a malloc/free
 * pair (docs/memory.md); -DPROBE_DISABLE compiles it out.
 */
#include <probe/probe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct document {
    char title[64];
    struct node *root;
    char body[128];
};

struct node {
    struct node *next;
    int value;
};

static struct document *
document_new(const char *title, int nodes)
{
    struct document *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    PROBE_TRACK_ALLOC("Document", d, sizeof(*d));
    snprintf(d->title, sizeof(d->title), "%s", title);
    for (int i = 0; i < nodes; i++) {
        struct node *n = malloc(sizeof(*n));
        if (!n)
            break;
        PROBE_TRACK_ALLOC("Node", n, sizeof(*n));
        n->value = i;
        n->next = d->root;
        d->root = n;
    }
    return d;
}

static void
document_free(struct document *d)
{
    while (d->root) {
        struct node *n = d->root;
        d->root = n->next;
        PROBE_TRACK_FREE("Node", n);
        free(n);
    }
    PROBE_TRACK_FREE("Document", d);
    free(d);
}

int
main(int argc, char **argv)
{
    const char *format = argc > 1 ? argv[1] : "text";
    struct document *docs[100];
    char title[32];

    /* A baseline: growth in the next snapshot is measured from here. */
    probe_mem_snapshot *before = probe_mem_snapshot_take();

    for (int i = 0; i < 100; i++) {
        snprintf(title, sizeof(title), "doc %d", i);
        docs[i] = document_new(title, 10 + i % 5);
        if (!docs[i])
            return 1;
    }
    probe_mem_snapshot *loaded = probe_mem_snapshot_take();
    printf("After loading 100 documents:\n");
    fflush(stdout);
    probe_mem_summary_fd(loaded, STDOUT_FILENO);

    /* Close half of them, but "forget" to free one node: a leak the diff shows. */
    struct node *leaked = docs[0]->root;
    docs[0]->root = leaked->next;
    for (int i = 0; i < 50; i++)
        document_free(docs[i]);

    probe_mem_snapshot *closed = probe_mem_snapshot_take();
    probe_mem_snapshot *diff = probe_mem_snapshot_diff(loaded, closed);
    printf("\nWhat closing 50 documents changed:\n");
    fflush(stdout);
    probe_mem_summary_fd(diff, STDOUT_FILENO);

    /* The report carries the same figures ("memory" in JSON). */
    printf("\n");
    fflush(stdout);
    int rc = probe_report_fd(STDOUT_FILENO, format);
    if (rc < 0)
        fprintf(stderr, "report: %s\n", probe_strerror(rc));

    for (int i = 50; i < 100; i++)
        document_free(docs[i]);
    PROBE_TRACK_FREE("Node", leaked);
    free(leaked);
    probe_mem_snapshot_free(before);
    probe_mem_snapshot_free(loaded);
    probe_mem_snapshot_free(closed);
    probe_mem_snapshot_free(diff);
    return rc < 0;
}
