/* A report at exit for programs that cannot be changed: PROBE_OUTPUT names where it
 * goes and PROBE_FORMAT its format (docs/environment.md). Both are ignored in setuid
 * and setgid programs (secure_getenv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/report.h>

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

__attribute__((constructor(102))) static void
autoreport_init(void)
{
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
