/* A program with PROBE_SCOPEs for the per-scope heap test (test_mem.py "scopes"):
 * "blocks" allocates 100 blocks of 4 KiB and frees them; "outer" holds "blocks" and
 * allocates 10 bytes of its own; "recurse" allocates 1 KiB at each of 5 levels.
 * For the tag scope test ("mem_tag"): parse() allocates 100 blocks of 1 KiB with
 * plain malloc under PROBE_MEM_TAG("parser"), frees half of them there and half
 * after the scope closed, on another thread; nothing else is tagged. */
#include <pthread.h>
#include <stdlib.h>

#include <probe/mem.h>
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

/* Code that knows nothing of libprobe. */
__attribute__((noipa)) static void *
make_block(size_t n)
{
    return malloc(n);
}

static void *
free_rest(void *arg)
{
    void **v = arg;

    for (int i = 50; i < 100; i++)
        free(v[i]);
    return NULL;
}

__attribute__((noipa)) static void
parse(void)
{
    static void *v[100];
    pthread_t t;

    {
        PROBE_MEM_TAG("parser");
        for (int i = 0; i < 100; i++)
            v[i] = make_block(1024);
        for (int i = 0; i < 50; i++)
            free(v[i]);
    }
    sink = malloc(77); /* after the scope: untagged */
    free(sink);
    if (pthread_create(&t, NULL, free_rest, v) == 0)
        pthread_join(t, NULL);
    else
        free_rest(v);
}

int
main(void)
{
    outer();
    recurse(5);
    parse();
    return 0;
}
