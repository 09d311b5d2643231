/* The memory summary: one row per tag, like pympler's print_summary and objgraph's
 * show_growth, then the frees that went wrong and what the tracker dropped. Reads a
 * memory snapshot only. */
#include "memtext.h"

#include <inttypes.h>
#include <stdio.h>

#include "cells.h"
#include "writer.h"

/* Bytes with a unit that fits the value, signed ("+1.5 MiB") when @sign. */
static void
memtext_bytes(char *buf, size_t size, int64_t bytes, int sign)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    uint64_t mag = bytes < 0 ? -(uint64_t)bytes : (uint64_t)bytes;
    const char *s = bytes < 0 ? "-" : sign && bytes > 0 ? "+" : "";
    double v = (double)mag;
    size_t u = 0;

    if (mag < 1024) {
        snprintf(buf, size, "%s%" PRIu64 " B", s, mag);
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%s%.1f %s", s, v, units[u]);
}

static int
memtext_row(probe_writer *w, const probe_mem_tag_info *t)
{
    char live[32], avg[32], growth[32];

    memtext_bytes(live, sizeof(live), t->live_bytes, 0);
    memtext_bytes(avg, sizeof(avg), (int64_t)t->avg_bytes, 0);
    memtext_bytes(growth, sizeof(growth), t->growth_bytes, 1);
    TRY(probe_writer_printf(w, "%12" PRId64 "  %12s  %10s  %5.1f%%  %+12" PRId64 "  %12s  ",
                            t->live_count, live, avg, 100.0 * t->share, t->growth_count,
                            growth));
    TRY(cells_put_name(w, t->name));
    return probe_writer_puts(w, "\n");
}

int
memtext_write(probe_writer *w, const probe_mem_snapshot *snap)
{
    const probe_mem_info *info = probe_mem_snapshot_info(snap);
    size_t n = probe_mem_snapshot_tag_count(snap);
    char total[32];

    if (!n)
        return 0;
    TRY(probe_writer_printf(w, "\nMemory (tagged objects)%s:\n",
                            info->is_diff ? ", change between two snapshots" : ""));
    TRY(probe_writer_printf(w, "%12s  %12s  %10s  %6s  %12s  %12s  %s\n", "live",
                            "bytes", "average", "share", "growth", "growth", "tag"));
    for (size_t i = 0; i < n; i++)
        TRY(memtext_row(w, probe_mem_snapshot_tag(snap, i)));
    memtext_bytes(total, sizeof(total), info->live_bytes, 0);
    TRY(probe_writer_printf(w, "%12" PRId64 "  %12s  total\n", info->live_count, total));
    for (size_t i = 0; i < n; i++) {
        const probe_mem_tag_info *t = probe_mem_snapshot_tag(snap, i);
        if (t->untracked_frees) {
            TRY(probe_writer_printf(w, "warning: %" PRIu64 " frees of untracked pointers"
                                       " under tag ", t->untracked_frees));
            TRY(cells_put_name(w, t->name));
            TRY(probe_writer_puts(w, "\n"));
        }
        if (t->double_frees) {
            TRY(probe_writer_printf(w, "warning: %" PRIu64 " double frees of tag ",
                                    t->double_frees));
            TRY(cells_put_name(w, t->name));
            TRY(probe_writer_puts(w, "\n"));
        }
    }
    if (info->table_full)
        TRY(probe_writer_printf(w, "warning: %" PRIu64 " allocations not tracked (the "
                                   "pointer table of %" PRIu64 " slots was full there)\n",
                                info->table_full, info->table_slots));
    if (info->tags_dropped)
        TRY(probe_writer_printf(w, "warning: %" PRIu64 " calls ignored (%d tags in use)\n",
                                info->tags_dropped, PROBE_MEM_MAX_TAGS));
    if (info->fork_lost)
        TRY(probe_writer_printf(w, "warning: %" PRIu64 " entries lost at fork()\n",
                                info->fork_lost));
    return 0;
}

PROBE_EXPORT int
probe_mem_summary_fd(const probe_mem_snapshot *snap, int fd)
{
    probe_writer w;

    if (!snap)
        return PROBE_EINVAL;
    if (fd < 0)
        return PROBE_EBADF;
    writer_init_fd(&w, fd);
    if (memtext_write(&w, snap) < 0) {
        int rc = writer_error(&w);
        writer_discard(&w);
        return rc ? rc : PROBE_EIO;
    }
    return writer_finish_fd(&w);
}
