/* Self-contained snapshots: a short sampler run over a dlopen()ed module and over a
 * function with two hot loops on different lines, for check_snapshot_frames.py.
 *
 * usage: test-snapshot-frames MODULE PPROF_BEFORE PPROF_AFTER JSON TABLES
 *
 * PPROF_BEFORE is a snapshot taken while MODULE was loaded, written after it was
 * dlclose()d; PPROF_AFTER, JSON and TABLES a snapshot taken after the dlclose(): as
 * pprof, as the JSON report, and its frame and mapping tables as the accessors give
 * them, one per line (M: mapping, F: frame, S: sample's frame ids), tab-separated.
 * Exits 0 when every call succeeded, 1 with a message otherwise. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/sampler.h>

#if defined(__clang__)
#define FRAMES_NOINLINE __attribute__((noinline))
#else
#define FRAMES_NOINLINE __attribute__((noinline, noclone))
#endif

static volatile uint64_t frames_sink;

/* Not exported (no -rdynamic): named from .symtab. */
uint64_t frames_two_loops(uint64_t ns);

static uint64_t
frames_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Half of @ns in each loop; their bodies are on lines of their own, so samples of one
 * function (one stack of names) come from two source lines. */
FRAMES_NOINLINE uint64_t
frames_two_loops(uint64_t ns)
{
    uint64_t start = frames_cpu_ns();
    uint64_t x = frames_sink;

    while (frames_cpu_ns() - start < ns / 2) {
        for (uint64_t i = 0; i < 200000; i++)
            x = x * 6364136223846793005u + i; /* FIRST LOOP */
        frames_sink = x;
    }
    start = frames_cpu_ns();
    while (frames_cpu_ns() - start < ns / 2) {
        for (uint64_t i = 0; i < 200000; i++)
            x = (x ^ (x >> 7)) * 2862933555777941757u + i; /* SECOND LOOP */
        frames_sink = x;
    }
    return x;
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

/* The tables through the accessors, for the checker to compare with the JSON. */
static void
write_tables(const probe_snapshot *snap, const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        perror(path);
        exit(1);
    }
    for (size_t i = 0; i < probe_snapshot_mapping_count(snap); i++) {
        const probe_mapping_info *m = probe_snapshot_mapping(snap, i);
        fprintf(f, "M\t%llu\t%llu\t%llu\t%s\t%d\t%s\n", (unsigned long long)m->start,
                (unsigned long long)m->limit, (unsigned long long)m->offset, m->build_id,
                m->main_program, m->path);
    }
    for (size_t i = 0; i < probe_snapshot_frame_count(snap); i++) {
        const probe_frame_info *fr = probe_snapshot_frame(snap, i);
        fprintf(f, "F\t%llu\t%d\t%u\t%lld\t%s\t%d\t%s\n", (unsigned long long)fr->address,
                fr->is_return, fr->line,
                fr->mapping == PROBE_NO_MAPPING ? -1LL : (long long)fr->mapping,
                fr->function, fr->file != NULL, fr->file ? fr->file : "");
    }
    for (size_t i = 0; i < probe_snapshot_sample_count(snap); i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);
        fprintf(f, "S\t%llu\t%llu\t", (unsigned long long)s->tid,
                (unsigned long long)s->weight);
        for (unsigned k = 0; k < s->depth; k++)
            fprintf(f, k ? " %zu" : "%zu", s->frame_ids[k]);
        fputc('\n', f);
    }
    if (probe_snapshot_frame(snap, probe_snapshot_frame_count(snap)) != NULL ||
        probe_snapshot_mapping(snap, probe_snapshot_mapping_count(snap)) != NULL ||
        probe_snapshot_frame(NULL, 0) != NULL || probe_snapshot_mapping_count(NULL) != 0) {
        fprintf(stderr, "an accessor out of range did not give NULL or 0\n");
        failed = 1;
    }
    if (fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODULE PPROF_BEFORE PPROF_AFTER JSON TABLES\n",
                argv[0]);
        return 2;
    }

    void *mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);

    if (!mod) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    uint64_t (*run)(uint64_t) = (uint64_t (*)(uint64_t))(uintptr_t)dlsym(mod, "symmod_run");

    if (!run) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    check(probe_sampler_start(NULL), "probe_sampler_start");
    run(200000000u);
    frames_two_loops(400000000u);
    check(probe_sampler_stop(), "probe_sampler_stop");

    probe_snapshot *before = probe_snapshot_take();

    if (!before || dlclose(mod) != 0) {
        fprintf(stderr, "probe_snapshot_take or dlclose failed\n");
        return 1;
    }

    /* The premise: the module is gone from the process. */
    if (dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD) != NULL) {
        fprintf(stderr, "%s is still loaded after dlclose\n", argv[1]);
        return 1;
    }

    probe_snapshot *after = probe_snapshot_take();

    if (!after) {
        fprintf(stderr, "probe_snapshot_take failed\n");
        return 1;
    }
    write_file(before, argv[2], "pprof");
    write_file(after, argv[3], "pprof");
    write_file(after, argv[4], "json");
    write_tables(after, argv[5]);
    probe_snapshot_free(before);
    probe_snapshot_free(after);
    return failed;
}
