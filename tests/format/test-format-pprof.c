/* The "pprof" formatter: a real, short sampler run written as a pprof profile and as
 * a JSON report of the same snapshot, for check_pprof.py to compare. Built with frame
 * pointers but, as users build their programs, without exported symbols (no
 * -rdynamic): the samples name the loops below from the ELF .symtab.
 *
 * usage: test-format-pprof PPROF JSON EMPTY_PPROF WALL_PPROF
 *
 * EMPTY_PPROF gets the profile of a snapshot without samples; WALL_PPROF that of a
 * wall-clock run, or nothing when wall-clock sampling is not supported. Exits 0 when
 * every call succeeded, 1 with a message otherwise. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/sampler.h>

static volatile uint64_t sink;

/* Not static, but not exported either: dladdr() cannot name it. */
void pprof_test_loop(uint64_t ns);

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* About @ns of CPU time, nearly all of it in this loop. */
__attribute__((noinline)) void
pprof_test_loop(uint64_t ns)
{
    uint64_t start = cpu_ns();
    uint64_t x = sink;

    while (cpu_ns() - start < ns) {
        for (uint64_t i = 0; i < 200000; i++)
            x = x * 6364136223846793005u + i;
        sink = x;
    }
}

/* The same, static. */
#if defined(__clang__)
__attribute__((noinline))
#else
__attribute__((noinline, noclone))
#endif
static void
pprof_test_static(uint64_t ns)
{
    uint64_t start = cpu_ns();
    uint64_t x = sink;

    while (cpu_ns() - start < ns) {
        for (uint64_t i = 0; i < 200000; i++)
            x = x * 2862933555777941757u + i;
        sink = x;
    }
}

static int failed;

static void
check(int r, const char *what)
{
    if (r != 0) {
        fprintf(stderr, "%s: %d (%s)\n", what, r, probe_strerror(r));
        failed = 1;
    }
}

static void
write_file(const probe_snapshot *snap, const char *path, const char *format)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0) {
        perror(path);
        exit(1);
    }
    check(probe_snapshot_write_fd(snap, fd, format), format);
    if (close(fd) < 0) {
        perror(path);
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PPROF JSON EMPTY_PPROF WALL_PPROF SPEEDSCOPE\n", argv[0]);
        return 2;
    }

    /* Options are refused, before anything is written. */
    probe_snapshot *snap = probe_snapshot_take();
    char *buf = NULL;

    if (!snap) {
        fprintf(stderr, "probe_snapshot_take failed\n");
        return 1;
    }
    if (probe_snapshot_format(snap, "pprof:x=1", &buf, NULL) != PROBE_EINVAL) {
        fprintf(stderr, "\"pprof:x=1\" was not refused with PROBE_EINVAL\n");
        failed = 1;
    }
    free(buf);
    buf = NULL;
    if (probe_report_write(argv[1], "pprof:gzip=0") != PROBE_EINVAL) {
        fprintf(stderr, "\"pprof:gzip=0\" was not refused with PROBE_EINVAL\n");
        failed = 1;
    }
    /* Nothing sampled yet: a valid profile with no samples. */
    write_file(snap, argv[3], "pprof");
    probe_snapshot_free(snap);

    probe_thread_name("pprof-main");
    check(probe_sampler_start(NULL), "probe_sampler_start");
    pprof_test_loop(200000000u);
    pprof_test_static(200000000u);
    check(probe_sampler_stop(), "probe_sampler_stop");

    snap = probe_snapshot_take();
    if (!snap) {
        fprintf(stderr, "probe_snapshot_take failed\n");
        return 1;
    }
    write_file(snap, argv[1], "pprof");
    write_file(snap, argv[2], "json");
    write_file(snap, argv[5], "speedscope"); /* a sampled profile per thread */

    /* The memory backend gives the same bytes but for the time stamp: check a size. */
    size_t len = 0;

    check(probe_snapshot_format(snap, "pprof", &buf, &len), "probe_snapshot_format");
    if (buf &&
        (len < 20 || (unsigned char)buf[0] != 0x1f || (unsigned char)buf[1] != 0x8b)) {
        fprintf(stderr, "the in-memory profile is not gzip (%zu bytes)\n", len);
        failed = 1;
    }
    free(buf);
    probe_snapshot_free(snap);

    /* Wall-clock sampling: "wall" time instead of "cpu", where it is supported. */
    probe_sampler_options o = PROBE_SAMPLER_OPTIONS_INIT;

    o.mode = PROBE_SAMPLE_WALL;
    probe_reset();

    int r = probe_sampler_start(&o);

    if (r == PROBE_ENOTSUP)
        return failed;
    check(r, "probe_sampler_start(PROBE_SAMPLE_WALL)");
    pprof_test_loop(100000000u);
    struct timespec nap = {0, 50000000}; /* blocked: samples labelled state=blocked */
    nanosleep(&nap, NULL);
    check(probe_sampler_stop(), "probe_sampler_stop");
    snap = probe_snapshot_take();
    if (!snap) {
        fprintf(stderr, "probe_snapshot_take failed\n");
        return 1;
    }
    write_file(snap, argv[4], "pprof");
    probe_snapshot_free(snap);
    return failed;
}
