/*
 * The snapshot's timeline events replayed thread by thread with every BEGIN matched
 * by an END: what a flight recorder keeps is the last N events of each thread, so its
 * front may hold ENDs whose BEGINs were overwritten, and scopes still open when the
 * snapshot was taken have no END yet. Readers of B/E and O/C events want neither.
 */
#include "timeline.h"
#include "writer.h"

#include <stdlib.h>

size_t
timeline_begin_count(const probe_snapshot *snap)
{
    size_t n = probe_snapshot_event_count(snap);
    size_t begins = 0;

    for (size_t i = 0; i < n; i++) {
        const probe_event_info *e = probe_snapshot_event(snap, i);

        if (e && e->kind == PROBE_EVENT_BEGIN)
            begins++;
    }
    return begins;
}

/* The next run of one thread's events: [*pos, *ret_end). @return 0 when none is left. */
static int
timeline_next_run(const probe_snapshot *snap, size_t count, size_t *pos,
                  struct timeline_thread *t, size_t *ret_end)
{
    const probe_event_info *e = NULL;

    while (*pos < count && !(e = probe_snapshot_event(snap, *pos)))
        (*pos)++;
    if (!e)
        return 0;

    size_t end = *pos;
    uint64_t last = 0;

    t->thread = e->thread;
    t->first_ns = e->ts_ns;
    t->begins = 0;
    for (; end < count; end++) {
        const probe_event_info *x = probe_snapshot_event(snap, end);

        if (!x)
            continue;
        if (x->thread != t->thread)
            break;
        if (x->ts_ns > last)
            last = x->ts_ns;
    }
    t->last_ns = last;
    *ret_end = end;
    return 1;
}

/* Count the BEGINs that will be kept (all of them) and find the first kept event's
 * time: the leading unmatched ENDs are skipped, so the run starts after them. */
static void
timeline_measure(const probe_snapshot *snap, size_t from, size_t to,
                 struct timeline_thread *t)
{
    size_t depth = 0;
    int started = 0;

    for (size_t i = from; i < to; i++) {
        const probe_event_info *e = probe_snapshot_event(snap, i);

        if (!e)
            continue;
        if (e->kind == PROBE_EVENT_END && depth == 0)
            continue;
        if (!started) {
            t->first_ns = e->ts_ns;
            started = 1;
        }
        if (e->kind == PROBE_EVENT_BEGIN) {
            depth++;
            t->begins++;
        } else if (e->kind == PROBE_EVENT_END) {
            depth--;
        }
    }
    if (!started)
        t->first_ns = t->last_ns;
}

static int
timeline_replay_run(const probe_snapshot *snap, size_t from, size_t to,
                    const struct timeline_thread *t, const struct timeline_ops *ops,
                    void *ctx, const probe_event_info **stack, uint64_t *repaired)
{
    size_t depth = 0;
    uint64_t now = t->first_ns;

    for (size_t i = from; i < to; i++) {
        const probe_event_info *e = probe_snapshot_event(snap, i);
        struct timeline_event out;

        if (!e)
            continue;
        if (e->kind == PROBE_EVENT_END && depth == 0) {
            (*repaired)++;
            continue;
        }
        if (e->ts_ns > now)
            now = e->ts_ns;
        out.kind = e->kind;
        out.ts_ns = now;
        out.site = e->site;
        out.name = e->name;
        out.value = e->value;
        out.synthetic = 0;
        if (e->kind == PROBE_EVENT_BEGIN) {
            stack[depth++] = e;
        } else if (e->kind == PROBE_EVENT_END) {
            const probe_event_info *b = stack[--depth];

            out.site = b->site;
            out.name = b->name;
        }
        TRY(ops->event(ctx, t, &out));
    }
    while (depth > 0) {
        const probe_event_info *b = stack[--depth];
        struct timeline_event out = {
            .kind = PROBE_EVENT_END,
            .ts_ns = t->last_ns > now ? t->last_ns : now,
            .site = b->site,
            .name = b->name,
            .synthetic = 1,
        };

        (*repaired)++;
        TRY(ops->event(ctx, t, &out));
    }
    return 0;
}

int
timeline_replay(const probe_snapshot *snap, const struct timeline_ops *ops, void *ctx,
                uint64_t *ret_repaired)
{
    size_t count = probe_snapshot_event_count(snap);
    uint64_t repaired = 0;
    int r = 0;

    if (count == 0) {
        if (ret_repaired)
            *ret_repaired = 0;
        return 0;
    }

    /* Deep enough for any run: a thread cannot nest more BEGINs than it has events. */
    const probe_event_info **stack = calloc(count, sizeof(*stack));

    if (!stack)
        return PROBE_ENOMEM;

    size_t pos = 0, end;
    struct timeline_thread t;

    while (r == 0 && timeline_next_run(snap, count, &pos, &t, &end)) {
        timeline_measure(snap, pos, end, &t);
        if (ops->thread_begin)
            r = ops->thread_begin(ctx, &t);
        if (r == 0)
            r = timeline_replay_run(snap, pos, end, &t, ops, ctx, stack, &repaired);
        if (r == 0 && ops->thread_end)
            r = ops->thread_end(ctx, &t);
        pos = end;
    }
    free(stack);
    if (r == 0 && ret_repaired)
        *ret_repaired = repaired;
    return r;
}
