/* Build test: the public headers compile as strict C99 (-std=c99 -pedantic
 * -Werror) and every macro can be used in such code. This file includes the
 * umbrella header; headers-c99-report.c and headers-c99-rusage.c each include one
 * module header first, to prove every header is self-contained. */
#include <probe/probe.h>

#include <stdio.h>
#include <string.h>

int headers_c99_report(void);
int headers_c99_rusage(void);

static int
use_every_macro(int n)
{
    int sum = 0;
    int i;

    PROBE_FUNC();
    for (i = 0; i < n; i++) {
        PROBE_SCOPE("c99_loop");
        PROBE_LINE();
        PROBE_COUNT("c99_counter", i);
        sum += i;
    }
    if (n < 0)
        PROBE_LINE();
    PROBE_BEGIN("c99_begin");
    PROBE_END();
    return sum;
}

int
main(void)
{
    const char *schema = PROBE_SCHEMA;

    if (use_every_macro(4) != 6)
        return 1;
    if (strcmp(schema, "probe/1") != 0)
        return 1;
    if (PROBE_VERSION_MAJOR != 0 || PROBE_EINVAL != -22)
        return 1;
    if (probe_strerror(PROBE_EINVAL) == NULL)
        return 1;
    if (headers_c99_report() != 0 || headers_c99_rusage() != 0) {
        fprintf(stderr, "headers-c99: a module header check failed\n");
        return 1;
    }
    return 0;
}
