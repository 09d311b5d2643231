// Build test: the public headers compile as C++ (-pedantic -Werror) and every macro
// can be used in C++ code.
#include <probe/probe.h>

#include <cstring>

namespace {

int
use_every_macro(int n)
{
    PROBE_FUNC();
    int sum = 0;
    for (int i = 0; i < n; i++) {
        PROBE_SCOPE("cxx_loop");
        PROBE_LINE();
        PROBE_COUNT("cxx_counter", i);
        sum += i;
    }
    PROBE_BEGIN("cxx_begin");
    PROBE_END();
    return sum;
}

} // namespace

int
main()
{
    if (use_every_macro(4) != 6)
        return 1;
    probe_snapshot *snap = probe_snapshot_take();
    if (!snap)
        return 1;
    const probe_site_info *si = probe_snapshot_find(snap, "cxx_loop");
    bool ok = si && si->calls == 4 && si->kind == PROBE_KIND_SCOPE;
    probe_snapshot_free(snap);
    probe_rusage ru;
    ok = ok && probe_getrusage(PROBE_RUSAGE_SELF, &ru) == 0;
    ok = ok && std::strcmp(PROBE_SCHEMA, "probe/1") == 0;
    return ok ? 0 : 1;
}
