/* probe report: render saved JSON reports, like pstats: sorted, limited, filtered,
 * the callers or callees of one site, one thread; several files are merged first
 * (docs/probe-command.md). Also the loading both this and probe diff use. */
#include "probe-cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/common.h>
#include <probe/report.h>

const char cmd_report_synopsis[] =
    "probe report FILE... [-f FORMAT] [-o FILE] [--sort calls|total|self|p99|name]\n"
    "                    [--limit N] [--filter REGEX] [--callers NAME] [--callees NAME]\n"
    "                    [--thread NAME]";

/* What each option does; --thread above all, since it does not do what its name
 * suggests to a pstats user (docs/probe-command.md). */
static const char report_help[] =
    "Render saved probe/1 JSON reports; several FILEs are merged first.\n"
    "  -f, --format FORMAT  text, json, tree, chrome, html, ... (docs/formats.md); by\n"
    "                       default the one -o FILE's name asks for (x.html html,\n"
    "                       x.trace.json chrome, x.json json, ...), else text\n"
    "  -o, --output FILE    write to FILE instead of standard output\n"
    "  --sort KEY           a table of scopes by total (default), calls, self, p99, name\n"
    "  --limit N            the first N rows of the table\n"
    "  --filter REGEX       scopes whose name matches (POSIX extended)\n"
    "  --callers NAME       the scopes that called NAME, calls and time on each edge\n"
    "  --callees NAME       the scopes NAME called, calls and time on each edge\n"
    "  --thread NAME        keep the reports (processes) that ran a thread whose name\n"
    "                       (\"pid P: NAME\" as merged) contains NAME. Reports keep no\n"
    "                       per-thread statistics, so the figures shown are those of\n"
    "                       every thread of the processes kept, not of that thread.\n";

probe_snapshot *
cmd_load_report(const char *name, const char *path)
{
    probe_load_error err;
    probe_snapshot *s = probe_snapshot_load(path, &err);

    if (s)
        return s;
    if (err.code == PROBE_EINVAL || err.code == PROBE_ERANGE)
        cmd_error(name, "%s: not a probe/1 report: at byte %zu: %s", path, err.offset,
                  err.message);
    else
        cmd_error(name, "%s: %s", path, probe_strerror(err.code));
    return NULL;
}

int
cmd_write_output(const char *name, const char *path, const char *data, size_t len)
{
    int fd = STDOUT_FILENO, rc;

    if (path) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            cmd_error(name, "%s: %s", path, strerror(errno));
            return 1;
        }
    }
    rc = cmd_write_all(fd, data, len);
    if (path && close(fd) < 0 && !rc)
        rc = -errno;
    if (rc) {
        cmd_error(name, "%s: %s", path ? path : "standard output", strerror(-rc));
        return 1;
    }
    return 0;
}

enum sort_key { SORT_TOTAL, SORT_CALLS, SORT_SELF, SORT_P99, SORT_NAME };

static enum sort_key sort_key;

static uint64_t
sort_value(const probe_site_info *s)
{
    switch (sort_key) {
    case SORT_CALLS:
        return s->calls;
    case SORT_SELF:
        return s->self_ns;
    case SORT_P99:
        return s->p99_ns;
    default:
        return s->total_ns;
    }
}

/* Largest first; by name for --sort name; ties by index, so output is stable. */
static int
site_cmp(const void *pa, const void *pb)
{
    const probe_site_info *a = *(const probe_site_info *const *)pa;
    const probe_site_info *b = *(const probe_site_info *const *)pb;

    if (sort_key == SORT_NAME) {
        int c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
        if (c)
            return c;
    } else if (sort_value(a) != sort_value(b)) {
        return sort_value(a) > sort_value(b) ? -1 : 1;
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

static void
row_text(cmd_buf *b, const probe_site_info *s)
{
    cmd_buf_printf(b, "%12" PRIu64 " %14.3f %14.3f %12.3f %12.3f  %s (%s:%u)\n", s->calls,
                   (double)s->total_ns / 1e3, (double)s->self_ns / 1e3,
                   (double)s->p50_ns / 1e3, (double)s->p99_ns / 1e3,
                   s->name ? s->name : "?", s->file ? s->file : "?", s->line);
}

static void
row_json(cmd_buf *b, const probe_site_info *s, int first)
{
    cmd_buf_puts(b, first ? "\n  {\"name\":" : ",\n  {\"name\":");
    cmd_buf_json_string(b, s->name ? s->name : "");
    cmd_buf_puts(b, ",\"file\":");
    cmd_buf_json_string(b, s->file ? s->file : "");
    cmd_buf_printf(b, ",\"line\":%u,\"calls\":%" PRIu64 ",\"total_ns\":%" PRIu64
                      ",\"self_ns\":%" PRIu64 ",\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64 "}",
                   s->line, s->calls, s->total_ns, s->self_ns, s->p50_ns, s->p99_ns);
}

/* --callers / --callees: the edges into or out of the scopes named @who. */
static int
edges_of(cmd_buf *b, const probe_snapshot *snap, const char *who, int callers, int json)
{
    size_t n = probe_snapshot_edge_count(snap), found = 0;
    int any = 0;

    for (size_t i = 0; i < probe_snapshot_site_count(snap); i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);
        found += s->kind == PROBE_KIND_SCOPE && s->name && strcmp(s->name, who) == 0;
    }
    if (!found)
        return -1;
    if (json)
        cmd_buf_puts(b, "[");
    else
        cmd_buf_printf(b, "%s of %s:\n%12s %14s  %s\n", callers ? "Callers" : "Callees", who,
                       "calls", "total_us", callers ? "caller" : "callee");
    for (size_t i = 0; i < n; i++) {
        const probe_edge_info *e = probe_snapshot_edge(snap, i);
        const probe_site_info *self = probe_snapshot_site(snap, callers ? e->callee : e->caller);
        const probe_site_info *other = probe_snapshot_site(snap, callers ? e->caller : e->callee);
        if (!self->name || strcmp(self->name, who) != 0)
            continue;
        if (json) {
            cmd_buf_puts(b, any ? ",\n  {\"name\":" : "\n  {\"name\":");
            cmd_buf_json_string(b, other->name ? other->name : "");
            cmd_buf_printf(b, ",\"calls\":%" PRIu64 ",\"total_ns\":%" PRIu64 "}", e->calls,
                           e->total_ns);
        } else {
            cmd_buf_printf(b, "%12" PRIu64 " %14.3f  %s\n", e->calls,
                           (double)e->total_ns / 1e3, other->name ? other->name : "?");
        }
        any = 1;
    }
    if (json)
        cmd_buf_puts(b, any ? "\n]\n" : "]\n");
    return 0;
}

/* Does report @s have a thread whose name, as a merge shows it ("pid P: NAME"),
 * contains @want? */
static int
has_thread(const probe_snapshot *s, const char *want)
{
    const probe_snapshot *two[] = {s, s};
    probe_snapshot *named = probe_snapshot_merge(two, 2);
    int hit = 0;

    for (size_t i = 0; named && i < probe_snapshot_thread_count(named) && !hit; i++) {
        const char *name = probe_snapshot_thread(named, i)->name;
        hit = name && strstr(name, want) != NULL;
    }
    probe_snapshot_free(named);
    return hit;
}

int
cmd_report(int argc, char **argv)
{
    static const char name[] = "report";
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
        {"sort", required_argument, NULL, 's'},   {"limit", required_argument, NULL, 'l'},
        {"filter", required_argument, NULL, 'F'}, {"callers", required_argument, NULL, 'c'},
        {"callees", required_argument, NULL, 'C'}, {"thread", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *format = NULL, *out = NULL, *filter = NULL, *callers = NULL,
               *callees = NULL, *thread = NULL;
    long limit = -1;
    int table = 0, c, status = 1;
    regex_t re;
    int have_re = 0;

    sort_key = SORT_TOTAL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 's': {
            static const char *const keys[] = {"total", "calls", "self", "p99", "name"};
            size_t k = 0;
            while (k < 5 && strcmp(keys[k], optarg) != 0)
                k++;
            if (k == 5)
                return cmd_usage_error(name, "unknown sort key '%s' (calls, total, self, "
                                       "p99 or name)", optarg);
            sort_key = (enum sort_key)k;
            table = 1;
            break;
        }
        case 'l': {
            char *end;
            errno = 0;
            limit = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || limit < 0)
                return cmd_usage_error(name, "--limit wants a number >= 0, not '%s'", optarg);
            table = 1;
            break;
        }
        case 'F':
            filter = optarg;
            table = 1;
            break;
        case 'c':
            callers = optarg;
            table = 1;
            break;
        case 'C':
            callees = optarg;
            table = 1;
            break;
        case 't':
            thread = optarg;
            break;
        case 'h':
            printf("usage: %s\n\n%s", cmd_report_synopsis, report_help);
            return 0;
        default:
            return cmd_usage_error(name, "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cmd_usage_error(name, "no report given");
    /* No -f: the output file's name says (x.html, x.trace.json), as for probe run;
     * a table is text unless the name says json. */
    if (!format) {
        format = out ? run_format_of(out) : NULL;
        if (!format || (table && strcmp(format, "json") != 0))
            format = "text";
    }
    if (table && strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
        return cmd_usage_error(name, "--sort, --limit, --filter, --callers and --callees "
                               "make a table: -f text or -f json, not '%s'", format);
    if (callers && callees)
        return cmd_usage_error(name, "--callers and --callees: one at a time");
    if (filter) {
        int e = regcomp(&re, filter, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char msg[128];
            regerror(e, &re, msg, sizeof(msg));
            cmd_error(name, "bad regular expression '%s': %s", filter, msg);
            return CMD_EXIT_USAGE;
        }
        have_re = 1;
    }

    size_t n = (size_t)(argc - optind), kept = 0;
    probe_snapshot **in = calloc(n, sizeof(*in));
    probe_snapshot *snap = NULL;
    cmd_buf b = {0};
    if (!in)
        goto out;
    for (size_t i = 0; i < n; i++) {
        probe_snapshot *s = cmd_load_report(name, argv[optind + i]);
        if (!s)
            goto out;
        /* --thread: per-thread statistics are not saved, so it picks the reports
         * (processes) that ran a thread of that name. */
        if (thread && !has_thread(s, thread)) {
            probe_snapshot_free(s);
            continue;
        }
        in[kept++] = s;
    }
    if (!kept) {
        cmd_error(name, "no thread named '%s' in %s", thread, n > 1 ? "these reports"
                                                                   : argv[optind]);
        goto out;
    }
    snap = probe_snapshot_merge((const probe_snapshot *const *)in, kept);
    if (!snap) {
        cmd_error(name, "merging the reports: %s", strerror(errno));
        goto out;
    }

    if (!table) {
        char *data;
        size_t len;
        int rc = probe_snapshot_format(snap, format, &data, &len);
        if (rc == PROBE_EINVAL) {
            char why[512];

            if (probe_format_check(format, why, sizeof(why)) < 0)
                cmd_error(name, "%s", why);
            else
                cmd_error(name, "formatting as %s: %s", format, probe_strerror(rc));
            goto out;
        }
        if (rc < 0) {
            cmd_error(name, "formatting as %s: %s", format, probe_strerror(rc));
            goto out;
        }
        status = cmd_write_output(name, out, data, len);
        free(data);
        goto out;
    }

    int json = strcmp(format, "json") == 0;
    if (callers || callees) {
        if (edges_of(&b, snap, callers ? callers : callees, callers != NULL, json) < 0) {
            cmd_error(name, "no scope named '%s'", callers ? callers : callees);
            goto out;
        }
    } else {
        size_t ns = probe_snapshot_site_count(snap), nv = 0;
        const probe_site_info **v = calloc(ns + 1, sizeof(*v));
        if (!v)
            goto out;
        for (size_t i = 0; i < ns; i++) {
            const probe_site_info *s = probe_snapshot_site(snap, i);
            if (s->kind != PROBE_KIND_SCOPE || !s->calls)
                continue;
            if (have_re && regexec(&re, s->name ? s->name : "", 0, NULL, 0) != 0)
                continue;
            v[nv++] = s;
        }
        qsort(v, nv, sizeof(*v), site_cmp);
        if (limit >= 0 && (size_t)limit < nv)
            nv = (size_t)limit;
        if (!json)
            cmd_buf_printf(&b, "%12s %14s %14s %12s %12s  %s\n", "calls", "total_us",
                           "self_us", "p50_us", "p99_us", "scope (file:line)");
        else
            cmd_buf_puts(&b, "[");
        for (size_t i = 0; i < nv; i++)
            json ? row_json(&b, v[i], i == 0) : row_text(&b, v[i]);
        if (json)
            cmd_buf_puts(&b, nv ? "\n]\n" : "]\n");
        free(v);
    }
    if (b.failed) {
        cmd_error(name, "out of memory");
        goto out;
    }
    status = cmd_write_output(name, out, b.data ? b.data : "", b.len);
out:
    if (have_re)
        regfree(&re);
    cmd_buf_free(&b);
    for (size_t i = 0; in && i < kept; i++)
        probe_snapshot_free(in[i]);
    free(in);
    probe_snapshot_free(snap);
    return status;
}
