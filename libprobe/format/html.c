/*
 * The "html" formatter: one self-contained page to look at (docs/formats.md). The
 * snapshot goes in as JSON inside a <script type="application/json"> element; the
 * page's own JavaScript and CSS (html/app.js, html/app.css, embedded at build time
 * by html/embed.py) draw from it an icicle graph of the sampled stacks and one of
 * the scope call tree, a sortable table of the scopes, a thread picker and the run's
 * facts. Nothing is fetched: no CDN, no font, no network.
 */
#include "html.h"
#include "options.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/sampler.h>

#include "core/snapshot.h"
#include "html_assets.h"
#include "jsonstr.h"
#include "writer.h"

struct html_names {
    const char **slot;    /* open addressing, a power of two of slots, or NULL */
    size_t *id;           /* the name's index in the page's "frames" */
    size_t cap, count;
    size_t *of_frame;     /* frame table index -> name index */
};

static uint64_t
html_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211u;
    return h;
}

static void
html_names_free(struct html_names *n)
{
    free(n->slot);
    free(n->id);
    free(n->of_frame);
}

/* Number the distinct function names of the frame table (many addresses share a
 * name), writing each new one to the page's "frames" array as it is met. */
static int
html_frames(probe_writer *w, const probe_snapshot *snap, struct html_names *n)
{
    size_t nf = probe_snapshot_frame_count(snap);

    TRY(probe_writer_puts(w, ",\"frames\":["));
    if (!nf)
        return writer_putc(w, ']');
    n->cap = 16;
    while (n->cap < 2 * nf)
        n->cap *= 2;
    n->slot = calloc(n->cap, sizeof(*n->slot));
    n->id = calloc(n->cap, sizeof(*n->id));
    n->of_frame = calloc(nf, sizeof(*n->of_frame));
    if (!n->slot || !n->id || !n->of_frame)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        const probe_frame_info *fr = probe_snapshot_frame(snap, i);
        const char *name = fr && fr->function ? fr->function : "?";
        size_t k = html_hash(name) & (n->cap - 1);

        while (n->slot[k] && strcmp(n->slot[k], name) != 0)
            k = (k + 1) & (n->cap - 1);
        if (!n->slot[k]) {
            n->slot[k] = name;
            n->id[k] = n->count;
            if (n->count++)
                TRY(writer_putc(w, ','));
            TRY(jsonstr_write_html(w, name));
        }
        n->of_frame[i] = n->id[k];
    }
    return writer_putc(w, ']');
}

/* Sampled stacks: [thread or -1, tid, ns, blocked, [name ids, root first]]. */
static int
html_stacks(probe_writer *w, const probe_snapshot *snap, const struct html_names *n)
{
    size_t count = probe_snapshot_sample_count(snap);
    size_t nf = probe_snapshot_frame_count(snap);
    int first = 1;

    TRY(probe_writer_puts(w, ",\"stacks\":["));
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *x = probe_snapshot_sample(snap, i);

        if (!x)
            continue;
        TRY(probe_writer_puts(w, first ? "\n[" : ",\n["));
        first = 0;
        if (x->thread == PROBE_SAMPLE_NO_THREAD)
            TRY(probe_writer_puts(w, "-1"));
        else
            TRY(probe_writer_printf(w, "%zu", x->thread));
        TRY(probe_writer_printf(w, ",%" PRIu64 ",%" PRIu64 ",%d,[", x->tid, x->cpu_ns,
                                x->blocked ? 1 : 0));
        for (unsigned d = 0; d < x->depth; d++) {
            size_t f = x->frame_ids ? x->frame_ids[d] : SIZE_MAX;

            /* Every frame id indexes the table; an out-of-range one would be a bug
             * in the snapshot, shown as "?" rather than trusted. */
            if (f < nf && n->of_frame)
                TRY(probe_writer_printf(w, d ? ",%zu" : "%zu", n->of_frame[f]));
            else
                TRY(probe_writer_puts(w, d ? ",-1" : "-1"));
        }
        TRY(probe_writer_puts(w, "]]"));
    }
    return writer_putc(w, ']');
}

/* Sites: [name, kind, file, line, function, calls, total, self, p50, p99, value]. */
static int
html_sites(probe_writer *w, const probe_snapshot *snap)
{
    size_t count = probe_snapshot_site_count(snap);

    TRY(probe_writer_puts(w, ",\"sites\":["));
    for (size_t i = 0; i < count; i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        TRY(probe_writer_puts(w, i ? ",\n[" : "\n["));
        if (!s) { /* keep the indexes the nodes use */
            TRY(probe_writer_puts(w, "null,-1,null,0,null,0,0,0,0,0,0]"));
            continue;
        }
        TRY(jsonstr_write_html(w, s->name));
        TRY(probe_writer_printf(w, ",%d,", (int)s->kind));
        TRY(jsonstr_write_html(w, s->file));
        TRY(probe_writer_printf(w, ",%u,", s->line));
        TRY(jsonstr_write_html(w, s->function));
        TRY(probe_writer_printf(w,
                                ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                                ",%" PRId64 "]",
                                s->calls, s->total_ns, s->self_ns, s->p50_ns, s->p99_ns,
                                s->value));
    }
    return writer_putc(w, ']');
}

/* Call tree nodes: [parent or -1, site, calls, total, self]; parents come first. */
static int
html_nodes(probe_writer *w, const probe_snapshot *snap)
{
    size_t count = probe_snapshot_node_count(snap);
    int first = 1;

    TRY(probe_writer_puts(w, ",\"nodes\":["));
    for (size_t i = 0; i < count; i++) {
        const probe_node_info *n = probe_snapshot_node(snap, i);

        if (!n)
            continue;
        TRY(probe_writer_puts(w, first ? "\n[" : ",\n["));
        first = 0;
        if (n->parent == PROBE_NODE_ROOT || n->parent >= i)
            TRY(probe_writer_puts(w, "-1"));
        else
            TRY(probe_writer_printf(w, "%zu", n->parent));
        TRY(probe_writer_printf(w, ",%zu,%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]", n->site,
                                n->calls, n->total_ns, n->self_ns));
    }
    return writer_putc(w, ']');
}

/* Threads: [tid, name, live, scopes]. */
static int
html_threads(probe_writer *w, const probe_snapshot *snap)
{
    size_t count = probe_snapshot_thread_count(snap);

    TRY(probe_writer_puts(w, ",\"threads\":["));
    for (size_t i = 0; i < count; i++) {
        const probe_thread_info *t = probe_snapshot_thread(snap, i);

        if (i)
            TRY(writer_putc(w, ','));
        if (!t) {
            TRY(probe_writer_puts(w, "[0,\"\",0,0]"));
            continue;
        }
        TRY(probe_writer_printf(w, "[%" PRIu64 ",", t->tid));
        TRY(jsonstr_write_html(w, t->name ? t->name : ""));
        TRY(probe_writer_printf(w, ",%d,%" PRIu64 "]", t->live ? 1 : 0, t->scopes));
    }
    return writer_putc(w, ']');
}

/* The recorded program's arguments, from the snapshot (a report loaded back names
 * the program, not the loader), joined by spaces; NULL when unknown. */
static char *
html_cmdline(const probe_snapshot *snap)
{
    size_t len = snap->command_len;
    char *buf = snap->command && len ? malloc(len) : NULL;

    if (!buf)
        return NULL;
    memcpy(buf, snap->command, len);
    for (size_t i = 0; i + 1 < len; i++) /* arguments are NUL-separated */
        if (buf[i] == '\0')
            buf[i] = ' ';
    return buf;
}

static int
html_facts(probe_writer *w, const probe_snapshot *snap)
{
    const probe_clock_info *c = probe_snapshot_clock(snap);
    const probe_sampler_info *si = probe_snapshot_sampler_info(snap);
    const probe_loss_info *l = probe_snapshot_losses(snap);
    const probe_rusage *ru = probe_snapshot_rusage(snap);
    char *cmd = html_cmdline(snap);
    int r;

    r = probe_writer_puts(w, "\"facts\":{\"written_by\":");
    if (r == 0)
        r = jsonstr_write_html(w, cmd);
    free(cmd);
    TRY(r);
    /* The recorded process's, also for a loaded report; null when unknown. */
    if (snap->pid)
        TRY(probe_writer_printf(w, ",\"pid\":%" PRIu64, snap->pid));
    else
        TRY(probe_writer_puts(w, ",\"pid\":null"));
    if (c) {
        TRY(probe_writer_puts(w, ",\"clock\":"));
        TRY(jsonstr_write_html(w, c->name));
        /* ns_per_tick in integer picoseconds: printf("%g") follows LC_NUMERIC. */
        TRY(probe_writer_printf(w, ",\"ps_per_tick\":%" PRIu64 ",\"elapsed_ns\":%" PRIu64,
                                (uint64_t)(c->ns_per_tick * 1000.0 + 0.5), c->elapsed_ns));
    }
    if (si && si->interval_ns)
        TRY(probe_writer_printf(w,
                                ",\"sampler\":{\"interval_ns\":%" PRIu64
                                ",\"mode\":\"%s\",\"signals\":%" PRIu64
                                ",\"expirations\":%" PRIu64 ",\"dropped\":%" PRIu64
                                ",\"dropped_expirations\":%" PRIu64 "}",
                                si->interval_ns, si->mode == PROBE_SAMPLE_WALL ? "wall" : "cpu",
                                si->signals, si->expirations, si->dropped,
                                si->dropped_expirations));
    if (l)
        TRY(probe_writer_printf(w,
                                ",\"losses\":{\"depth_overflow\":%" PRIu64
                                ",\"unbalanced\":%" PRIu64 ",\"edges_dropped\":%" PRIu64
                                ",\"sites_dropped\":%" PRIu64 ",\"threads_unlisted\":%" PRIu64
                                ",\"events_dropped\":%" PRIu64 "}",
                                l->depth_overflow, l->unbalanced, l->edges_dropped,
                                l->sites_dropped, l->threads_unlisted, l->events_dropped));
    if (ru)
        TRY(probe_writer_printf(w,
                                ",\"rusage\":{\"user_ns\":%" PRIu64 ",\"system_ns\":%" PRIu64
                                ",\"max_rss_bytes\":%" PRIu64 "}",
                                ru->user_ns, ru->system_ns, ru->max_rss_bytes));
    return writer_putc(w, '}');
}

static int
html_data(probe_writer *w, const probe_snapshot *snap)
{
    struct html_names names = {0};
    int r;

    TRY(writer_putc(w, '{'));
    TRY(html_facts(w, snap));
    TRY(html_threads(w, snap));
    TRY(html_sites(w, snap));
    TRY(html_nodes(w, snap));
    r = html_frames(w, snap, &names);
    if (r == 0)
        r = html_stacks(w, snap, &names);
    html_names_free(&names);
    TRY(r);
    return writer_putc(w, '}');
}

int
html_check_options(const char *options, struct options_error *err)
{
    return options && *options ? options_fail_none(err, "html", options) : 0;
}

int
html_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    (void)user;
    TRY(html_check_options(options, NULL));
    TRY(probe_writer_puts(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                             "<meta name=\"viewport\" content=\"width=device-width\">\n"
                             "<title>libprobe report</title>\n<style>\n"));
    TRY(probe_writer_write(w, html_app_css, sizeof(html_app_css) - 1));
    TRY(probe_writer_puts(w, "</style></head>\n<body>\n"));
    TRY(probe_writer_write(w, html_body, sizeof(html_body) - 1));
    TRY(probe_writer_puts(w, "<script id=\"probe-data\" type=\"application/json\">\n"));
    TRY(html_data(w, snap));
    TRY(probe_writer_puts(w, "\n</script>\n<script>\n"));
    TRY(probe_writer_write(w, html_app_js, sizeof(html_app_js) - 1));
    return probe_writer_puts(w, "</script>\n</body></html>\n");
}
