/* Build test: with -DPROBE_DISABLE the macros reference nothing in libprobe, so a
 * program that uses only the macros links without it. */
#include <probe/probe.h>

static int
work(int n)
{
    int sum = 0;

    PROBE_FUNC();
    for (int i = 0; i < n; i++) {
        PROBE_SCOPE("nolink_scope");
        PROBE_LINE();
        PROBE_COUNT("nolink_counter", i);
        sum += i;
    }
    PROBE_BEGIN("nolink_begin");
    PROBE_END();
    return sum;
}

int
main(void)
{
    return work(4) == 6 ? 0 : 1;
}
