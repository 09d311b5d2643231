/* A shared module for test-sites: loaded with dlopen(), unloaded with dlclose().
 * Its sites must register on load and stay in reports after unload. */
#include <probe/probe.h>

int testmod_work(int n);
int testmod_maybe(int x);
int testmod_never_line(void);
const char *testmod_file(void);

int
testmod_work(int n)
{
    int sum = 0;

    for (int i = 0; i < n; i++) {
        PROBE_SCOPE("testmod_scope");
        PROBE_COUNT("testmod_counter", 2);
        sum += i;
    }
    return sum;
}

/* One line, so that never_line is the line of the PROBE_LINE() site. */
int testmod_maybe(int x) { if (x == 12345) PROBE_LINE(); return x; } static const int never_line = __LINE__;

int
testmod_never_line(void)
{
    return never_line;
}

const char *
testmod_file(void)
{
    return __FILE__;
}
