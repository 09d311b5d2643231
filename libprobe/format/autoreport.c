/* A report at exit for programs that cannot be changed: PROBE_OUTPUT names where it
 * goes and PROBE_FORMAT its format (docs/environment.md). Both are ignored in setuid
 * and setgid programs (secure_getenv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/report.h>
#include <probe/trace.h>

#include "init.h"

static char output[4096];
static char format[64] = "text";

static void
autoreport_at_exit(void)
{
    int rc;

    if (strcmp(output, "-") == 0 || strcmp(output, "stderr") == 0)
        rc = probe_report_fd(STDERR_FILENO, format);
    else if (strcmp(output, "stdout") == 0)
        rc = probe_report_fd(STDOUT_FILENO, format);
    else
        rc = probe_report_write(output, format);
    /* Nobody can be returned an error at exit: say it once on stderr. */
    if (rc < 0)
        dprintf(STDERR_FILENO, "libprobe: cannot write the %s report to %s: %s\n", format,
                output, probe_strerror(rc));
}

/* PROBE_TRACE=flight (or 1) starts the flight recorder at load, PROBE_TRACE=stream:PATH
 * a stream to PATH (stopped and completed at exit). */
static void
autotrace_init(void)
{
    const char *want = secure_getenv("PROBE_TRACE");
    probe_trace_options o = PROBE_TRACE_OPTIONS_INIT;

    if (!want || !*want || strcmp(want, "0") == 0)
        return;
    if (strncmp(want, "stream:", 7) == 0) {
        o.mode = PROBE_TRACE_STREAM;
        o.path = want + 7;
    } else if (strcmp(want, "flight") != 0 && strcmp(want, "1") != 0) {
        dprintf(STDERR_FILENO, "libprobe: PROBE_TRACE=%s: use flight or stream:PATH\n", want);
        return;
    }
    int rc = probe_trace_start(&o);
    if (rc < 0)
        dprintf(STDERR_FILENO, "libprobe: PROBE_TRACE=%s: %s\n", want, probe_strerror(rc));
}

void
autoreport_init(void)
{
    autotrace_init();
    const char *out = secure_getenv("PROBE_OUTPUT");
    const char *fmt = secure_getenv("PROBE_FORMAT");

    if (!out || !*out)
        return;
    if (strlen(out) >= sizeof(output) || (fmt && strlen(fmt) >= sizeof(format))) {
        dprintf(STDERR_FILENO, "libprobe: PROBE_OUTPUT or PROBE_FORMAT is too long; "
                               "no report at exit\n");
        return;
    }
    strcpy(output, out);
    if (fmt && *fmt)
        strcpy(format, fmt);
    atexit(autoreport_at_exit);
}
