/* PROBE_HTTP and PROBE_PUSH (with PROBE_PUSH_INTERVAL; PROBE_APP, PROBE_LABELS and
 * PROBE_PUSH_TENANT are read by probe_push_start()) at load, for programs that
 * cannot be changed (docs/environment.md). Ignored in setuid programs. */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <probe/fleet.h>

void
fleet_env_init(void)
{
    const char *http = secure_getenv("PROBE_HTTP");
    const char *push = secure_getenv("PROBE_PUSH");
    const char *interval = secure_getenv("PROBE_PUSH_INTERVAL");
    int r;

    if (http && *http && (r = probe_http_start(http)) < 0)
        dprintf(STDERR_FILENO, "libprobe: PROBE_HTTP=%s: %s\n", http, probe_strerror(r));
    if (!push || !*push)
        return;

    probe_push_options o = PROBE_PUSH_OPTIONS_INIT;

    o.url = push;
    if (interval && *interval) {
        char *end;
        double s;

        errno = 0;
        s = strtod(interval, &end);
        if (errno || end == interval || *end || !(s >= 0.1 && s <= 3600))
            dprintf(STDERR_FILENO,
                    "libprobe: PROBE_PUSH_INTERVAL=%s: use 0.1 to 3600 seconds; using 15\n",
                    interval);
        else
            o.interval_ns = (uint64_t)(s * 1e9 + 0.5);
    }
    if ((r = probe_push_start(&o)) < 0)
        dprintf(STDERR_FILENO, "libprobe: PROBE_PUSH=%s: %s%s\n", push, probe_strerror(r),
                r == PROBE_ENOTSUP ? " (https:// needs libprobe built with libcurl)" : "");
}
