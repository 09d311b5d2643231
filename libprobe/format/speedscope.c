/*
 * The "speedscope" formatter: the speedscope file format
 * (https://www.speedscope.app/file-format-schema.json). With a timeline (tracing,
 * <probe/trace.h>) one "evented" profile per thread opens and closes a frame per
 * scope; without one, a single "sampled" profile holds each calling-context path
 * weighted by its self time. Frames are scope sites. When the sampler ran, one more
 * "sampled" profile per thread holds its sampled stacks, weighted by their time;
 * their frames are the native ones, after the sites'. Documented in docs/formats.md.
 */
#include "speedscope.h"
#include "options.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/sampler.h>

#include "jsonstr.h"
#include "timeline.h"
#include "writer.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"
#define SPEEDSCOPE_NO_FRAME SIZE_MAX

struct speedscope_ctx {
    const probe_snapshot *snap;
    probe_writer *w;
    size_t *frame; /* site index -> frame index, or SPEEDSCOPE_NO_FRAME */
    size_t site_count;
    int first_profile;
    int first_event;
    int in_profile; /* the current thread has a profile */
    /* The sampler's native frames: distinct names, numbered after the sites'. */
    const char **native;        /* open-addressing table of names */
    size_t *native_frame;       /* their frame indexes */
    size_t native_cap;          /* a power of two, or 0 */
    const char **native_names;  /* by frame index - site_frames */
    size_t native_count;
    size_t site_frames;         /* frames before the native ones */
};

static uint64_t
speedscope_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211u;
    return h;
}

/* The slot of @name in the native table: where it is, or the empty one to put it. */
static size_t
speedscope_native_slot(const struct speedscope_ctx *c, const char *name)
{
    size_t i = speedscope_hash(name) & (c->native_cap - 1);

    while (c->native[i] && strcmp(c->native[i], name) != 0)
        i = (i + 1) & (c->native_cap - 1);
    return i;
}

/* Number the distinct frame names of every sampled stack, after @site_frames. */
static int
speedscope_number_natives(struct speedscope_ctx *c, size_t site_frames)
{
    size_t n = probe_snapshot_sample_count(c->snap), total = 0, next = site_frames;

    c->site_frames = site_frames;
    for (size_t i = 0; i < n; i++)
        total += probe_snapshot_sample(c->snap, i)->depth + 1; /* + "[blocked]" */
    if (!total)
        return 0;
    c->native_cap = 16;
    while (c->native_cap < 2 * total)
        c->native_cap *= 2;
    c->native = calloc(c->native_cap, sizeof(*c->native));
    c->native_frame = calloc(c->native_cap, sizeof(*c->native_frame));
    c->native_names = calloc(total, sizeof(*c->native_names));
    if (!c->native || !c->native_frame || !c->native_names)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const probe_sample_info *x = probe_snapshot_sample(c->snap, i);
        for (unsigned d = 0; d <= x->depth; d++) {
            const char *name = d < x->depth ? x->frames[d] : PROBE_SAMPLE_BLOCKED_FRAME;
            if (d == x->depth && !x->blocked)
                break;
            size_t k = speedscope_native_slot(c, name);
            if (!c->native[k]) {
                c->native[k] = name;
                c->native_frame[k] = next++;
                c->native_names[c->native_count++] = name;
            }
        }
    }
    return 0;
}

static size_t
speedscope_frame(const struct speedscope_ctx *c, size_t site)
{
    return site < c->site_count ? c->frame[site] : SPEEDSCOPE_NO_FRAME;
}

/* Give every marked site a frame index, in site order; @return the frame count. */
static size_t
speedscope_number_frames(struct speedscope_ctx *c)
{
    size_t frames = 0;

    for (size_t i = 0; i < c->site_count; i++) {
        if (c->frame[i] != SPEEDSCOPE_NO_FRAME)
            c->frame[i] = frames++;
    }
    return frames;
}

/* Mark the sites that become frames: those of the BEGIN events (timeline) or of the
 * tree's nodes (aggregate). */
static void
speedscope_mark_sites(struct speedscope_ctx *c, int timeline)
{
    for (size_t i = 0; i < c->site_count; i++)
        c->frame[i] = SPEEDSCOPE_NO_FRAME;
    if (timeline) {
        size_t n = probe_snapshot_event_count(c->snap);

        for (size_t i = 0; i < n; i++) {
            const probe_event_info *e = probe_snapshot_event(c->snap, i);

            if (e && e->kind == PROBE_EVENT_BEGIN && e->site < c->site_count)
                c->frame[e->site] = 0;
        }
    } else {
        size_t n = probe_snapshot_node_count(c->snap);

        for (size_t i = 0; i < n; i++) {
            const probe_node_info *node = probe_snapshot_node(c->snap, i);

            if (node && node->site < c->site_count)
                c->frame[node->site] = 0;
        }
    }
    speedscope_number_frames(c);
}

static int
speedscope_frames(struct speedscope_ctx *c)
{
    probe_writer *w = c->w;
    int first = 1;

    TRY(probe_writer_puts(w, "\"shared\":{\"frames\":["));
    for (size_t i = 0; i < c->site_count; i++) {
        const probe_site_info *s = probe_snapshot_site(c->snap, i);

        if (c->frame[i] == SPEEDSCOPE_NO_FRAME || !s)
            continue;
        TRY(probe_writer_puts(w, first ? "\n" : ",\n"));
        first = 0;
        TRY(probe_writer_puts(w, "{\"name\":"));
        TRY(jsonstr_write(w, s->name && *s->name ? s->name : "?"));
        if (s->file) {
            TRY(probe_writer_puts(w, ",\"file\":"));
            TRY(jsonstr_write(w, s->file));
            TRY(probe_writer_printf(w, ",\"line\":%u", s->line));
        }
        TRY(writer_putc(w, '}'));
    }
    for (size_t i = 0; i < c->native_count; i++) { /* the native frames, in order */
        TRY(probe_writer_puts(w, first ? "\n" : ",\n"));
        first = 0;
        TRY(probe_writer_puts(w, "{\"name\":"));
        TRY(jsonstr_write(w, c->native_names[i]));
        TRY(writer_putc(w, '}'));
    }
    return probe_writer_puts(w, "\n]}");
}

/* ---- evented profiles (timeline) --------------------------------------------- */

static int
speedscope_thread_begin(void *ctx, const struct timeline_thread *t)
{
    struct speedscope_ctx *c = ctx;
    probe_writer *w = c->w;
    const probe_thread_info *th = probe_snapshot_thread(c->snap, t->thread);

    /* A thread with no scope on its timeline (only counters, instants, or ENDs whose
     * BEGINs were overwritten) has nothing to show. */
    c->in_profile = t->begins > 0;
    if (!c->in_profile)
        return 0;
    TRY(probe_writer_puts(w, c->first_profile ? "\n" : ",\n"));
    c->first_profile = 0;
    c->first_event = 1;
    TRY(probe_writer_puts(w, "{\"type\":\"evented\",\"name\":"));
    if (th && th->name && *th->name)
        TRY(jsonstr_write(w, th->name));
    else if (th)
        TRY(probe_writer_printf(w, "\"%" PRIu64 "\"", th->tid));
    else
        TRY(probe_writer_printf(w, "\"thread #%zu\"", t->thread));
    return probe_writer_printf(w,
                               ",\"unit\":\"nanoseconds\",\"startValue\":%" PRIu64
                               ",\"endValue\":%" PRIu64 ",\"events\":[",
                               t->first_ns, t->last_ns);
}

static int
speedscope_event(void *ctx, const struct timeline_thread *t,
                 const struct timeline_event *e)
{
    struct speedscope_ctx *c = ctx;

    (void)t;
    if (!c->in_profile || (e->kind != PROBE_EVENT_BEGIN && e->kind != PROBE_EVENT_END))
        return 0;

    size_t frame = speedscope_frame(c, e->site);

    /* Marking gave every BEGIN's site a frame, and an END carries its BEGIN's site. */
    if (frame == SPEEDSCOPE_NO_FRAME)
        return PROBE_EINVAL;
    TRY(probe_writer_puts(c->w, c->first_event ? "\n" : ",\n"));
    c->first_event = 0;
    return probe_writer_printf(c->w, "{\"type\":\"%c\",\"frame\":%zu,\"at\":%" PRIu64 "}",
                               e->kind == PROBE_EVENT_BEGIN ? 'O' : 'C', frame, e->ts_ns);
}

static int
speedscope_thread_end(void *ctx, const struct timeline_thread *t)
{
    struct speedscope_ctx *c = ctx;

    (void)t;
    return c->in_profile ? probe_writer_puts(c->w, "\n]}") : 0;
}

static int
speedscope_evented(struct speedscope_ctx *c)
{
    static const struct timeline_ops ops = {
        .thread_begin = speedscope_thread_begin,
        .event = speedscope_event,
        .thread_end = speedscope_thread_end,
    };

    return timeline_replay(c->snap, &ops, c, NULL);
}

/* ---- sampled profile (aggregate) --------------------------------------------- */

/* Node @n's path as frame indexes, top level first. @path has room for the deepest. */
static int
speedscope_sample(struct speedscope_ctx *c, const probe_node_info *n, size_t *path,
                  size_t room)
{
    size_t k = 0;

    /* Walk up to the top level; parents come first, so the walk ends. */
    for (const probe_node_info *cur = n; cur && k < room;) {
        path[k++] = speedscope_frame(c, cur->site);
        cur = cur->parent == PROBE_NODE_ROOT || cur->parent >= cur->index
                  ? NULL
                  : probe_snapshot_node(c->snap, cur->parent);
    }
    TRY(writer_putc(c->w, '['));
    while (k-- > 0) {
        if (path[k] == SPEEDSCOPE_NO_FRAME)
            return PROBE_EINVAL;
        TRY(probe_writer_printf(c->w, k > 0 ? "%zu," : "%zu", path[k]));
    }
    return writer_putc(c->w, ']');
}

static int
speedscope_samples(struct speedscope_ctx *c, size_t *path, size_t room)
{
    size_t count = probe_snapshot_node_count(c->snap);
    int first = 1;

    TRY(probe_writer_puts(c->w, ",\"samples\":["));
    for (size_t i = 0; i < count; i++) {
        const probe_node_info *n = probe_snapshot_node(c->snap, i);

        if (!n || n->self_ns == 0)
            continue;
        TRY(probe_writer_puts(c->w, first ? "\n" : ",\n"));
        first = 0;
        TRY(speedscope_sample(c, n, path, room));
    }
    TRY(probe_writer_puts(c->w, "\n],\"weights\":["));
    first = 1;
    for (size_t i = 0; i < count; i++) {
        const probe_node_info *n = probe_snapshot_node(c->snap, i);

        if (!n || n->self_ns == 0)
            continue;
        TRY(probe_writer_printf(c->w, first ? "%" PRIu64 : ",%" PRIu64, n->self_ns));
        first = 0;
    }
    return probe_writer_puts(c->w, "]}");
}

static int
speedscope_sampled(struct speedscope_ctx *c)
{
    size_t count = probe_snapshot_node_count(c->snap);
    unsigned deepest = 0;
    uint64_t total = 0;

    for (size_t i = 0; i < count; i++) {
        const probe_node_info *n = probe_snapshot_node(c->snap, i);

        if (!n)
            continue;
        if (n->depth > deepest)
            deepest = n->depth;
        total += n->self_ns;
    }
    /* Clear first_profile: the sampler's profiles that follow need their comma. */
    TRY(probe_writer_puts(c->w, c->first_profile ? "\n" : ",\n"));
    c->first_profile = 0;
    TRY(probe_writer_printf(
        c->w,
        "{\"type\":\"sampled\",\"name\":\"aggregate (calling-context "
        "tree)\",\"unit\":\"nanoseconds\",\"startValue\":0,"
        "\"endValue\":%" PRIu64,
        total));

    size_t room = (size_t)deepest + 1;
    size_t *path = calloc(room, sizeof(*path));

    if (!path)
        return PROBE_ENOMEM;

    int r = speedscope_samples(c, path, room);

    free(path);
    return r;
}

/* ---- the sampler's stacks ------------------------------------------------------ */

/* Samples are grouped by thread (snapshot order): one profile per thread. */
static int
speedscope_sampler_thread(struct speedscope_ctx *c, size_t from, size_t to)
{
    const probe_sample_info *x0 = probe_snapshot_sample(c->snap, from);
    const probe_thread_info *th =
        x0->thread != PROBE_SAMPLE_NO_THREAD ? probe_snapshot_thread(c->snap, x0->thread) : NULL;
    int wall = probe_snapshot_sampler_info(c->snap)->mode == PROBE_SAMPLE_WALL;
    uint64_t total = 0;

    for (size_t i = from; i < to; i++)
        total += probe_snapshot_sample(c->snap, i)->cpu_ns;
    TRY(probe_writer_puts(c->w, c->first_profile ? "\n" : ",\n"));
    c->first_profile = 0;
    char name[256];
    snprintf(name, sizeof(name), "%s%s(tid %" PRIu64 "): sampled %s",
             th && th->name ? th->name : "", th && th->name && *th->name ? " " : "",
             x0->tid, wall ? "wall time" : "CPU time");
    TRY(probe_writer_puts(c->w, "{\"type\":\"sampled\",\"name\":"));
    TRY(jsonstr_write(c->w, name));
    TRY(probe_writer_printf(c->w,
                            ",\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":%" PRIu64
                            ",\"samples\":[",
                            total));
    for (size_t i = from; i < to; i++) {
        const probe_sample_info *x = probe_snapshot_sample(c->snap, i);
        TRY(probe_writer_puts(c->w, i > from ? ",\n[" : "\n["));
        for (unsigned d = 0; d < x->depth; d++) {
            size_t k = speedscope_native_slot(c, x->frames[d]);
            TRY(probe_writer_printf(c->w, d ? ",%zu" : "%zu", c->native_frame[k]));
        }
        if (x->blocked) /* wall mode: off-CPU time, in a frame of its own */
            TRY(probe_writer_printf(
                c->w, x->depth ? ",%zu" : "%zu",
                c->native_frame[speedscope_native_slot(c, PROBE_SAMPLE_BLOCKED_FRAME)]));
        TRY(writer_putc(c->w, ']'));
    }
    TRY(probe_writer_puts(c->w, "\n],\"weights\":["));
    for (size_t i = from; i < to; i++)
        TRY(probe_writer_printf(c->w, i > from ? ",%" PRIu64 : "%" PRIu64,
                                probe_snapshot_sample(c->snap, i)->cpu_ns));
    return probe_writer_puts(c->w, "]}");
}

static int
speedscope_sampler(struct speedscope_ctx *c)
{
    size_t n = probe_snapshot_sample_count(c->snap);

    for (size_t from = 0, to; from < n; from = to) {
        uint64_t tid = probe_snapshot_sample(c->snap, from)->tid;
        for (to = from + 1; to < n && probe_snapshot_sample(c->snap, to)->tid == tid; to++)
            ;
        TRY(speedscope_sampler_thread(c, from, to));
    }
    return 0;
}

/* ---- document ---------------------------------------------------------------- */

int
speedscope_check_options(const char *options, struct options_error *err)
{
    return options && *options ? options_fail_none(err, "speedscope", options) : 0;
}

int
speedscope_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                 void *user)
{
    struct speedscope_ctx c = {
        .snap = snap,
        .w = w,
        .site_count = probe_snapshot_site_count(snap),
        .first_profile = 1,
    };
    /* Evented profiles need scopes on the timeline; counters alone make none. */
    int timeline = timeline_begin_count(snap) > 0;
    int r;

    (void)user;
    TRY(speedscope_check_options(options, NULL));
    c.frame = calloc(c.site_count ? c.site_count : 1, sizeof(*c.frame));
    if (!c.frame)
        return PROBE_ENOMEM;
    speedscope_mark_sites(&c, timeline);
    /* The scopes' profile(s) first; with nothing but sampled stacks, only theirs. */
    int scopes = timeline || probe_snapshot_node_count(snap) > 0 ||
                 probe_snapshot_sample_count(snap) == 0;
    r = speedscope_number_natives(&c, speedscope_number_frames(&c));
    if (r == 0)
        r = probe_writer_puts(w, "{\"$schema\":\"" SPEEDSCOPE_SCHEMA "\",\n");
    if (r == 0)
        r = speedscope_frames(&c);
    if (r == 0)
        r = probe_writer_puts(w, ",\n\"profiles\":[");
    if (r == 0 && scopes)
        r = timeline ? speedscope_evented(&c) : speedscope_sampled(&c);
    if (r == 0)
        r = speedscope_sampler(&c);
    if (r == 0)
        r = probe_writer_printf(w,
                                "\n],\n\"name\":\"libprobe\",\"activeProfileIndex\":0,"
                                "\"exporter\":\"libprobe %d.%d.%d\"}\n",
                                PROBE_VERSION_MAJOR, PROBE_VERSION_MINOR,
                                PROBE_VERSION_PATCH);
    free(c.frame);
    free(c.native);
    free(c.native_frame);
    free(c.native_names);
    return r;
}
