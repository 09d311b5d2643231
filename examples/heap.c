/* The heap profiler from inside a program: run it as
 *
 *     PROBE_MEM=1 ./heap              (or: probe run --mem ./heap)
 *
 * It builds a cache that it keeps (a "leak" at exit), parses lines into temporary
 * buffers, and then writes its own heap report with probe_mem_heap_fd() while the
 * cache is still live. Build: cc heap.c $(pkg-config --cflags --libs probe) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/probe.h>

struct entry {
    struct entry *next;
    char key[56];
};

static struct entry *cache;

/* 8 MiB of entries, kept until exit. */
__attribute__((noipa)) static void
load_cache(void)
{
    for (int i = 0; i < 8 * 1024 * 1024 / (int)sizeof(struct entry); i++) {
        struct entry *e = malloc(sizeof(*e));
        if (!e)
            exit(1);
        snprintf(e->key, sizeof(e->key), "key-%d", i);
        e->next = cache;
        cache = e;
    }
}

/* A buffer per line, freed at once: a temporary allocation. */
__attribute__((noipa)) static size_t
parse_lines(int n)
{
    size_t total = 0;

    for (int i = 0; i < n; i++) {
        char *line = malloc(4096);
        if (!line)
            exit(1);
        total += (size_t)snprintf(line, 4096, "line %d of %d", i, n);
        free(line);
    }
    return total;
}

int
main(int argc, char **argv)
{
    const char *format = argc > 1 ? argv[1] : "text";

    if (!probe_mem_heap_enabled()) {
        fprintf(stderr, "run me with PROBE_MEM=1 (or under probe run --mem)\n");
        return 2;
    }
    load_cache();
    printf("parsed %zu bytes\n", parse_lines(200000));
    fflush(stdout);
    /* The report now, with the cache live; a leak report comes at exit too. */
    int rc = probe_mem_heap_fd(STDOUT_FILENO, format);
    if (rc < 0) {
        fprintf(stderr, "heap report: %s\n", probe_strerror(rc));
        return 1;
    }
    return 0;
}
