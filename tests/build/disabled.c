/* Build test: with -DPROBE_DISABLE every macro is nothing: the program builds, runs,
 * evaluates no macro argument and registers no site. tests/build/meson.build also
 * builds this file without PROBE_DISABLE as the control: then the same checks must
 * see the sites and the side effects. */
#include <probe/probe.h>

#include <stdio.h>

static int side_effects;

/* Not static: compiled out, nothing calls it, and that is no warning. */
int side_effect(void);

int
side_effect(void)
{
    side_effects++;
    return 1;
}

static int
use_every_macro(int n)
{
    int sum = 0;

    PROBE_FUNC();
    for (int i = 0; i < n; i++) {
        PROBE_SCOPE("disabled_scope");
        PROBE_LINE();
        PROBE_COUNT("disabled_counter", side_effect());
        sum += i;
    }
    if (n < 0)
        PROBE_LINE();
    else
        PROBE_COUNT("disabled_else", side_effect());
    PROBE_BEGIN("disabled_begin");
    PROBE_END();
    return sum;
}

int
main(void)
{
    if (use_every_macro(3) != 3) {
        fprintf(stderr, "disabled: wrong result\n");
        return 1;
    }

    probe_snapshot *snap = probe_snapshot_take();
#ifdef PROBE_DISABLE
    /* Compiled out, the functions are stubs: no snapshot, and the calls below on
     * NULL are no-ops. */
    if (snap) {
        fprintf(stderr, "disabled: probe_snapshot_take() is not the stub\n");
        return 1;
    }
#else
    if (!snap) {
        fprintf(stderr, "disabled: no snapshot\n");
        return 1;
    }
#endif
    size_t sites = probe_snapshot_site_count(snap);
    const probe_site_info *si = probe_snapshot_find(snap, "disabled_scope");
    int found = si != NULL;
    uint64_t calls = si ? si->calls : 0;
    probe_snapshot_free(snap);

#ifdef PROBE_DISABLE
    (void)calls;
    if (side_effects != 0) {
        fprintf(stderr, "disabled: %d macro arguments evaluated\n", side_effects);
        return 1;
    }
    if (sites != 0 || found) {
        fprintf(stderr, "disabled: %zu sites registered\n", sites);
        return 1;
    }
#else
    /* use_every_macro, scope, 2 lines, 2 counters, begin */
    if (side_effects != 4 || sites != 7 || !found || calls != 3) {
        fprintf(stderr, "control: %d side effects, %zu sites\n", side_effects, sites);
        return 1;
    }
#endif
    return 0;
}
