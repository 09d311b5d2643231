/*
 * The "collapsed" formatter: folded stacks, as FlameGraph's stackcollapse scripts
 * write them and flamegraph.pl and speedscope read them. One line per path of the
 * calling-context tree, root first: "main;parse;lex 123456", the number being the
 * path's self time in nanoseconds (or its calls). When the sampler ran, the sampled
 * stacks instead by default ("source=samples|scopes"), the number being the stack's
 * sample weight, its timer expirations (or, with weight=ns, the time they stand
 * for). Documented in docs/formats.md.
 */
#include "collapsed.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "writer.h"

enum collapsed_weight {
    COLLAPSED_WEIGHT_DEFAULT,   /* scope paths: self time; sampled stacks: weight */
    COLLAPSED_WEIGHT_SELF_NS,   /* time in ns */
    COLLAPSED_WEIGHT_CALLS,     /* calls, or a stack's sample weight */
};

enum collapsed_source {
    COLLAPSED_SOURCE_AUTO,      /* samples when there are any, else scopes */
    COLLAPSED_SOURCE_SAMPLES,
    COLLAPSED_SOURCE_SCOPES,
};

struct collapsed_options {
    enum collapsed_weight weight;
    enum collapsed_source source;
};

/* ---- options ----------------------------------------------------------------- */

static int
collapsed_parse_weight(const char *v, size_t len, enum collapsed_weight *out)
{
    static const struct {
        const char *name;
        enum collapsed_weight weight;
    } keys[] = {
        {"self_ns", COLLAPSED_WEIGHT_SELF_NS},
        {"ns", COLLAPSED_WEIGHT_SELF_NS},
        {"calls", COLLAPSED_WEIGHT_CALLS},
        {"samples", COLLAPSED_WEIGHT_CALLS},
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, v, len) == 0) {
            *out = keys[i].weight;
            return 0;
        }
    }
    return PROBE_EINVAL;
}

static int
collapsed_parse_source(const char *v, size_t len, enum collapsed_source *out)
{
    if (len == 7 && memcmp(v, "samples", 7) == 0)
        *out = COLLAPSED_SOURCE_SAMPLES;
    else if (len == 6 && memcmp(v, "scopes", 6) == 0)
        *out = COLLAPSED_SOURCE_SCOPES;
    else
        return PROBE_EINVAL;
    return 0;
}

/* "key=value[,key=value...]"; the keys are "weight" and "source". */
static int
collapsed_parse_options(const char *options, struct collapsed_options *out,
                        struct options_error *err)
{
    const char *all = options;
    struct collapsed_options o = {.weight = COLLAPSED_WEIGHT_DEFAULT,
                                  .source = COLLAPSED_SOURCE_AUTO};
    struct option_kv kv;
    int more;

    while ((more = options_next(&options, &kv)) > 0) {
        if (options_key(&kv, "weight")) {
            if (collapsed_parse_weight(kv.value, kv.vlen, &o.weight) < 0)
                return options_fail(err, "collapsed", &kv,
                                    "weight is self_ns (or ns), calls or samples");
        } else if (options_key(&kv, "source")) {
            if (collapsed_parse_source(kv.value, kv.vlen, &o.source) < 0)
                return options_fail(err, "collapsed", &kv, "source is samples or scopes");
        } else {
            return options_fail_key(err, "collapsed", &kv,
                                    "weight=self_ns|ns|calls|samples, source=samples|scopes");
        }
    }
    if (more < 0)
        return options_fail_empty(err, "collapsed", all);
    *out = o;
    return 0;
}

int
collapsed_check_options(const char *options, struct options_error *err)
{
    struct collapsed_options o;

    return collapsed_parse_options(options, &o, err);
}

/* ---- lines ------------------------------------------------------------------- */

/* A byte that would split a frame or a line: ';' separates frames, the last ' '
 * separates the weight, and control bytes could end the line. */
static int
collapsed_unsafe(unsigned char c)
{
    return c == ';' || c == ' ' || c < 0x20 || c == 0x7f;
}

/* @s with every unsafe byte written as '_'; NULL or "" as "?". Other bytes (UTF-8
 * included) go out as they are. */
static int
collapsed_put_name(probe_writer *w, const char *s)
{
    if (!s || !*s)
        return writer_putc(w, '?');
    for (const char *p = s; *p;) {
        size_t run = 0;

        while (p[run] && !collapsed_unsafe((unsigned char)p[run]))
            run++;
        TRY(probe_writer_write(w, p, run));
        p += run;
        if (*p) {
            TRY(writer_putc(w, '_'));
            p++;
        }
    }
    return 0;
}

static const char *
collapsed_site_name(const probe_snapshot *snap, size_t site)
{
    const probe_site_info *s = probe_snapshot_site(snap, site);

    return s ? s->name : NULL;
}

/* One line for node @n: the sites from the top level down to it, and @weight.
 * @path has room for the deepest node's path. */
static int
collapsed_node(probe_writer *w, const probe_snapshot *snap, const probe_node_info *n,
               size_t *path, size_t room, uint64_t weight)
{
    size_t k = 0;

    /* Walk up to the top level; parents come first, so the walk ends. */
    for (const probe_node_info *cur = n; cur && k < room;) {
        path[k++] = cur->site;
        cur = cur->parent == PROBE_NODE_ROOT || cur->parent >= cur->index
                  ? NULL
                  : probe_snapshot_node(snap, cur->parent);
    }
    while (k-- > 0) {
        TRY(collapsed_put_name(w, collapsed_site_name(snap, path[k])));
        if (k > 0)
            TRY(writer_putc(w, ';'));
    }
    return probe_writer_printf(w, " %" PRIu64 "\n", weight);
}

/* Sampled stacks that name the same frames (at different addresses, or in different
 * threads) are one line: sorted by their names, then merged. */
static int
collapsed_stack_cmp(const void *pa, const void *pb)
{
    const probe_sample_info *a = *(const probe_sample_info *const *)pa;
    const probe_sample_info *b = *(const probe_sample_info *const *)pb;
    unsigned n = a->depth < b->depth ? a->depth : b->depth;

    for (unsigned k = 0; k < n; k++) {
        const char *x = a->frames[k] ? a->frames[k] : "", *y = b->frames[k] ? b->frames[k] : "";
        int c = x == y ? 0 : strcmp(x, y);
        if (c)
            return c;
    }
    if (a->depth != b->depth)
        return a->depth < b->depth ? -1 : 1;
    return (a->blocked != 0) - (b->blocked != 0);
}

/* One line per distinct sampled stack: its frames root first, and its sample weight
 * (timer expirations), or the time it stands for in ns with weight=ns|self_ns. */
static int
collapsed_samples(probe_writer *w, const probe_snapshot *snap,
                  const struct collapsed_options *o)
{
    size_t count = probe_snapshot_sample_count(snap), n = 0;
    const probe_sample_info **v = malloc((count ? count : 1) * sizeof(*v));
    int r = 0;

    if (!v)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);
        if (s && s->depth > 0)
            v[n++] = s;
    }
    qsort(v, n, sizeof(*v), collapsed_stack_cmp);
    for (size_t i = 0; i < n && r == 0;) {
        const probe_sample_info *s = v[i];
        uint64_t weight = 0;

        for (; i < n && collapsed_stack_cmp(&v[i], &s) == 0; i++)
            weight += o->weight == COLLAPSED_WEIGHT_SELF_NS ? v[i]->cpu_ns : v[i]->weight;
        if (weight == 0)
            continue;
        for (unsigned k = 0; k < s->depth && r == 0; k++) {
            if (k > 0)
                r = writer_putc(w, ';');
            if (r == 0)
                r = collapsed_put_name(w, s->frames[k]);
        }
        if (r == 0 && s->blocked) /* wall mode: off-CPU time, in a frame of its own */
            r = probe_writer_puts(w, ";" PROBE_SAMPLE_BLOCKED_FRAME);
        if (r == 0)
            r = probe_writer_printf(w, " %" PRIu64 "\n", weight);
    }
    free(v);
    return r;
}

int
collapsed_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                void *user)
{
    struct collapsed_options o;
    size_t count = probe_snapshot_node_count(snap);
    unsigned deepest = 0;

    (void)user;
    TRY(collapsed_parse_options(options, &o, NULL));
    if (o.source == COLLAPSED_SOURCE_SAMPLES ||
        (o.source == COLLAPSED_SOURCE_AUTO && probe_snapshot_sample_count(snap) > 0))
        return collapsed_samples(w, snap, &o);
    for (size_t i = 0; i < count; i++) {
        const probe_node_info *n = probe_snapshot_node(snap, i);

        if (n && n->depth > deepest)
            deepest = n->depth;
    }

    size_t room = (size_t)deepest + 1;
    size_t *path = calloc(room, sizeof(*path));
    int r = 0;

    if (!path)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count && r == 0; i++) {
        const probe_node_info *n = probe_snapshot_node(snap, i);
        uint64_t weight;

        if (!n)
            continue;
        weight = o.weight == COLLAPSED_WEIGHT_CALLS ? n->calls : n->self_ns;
        /* A zero weight adds nothing to a flame graph; some readers reject it. */
        if (weight > 0)
            r = collapsed_node(w, snap, n, path, room, weight);
    }
    free(path);
    return r;
}
