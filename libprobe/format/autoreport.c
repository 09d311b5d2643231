/* A report at exit for programs that cannot be changed: PROBE_OUTPUT names where it
 * goes and PROBE_FORMAT its format (docs/environment.md). Both are ignored in setuid
 * and setgid programs (secure_getenv). With PROBE_CHILDREN (preload/children.c), a
 * child process writes PROBE_OUTPUT.PID ("follow") or nothing ("none"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/report.h>
#include <probe/trace.h>

#include "format/registry.h"
#include "init.h"
#include "preload/preload.h"

static char output[4096];
static char format[64] = "text";
static int written; /* the pid that wrote (or is writing) its report */

int
autoreport_is_set(void)
{
    return output[0] != '\0';
}

static int
is_std_stream(const char *s)
{
    return strcmp(s, "-") == 0 || strcmp(s, "stderr") == 0 || strcmp(s, "stdout") == 0;
}

void
autoreport_write_once(void)
{
    char path[sizeof(output) + 24];
    int self = (int)getpid();
    int rc, before = __atomic_load_n(&written, __ATOMIC_ACQUIRE);

    /* Once per process: exit() in a second thread races a fatal signal in a third.
     * A forked child inherits the parent's pid here, which is not its own. */
    if (!output[0] || before == self ||
        !__atomic_compare_exchange_n(&written, &before, self, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    snprintf(path, sizeof(path), "%s", output);
    if (self != (int)children_root_pid()) {
        if (children_mode() == CHILDREN_NONE)
            return;
        if (children_mode() == CHILDREN_FOLLOW && !is_std_stream(output))
            snprintf(path, sizeof(path), "%s.%d", output, self);
    }
    if (strcmp(path, "-") == 0 || strcmp(path, "stderr") == 0)
        rc = probe_report_fd(STDERR_FILENO, format);
    else if (strcmp(path, "stdout") == 0)
        rc = probe_report_fd(STDOUT_FILENO, format);
    else
        rc = probe_report_write(path, format);
    /* Nobody can be returned an error at exit: say it once on stderr. */
    if (rc < 0) {
        char why[512];

        /* A bad option is named with its value and what it accepts. */
        if (rc == PROBE_EINVAL && probe_format_check(format, why, sizeof(why)) < 0)
            dprintf(STDERR_FILENO, "libprobe: PROBE_FORMAT=%s: %s\n", format, why);
        else
            dprintf(STDERR_FILENO, "libprobe: cannot write the %s report to %s: %s\n",
                    format, path, probe_strerror(rc));
    }
}

static void
autoreport_at_exit(void)
{
    autoreport_write_once();
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
