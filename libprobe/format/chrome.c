/*
 * The "chrome" formatter: the Trace Event Format (JSON Object form) that Perfetto and
 * chrome://tracing open. With a timeline (tracing, <probe/trace.h>) every event is
 * written: scopes as B/E pairs, counters as C, instants as i. Without one, the
 * calling-context tree is laid out as nested complete (X) events on one synthetic
 * track, so the aggregate reads as a flame chart; its times are not real. With the
 * heap profiler on, a timeline also gets a "heap in use" counter track (C events).
 * Documented in docs/formats.md.
 */
#include "chrome.h"
#include "options.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/heapsum.h"
#include "core/snapshot.h"
#include "jsonstr.h"
#include "timeline.h"
#include "writer.h"

/* The synthetic track of the aggregate: no kernel thread has tid 0. */
#define CHROME_AGGREGATE_TID 0
#define CHROME_AGGREGATE_NAME "aggregate (not a timeline)"

struct chrome_ctx {
    const probe_snapshot *snap;
    probe_writer *w;
    long pid;
    int first; /* no event written yet */
};

/* "," and a newline before every event but the first. */
static int
chrome_sep(struct chrome_ctx *c)
{
    if (c->first) {
        c->first = 0;
        return writer_putc(c->w, '\n');
    }
    return probe_writer_puts(c->w, ",\n");
}

/* Nanoseconds as microseconds with 3 decimals, by integer arithmetic: printf("%f")
 * would follow the program's LC_NUMERIC. */
static int
chrome_us(probe_writer *w, const char *key, uint64_t ns)
{
    return probe_writer_printf(w, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000u,
                               (unsigned)(ns % 1000u));
}

static uint64_t
chrome_tid(const probe_snapshot *snap, size_t thread)
{
    const probe_thread_info *t = probe_snapshot_thread(snap, thread);

    /* A thread the snapshot does not list: its index stands in, on a track of its own. */
    return t ? t->tid : (uint64_t)thread + 1;
}

static const char *
chrome_site_name(const probe_snapshot *snap, size_t site)
{
    const probe_site_info *s = probe_snapshot_site(snap, site);

    return s ? s->name : NULL;
}

/* {"ph":"M","name":"thread_name",...,"args":{"name":...}}; an unnamed thread is
 * "thread <tid>". */
static int
chrome_thread_name(struct chrome_ctx *c, uint64_t tid, const char *name)
{
    TRY(chrome_sep(c));
    TRY(probe_writer_printf(c->w,
                            "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%ld,"
                            "\"tid\":%" PRIu64 ",\"args\":{\"name\":",
                            c->pid, tid));
    if (name && *name)
        TRY(jsonstr_write(c->w, name));
    else
        TRY(probe_writer_printf(c->w, "\"thread %" PRIu64 "\"", tid));
    return probe_writer_puts(c->w, "}}");
}

static int
chrome_process_name(struct chrome_ctx *c)
{
    TRY(chrome_sep(c));
    return probe_writer_printf(c->w,
                               "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%ld,"
                               "\"tid\":0,\"args\":{\"name\":\"libprobe\"}}",
                               c->pid);
}

/* ---- timeline ---------------------------------------------------------------- */

static int
chrome_event(void *ctx, const struct timeline_thread *t, const struct timeline_event *e)
{
    struct chrome_ctx *c = ctx;
    probe_writer *w = c->w;
    const char *ph, *cat;
    const char *name = e->name;

    switch (e->kind) {
    case PROBE_EVENT_BEGIN:
        ph = "B";
        cat = "scope";
        break;
    case PROBE_EVENT_END:
        ph = "E";
        cat = "scope";
        break;
    case PROBE_EVENT_COUNTER:
        ph = "C";
        cat = "counter";
        break;
    case PROBE_EVENT_INSTANT:
        ph = "i";
        cat = "instant";
        break;
    default:
        return 0; /* a kind this writer does not know yet */
    }
    if (!name && e->site != SIZE_MAX)
        name = chrome_site_name(c->snap, e->site);
    TRY(chrome_sep(c));
    TRY(probe_writer_printf(w, "{\"ph\":\"%s\",\"cat\":\"%s\",\"name\":", ph, cat));
    TRY(jsonstr_write(w, name ? name : "?"));
    TRY(probe_writer_printf(w, ",\"pid\":%ld,\"tid\":%" PRIu64, c->pid,
                            chrome_tid(c->snap, t->thread)));
    TRY(chrome_us(w, "ts", e->ts_ns));
    switch (e->kind) {
    case PROBE_EVENT_COUNTER:
        /* The value is this thread's: "id" gives each thread its own counter track. */
        return probe_writer_printf(
            w, ",\"id\":\"%" PRIu64 "\",\"args\":{\"value\":%" PRId64 "}}",
            chrome_tid(c->snap, t->thread), e->value);
    case PROBE_EVENT_INSTANT:
        return probe_writer_puts(w, ",\"s\":\"t\"}");
    case PROBE_EVENT_END:
        if (e->synthetic)
            return probe_writer_puts(w, ",\"args\":{\"still_open\":true}}");
        return writer_putc(w, '}');
    default:
        return writer_putc(w, '}');
    }
}

/* The heap profiler's in-use estimate over time, one process-wide counter track
 * (tid 0: no thread owns it), in whole bytes. */
static int
chrome_heap(struct chrome_ctx *c)
{
    const struct heapsum *h = c->snap->heap;

    for (size_t i = 0; h && i < h->npoints; i++) {
        double v = h->points[i].inuse;

        TRY(chrome_sep(c));
        TRY(probe_writer_printf(c->w, "{\"ph\":\"C\",\"cat\":\"heap\",\"name\":"
                                      "\"heap in use (bytes, sampled estimate)\","
                                      "\"pid\":%ld,\"tid\":0",
                                c->pid));
        TRY(chrome_us(c->w, "ts", h->points[i].ts_ns));
        TRY(probe_writer_printf(c->w, ",\"args\":{\"bytes\":%" PRIu64 "}}",
                                v > 0 ? (uint64_t)(v + 0.5) : 0));
    }
    return 0;
}

static int
chrome_timeline(struct chrome_ctx *c)
{
    static const struct timeline_ops ops = {.event = chrome_event};
    size_t n = probe_snapshot_thread_count(c->snap);

    for (size_t i = 0; i < n; i++) {
        const probe_thread_info *t = probe_snapshot_thread(c->snap, i);

        if (t)
            TRY(chrome_thread_name(c, t->tid, t->name));
    }
    TRY(timeline_replay(c->snap, &ops, c, NULL));
    return chrome_heap(c);
}

/* ---- aggregate --------------------------------------------------------------- */

/*
 * Lay the calling-context tree out as nested intervals: a node lasts its total time
 * (or its children's, if longer: a scope still open has no total yet), its children
 * follow one another from its start, and top-level nodes follow one another from 0.
 * Nodes come parents first, so one pass up sizes them and one pass down places them.
 */
static int
chrome_layout(const probe_snapshot *snap, size_t count, uint64_t *start, uint64_t *dur)
{
    uint64_t *kids = calloc(count ? count : 1, sizeof(*kids)); /* children's time */
    uint64_t top = 0;

    if (!kids)
        return PROBE_ENOMEM;
    for (size_t i = count; i-- > 0;) {
        const probe_node_info *n = probe_snapshot_node(snap, i);

        dur[i] = 0;
        if (!n)
            continue;
        dur[i] = n->total_ns > kids[i] ? n->total_ns : kids[i];
        if (n->parent != PROBE_NODE_ROOT && n->parent < i)
            kids[n->parent] += dur[i];
    }
    /* kids[] now serves as each node's next free offset. */
    for (size_t i = 0; i < count; i++) {
        const probe_node_info *n = probe_snapshot_node(snap, i);

        start[i] = 0;
        if (!n)
            continue;
        if (n->parent != PROBE_NODE_ROOT && n->parent < i) {
            start[i] = kids[n->parent];
            kids[n->parent] += dur[i];
        } else {
            start[i] = top;
            top += dur[i];
        }
        kids[i] = start[i];
    }
    free(kids);
    return 0;
}

static int
chrome_node(struct chrome_ctx *c, const probe_node_info *n, uint64_t start, uint64_t dur)
{
    probe_writer *w = c->w;
    const char *name = chrome_site_name(c->snap, n->site);

    TRY(chrome_sep(c));
    TRY(probe_writer_puts(w, "{\"ph\":\"X\",\"cat\":\"aggregate\",\"name\":"));
    TRY(jsonstr_write(w, name ? name : "?"));
    TRY(probe_writer_printf(w, ",\"pid\":%ld,\"tid\":%d", c->pid, CHROME_AGGREGATE_TID));
    TRY(chrome_us(w, "ts", start));
    TRY(chrome_us(w, "dur", dur));
    return probe_writer_printf(w,
                               ",\"args\":{\"calls\":%" PRIu64 ",\"total_ns\":%" PRIu64
                               ",\"self_ns\":%" PRIu64 "}}",
                               n->calls, n->total_ns, n->self_ns);
}

static int
chrome_aggregate(struct chrome_ctx *c)
{
    size_t count = probe_snapshot_node_count(c->snap);
    uint64_t *start = calloc(count ? count : 1, sizeof(*start));
    uint64_t *dur = calloc(count ? count : 1, sizeof(*dur));
    int r = start && dur ? 0 : PROBE_ENOMEM;

    if (r == 0)
        r = chrome_thread_name(c, CHROME_AGGREGATE_TID, CHROME_AGGREGATE_NAME);
    if (r == 0)
        r = chrome_layout(c->snap, count, start, dur);
    /* Parents first, so at an equal start the enclosing event comes first. A node that
     * lasted nothing (and so everything under it) is left out. */
    for (size_t i = 0; i < count && r == 0; i++) {
        const probe_node_info *n = probe_snapshot_node(c->snap, i);

        if (n && dur[i] > 0)
            r = chrome_node(c, n, start[i], dur[i]);
    }
    free(start);
    free(dur);
    return r;
}

/* ---- document ---------------------------------------------------------------- */

static int
chrome_other_data(struct chrome_ctx *c, int timeline)
{
    const probe_clock_info *clock = probe_snapshot_clock(c->snap);
    const probe_loss_info *loss = probe_snapshot_losses(c->snap);
    probe_writer *w = c->w;

    TRY(probe_writer_puts(w,
                          "\"otherData\":{\"schema\":\"" PROBE_SCHEMA "\",\"clock\":"));
    TRY(jsonstr_write(w, clock ? clock->name : NULL));
    TRY(probe_writer_printf(w, ",\"source\":\"%s\"",
                            timeline ? "timeline" : "aggregate"));
    return probe_writer_printf(w, ",\"events_dropped\":%" PRIu64 "}",
                               loss ? loss->events_dropped : 0);
}

int
chrome_check_options(const char *options, struct options_error *err)
{
    return options && *options ? options_fail_none(err, "chrome", options) : 0;
}

int
chrome_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    struct chrome_ctx c = {.snap = snap, .w = w, .pid = (long)snap->pid, .first = 1};
    /* A program with no scopes has no aggregate to draw: its heap track is the
     * timeline then. */
    int timeline = probe_snapshot_event_count(snap) > 0 ||
                   (probe_snapshot_node_count(snap) == 0 && snap->heap &&
                    snap->heap->npoints > 1);

    (void)user;
    TRY(chrome_check_options(options, NULL));
    TRY(probe_writer_puts(w, "{\"traceEvents\":["));
    TRY(chrome_process_name(&c));
    TRY(timeline ? chrome_timeline(&c) : chrome_aggregate(&c));
    TRY(probe_writer_puts(w, "\n],\n\"displayTimeUnit\":\"ns\",\n"));
    TRY(chrome_other_data(&c, timeline));
    return probe_writer_puts(w, "}\n");
}
