/* PROBE_SAMPLE=cpu|wall starts the sampler when the library loads, every
 * 1/PROBE_SAMPLE_HZ seconds (docs/environment.md). Ignored in setuid and setgid
 * programs (secure_getenv). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/sampler.h>

#include "preload/preload.h"

static int configured;
static probe_sampler_options options = PROBE_SAMPLER_OPTIONS_INIT;

/* 1..20000 Hz: the sampler's interval range, 1 s..50 us. */
static int
parse_hz(const char *s, unsigned long *out)
{
    char *end;

    errno = 0;
    unsigned long hz = strtoul(s, &end, 10);

    if (errno || end == s || *end || s[0] == '-' || hz < 1 ||
        hz > 1000000000ul / PROBE_SAMPLER_INTERVAL_MIN)
        return -1;
    *out = hz;
    return 0;
}

void
sample_init(void)
{
    const char *mode = secure_getenv("PROBE_SAMPLE");
    const char *hz_s = secure_getenv("PROBE_SAMPLE_HZ");
    unsigned long hz;

    if (!mode || !*mode || strcmp(mode, "0") == 0)
        return;
    if (strcmp(mode, "cpu") == 0 || strcmp(mode, "1") == 0) {
        options.mode = PROBE_SAMPLE_CPU;
    } else if (strcmp(mode, "wall") == 0) {
        options.mode = PROBE_SAMPLE_WALL;
    } else {
        dprintf(STDERR_FILENO, "libprobe: PROBE_SAMPLE=%s: use cpu or wall\n", mode);
        return;
    }
    if (hz_s && *hz_s) {
        if (parse_hz(hz_s, &hz) < 0) {
            dprintf(STDERR_FILENO,
                    "libprobe: PROBE_SAMPLE_HZ=%s: use a rate from 1 to %u; "
                    "sampling at 1000\n",
                    hz_s, 1000000000u / PROBE_SAMPLER_INTERVAL_MIN);
        } else {
            options.interval_ns = 1000000000ull / hz;
        }
    }
    configured = 1;
    sample_restart();
}

void
sample_restart(void)
{
    if (!configured)
        return;

    int rc = probe_sampler_start(&options);

    if (rc < 0)
        dprintf(STDERR_FILENO, "libprobe: PROBE_SAMPLE: cannot start the sampler: %s\n",
                probe_strerror(rc));
}
