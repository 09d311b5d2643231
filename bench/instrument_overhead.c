/*
 * instrument_overhead: what libprobe-instrument adds to each call of a function built
 * with -finstrument-functions, beside empty hooks, gcc's -pg (gprof's mcount) and one
 * PROBE_FUNC(), on the same program (bench/instrument_work.c built five ways).
 *
 *     meson test -C BUILDDIR --benchmark -v instrument_overhead
 *     BUILDDIR/bench/instrument_overhead [--rounds N] [--calls N] PLAIN EMPTY \
 *         INSTRUMENT PG|- PROBE_FUNC
 *
 * Each round runs every variant once, in an order that rotates from round to round,
 * each as a child process pinned to one CPU that times CALLS calls with its thread's
 * CPU time. A variant's cost is its time per call minus the plain program's in the
 * same round; a figure is the median over the rounds, a ratio the median of the
 * ratios taken within each round. It prints Markdown and always exits 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

enum { PLAIN, EMPTY, INSTR, PG, FUNC, NVARIANTS };

static const char *const labels[NVARIANTS] = {
    "plain (no instrumentation)",
    "-finstrument-functions, empty hooks",
    "-finstrument-functions, libprobe-instrument",
    "-pg (gprof mcount)",
    "PROBE_FUNC() in the function",
};

/* Run @prog CALLS; its ns per call, or a negative number when it failed. */
static double
run_one(const char *prog, const char *calls)
{
    int fds[2];
    char buf[64];
    double v = -1;

    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        /* No report at exit from the environment, no sampler: the hooks alone. */
        unsetenv("PROBE_OUTPUT");
        unsetenv("PROBE_TRACE");
        execl(prog, prog, calls, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        buf[n] = 0;
        v = strtod(buf, NULL);
    }
    return v;
}

static void
pin_last_cpu(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return;
    for (int c = CPU_SETSIZE - 1; c >= 0; c--) {
        if (CPU_ISSET(c, &set)) {
            CPU_ZERO(&set);
            CPU_SET(c, &set);
            sched_setaffinity(0, sizeof(set), &set);
            return;
        }
    }
}

int
main(int argc, char **argv)
{
    unsigned rounds = 11;
    const char *calls = "4000000";
    const char *prog[NVARIANTS];
    static double ns[NVARIANTS][BENCH_MAX_ROUNDS], cost[NVARIANTS][BENCH_MAX_ROUNDS];
    static double r_empty[BENCH_MAX_ROUNDS], r_pg[BENCH_MAX_ROUNDS], r_func[BENCH_MAX_ROUNDS];
    int i = 1, np = 0;
    char cpu[128];

    for (; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
            calls = argv[++i];
        else if (np < NVARIANTS)
            prog[np++] = argv[i];
    }
    if (np != NVARIANTS || rounds < 1 || rounds > BENCH_MAX_ROUNDS) {
        fprintf(stderr, "usage: %s [--rounds N] [--calls N] PLAIN EMPTY INSTRUMENT PG|- "
                        "PROBE_FUNC\n", argv[0]);
        return 2;
    }
    int have_pg = strcmp(prog[PG], "-") != 0;
    pin_last_cpu();

    unsigned ok = 0;
    for (unsigned r = 0; r < rounds; r++) {
        double t[NVARIANTS] = {0};
        int failed = 0;
        for (int k = 0; k < NVARIANTS; k++) {
            int v = (int)((k + r) % NVARIANTS);
            if (v == PG && !have_pg)
                continue;
            if ((t[v] = run_one(prog[v], calls)) < 0)
                failed = 1;
        }
        if (failed) {
            fprintf(stderr, "round %u: a variant failed\n", r);
            continue;
        }
        for (int v = 0; v < NVARIANTS; v++) {
            ns[v][ok] = t[v];
            cost[v][ok] = t[v] - t[PLAIN];
        }
        r_empty[ok] = cost[INSTR][ok] / cost[EMPTY][ok];
        r_pg[ok] = have_pg ? cost[INSTR][ok] / cost[PG][ok] : 0;
        r_func[ok] = cost[INSTR][ok] / cost[FUNC][ok];
        ok++;
    }
    if (!ok) {
        printf("instrument_overhead: every round failed\n");
        return 0;
    }

    printf("## instrument_overhead: cost per instrumented call\n\n");
    printf("CPU: %s; %u rounds of %s calls; medians over rounds\n\n",
           bench_cpu_model(cpu, sizeof(cpu)), ok, calls);
    printf("| variant | ns/call | added ns/call |\n|---|---:|---:|\n");
    for (int v = 0; v < NVARIANTS; v++) {
        if (v == PG && !have_pg) {
            printf("| %s | n/a | n/a |\n", labels[v]);
            continue;
        }
        printf("| %s | %.2f | %s%.2f |\n", labels[v], bench_median(ns[v], ok),
               v == PLAIN ? "" : "+", v == PLAIN ? 0.0 : bench_median(cost[v], ok));
    }
    printf("\n| ratio of libprobe-instrument's added cost to | median |\n|---|---:|\n");
    printf("| empty hooks | %.2f |\n", bench_median(r_empty, ok));
    if (have_pg)
        printf("| -pg (gprof) | %.2f |\n", bench_median(r_pg, ok));
    else
        printf("| -pg (gprof) | n/a (the compiler cannot build -pg here) |\n");
    double rf = bench_median(r_func, ok);
    printf("| one PROBE_FUNC() | %.2f |\n\n", rf);
    printf("target: at most the cost of one PROBE_FUNC (ratio <= 1.00): %s\n",
           rf <= 1.0 ? "met" : "MISSED");
    return 0;
}
