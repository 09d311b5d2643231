/* Build test: <probe/rusage.h> compiles on its own as C99. */
#include <probe/rusage.h>

int headers_c99_rusage(void);

int
headers_c99_rusage(void)
{
    probe_rusage a, b, d;

    if (probe_getrusage(PROBE_RUSAGE_SELF, &a) != 0)
        return -1;
    if (probe_getrusage(PROBE_RUSAGE_SELF, &b) != 0)
        return -1;
    return probe_rusage_diff(&a, &b, &d);
}
