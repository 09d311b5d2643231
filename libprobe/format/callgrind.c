/*
 * The "callgrind" formatter: the callgrind profile format (version 1), which
 * callgrind_annotate and KCachegrind read, from the aggregated sites and edges.
 * Every scope site is a function: its self time is its cost, and each caller →
 * callee edge is a call whose inclusive cost is the edge's time. Names and files
 * use the format's name compression. Documented in docs/formats.md.
 */
#include "callgrind.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "writer.h"

struct callgrind_options {
    int calls; /* a second event, "calls" */
};

/* What the formatter knows of one site. */
struct callgrind_fn {
    const probe_site_info *site; /* NULL: not a function of the profile */
    size_t file_id;              /* compressed file name id, from 1 */
    unsigned qualify;            /* 1: append " (file:line)"; 2: also " [index]" */
    int fn_defined;              /* the "(id) name" was written */
};

struct callgrind {
    probe_writer *w;
    const probe_snapshot *snap;
    struct callgrind_options opts;
    size_t nsites;
    struct callgrind_fn *fns;          /* by site index */
    const struct callgrind_fn **order; /* the functions, for sorting */
    size_t nfns;
    unsigned char *file_defined; /* by file id */
    size_t nedges;
    const probe_edge_info **edges; /* grouped by caller: edges[first[i]..first[i+1]) */
    size_t *first;
};

/* ---- options ----------------------------------------------------------------- */

/* "events=ns" (the default) or "events=ns+calls". */
static int
callgrind_parse_options(const char *options, struct callgrind_options *out,
                        struct options_error *err)
{
    const char *all = options;
    struct callgrind_options o = {0};
    struct option_kv kv;
    int more;

    while ((more = options_next(&options, &kv)) > 0) {
        if (options_key(&kv, "events") && options_value(&kv, "ns"))
            o.calls = 0;
        else if (options_key(&kv, "events") && options_value(&kv, "ns+calls"))
            o.calls = 1;
        else if (options_key(&kv, "events"))
            return options_fail(err, "callgrind", &kv, "events is ns or ns+calls");
        else
            return options_fail_key(err, "callgrind", &kv, "events=ns|ns+calls");
    }
    if (more < 0)
        return options_fail_empty(err, "callgrind", all);
    *out = o;
    return 0;
}

int
callgrind_check_options(const char *options, struct options_error *err)
{
    struct callgrind_options o;

    return callgrind_parse_options(options, &o, err);
}

/* ---- names ------------------------------------------------------------------- */

/* A name runs to the end of its line, and leading blanks after "(id)" are eaten by
 * readers: control bytes and a leading space become '_'; NULL or "" is "???". */
static int
callgrind_put_name(probe_writer *w, const char *s)
{
    if (!s || !*s)
        return probe_writer_puts(w, "???");
    for (const char *p = s; *p;) {
        size_t run = 0;

        while (p[run] && (unsigned char)p[run] >= 0x20 && p[run] != 0x7f &&
               !(p + run == s && p[run] == ' '))
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

static int
callgrind_cmp_str(const char *a, const char *b)
{
    return strcmp(a && *a ? a : "???", b && *b ? b : "???");
}

static int
callgrind_by_file(const void *pa, const void *pb)
{
    const struct callgrind_fn *a = *(const struct callgrind_fn *const *)pa;
    const struct callgrind_fn *b = *(const struct callgrind_fn *const *)pb;
    int c = callgrind_cmp_str(a->site->file, b->site->file);

    return c ? c : (a->site->index > b->site->index) - (a->site->index < b->site->index);
}

static int
callgrind_by_name(const void *pa, const void *pb)
{
    const struct callgrind_fn *a = *(const struct callgrind_fn *const *)pa;
    const struct callgrind_fn *b = *(const struct callgrind_fn *const *)pb;
    int c = callgrind_cmp_str(a->site->name, b->site->name);

    if (c)
        return c;
    if (a->qualify && b->qualify) {
        c = callgrind_cmp_str(a->site->file, b->site->file);
        if (c)
            return c;
        c = (a->site->line > b->site->line) - (a->site->line < b->site->line);
        if (c)
            return c;
    }
    return (a->site->index > b->site->index) - (a->site->index < b->site->index);
}

/* Give every distinct file an id, from 1 in file name order. */
static void
callgrind_file_ids(struct callgrind *cg)
{
    size_t id = 0;

    qsort(cg->order, cg->nfns, sizeof(*cg->order), callgrind_by_file);
    for (size_t i = 0; i < cg->nfns; i++) {
        struct callgrind_fn *f = &cg->fns[cg->order[i]->site->index];

        if (i == 0 || callgrind_cmp_str(cg->order[i - 1]->site->file, f->site->file))
            id++;
        f->file_id = id;
    }
}

/* Two sites of one name: each becomes "name (file:line)"; should that still be
 * shared (one line, two sites), " [index]" is appended too. */
static void
callgrind_qualify(struct callgrind *cg, unsigned level)
{
    qsort(cg->order, cg->nfns, sizeof(*cg->order), callgrind_by_name);
    for (size_t i = 0; i + 1 < cg->nfns; i++) {
        const probe_site_info *a = cg->order[i]->site, *b = cg->order[i + 1]->site;
        int same = callgrind_cmp_str(a->name, b->name) == 0;

        if (same && level == 2)
            same = cg->order[i]->qualify && cg->order[i + 1]->qualify &&
                   callgrind_cmp_str(a->file, b->file) == 0 && a->line == b->line;
        if (same) {
            cg->fns[a->index].qualify = level;
            cg->fns[b->index].qualify = level;
        }
    }
}

/* "(id)" the second time, "(id) name" the first: the format's name compression. */
static int
callgrind_put_file(struct callgrind *cg, const char *key, const struct callgrind_fn *f)
{
    TRY(probe_writer_printf(cg->w, "%s=(%zu)", key, f->file_id));
    if (!cg->file_defined[f->file_id]) {
        cg->file_defined[f->file_id] = 1;
        TRY(writer_putc(cg->w, ' '));
        TRY(callgrind_put_name(cg->w, f->site->file));
    }
    return writer_putc(cg->w, '\n');
}

static int
callgrind_put_fn(struct callgrind *cg, const char *key, struct callgrind_fn *f)
{
    const probe_site_info *s = f->site;

    TRY(probe_writer_printf(cg->w, "%s=(%zu)", key, s->index + 1));
    if (!f->fn_defined) {
        f->fn_defined = 1;
        TRY(writer_putc(cg->w, ' '));
        TRY(callgrind_put_name(cg->w, s->name));
        if (f->qualify) {
            TRY(probe_writer_puts(cg->w, " ("));
            TRY(callgrind_put_name(cg->w, s->file));
            TRY(probe_writer_printf(cg->w, ":%u)", s->line));
        }
        if (f->qualify > 1)
            TRY(probe_writer_printf(cg->w, " [%zu]", s->index));
    }
    return writer_putc(cg->w, '\n');
}

/* ---- the profile ------------------------------------------------------------- */

static int
callgrind_is_scope(const probe_snapshot *snap, size_t i)
{
    const probe_site_info *s = probe_snapshot_site(snap, i);

    return s && s->kind == PROBE_KIND_SCOPE;
}

/* The functions: scope sites that ran, or that called one (a scope still open when
 * the snapshot was taken has no completed call yet). Edges grouped by caller. */
static int
callgrind_index(struct callgrind *cg)
{
    cg->nsites = probe_snapshot_site_count(cg->snap);
    cg->nedges = probe_snapshot_edge_count(cg->snap);
    cg->fns = calloc(cg->nsites ? cg->nsites : 1, sizeof(*cg->fns));
    cg->order = calloc(cg->nsites ? cg->nsites : 1, sizeof(*cg->order));
    cg->file_defined = calloc(cg->nsites + 1, 1);
    cg->edges = calloc(cg->nedges ? cg->nedges : 1, sizeof(*cg->edges));
    cg->first = calloc(cg->nsites + 1, sizeof(*cg->first));
    if (!cg->fns || !cg->order || !cg->file_defined || !cg->edges || !cg->first)
        return PROBE_ENOMEM;

    size_t kept = 0;

    for (size_t i = 0; i < cg->nedges; i++) {
        const probe_edge_info *e = probe_snapshot_edge(cg->snap, i);

        if (!e || !callgrind_is_scope(cg->snap, e->caller) ||
            !callgrind_is_scope(cg->snap, e->callee))
            continue;
        cg->fns[e->caller].site = probe_snapshot_site(cg->snap, e->caller);
        cg->fns[e->callee].site = probe_snapshot_site(cg->snap, e->callee);
        cg->first[e->caller + 1]++;
        cg->edges[kept++] = e;
    }
    for (size_t i = 0; i < cg->nsites; i++) {
        const probe_site_info *s = probe_snapshot_site(cg->snap, i);

        if (s && s->kind == PROBE_KIND_SCOPE && s->calls > 0)
            cg->fns[i].site = s;
        if (cg->fns[i].site)
            cg->order[cg->nfns++] = &cg->fns[i];
        cg->first[i + 1] += cg->first[i];
    }

    /* A stable counting sort of the kept edges by caller. */
    const probe_edge_info **sorted = calloc(kept ? kept : 1, sizeof(*sorted));
    size_t *fill = calloc(cg->nsites ? cg->nsites : 1, sizeof(*fill));

    if (!sorted || !fill) {
        free(sorted);
        free(fill);
        return PROBE_ENOMEM;
    }
    for (size_t i = 0; i < kept; i++) {
        size_t c = cg->edges[i]->caller;

        sorted[cg->first[c] + fill[c]++] = cg->edges[i];
    }
    free(fill);
    free(cg->edges);
    cg->edges = sorted;

    callgrind_file_ids(cg);
    callgrind_qualify(cg, 1);
    callgrind_qualify(cg, 2);
    return 0;
}

/* The sum of the functions' self costs: the program's total. */
static int
callgrind_put_total(struct callgrind *cg, const char *key)
{
    uint64_t ns = 0, calls = 0;

    for (size_t i = 0; i < cg->nsites; i++) {
        if (cg->fns[i].site) {
            ns += cg->fns[i].site->self_ns;
            calls += cg->fns[i].site->calls;
        }
    }
    TRY(probe_writer_printf(cg->w, "%s: %" PRIu64, key, ns));
    if (cg->opts.calls)
        TRY(probe_writer_printf(cg->w, " %" PRIu64, calls));
    return writer_putc(cg->w, '\n');
}

static int
callgrind_header(struct callgrind *cg)
{
    TRY(probe_writer_puts(cg->w, "# callgrind format\n"
                                 "version: 1\n"
                                 "creator: libprobe\n"
                                 "positions: line\n"));
    TRY(probe_writer_puts(cg->w, cg->opts.calls ? "events: ns calls\n" : "events: ns\n"));
    return callgrind_put_total(cg, "summary");
}

/* One cost line: "<line> <ns>[ <calls>]". */
static int
callgrind_cost(struct callgrind *cg, unsigned line, uint64_t ns, uint64_t calls)
{
    TRY(probe_writer_printf(cg->w, "%u %" PRIu64, line, ns));
    if (cg->opts.calls)
        TRY(probe_writer_printf(cg->w, " %" PRIu64, calls));
    return writer_putc(cg->w, '\n');
}

/* "fl=", "fn=", the self cost, then per callee "cfl=", "cfn=", "calls=" and the
 * call's inclusive cost, at the caller's line. */
static int
callgrind_function(struct callgrind *cg, struct callgrind_fn *f)
{
    const probe_site_info *s = f->site;

    TRY(writer_putc(cg->w, '\n'));
    TRY(callgrind_put_file(cg, "fl", f));
    TRY(callgrind_put_fn(cg, "fn", f));
    TRY(callgrind_cost(cg, s->line, s->self_ns, s->calls));
    for (size_t i = cg->first[s->index]; i < cg->first[s->index + 1]; i++) {
        const probe_edge_info *e = cg->edges[i];
        struct callgrind_fn *callee = &cg->fns[e->callee];

        TRY(callgrind_put_file(cg, "cfl", callee));
        TRY(callgrind_put_fn(cg, "cfn", callee));
        TRY(probe_writer_printf(cg->w, "calls=%" PRIu64 " %u\n", e->calls,
                                callee->site->line));
        TRY(callgrind_cost(cg, s->line, e->total_ns, e->calls));
    }
    return 0;
}

static int
callgrind_body(struct callgrind *cg)
{
    TRY(callgrind_header(cg));
    for (size_t i = 0; i < cg->nsites; i++) {
        if (cg->fns[i].site)
            TRY(callgrind_function(cg, &cg->fns[i]));
    }
    TRY(writer_putc(cg->w, '\n'));
    return callgrind_put_total(cg, "totals");
}

/* ---- a program with samples only ------------------------------------------------ */

/* A caller -> callee pair of one sampled stack. */
struct cg_pair {
    size_t caller, callee;
    uint64_t ns, samples;
};

static int
cg_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
cg_pair_cmp(const void *pa, const void *pb)
{
    const struct cg_pair *a = pa, *b = pb;

    if (a->caller != b->caller)
        return a->caller < b->caller ? -1 : 1;
    return a->callee < b->callee ? -1 : a->callee > b->callee;
}

/* "fn=(id) name" the first time, "fn=(id)" after (the format's name compression). */
static int
cg_put_fn(probe_writer *w, const char *key, const char **names, unsigned char *defined,
          size_t f)
{
    TRY(probe_writer_printf(w, "%s=(%zu)", key, f + 1));
    if (!defined[f]) {
        defined[f] = 1;
        TRY(writer_putc(w, ' '));
        TRY(callgrind_put_name(w, names[f]));
    }
    return writer_putc(w, '\n');
}

static size_t
cg_name_id(const char **names, size_t n, const char *name)
{
    const char **p = bsearch(&name, names, n, sizeof(*names), cg_strcmp);

    return p ? (size_t)(p - names) : 0;
}

/* Each sampled function is a function of the profile: its self cost the samples it
 * was the leaf of, and each caller -> callee pair of a stack a call whose inclusive
 * cost is that stack's time (counted once per stack, so recursion is not doubled).
 * The "calls" event, if asked for, counts samples. */
#define CG_TRY(x)                                                                      \
    do {                                                                               \
        if ((r = (x)) < 0)                                                             \
            goto out;                                                                  \
    } while (0)

static int
callgrind_samples(struct callgrind *cg)
{
    const probe_snapshot *snap = cg->snap;
    size_t nsamples = probe_snapshot_sample_count(snap), nframes = 0, npairs = 0;
    uint64_t total = 0;
    int r = PROBE_ENOMEM;

    for (size_t i = 0; i < nsamples; i++)
        nframes += probe_snapshot_sample(snap, i)->depth;
    const char **names = malloc((nframes + 1) * sizeof(*names));
    struct cg_pair *pairs = malloc((nframes + 1) * sizeof(*pairs));
    uint64_t *self = NULL, *selfn = NULL;
    unsigned char *defined = NULL;
    size_t n = 0;

    if (!names || !pairs)
        goto out;
    for (size_t i = 0; i < nsamples; i++) {
        const probe_sample_info *sm = probe_snapshot_sample(snap, i);
        for (unsigned d = 0; d < sm->depth; d++)
            names[n++] = sm->frames[d] ? sm->frames[d] : "??";
    }
    qsort(names, n, sizeof(*names), cg_strcmp);
    size_t nnames = 0;
    for (size_t i = 0; i < n; i++)
        if (nnames == 0 || strcmp(names[nnames - 1], names[i]) != 0)
            names[nnames++] = names[i];
    self = calloc(nnames + 1, sizeof(*self));
    selfn = calloc(nnames + 1, sizeof(*selfn));
    defined = calloc(nnames + 1, 1);
    if (!self || !selfn || !defined)
        goto out;
    for (size_t i = 0; i < nsamples; i++) {
        const probe_sample_info *sm = probe_snapshot_sample(snap, i);
        size_t first = npairs;

        total += sm->cpu_ns;
        if (!sm->depth)
            continue;
        size_t leaf = cg_name_id(names, nnames, sm->frames[sm->depth - 1] ?
                                                    sm->frames[sm->depth - 1] : "??");
        self[leaf] += sm->cpu_ns;
        selfn[leaf] += sm->weight;
        for (unsigned d = 1; d < sm->depth; d++) {
            struct cg_pair p = {
                cg_name_id(names, nnames, sm->frames[d - 1] ? sm->frames[d - 1] : "??"),
                cg_name_id(names, nnames, sm->frames[d] ? sm->frames[d] : "??"),
                sm->cpu_ns, sm->weight};
            int seen = 0;

            for (size_t k = first; k < npairs && !seen; k++)
                seen = pairs[k].caller == p.caller && pairs[k].callee == p.callee;
            if (!seen)
                pairs[npairs++] = p;
        }
    }
    qsort(pairs, npairs, sizeof(*pairs), cg_pair_cmp);

    r = probe_writer_puts(cg->w, "# callgrind format\nversion: 1\ncreator: libprobe "
                                 "(sampled stacks)\npositions: line\n");
    if (r == 0)
        r = probe_writer_puts(cg->w, cg->opts.calls ? "events: ns samples\n"
                                                    : "events: ns\n");
    if (r == 0)
        r = probe_writer_printf(cg->w, "summary: %" PRIu64 "\n", total);
    for (size_t f = 0, k = 0; r == 0 && f < nnames; f++) {
        CG_TRY(probe_writer_puts(cg->w, f ? "\nfl=(1)\n" : "\nfl=(1) ???\n"));
        CG_TRY(cg_put_fn(cg->w, "fn", names, defined, f));
        CG_TRY(callgrind_cost(cg, 0, self[f], selfn[f]));
        for (; k < npairs && pairs[k].caller == f; k++) {
            uint64_t ns = pairs[k].ns, cnt = pairs[k].samples;

            while (k + 1 < npairs && pairs[k + 1].caller == f &&
                   pairs[k + 1].callee == pairs[k].callee) {
                k++;
                ns += pairs[k].ns;
                cnt += pairs[k].samples;
            }
            CG_TRY(cg_put_fn(cg->w, "cfn", names, defined, pairs[k].callee));
            CG_TRY(probe_writer_printf(cg->w, "calls=%" PRIu64 " 0\n", cnt));
            CG_TRY(callgrind_cost(cg, 0, ns, cnt));
        }
    }
    if (r == 0)
        r = probe_writer_printf(cg->w, "\ntotals: %" PRIu64 "\n", total);
#undef CG_TRY
out:
    free(names);
    free(pairs);
    free(self);
    free(selfn);
    free(defined);
    return r;
}

int
callgrind_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                void *user)
{
    struct callgrind cg = {.w = w, .snap = snap};

    (void)user;
    TRY(callgrind_parse_options(options, &cg.opts, NULL));

    int r = callgrind_index(&cg);

    /* No scope ran: the samples are the profile. (With neither, an empty profile,
     * as every formatter writes for an empty snapshot.) */
    if (r == 0 && cg.nfns == 0 && probe_snapshot_sample_count(snap) > 0)
        r = callgrind_samples(&cg);
    else if (r == 0)
        r = callgrind_body(&cg);
    free(cg.fns);
    free(cg.order);
    free(cg.file_defined);
    free(cg.edges);
    free(cg.first);
    return r;
}
