/* Build test: <probe/report.h> compiles on its own as C99. */
#include <probe/report.h>

int headers_c99_report(void);

static int
count_calls(const probe_snapshot *snap, uint64_t *ret_calls)
{
    size_t i;
    uint64_t calls = 0;

    for (i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *si = probe_snapshot_site(snap, i);
        calls += si->calls;
    }
    *ret_calls = calls;
    return 0;
}

int
headers_c99_report(void)
{
    probe_snapshot *snap = probe_snapshot_take();
    uint64_t calls = 0;
    int ret;

    if (!snap)
        return -1;
    ret = count_calls(snap, &calls);
    if (!probe_snapshot_losses(snap) || !probe_snapshot_clock(snap))
        ret = -1;
    probe_snapshot_free(snap);
    /* use_every_macro(4) in headers-c99.c: at least 4 loop scopes ran. */
    return ret == 0 && calls >= 4 ? 0 : -1;
}
