/* A program with no libprobe code for the `probe run --mem` tests (test_mem.py). Its
 * first argument picks what it allocates; each pattern lives in a function of its
 * own (noipa) so that the heap report can name it. Prints with write(2), so that
 * stdio's buffer is not an allocation of its own. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB 1024u
#define MiB (1024u * 1024u)

static void *volatile sink;

/* 10 MiB in 1 KiB blocks, never freed. */
__attribute__((noipa)) static void
leak_blocks(void)
{
    for (unsigned i = 0; i < 10 * KiB; i++) {
        char *p = malloc(KiB);
        p[0] = (char)i;
        sink = p;
    }
}

/* Allocates and frees the same amount: nothing is left. */
__attribute__((noipa)) static void
balanced(void)
{
    void **v = malloc(10 * KiB * sizeof(*v));

    for (unsigned i = 0; i < 10 * KiB; i++)
        v[i] = malloc(KiB);
    for (unsigned i = 0; i < 10 * KiB; i++)
        free(v[i]);
    free(v);
}

/* A 50 MiB peak in 64 KiB blocks, freed before it returns. */
__attribute__((noipa)) static void
peak_builder(void)
{
    unsigned n = 50 * MiB / (64 * KiB);
    void **v = calloc(n, sizeof(*v));

    for (unsigned i = 0; i < n; i++) {
        v[i] = malloc(64 * KiB);
        memset(v[i], 1, 64 * KiB);
    }
    for (unsigned i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Small and steady after the peak: 2 MiB live for a while. */
__attribute__((noipa)) static void
steady_after(void)
{
    void *v[32];

    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 32; i++)
            v[i] = malloc(64 * KiB);
        for (int i = 0; i < 32; i++)
            free(v[i]);
    }
}

/* 1 KiB allocated and freed a million times. */
__attribute__((noipa)) static void
churn(void)
{
    for (unsigned i = 0; i < 1000000; i++) {
        char *p = malloc(KiB);
        p[0] = (char)i;
        sink = p;
        free(p);
    }
}

/* realloc and posix_memalign, heavily, with a checksum of what they hold and how
 * they fail: the output must not change under the profiler. */
__attribute__((noipa)) static void
realloc_align(void)
{
    uint64_t sum = 0;
    char line[256];

    for (unsigned round = 0; round < 2000; round++) {
        char *p = NULL;
        size_t n = 0;
        for (unsigned k = 1; k <= 64; k++) {
            size_t m = (size_t)k * 97 + round % 13;
            char *q = realloc(p, m);
            if (!q)
                abort();
            for (size_t i = n; i < m; i++)
                q[i] = (char)(i * 31 + k);
            p = q;
            n = m;
        }
        for (size_t i = 0; i < n; i++)
            sum = sum * 1099511628211ull + (unsigned char)p[i];
        p = realloc(p, 0); /* frees p; glibc returns NULL */
        sum += p == NULL;
        free(p);
        void *a = NULL;
        size_t align = (size_t)16 << (round % 9);
        if (posix_memalign(&a, align, 100 + round) != 0)
            abort();
        sum += ((uintptr_t)a % align) == 0;
        memset(a, (int)round, 100 + round);
        sum += ((unsigned char *)a)[99];
        free(a);
        void *r = reallocarray(NULL, 16, 64);
        sum += r != NULL;
        free(r);
    }
    volatile size_t big = SIZE_MAX / 2; /* volatile: no warning for what must fail */
    errno = 0;
    void *huge = malloc(big);
    int e = errno;
    void *ov = reallocarray(NULL, big, 4);
    int e2 = errno;
    int bad = posix_memalign(&(void *){NULL}, 3, 16);
    int n = snprintf(line, sizeof(line),
                     "sum %llu huge %s errno %s overflow %s errno %s badalign %d\n",
                     (unsigned long long)sum, huge ? "ok" : "null",
                     e == ENOMEM ? "ENOMEM" : "other", ov ? "ok" : "null",
                     e2 == ENOMEM ? "ENOMEM" : "other", bad);
    if (write(STDOUT_FILENO, line, (size_t)n) < 0)
        abort();
}

static void *
thread_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        free(malloc((size_t)(i % 500) + 1));
    return NULL;
}

/* Many short threads that allocate. */
__attribute__((noipa)) static void
threads(void)
{
    for (int round = 0; round < 25; round++) {
        pthread_t t[40];
        for (int i = 0; i < 40; i++)
            if (pthread_create(&t[i], NULL, thread_main, NULL) != 0)
                abort();
        for (int i = 0; i < 40; i++)
            pthread_join(t[i], NULL);
    }
}

int
main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";

    if (!strcmp(what, "leak"))
        leak_blocks();
    else if (!strcmp(what, "noleak"))
        balanced();
    else if (!strcmp(what, "peak")) {
        peak_builder();
        steady_after();
    } else if (!strcmp(what, "temp"))
        churn();
    else if (!strcmp(what, "realloc"))
        realloc_align();
    else if (!strcmp(what, "threads"))
        threads();
    else
        return 2;
    return 0;
}
