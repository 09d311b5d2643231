/* A program with PROBE_SCOPEs for the per-scope heap test (test_mem.py "scopes"):
 * "blocks" allocates 100 blocks of 4 KiB and frees them; "outer" holds "blocks" and
 * allocates 10 bytes of its own; "recurse" allocates 1 KiB at each of 5 levels. */
#include <stdlib.h>

#include <probe/probe.h>

static void *volatile sink;

__attribute__((noipa)) static void
blocks(void)
{
    PROBE_SCOPE("blocks");
    void *v[100];

    for (int i = 0; i < 100; i++) {
        v[i] = malloc(4096);
        sink = v[i];
    }
    for (int i = 0; i < 100; i++)
        free(v[i]);
}

__attribute__((noipa)) static void
outer(void)
{
    PROBE_SCOPE("outer");
    char *p = malloc(10);

    sink = p;
    blocks();
    free(p);
}

__attribute__((noipa)) static void
recurse(int n)
{
    PROBE_SCOPE("recurse");
    char *p = malloc(1024);

    sink = p;
    if (n > 1)
        recurse(n - 1);
    free(p);
}

int
main(void)
{
    outer();
    recurse(5);
    return 0;
}
