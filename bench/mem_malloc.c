/*
 * mem_malloc: what the heap profiler's malloc interposer costs (docs/memory.md
 * "Heap profiling"), beside plain glibc in the same run.
 *
 *     meson test -C BUILDDIR --benchmark -v mem_malloc
 *     BUILDDIR/bench/mem_malloc [--rounds N]
 *
 * The program links libprobe.so, so malloc and free are libprobe's interposer; it
 * re-executes itself with PROBE_MEM=1 (sampling at the default 512 KiB) when the
 * profiler is off. Variants, each a noinline loop of malloc(n) + free for small n
 * (16..256 bytes, a fixed cycle), in rounds with the order alternating:
 *
 *   glibc      __libc_malloc / __libc_free: glibc with no interposer
 *   profiled   malloc / free: the interposer, sampling
 *   in scope   the same inside an open PROBE_SCOPE: each allocation and free is also
 *              added to the scope's exact bytes (the per-scope cost)
 *
 * The ratio is the median of the per-round ratios. Then the RSS the profiler adds
 * to a program holding a million live 64-byte blocks: two child processes, PROBE_MEM
 * off and on, each reporting its VmRSS growth over the allocation. Prints Markdown,
 * always exits 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <probe/mem.h>
#include <probe/probe.h>

#include "harness.h"

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

/* Uses p, so that the compiler cannot drop a malloc+free pair. */
#define BARRIER(p) __asm__ __volatile__("" : : "r"(p) : "memory")
#define PAIRS 2000000u

static const size_t sizes[8] = {16, 24, 32, 48, 64, 96, 128, 256};

__attribute__((noinline)) static double
loop_glibc(void)
{
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < PAIRS; i++) {
        void *p = __libc_malloc(sizes[i & 7]);
        BARRIER(p);
        __libc_free(p);
    }
    return (double)(bench_now_ns() - t0) / PAIRS;
}

__attribute__((noinline)) static double
loop_profiled(void)
{
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < PAIRS; i++) {
        void *p = malloc(sizes[i & 7]);
        BARRIER(p);
        free(p);
    }
    return (double)(bench_now_ns() - t0) / PAIRS;
}

__attribute__((noinline)) static double
loop_in_scope(void)
{
    PROBE_SCOPE("bench");
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < PAIRS; i++) {
        void *p = malloc(sizes[i & 7]);
        BARRIER(p);
        free(p);
    }
    return (double)(bench_now_ns() - t0) / PAIRS;
}

static long
rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* The child: a million live 64-byte blocks; prints the RSS growth in KiB. */
static int
hold_million(void)
{
    enum { N = 1000000 };
    void **v = __libc_malloc(N * sizeof(*v));
    long before = rss_kib();

    for (unsigned i = 0; i < N; i++) {
        v[i] = malloc(64);
        memset(v[i], 1, 64);
    }
    printf("%ld\n", rss_kib() - before);
    return 0;
}

static long
child_rss(const char *self, const char *mem)
{
    int fds[2];
    char buf[64] = "";

    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        setenv("PROBE_MEM", mem, 1);
        setenv("PROBE_MEM_OUTPUT", "/dev/null", 1);
        execl(self, self, "--hold", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return n > 0 ? strtol(buf, NULL, 10) : -1;
}

int
main(int argc, char **argv)
{
    unsigned rounds = 21;
    char cpu[128];

    if (argc > 1 && !strcmp(argv[1], "--hold"))
        return hold_million();
    if (argc > 2 && !strcmp(argv[1], "--rounds"))
        rounds = (unsigned)atoi(argv[2]);
    if (rounds < 1 || rounds > BENCH_MAX_ROUNDS)
        rounds = 21;
    if (!probe_mem_heap_enabled()) {
        if (getenv("PROBE_MEM")) {
            puts("mem_malloc: the heap profiler did not start (sanitizer build?)");
            return 0;
        }
        setenv("PROBE_MEM", "1", 1);
        setenv("PROBE_MEM_OUTPUT", "/dev/null", 1);
        execv("/proc/self/exe", argv);
        perror("mem_malloc: execv");
        return 0;
    }

    double g[BENCH_MAX_ROUNDS], p[BENCH_MAX_ROUNDS], r[BENCH_MAX_ROUNDS];
    double s[BENCH_MAX_ROUNDS], rs[BENCH_MAX_ROUNDS];
    loop_glibc();
    loop_profiled();
    loop_in_scope();
    for (unsigned i = 0; i < rounds; i++) {
        if (i & 1) {
            s[i] = loop_in_scope();
            p[i] = loop_profiled();
            g[i] = loop_glibc();
        } else {
            g[i] = loop_glibc();
            p[i] = loop_profiled();
            s[i] = loop_in_scope();
        }
        r[i] = p[i] / g[i];
        rs[i] = s[i] / g[i];
    }
    printf("# mem_malloc on %s, %u rounds of %u malloc+free pairs (16..256 B)\n\n",
           bench_cpu_model(cpu, sizeof(cpu)), rounds, PAIRS);
    printf("| variant | ns per pair (median) | vs glibc |\n|---|---:|---:|\n");
    printf("| glibc | %.1f | 1.00x |\n", bench_median(g, rounds));
    printf("| profiled (PROBE_MEM=1, 512 KiB) | %.1f | %.2fx |\n", bench_median(p, rounds),
           bench_median(r, rounds));
    printf("| profiled, in an open scope | %.1f | %.2fx |\n\n", bench_median(s, rounds),
           bench_median(rs, rounds));

    long off = child_rss("/proc/self/exe", "0"), on = child_rss("/proc/self/exe", "1");
    printf("| a million live 64-byte blocks | RSS growth |\n|---|---:|\n");
    printf("| PROBE_MEM=0 | %ld KiB |\n| PROBE_MEM=1 | %ld KiB |\n", off, on);
    printf("| the profiler's share | %ld KiB |\n", on - off);
    return 0;
}
