/*
 * Records a known program and writes its "callgrind" profile to argv[1] and its
 * "json" report, from the same snapshot, to argv[2]; check_callgrind.py reads the
 * profile with callgrind_annotate and cross-checks it against the JSON. The names
 * here are mirrored there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <probe/probe.h>

static void
sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void
cg_lex(void)
{
    PROBE_SCOPE("cg_lex");
    sleep_us(300);
}

static void
cg_parse(void)
{
    PROBE_SCOPE("cg_parse");
    sleep_us(500);
    for (int i = 0; i < 4; i++)
        cg_lex();
}

/* Two sites of one name: the profile must keep them apart. */
static void
cg_dup_a(void)
{
    PROBE_SCOPE("cg_dup");
    sleep_us(400);
}

static void
cg_dup_b(void)
{
    PROBE_SCOPE("cg_dup");
    sleep_us(700);
}

/* A name with bytes that would end a line or be eaten by a reader. */
static void
cg_odd(void)
{
    PROBE_SCOPE(" cg odd\nname\x01");
    sleep_us(200);
}

static void
cg_main(void)
{
    PROBE_SCOPE("cg_main");
    sleep_us(1000);
    for (int i = 0; i < 3; i++)
        cg_parse();
    cg_dup_a();
    cg_dup_b();
    cg_odd();
}

static int
write_file(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "w");

    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* Format @snap in @format into @path. */
static int
write_report(const probe_snapshot *snap, const char *format, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    int r = probe_snapshot_format(snap, format, &buf, &len);

    if (r < 0) {
        fprintf(stderr, "probe_snapshot_format(%s): %s\n", format, probe_strerror(r));
        return -1;
    }
    r = write_file(path, buf, len);
    free(buf);
    return r;
}

int
main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s OUT.callgrind OUT.json [FORMAT]\n", argv[0]);
        return 2;
    }

    cg_main();
    cg_lex(); /* at top level too */

    probe_snapshot *snap = probe_snapshot_take();
    char *buf = (char *)1;

    if (!snap) {
        fprintf(stderr, "probe_snapshot_take failed\n");
        return 1;
    }
    /* Options are checked: an unknown one is PROBE_EINVAL and writes nothing. */
    static const char *const bad[] = {"callgrind:events=calls", "callgrind:bogus",
                                      "callgrind:events=ns,", "callgrind:events=ns+ns"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (probe_snapshot_format(snap, bad[i], &buf, NULL) != PROBE_EINVAL ||
            buf != (char *)1) {
            fprintf(stderr, "\"%s\" was not refused\n", bad[i]);
            return 1;
        }
    }
    if (probe_report_fd(1, "callgrind:bogus") != PROBE_EINVAL) {
        fprintf(stderr, "probe_report_fd(\"callgrind:bogus\") was not refused\n");
        return 1;
    }

    int r = write_report(snap, argc == 4 ? argv[3] : "callgrind", argv[1]);

    if (r == 0)
        r = write_report(snap, "json", argv[2]);
    probe_snapshot_free(snap);
    return r == 0 ? 0 : 1;
}
