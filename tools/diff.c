/* probe diff: two saved reports side by side, site by site: old | new | delta % for
 * calls, total, self and p99, regressions first (docs/probe-command.md). */
#include "probe-cmd.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <probe/common.h>
#include <probe/report.h>

const char cmd_diff_synopsis[] =
    "probe diff BASE.json NEW.json [--sort delta|name] [--threshold PCT]\n"
    "                    [--fail-above PCT] [--measure self|total|p50|p99|calls] [-f text|json]\n"
    "                    [-o FILE]";

#define DIFF_EXIT_REGRESSION 3

enum { M_CALLS, M_TOTAL, M_SELF, M_P50, M_P99, M_N };
static const char *const measure_names[M_N] = {"calls", "total", "self", "p50", "p99"};

struct row {
    const probe_site_info *old, *new_;
    int64_t delta;          /* of the chosen measure, new - old */
    double pct;             /* the same in percent; +inf for a new site */
};

static int measure = M_SELF, by_name;

static uint64_t
value(const probe_site_info *s, int m)
{
    if (!s)
        return 0;
    switch (m) {
    case M_CALLS:
        return s->calls;
    case M_TOTAL:
        return s->total_ns;
    case M_P50:
        return s->p50_ns;
    case M_P99:
        return s->p99_ns;
    default:
        return s->self_ns;
    }
}

/* delta in percent; NAN when there is no base to compare with. */
static double
pct(const probe_site_info *o, const probe_site_info *n, int m)
{
    uint64_t a = value(o, m), b = value(n, m);

    if (!o || !a)
        return b ? NAN : 0.0;
    return ((double)b - (double)a) * 100.0 / (double)a;
}

static const char *
nm(const struct row *r)
{
    const probe_site_info *s = r->old ? r->old : r->new_;
    return s->name ? s->name : "?";
}

static int
row_cmp(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;

    /* Regressions first, by how much they grew in percent, then by how much time. */
    if (!by_name && a->pct != b->pct)
        return a->pct > b->pct ? -1 : 1;
    if (!by_name && a->delta != b->delta)
        return a->delta > b->delta ? -1 : 1;
    return strcmp(nm(a), nm(b));
}

static int
same_site(const probe_site_info *a, const probe_site_info *b)
{
#define SAME(x) ((a->x == b->x) || (a->x && b->x && strcmp(a->x, b->x) == 0))
    return a->kind == b->kind && a->line == b->line && SAME(name) && SAME(file) &&
           SAME(function);
#undef SAME
}

/* NULL first, then by strcmp. */
static int
cmp_str(const char *a, const char *b)
{
    if (a && b)
        return strcmp(a, b);
    return a ? 1 : b ? -1 : 0;
}

/* The order of site identities, for the match: equal exactly when same_site(). */
static const probe_snapshot *sort_snap;

static int
site_order(const probe_site_info *a, const probe_site_info *b)
{
    int c;

    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if ((c = cmp_str(a->name, b->name)) || (c = cmp_str(a->file, b->file)))
        return c;
    return cmp_str(a->function, b->function);
}

/* Ties by index: the first of equal sites is matched first, as in report order. */
static int
index_cmp(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = site_order(probe_snapshot_site(sort_snap, a), probe_snapshot_site(sort_snap, b));

    return c ? c : (a > b) - (a < b);
}

/* The index of the first site of @p n (by @p order, sorted) not yet matched that is
 * the same as @p s, now matched; or -1. @p next[j] is where the unmatched ones of
 * the run of equal sites starting at j begin. O(log n) each. */
static ptrdiff_t
match_site(const probe_snapshot *n, const size_t *order, size_t *next, size_t nn,
           const probe_site_info *s)
{
    size_t lo = 0, hi = nn;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (site_order(probe_snapshot_site(n, order[mid]), s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == nn || site_order(probe_snapshot_site(n, order[lo]), s) != 0)
        return -1;
    size_t j = next[lo];

    if (j >= nn || site_order(probe_snapshot_site(n, order[j]), s) != 0)
        return -1; /* all of them matched already */
    next[lo] = j + 1;
    return (ptrdiff_t)order[j];
}

static void
cell(cmd_buf *b, const struct row *r, int m)
{
    double p = pct(r->old, r->new_, m);
    uint64_t a = value(r->old, m), v = value(r->new_, m);

    if (m == M_CALLS)
        cmd_buf_printf(b, " %10" PRIu64 " %10" PRIu64, a, v);
    else
        cmd_buf_printf(b, " %11.3f %11.3f", (double)a / 1e3, (double)v / 1e3);
    if (isnan(p))
        cmd_buf_printf(b, " %8s", "new");
    else
        cmd_buf_printf(b, " %+7.1f%%", p);
}

static void
json_cell(cmd_buf *b, const struct row *r, int m)
{
    double p = pct(r->old, r->new_, m);

    cmd_buf_printf(b, ",\"%s\":{\"old\":%" PRIu64 ",\"new\":%" PRIu64 ",\"delta_pct\":",
                   measure_names[m], value(r->old, m), value(r->new_, m));
    if (isnan(p) || !r->old || !r->new_)
        cmd_buf_puts(b, "null}");
    else
        cmd_buf_printf(b, "%.1f}", p);
}

/* The callee of @site whose time under it grew most, from the edges. */
static const char *
hot_child(const probe_snapshot *o, const probe_snapshot *n, const probe_site_info *site,
          int64_t *ret)
{
    const char *best = NULL;
    int64_t most = 0;

    for (size_t i = 0; i < probe_snapshot_edge_count(n); i++) {
        const probe_edge_info *e = probe_snapshot_edge(n, i);
        const probe_site_info *caller = probe_snapshot_site(n, e->caller);
        const probe_site_info *callee = probe_snapshot_site(n, e->callee);
        if (!same_site(caller, site) || e->caller == e->callee)
            continue;
        uint64_t before = 0;
        for (size_t k = 0; k < probe_snapshot_edge_count(o); k++) {
            const probe_edge_info *f = probe_snapshot_edge(o, k);
            if (same_site(probe_snapshot_site(o, f->caller), caller) &&
                same_site(probe_snapshot_site(o, f->callee), callee))
                before = f->total_ns;
        }
        int64_t d = (int64_t)e->total_ns - (int64_t)before;
        if (d > most) {
            most = d;
            best = callee->name;
        }
    }
    *ret = most;
    return best;
}

static int
parse_pct(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return errno || end == s || *end || !(*out >= 0) ? -1 : 0;
}

int
cmd_diff(int argc, char **argv)
{
    static const char name[] = "diff";
    static const struct option opts[] = {
        {"sort", required_argument, NULL, 's'},      {"threshold", required_argument, NULL, 't'},
        {"fail-above", required_argument, NULL, 'F'}, {"measure", required_argument, NULL, 'm'},
        {"format", required_argument, NULL, 'f'},    {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    double threshold = 0, fail_above = -1;
    const char *out = NULL;
    int json = 0, c, status = 1;

    measure = M_SELF;
    by_name = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (strcmp(optarg, "delta") != 0 && strcmp(optarg, "name") != 0)
                return cmd_usage_error(name, "unknown sort key '%s' (delta or name)", optarg);
            by_name = strcmp(optarg, "name") == 0;
            break;
        case 't':
            if (parse_pct(optarg, &threshold) < 0)
                return cmd_usage_error(name, "--threshold wants a percentage, not '%s'", optarg);
            break;
        case 'F':
            if (parse_pct(optarg, &fail_above) < 0)
                return cmd_usage_error(name, "--fail-above wants a percentage, not '%s'",
                                       optarg);
            break;
        case 'm': {
            int m = 0;
            while (m < M_N && strcmp(measure_names[m], optarg) != 0)
                m++;
            if (m == M_N)
                return cmd_usage_error(name, "unknown measure '%s' (self, total, p50, p99 "
                                       "or calls)", optarg);
            measure = m;
            break;
        }
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
                return cmd_usage_error(name, "unknown format '%s' (text or json)", optarg);
            json = strcmp(optarg, "json") == 0;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            printf("usage: %s\n", cmd_diff_synopsis);
            return 0;
        default:
            return cmd_usage_error(name, "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cmd_usage_error(name, "two reports wanted, BASE and NEW; %d given",
                               argc - optind);

    probe_snapshot *o = cmd_load_report(name, argv[optind]);
    probe_snapshot *n = o ? cmd_load_report(name, argv[optind + 1]) : NULL;
    size_t no = probe_snapshot_site_count(o), nn = probe_snapshot_site_count(n), nr = 0;
    struct row *rows = calloc(no + nn + 1, sizeof(*rows));
    char *matched = calloc(nn + 1, 1);
    size_t *order = calloc(nn + 1, sizeof(*order)), *next = calloc(nn + 1, sizeof(*next));
    cmd_buf b = {0};
    int regressed = 0;

    if (!o || !n || !rows || !matched || !order || !next)
        goto out;
    /* Sites matched by kind, name, file, line and function; scopes only. NEW's
     * sites sorted by those, each of BASE's found by binary search: 20,000 sites
     * take milliseconds, where a scan of NEW for each took seconds. */
    for (size_t k = 0; k < nn; k++)
        order[k] = next[k] = k;
    sort_snap = n;
    qsort(order, nn, sizeof(*order), index_cmp);
    for (size_t i = 0; i < no; i++) {
        const probe_site_info *s = probe_snapshot_site(o, i);
        if (s->kind != PROBE_KIND_SCOPE)
            continue;
        ptrdiff_t k = match_site(n, order, next, nn, s);
        const probe_site_info *t = k >= 0 ? probe_snapshot_site(n, (size_t)k) : NULL;
        if (t)
            matched[k] = 1;
        if (!s->calls && (!t || !t->calls))
            continue;
        rows[nr++] = (struct row){s->calls ? s : NULL, t && t->calls ? t : NULL, 0, 0};
    }
    for (size_t k = 0; k < nn; k++) {
        const probe_site_info *t = probe_snapshot_site(n, k);
        if (!matched[k] && t->kind == PROBE_KIND_SCOPE && t->calls)
            rows[nr++] = (struct row){NULL, t, 0, 0};
    }
    for (size_t i = 0; i < nr; i++) {
        struct row *r = &rows[i];
        r->delta = (int64_t)value(r->new_, measure) - (int64_t)value(r->old, measure);
        double p = pct(r->old, r->new_, measure);
        r->pct = isnan(p) ? INFINITY : p;
        if (fail_above >= 0 && r->old && r->new_ && !isnan(p) && p > fail_above)
            regressed = 1;
    }
    qsort(rows, nr, sizeof(*rows), row_cmp);

    if (json)
        cmd_buf_printf(&b, "{\"measure\":\"%s\",\"sites\":[", measure_names[measure]);
    else
        cmd_buf_printf(&b, "%-8s %-24s %29s %32s %32s %32s %32s\n", "status", "scope",
                       "calls: old new delta", "total_us: old new delta",
                       "self_us: old new delta", "p50_us: old new delta",
                       "p99_us: old new delta");
    int first = 1;
    for (size_t i = 0; i < nr; i++) {
        const struct row *r = &rows[i];
        const char *st = !r->old ? "new" : !r->new_ ? "gone" : "changed";
        double p = pct(r->old, r->new_, measure);
        if (r->old && r->new_ && !isnan(p) && fabs(p) < threshold)
            continue;
        if (json) {
            cmd_buf_puts(&b, first ? "\n  {\"name\":" : ",\n  {\"name\":");
            cmd_buf_json_string(&b, nm(r));
            cmd_buf_printf(&b, ",\"status\":\"%s\"", st);
            for (int m = 0; m < M_N; m++)
                json_cell(&b, r, m);
            cmd_buf_puts(&b, "}");
        } else {
            cmd_buf_printf(&b, "%-8s %-24s", st, nm(r));
            for (int m = 0; m < M_N; m++)
                cell(&b, r, m);
            cmd_buf_puts(&b, "\n");
            int64_t grew;
            const char *child = first && r->old && r->new_ && r->delta > 0
                                    ? hot_child(o, n, r->new_, &grew) : NULL;
            if (child)
                cmd_buf_printf(&b, "         most of it under: %s -> %s (+%.3f us)\n", nm(r),
                               child, (double)grew / 1e3);
        }
        first = 0;
    }
    if (json)
        cmd_buf_printf(&b, "%s],\"regressed\":%s}\n", first ? "" : "\n",
                       regressed ? "true" : "false");
    if (b.failed) {
        cmd_error(name, "out of memory");
        goto out;
    }
    status = cmd_write_output(name, out, b.data ? b.data : "", b.len);
    if (!status && regressed) {
        cmd_error(name, "%s grew by more than %g %% in some site", measure_names[measure],
                  fail_above);
        status = DIFF_EXIT_REGRESSION;
    }
out:
    cmd_buf_free(&b);
    free(rows);
    free(matched);
    free(order);
    free(next);
    probe_snapshot_free(o);
    probe_snapshot_free(n);
    return status;
}
