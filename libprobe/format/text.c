/*
 * The "text" formatter: a report for people, after Python's pstats and
 * trace --count. Sections: header, scope table, call tree, counters, line
 * coverage, losses, resource usage.
 */
#include "text.h"

#include <inttypes.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "core/snapshot.h"
#include "memtext.h"
#include "options.h"
#include "writer.h"

/* The call tree stops descending here, and stops printing after so many lines. */
#define TEXT_TREE_DEPTH 32
#define TEXT_TREE_LINES 1000
/* Threads listed by name; the rest are only counted. */
#define TEXT_THREADS_LISTED 32
/* Room for a time ("123.456 ms") or a count pair ("18446744073709551615/..."). */
#define TEXT_CELL 48

enum text_sort {
    TEXT_SORT_TOTAL,
    TEXT_SORT_SELF,
    TEXT_SORT_CALLS,
    TEXT_SORT_NAME,
};

struct text_options {
    enum text_sort sort;
    size_t limit;               /* scope rows shown; SIZE_MAX for all */
    const char *filter;         /* the regex as given (NUL-terminated copy), or NULL */
    regex_t re;                 /* compiled when filter is set */
};

/* Propagate the first error: every writer call's result is checked. */
/* ---- options ----------------------------------------------------------------- */

static int
text_parse_sort(const char *v, size_t len, enum text_sort *out)
{
    static const struct {
        const char *name;
        enum text_sort sort;
    } keys[] = {
        {"total", TEXT_SORT_TOTAL},
        {"self", TEXT_SORT_SELF},
        {"calls", TEXT_SORT_CALLS},
        {"name", TEXT_SORT_NAME},
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, v, len) == 0) {
            *out = keys[i].sort;
            return 0;
        }
    }
    return PROBE_EINVAL;
}

/* Decimal digits only, no sign, no overflow. */
static int
text_parse_limit(const char *v, size_t len, size_t *out)
{
    size_t n = 0;

    if (len == 0)
        return PROBE_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (SIZE_MAX - 9) / 10)
            return PROBE_EINVAL;
        n = n * 10 + (size_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

static void
text_options_free(struct text_options *o)
{
    if (o->filter) {
        regfree(&o->re);
        free((char *)o->filter);
        o->filter = NULL;
    }
}

#define TEXT_OPTIONS "sort=total|self|calls|name, limit=N, filter=REGEX (last)"

/* A POSIX extended regex, matched against scope names. */
static int
text_parse_filter(const char *v, size_t len, struct text_options *o,
                  struct options_error *err)
{
    char *src = strndup(v, len);
    int rc;

    if (!src)
        return PROBE_ENOMEM;
    text_options_free(o);
    if ((rc = regcomp(&o->re, src, REG_EXTENDED | REG_NOSUB)) != 0) {
        if (err) {
            char why[96];

            regerror(rc, &o->re, why, sizeof(why));
            snprintf(err->msg, sizeof(err->msg),
                     "text option filter=%s: %s; use a POSIX extended regular expression",
                     src, why);
        }
        free(src);
        return PROBE_EINVAL;
    }
    o->filter = src;
    return 0;
}

/* "key=value[,key=value...]": sort=, limit= and filter=. A filter takes the rest of
 * the string, commas included (a regex may hold one), so it comes last. On success
 * the caller frees @out with text_options_free(). */
static int
text_parse_options(const char *options, struct text_options *out, struct options_error *err)
{
    const char *all = options;
    struct text_options o = {.sort = TEXT_SORT_TOTAL, .limit = SIZE_MAX};
    struct option_kv kv;
    int more, r = 0;

    while (r == 0) {
        if (options && strncmp(options, "filter=", 7) == 0) {
            r = text_parse_filter(options + 7, strlen(options + 7), &o, err);
            break;
        }
        if ((more = options_next(&options, &kv)) <= 0) {
            r = more < 0 ? options_fail_empty(err, "text", all) : 0;
            break;
        }
        if (options_key(&kv, "sort")) {
            if ((r = text_parse_sort(kv.value, kv.vlen, &o.sort)) < 0)
                options_fail(err, "text", &kv, "sort by total, self, calls or name");
        } else if (options_key(&kv, "limit")) {
            if ((r = text_parse_limit(kv.value, kv.vlen, &o.limit)) < 0)
                options_fail(err, "text", &kv, "limit takes a number of rows (0, 1, 2, ...)");
        } else {
            r = options_fail_key(err, "text", &kv, TEXT_OPTIONS);
        }
    }
    if (r < 0) {
        text_options_free(&o);
        return r;
    }
    *out = o;
    return 0;
}

int
text_check_options(const char *options, struct options_error *err)
{
    struct text_options o;
    int r = text_parse_options(options, &o, err);

    if (r == 0)
        text_options_free(&o);
    return r;
}

/* ---- cells ------------------------------------------------------------------- */

static void
text_bytes(char *buf, size_t size, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;

    if (bytes < 1024) {
        snprintf(buf, size, "%" PRIu64 " B", bytes);
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* "8/3" when some calls were recursive, like pstats; else "8". */
static void
text_calls(char *buf, size_t size, const probe_site_info *s)
{
    if (s->prim_calls != s->calls)
        snprintf(buf, size, "%" PRIu64 "/%" PRIu64, s->calls, s->prim_calls);
    else
        snprintf(buf, size, "%" PRIu64, s->calls);
}

static double
text_percent(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* "name (file:line function)" */
static int
text_put_site(probe_writer *w, const probe_site_info *s)
{
    TRY(cells_put_name(w, s->name));
    TRY(probe_writer_puts(w, " ("));
    TRY(cells_put_name(w, s->file));
    TRY(probe_writer_printf(w, ":%u ", s->line));
    TRY(cells_put_name(w, s->function));
    return probe_writer_puts(w, ")");
}

/* ---- sites, sorted ----------------------------------------------------------- */

/* Sites of @kind, with or without calls, as pointers the caller frees. */
static int
text_collect(const probe_snapshot *snap, probe_kind kind, int with_calls,
             const probe_site_info ***ret, size_t *ret_n)
{
    size_t count = probe_snapshot_site_count(snap), n = 0;
    const probe_site_info **v = calloc(count ? count : 1, sizeof(*v));

    if (!v)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        if (s && s->kind == kind && (s->calls > 0) == with_calls)
            v[n++] = s;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static int
text_cmp_u64_desc(uint64_t a, uint64_t b)
{
    return a > b ? -1 : a < b;
}

static int
text_cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* Ties keep index order, so output is stable whatever qsort does. */
static int
text_cmp_index(const probe_site_info *a, const probe_site_info *b)
{
    return a->index < b->index ? -1 : a->index > b->index;
}

static int
text_cmp_file_line(const probe_site_info *a, const probe_site_info *b)
{
    int c = text_cmp_str(a->file, b->file);

    return c ? c : (a->line > b->line) - (a->line < b->line);
}

#define TEXT_CMP_FN(fn, expr)                                                            \
    static int fn(const void *pa, const void *pb)                                        \
    {                                                                                    \
        const probe_site_info *a = *(const probe_site_info *const *)pa;                  \
        const probe_site_info *b = *(const probe_site_info *const *)pb;                  \
        int c = (expr);                                                                  \
        return c ? c : text_cmp_index(a, b);                                             \
    }

TEXT_CMP_FN(text_by_total, text_cmp_u64_desc(a->total_ns, b->total_ns))
TEXT_CMP_FN(text_by_self, text_cmp_u64_desc(a->self_ns, b->self_ns))
TEXT_CMP_FN(text_by_calls, text_cmp_u64_desc(a->calls, b->calls))
TEXT_CMP_FN(text_by_name, text_cmp_str(a->name, b->name))
TEXT_CMP_FN(text_by_file_line, text_cmp_file_line(a, b))

static void
text_sort(const probe_site_info **v, size_t n, enum text_sort sort)
{
    static int (*const cmp[])(const void *, const void *) = {
        [TEXT_SORT_TOTAL] = text_by_total,
        [TEXT_SORT_SELF] = text_by_self,
        [TEXT_SORT_CALLS] = text_by_calls,
        [TEXT_SORT_NAME] = text_by_name,
    };

    if (n > 1)
        qsort(v, n, sizeof(*v), cmp[sort]);
}

/* ---- header ------------------------------------------------------------------ */

static int
text_header(probe_writer *w, const probe_snapshot *snap)
{
    const probe_clock_info *clk = probe_snapshot_clock(snap);
    size_t nsites = probe_snapshot_site_count(snap);
    size_t nthreads = probe_snapshot_thread_count(snap), live = 0;
    uint64_t calls = 0, prim = 0;
    size_t scopes = 0, entered = 0;
    char t[TEXT_CELL];

    for (size_t i = 0; i < nthreads; i++) {
        const probe_thread_info *th = probe_snapshot_thread(snap, i);

        live += th && th->live;
    }
    for (size_t i = 0; i < nsites; i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        if (!s || s->kind != PROBE_KIND_SCOPE)
            continue;
        scopes++;
        entered += s->calls > 0;
        calls += s->calls;
        prim += s->prim_calls;
    }

    TRY(probe_writer_puts(w, "libprobe report (" PROBE_SCHEMA ")\n"));
    if (clk) {
        TRY(probe_writer_puts(w, "clock:    "));
        TRY(cells_put_name(w, clk->name));
        TRY(probe_writer_printf(w, ", %.3f ns per tick\n", clk->ns_per_tick));
        TRY(probe_writer_printf(w, "elapsed:  %s\n",
                                cells_time_trim(t, sizeof(t), clk->elapsed_ns)));
    }
    TRY(probe_writer_printf(w, "threads:  %zu (%zu live)\n", nthreads, live));
    TRY(probe_writer_printf(w, "%" PRIu64 " scope calls", calls));
    if (prim != calls)
        TRY(probe_writer_printf(w, " (%" PRIu64 " primitive calls)", prim));
    return probe_writer_printf(w, " in %zu of %zu scopes\n", entered, scopes);
}

/* ---- scope table ------------------------------------------------------------- */

static const char *const text_sort_names[] = {
    [TEXT_SORT_TOTAL] = "total time",
    [TEXT_SORT_SELF] = "self time",
    [TEXT_SORT_CALLS] = "calls",
    [TEXT_SORT_NAME] = "name",
};

static int
text_scope_row(probe_writer *w, const probe_site_info *s)
{
    /* self/call is over all calls; total/call over primitive calls, as pstats. */
    uint64_t self_per = s->calls ? s->self_ns / s->calls : 0;
    uint64_t total_per = s->prim_calls ? s->total_ns / s->prim_calls : 0;
    const uint64_t ns[] = {s->self_ns, self_per, s->total_ns, total_per, s->p50_ns,
                           s->p90_ns,  s->p99_ns, s->min_ns,   s->max_ns};
    char cell[TEXT_CELL];

    text_calls(cell, sizeof(cell), s);
    TRY(probe_writer_printf(w, "%12s", cell));
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        cells_time(cell, sizeof(cell), ns[i]);
        TRY(probe_writer_printf(w, "  %s", cell));
    }
    TRY(probe_writer_puts(w, "  "));
    TRY(text_put_site(w, s));
    return probe_writer_puts(w, "\n");
}

/* Does scope @s pass the filter option? */
static int
text_matches(const struct text_options *o, const probe_site_info *s)
{
    return !o->filter || regexec(&o->re, s->name ? s->name : "", 0, NULL, 0) == 0;
}

/* Keep the sites the filter lets through, in order; @return how many. */
static size_t
text_filter(const struct text_options *o, const probe_site_info **v, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (text_matches(o, v[i]))
            v[k++] = v[i];
    }
    return k;
}

/* Say which rows the options left out, so a short table is not taken for all. */
static int
text_scopes_hidden(probe_writer *w, const struct text_options *o, size_t shown,
                   size_t matched, size_t all)
{
    if (shown == all)
        return 0;
    TRY(probe_writer_printf(w, "... %zu of %zu scopes shown (", shown, all));
    if (o->filter) {
        TRY(probe_writer_printf(w, "%zu match filter=", matched));
        TRY(cells_put_name(w, o->filter));
    }
    if (shown < matched)
        TRY(probe_writer_printf(w, "%slimit=%zu", o->filter ? ", " : "", o->limit));
    return probe_writer_puts(w, ")\n");
}

static int
text_scope_rows(probe_writer *w, const probe_site_info **v, size_t n,
                const struct text_options *o)
{
    size_t matched = text_filter(o, v, n);
    size_t shown = matched < o->limit ? matched : o->limit;

    text_sort(v, matched, o->sort);
    TRY(probe_writer_printf(w, "\nScopes, by %s:\n", text_sort_names[o->sort]));
    TRY(probe_writer_printf(w, "%12s  %9s  %9s  %9s  %9s  %9s  %9s  %9s  %9s  %9s  %s\n",
                            "calls", "self", "self/call", "total", "tot/call", "p50", "p90",
                            "p99", "min", "max", "site"));
    for (size_t i = 0; i < shown; i++)
        TRY(text_scope_row(w, v[i]));
    return text_scopes_hidden(w, o, shown, matched, n);
}

static int
text_never_entered(probe_writer *w, const probe_site_info **v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), text_by_name);
    TRY(probe_writer_printf(w, "\nScopes never entered (%zu):\n", n));
    for (size_t i = 0; i < n; i++) {
        TRY(probe_writer_puts(w, "  never entered  "));
        TRY(text_put_site(w, v[i]));
        TRY(probe_writer_puts(w, "\n"));
    }
    return 0;
}

static int
text_scopes(probe_writer *w, const probe_snapshot *snap, const struct text_options *o)
{
    const probe_site_info **v;
    size_t n;

    TRY(text_collect(snap, PROBE_KIND_SCOPE, 1, &v, &n));

    int r = text_scope_rows(w, v, n, o);

    free(v);
    TRY(r);
    TRY(text_collect(snap, PROBE_KIND_SCOPE, 0, &v, &n));
    r = text_never_entered(w, v, text_filter(o, v, n));
    free(v);
    return r;
}

/* ---- call tree --------------------------------------------------------------- */

/* Printed from the calling-context tree: every line is one path of nested scopes,
 * with the calls and time spent on exactly that path. */
struct text_tree {
    probe_writer *w;
    const probe_snapshot *snap;
    size_t nnodes;
    const probe_node_info **out;  /* nodes grouped by parent, largest total first */
    size_t *first;                /* node i's children: out[first[i] .. first[i+1]);
                                     the top-level nodes: the group at nnodes */
    size_t path[TEXT_TREE_DEPTH]; /* sites from the top down to the current one */
    size_t depth;
    size_t lines;
    int truncated;
};

static int
text_node_by_total(const void *pa, const void *pb)
{
    const probe_node_info *a = *(const probe_node_info *const *)pa;
    const probe_node_info *b = *(const probe_node_info *const *)pb;
    int c = text_cmp_u64_desc(a->total_ns, b->total_ns);

    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* The group a node belongs to: its parent, or nnodes for the top level. */
static size_t
text_node_group(const struct text_tree *t, const probe_node_info *n)
{
    return n->parent == PROBE_NODE_ROOT || n->parent >= t->nnodes ? t->nnodes : n->parent;
}

/* Group the nodes by parent (a counting sort), each group by total. */
static int
text_tree_index(struct text_tree *t)
{
    size_t groups = t->nnodes + 1;
    size_t *fill = calloc(groups, sizeof(*fill));

    t->first = calloc(groups + 1, sizeof(*t->first));
    t->out = calloc(t->nnodes ? t->nnodes : 1, sizeof(*t->out));
    if (!fill || !t->first || !t->out) {
        free(fill);
        return PROBE_ENOMEM;
    }
    for (size_t i = 0; i < t->nnodes; i++)
        t->first[text_node_group(t, probe_snapshot_node(t->snap, i)) + 1]++;
    for (size_t i = 0; i < groups; i++)
        t->first[i + 1] += t->first[i];
    for (size_t i = 0; i < t->nnodes; i++) {
        const probe_node_info *n = probe_snapshot_node(t->snap, i);
        size_t g = text_node_group(t, n);
        t->out[t->first[g] + fill[g]++] = n;
    }
    free(fill);
    for (size_t g = 0; g < groups; g++)
        qsort(t->out + t->first[g], t->first[g + 1] - t->first[g], sizeof(*t->out),
              text_node_by_total);
    return 0;
}

static int
text_tree_on_path(const struct text_tree *t, size_t site)
{
    for (size_t i = 0; i < t->depth; i++) {
        if (t->path[i] == site)
            return 1;
    }
    return 0;
}

/* Count one more line; 0 once the budget is spent, and the tree says it was cut. */
static int
text_tree_budget(struct text_tree *t)
{
    if (t->lines < TEXT_TREE_LINES) {
        t->lines++;
        return 1;
    }
    t->truncated = 1;
    return 0;
}

static int
text_tree_indent(struct text_tree *t)
{
    for (size_t i = 0; i < t->depth; i++)
        TRY(probe_writer_puts(t->w, "  "));
    return 0;
}

static int text_tree_children(struct text_tree *t, size_t group, uint64_t parent_total);

/* One line for node @n, then its children. A recursive call (its site already on
 * the path) is shown once, with everything under it, and not expanded. */
static int
text_tree_node(struct text_tree *t, const probe_node_info *n, uint64_t parent_total)
{
    const probe_site_info *s = probe_snapshot_site(t->snap, n->site);
    char time[TEXT_CELL];

    if (!s || !text_tree_budget(t))
        return 0;
    TRY(text_tree_indent(t));
    TRY(cells_put_name(t->w, s->name));
    TRY(probe_writer_printf(t->w, "  %" PRIu64 " call%s, %s", n->calls,
                            n->calls == 1 ? "" : "s",
                            cells_time_trim(time, sizeof(time), n->total_ns)));
    if (t->depth)
        TRY(probe_writer_printf(t->w, ", %.1f%%", text_percent(n->total_ns, parent_total)));
    if (text_tree_on_path(t, n->site))
        return probe_writer_puts(t->w, "  [recursive]\n");
    TRY(probe_writer_puts(t->w, "\n"));
    if (t->first[n->index] == t->first[n->index + 1])
        return 0;
    if (t->depth == TEXT_TREE_DEPTH) {
        if (!text_tree_budget(t))
            return 0;
        TRY(text_tree_indent(t));
        return probe_writer_puts(t->w, "  ... (deeper calls not shown)\n");
    }
    t->path[t->depth++] = n->site;
    int r = text_tree_children(t, n->index, n->total_ns);
    t->depth--;
    return r;
}

static int
text_tree_children(struct text_tree *t, size_t group, uint64_t parent_total)
{
    for (size_t i = t->first[group]; i < t->first[group + 1] && !t->truncated; i++)
        TRY(text_tree_node(t, t->out[i], parent_total));
    return 0;
}

static int
text_tree(probe_writer *w, const probe_snapshot *snap)
{
    struct text_tree t = {.w = w, .snap = snap};

    t.nnodes = probe_snapshot_node_count(snap);
    if (t.nnodes == 0)
        return 0;

    int r = text_tree_index(&t);

    if (r == 0)
        r = probe_writer_puts(w, "\nCall tree (calls, total time, % of the enclosing "
                                 "scope's time on that path):\n");
    if (r == 0)
        r = text_tree_children(&t, t.nnodes, 0);
    if (r == 0 && t.truncated)
        r = probe_writer_printf(w, "... (call tree cut at %d lines)\n", TEXT_TREE_LINES);
    free(t.first);
    free(t.out);
    return r;
}

/* ---- resource usage by scope ------------------------------------------------- */

/* PROBE_RUSAGE_SCOPE sites that ran, by their CPU time. */
static int
text_usage_rows(probe_writer *w, const probe_site_info **v, size_t n)
{
    char user[TEXT_CELL], sys[TEXT_CELL];

    for (size_t i = 0; i < n; i++) {
        const probe_site_info *s = v[i];
        if (!s->has_usage || !s->usage_calls)
            continue;
        cells_time(user, sizeof(user), s->user_ns);
        cells_time(sys, sizeof(sys), s->system_ns);
        TRY(probe_writer_printf(w,
                                "%10" PRIu64 "  %s  %s  %9" PRIu64 "  %9" PRIu64 "  %9" PRIu64
                                "  %9" PRIu64 "  ",
                                s->usage_calls, user, sys, s->minor_faults, s->major_faults,
                                s->voluntary_switches, s->involuntary_switches));
        TRY(cells_put_name(w, s->name));
        TRY(probe_writer_puts(w, "\n"));
    }
    return 0;
}

static int
text_by_cpu(const void *pa, const void *pb)
{
    const probe_site_info *a = *(const probe_site_info *const *)pa;
    const probe_site_info *b = *(const probe_site_info *const *)pb;
    uint64_t ca = a->user_ns + a->system_ns, cb = b->user_ns + b->system_ns;

    return ca < cb ? 1 : ca > cb ? -1 : text_by_name(pa, pb);
}

static int
text_usage(probe_writer *w, const probe_snapshot *snap)
{
    const probe_site_info **v;
    size_t n, with = 0;

    TRY(text_collect(snap, PROBE_KIND_SCOPE, 1, &v, &n));
    for (size_t i = 0; i < n; i++)
        with += v[i]->has_usage && v[i]->usage_calls;
    qsort(v, n, sizeof(*v), text_by_cpu);

    int r = with ? probe_writer_printf(w,
                                       "\nResource usage by scope (PROBE_RUSAGE_SCOPE, the "
                                       "calling thread's usage inside the scope):\n"
                                       "%10s  %9s  %9s  %9s  %9s  %9s  %9s  %s\n",
                                       "calls", "user", "system", "minflt", "majflt", "vcsw",
                                       "ivcsw", "site")
                 : 0;
    if (r == 0)
        r = text_usage_rows(w, v, n);
    free(v);
    return r;
}

/* ---- heap by scope -------------------------------------------------------------- */

static int
text_by_mem(const void *pa, const void *pb)
{
    const probe_site_info *a = *(const probe_site_info *const *)pa;
    const probe_site_info *b = *(const probe_site_info *const *)pb;

    return a->mem_bytes < b->mem_bytes ? 1 : a->mem_bytes > b->mem_bytes ? -1
                                                                         : text_by_name(pa, pb);
}

/* The exact bytes allocated inside each scope (PROBE_MEM=1), largest first; nothing
 * when no scope saw an allocation. */
static int
text_heap(probe_writer *w, const probe_snapshot *snap)
{
    const probe_site_info **v;
    size_t n, with = 0;
    int r = 0;

    TRY(text_collect(snap, PROBE_KIND_SCOPE, 1, &v, &n));
    for (size_t i = 0; i < n; i++)
        with += v[i]->mem_allocs || v[i]->mem_freed;
    qsort(v, n, sizeof(*v), text_by_mem);
    if (with)
        r = probe_writer_printf(w, "\nHeap by scope (PROBE_MEM=1: every allocation while "
                                   "the scope was open, exact):\n%12s  %16s  %16s  %s\n",
                                "allocs", "bytes", "freed bytes", "site");
    for (size_t i = 0; r == 0 && i < n; i++) {
        const probe_site_info *s = v[i];
        if (!s->mem_allocs && !s->mem_freed)
            continue;
        r = probe_writer_printf(w, "%12" PRIu64 "  %16" PRIu64 "  %16" PRIu64 "  ",
                                s->mem_allocs, s->mem_bytes, s->mem_freed);
        if (r == 0)
            r = cells_put_name(w, s->name);
        if (r == 0)
            r = probe_writer_puts(w, "\n");
    }
    free(v);
    return r;
}

/* ---- counters and lines ------------------------------------------------------ */

static int
text_counter_rows(probe_writer *w, const probe_site_info **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const probe_site_info *s = v[i];

        if (s->calls)
            TRY(probe_writer_printf(w, "%20" PRId64 "  %12" PRIu64 "  ", s->value,
                                    s->calls));
        else
            TRY(probe_writer_printf(w, "%20s  %12s  ", "-", "never"));
        TRY(cells_put_name(w, s->name));
        TRY(probe_writer_puts(w, "\n"));
    }
    return 0;
}

/* Updated counters first, then those never updated, each group by name. */
static int
text_counters(probe_writer *w, const probe_snapshot *snap)
{
    const probe_site_info **v;
    size_t n, m;

    TRY(text_collect(snap, PROBE_KIND_COUNTER, 1, &v, &n));
    qsort(v, n, sizeof(*v), text_by_name);

    int r = n ? probe_writer_printf(w, "\nCounters:\n%20s  %12s  %s\n", "value",
                                    "updates", "name")
              : 0;

    if (r == 0)
        r = text_counter_rows(w, v, n);
    free(v);
    TRY(r);
    TRY(text_collect(snap, PROBE_KIND_COUNTER, 0, &v, &m));
    qsort(v, m, sizeof(*v), text_by_name);
    r = m && !n ? probe_writer_printf(w, "\nCounters:\n%20s  %12s  %s\n", "value",
                                      "updates", "name")
                : 0;
    if (r == 0)
        r = text_counter_rows(w, v, m);
    free(v);
    return r;
}

static int
text_line_row(probe_writer *w, const probe_site_info *s, const char **file)
{
    if (!*file || text_cmp_str(*file, s->file) != 0) {
        *file = s->file ? s->file : "";
        TRY(probe_writer_puts(w, "  "));
        TRY(cells_put_name(w, s->file));
        TRY(probe_writer_puts(w, "\n"));
    }
    if (s->calls)
        TRY(probe_writer_printf(w, "%12" PRIu64 "  ", s->calls));
    else
        TRY(probe_writer_printf(w, "%12s  ", ">>>>>>"));
    TRY(cells_put_name(w, s->file));
    TRY(probe_writer_printf(w, ":%u  ", s->line));
    TRY(cells_put_name(w, s->function));
    return probe_writer_puts(w, s->calls ? "\n" : "  (never ran)\n");
}

static int
text_line_rows(probe_writer *w, const probe_site_info **v, size_t n, size_t ran)
{
    const char *file = NULL;

    qsort(v, n, sizeof(*v), text_by_file_line);
    TRY(probe_writer_puts(w, "\nLine coverage (hits; \">>>>>>\" = never ran):\n"));
    for (size_t i = 0; i < n; i++)
        TRY(text_line_row(w, v[i], &file));
    return probe_writer_printf(w, "%zu of %zu lines ran (%.1f%%)\n", ran, n,
                               text_percent(ran, n));
}

static int
text_lines(probe_writer *w, const probe_snapshot *snap)
{
    size_t count = probe_snapshot_site_count(snap), n = 0, ran = 0;
    const probe_site_info **v = calloc(count ? count : 1, sizeof(*v));

    if (!v)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);

        if (s && s->kind == PROBE_KIND_LINE) {
            v[n++] = s;
            ran += s->calls > 0;
        }
    }

    int r = n ? text_line_rows(w, v, n, ran) : 0;

    free(v);
    return r;
}

/* ---- threads, losses, resources ---------------------------------------------- */

/* A thread the sampler saw that never used libprobe, so has no listing of its own. */
struct text_sampled {
    uint64_t tid;
    uint64_t weight;
};

/* Those threads, each once with its samples, in the order they first come. */
static int
text_sampled_only(const probe_snapshot *snap, struct text_sampled **ret, size_t *ret_n)
{
    size_t count = probe_snapshot_sample_count(snap), n = 0;
    struct text_sampled *v = calloc(count ? count : 1, sizeof(*v));

    if (!v)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);
        size_t k = n;

        if (!s || s->thread != PROBE_SAMPLE_NO_THREAD)
            continue;
        /* Samples come grouped by thread: the search nearly always stops at once. */
        while (k > 0 && v[k - 1].tid != s->tid)
            k--;
        if (k == 0) {
            v[n].tid = s->tid;
            k = ++n;
        }
        v[k - 1].weight += s->weight;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static int
text_thread_rows(probe_writer *w, const probe_snapshot *snap, size_t n,
                 const struct text_sampled *only, size_t nonly)
{
    size_t all = n + nonly, shown = all < TEXT_THREADS_LISTED ? all : TEXT_THREADS_LISTED;

    TRY(probe_writer_printf(w, "\nThreads:\n%12s  %12s  %-6s  %s\n", "tid", "scopes",
                            "state", "name"));
    for (size_t i = 0; i < shown && i < n; i++) {
        const probe_thread_info *t = probe_snapshot_thread(snap, i);

        if (!t)
            continue;
        TRY(probe_writer_printf(w, "%12" PRIu64 "  %12" PRIu64 "  %-6s  ", t->tid,
                                t->scopes, t->live ? "live" : "exited"));
        TRY(cells_put_name(w, t->name));
        TRY(probe_writer_puts(w, "\n"));
    }
    /* Their names and states are not recorded: the sampler only knows their ids. */
    for (size_t i = n; i < shown; i++)
        TRY(probe_writer_printf(w, "%12" PRIu64 "  %12s  %-6s  (never used libprobe; "
                                   "%" PRIu64 " samples)\n",
                                only[i - n].tid, "-", "-", only[i - n].weight));
    if (shown < all)
        TRY(probe_writer_printf(w, "... and %zu more threads\n", all - shown));
    return 0;
}

static int
text_threads(probe_writer *w, const probe_snapshot *snap)
{
    size_t n = probe_snapshot_thread_count(snap), nonly;
    struct text_sampled *only;

    TRY(text_sampled_only(snap, &only, &nonly));

    int r = n + nonly ? text_thread_rows(w, snap, n, only, nonly) : 0;

    free(only);
    return r;
}

/* ---- what else was recorded -------------------------------------------------- */

/* @n with thousands separators: "1,832". */
static const char *
text_count(char *buf, size_t size, uint64_t n)
{
    char digits[24];
    int len = snprintf(digits, sizeof(digits), "%" PRIu64, n);
    size_t at = 0;

    for (int i = 0; i < len && at + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = '\0';
    return buf;
}

/* The samples and the timeline this format does not show, and where to see them. */
static int
text_notes(probe_writer *w, const probe_snapshot *snap)
{
    const probe_sampler_info *in = probe_snapshot_sampler_info(snap);
    const probe_loss_info *l = probe_snapshot_losses(snap);
    size_t nsamples = probe_snapshot_sample_count(snap);
    size_t nevents = probe_snapshot_event_count(snap);
    uint64_t weight = 0, sdropped = in ? in->dropped_expirations : 0;
    uint64_t edropped = l ? l->events_dropped : 0;
    char a[32], b[32];

    for (size_t i = 0; i < nsamples; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        weight += s ? s->weight : 0;
    }
    if (weight || sdropped)
        TRY(probe_writer_printf(w, "note: %s samples recorded (%s dropped): use the tree "
                                   "format (or pprof, collapsed, html)\n",
                                text_count(a, sizeof(a), weight),
                                text_count(b, sizeof(b), sdropped)));
    if (nevents || edropped)
        TRY(probe_writer_printf(w, "note: %s trace events recorded (%s dropped): use the "
                                   "chrome format (or speedscope)\n",
                                text_count(a, sizeof(a), nevents),
                                text_count(b, sizeof(b), edropped)));
    return 0;
}

static int
text_losses(probe_writer *w, const probe_snapshot *snap)
{
    const probe_loss_info *l = probe_snapshot_losses(snap);

    if (!l)
        return 0;

    const struct {
        uint64_t n;
        const char *what;
    } rows[] = {
        {l->depth_overflow, "scopes entered beyond the stack depth limit were not timed"},
        {l->unbalanced, "unbalanced scopes (an END without BEGIN, or left open)"},
        {l->edges_dropped, "calls not placed in the call tree (a thread's 16384 paths were in use)"},
        {l->sites_dropped, "site hits dropped (the site table was full)"},
        {l->threads_unlisted, "exited threads counted but not listed"},
        {l->events_dropped, "timeline events not kept (ring overwritten or buffers full)"},
        {l->stats_dropped, "calls left out of a histogram, or rusage not kept (out of memory)"},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].n)
            TRY(probe_writer_printf(w, "warning: %" PRIu64 " %s\n", rows[i].n,
                                    rows[i].what));
    }
    return 0;
}

static int
text_rusage(probe_writer *w, const probe_snapshot *snap)
{
    const probe_rusage *ru = probe_snapshot_rusage(snap);
    char user[TEXT_CELL], sys[TEXT_CELL], rss[TEXT_CELL];

    if (!ru)
        return 0;
    text_bytes(rss, sizeof(rss), ru->max_rss_bytes);
    return probe_writer_printf(w, "\nResources: user %s, system %s, max RSS %s\n",
                               cells_time_trim(user, sizeof(user), ru->user_ns),
                               cells_time_trim(sys, sizeof(sys), ru->system_ns), rss);
}

/* probe run --follow-fork, in the first process: where the children's reports went. */
static int
text_children(probe_writer *w, const probe_snapshot *snap)
{
    if (!snap->children)
        return 0;
    TRY(probe_writer_puts(w, "\nChild reports:\n"));
    for (size_t at = 0; at < snap->children_len; at += strlen(snap->children + at) + 1)
        TRY(probe_writer_printf(w, "  %s\n", snap->children + at));
    return 0;
}

static int
text_sections(probe_writer *w, const probe_snapshot *snap, const struct text_options *o)
{
    TRY(text_header(w, snap));
    TRY(text_notes(w, snap));
    TRY(text_losses(w, snap));
    TRY(text_scopes(w, snap, o));
    TRY(text_tree(w, snap));
    TRY(text_usage(w, snap));
    TRY(text_heap(w, snap));
    TRY(text_counters(w, snap));
    TRY(text_lines(w, snap));
    TRY(text_threads(w, snap));
    TRY(memtext_write(w, probe_snapshot_mem(snap)));
    /* probe_snapshot_merge() of several reports: say what it could not keep. */
    if (snap->peaks_unknown && (probe_snapshot_mem(snap) || snap->heap))
        TRY(probe_writer_puts(w, "note: merged from several processes: the peaks of the "
                                 "tags and of the heap are not known (each process "
                                 "peaked at its own time), so none is shown\n"));
    TRY(text_rusage(w, snap));
    return text_children(w, snap);
}

int
text_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    struct text_options o;

    (void)user;
    TRY(text_parse_options(options ? options : "", &o, NULL));

    int r = text_sections(w, snap, &o);

    text_options_free(&o);
    return r;
}
