/* probe_budget_check(): measure, compare with the absolute budget and the baseline,
 * record what the baseline lacks, and explain a failure scope by scope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/budget.h>

#include "budget/baseline.h"
#include "budget/measure.h"
#include "budget/message.h"
#include "budget/scopes.h"

/* Scopes listed in a failure message; the rest are counted. */
#define SHOWN_SCOPES 5

struct row {
    const char *name;
    int has_old;
    uint64_t old_ns, new_ns, old_calls, new_calls;
    double delta;   /* new - old, ns */
};

static int
by_delta(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    return x->delta < y->delta ? 1 : x->delta > y->delta ? -1 : strcmp(x->name, y->name);
}

static double
soft_limit(const probe_budget_options *opts, probe_budget_kind kind,
           const probe_budget_result *r)
{
    if (opts && opts->soft_limit_pct > 0)
        return opts->soft_limit_pct;
    const char *env = secure_getenv("PROBE_BUDGET_SOFT_LIMIT");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (end != env && v > 0)
            return v;
    }
    if (kind == PROBE_BUDGET_CPU)
        return 25;
    return r->instructions_exact ? 2 : 10;
}

/* "callgrind, exact, 3 runs" / "thread CPU time, min of 11 runs, median ..." */
static void
describe(struct msgbuf *m, probe_budget_kind kind, const probe_budget_result *r)
{
    char a[32], b[32];

    if (kind == PROBE_BUDGET_INSTRUCTIONS && r->instructions_exact)
        msg_printf(m, "%s, exact, %u runs", r->instructions_source_name, r->runs);
    else if (kind == PROBE_BUDGET_INSTRUCTIONS)
        msg_printf(m, "%s, min of %u runs, median %s", r->instructions_source_name, r->runs,
                   fmt_count(a, sizeof(a), r->instructions_median));
    else
        msg_printf(m, "thread CPU time, min of %u runs, median %s, spread %s", r->runs,
                   fmt_ns(a, sizeof(a), r->cpu_median_ns),
                   fmt_pct(b, sizeof(b), r->cpu_spread_pct) + 1);
}

static const char *
figure(char *buf, size_t len, probe_budget_kind kind, uint64_t v)
{
    return kind == PROBE_BUDGET_CPU ? fmt_ns(buf, len, v) : fmt_count(buf, len, v);
}

static void
list_scopes(struct msgbuf *m, const char *name, const struct scope_table *t,
            const struct baseline *b, const char *scope_measure)
{
    char x[32], y[32], z[32];

    if (t->n == 0)
        return;
    struct row *rows = calloc(t->n, sizeof(*rows));
    if (!rows)
        return;
    int any_old = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct baseline_entry *e =
            b ? baseline_find(b, name, scope_measure, t->v[i].name) : NULL;
        rows[i] = (struct row){.name = t->v[i].name,
                               .has_old = e != NULL,
                               .old_ns = e ? e->value : 0,
                               .old_calls = e ? e->calls : 0,
                               .new_ns = t->v[i].self_ns,
                               .new_calls = t->v[i].calls};
        rows[i].delta = (double)rows[i].new_ns - (double)rows[i].old_ns;
        any_old |= e != NULL;
    }
    qsort(rows, t->n, sizeof(*rows), by_delta);
    if (any_old)
        msg_printf(m, "\n  scopes by growth against the baseline (self time per run: "
                      "baseline | now | change):");
    else
        msg_printf(m, "\n  scopes by self time per run (no baseline to compare with):");
    for (size_t i = 0; i < t->n && i < SHOWN_SCOPES; i++) {
        const struct row *r = &rows[i];
        if (!any_old) {
            msg_printf(m, "\n    %s: %s, %llu call%s", r->name, fmt_ns(x, sizeof(x), r->new_ns),
                       (unsigned long long)r->new_calls, r->new_calls == 1 ? "" : "s");
            continue;
        }
        if (!r->has_old) {
            msg_printf(m, "\n    %s: (new) | %s", r->name, fmt_ns(y, sizeof(y), r->new_ns));
        } else {
            msg_printf(m, "\n    %s: %s | %s | %s", r->name, fmt_ns(x, sizeof(x), r->old_ns),
                       fmt_ns(y, sizeof(y), r->new_ns),
                       r->old_ns ? fmt_pct(z, sizeof(z), 100.0 * r->delta / (double)r->old_ns)
                                 : "new cost");
        }
        if (r->has_old && r->old_calls != r->new_calls)
            msg_printf(m, " (calls %llu -> %llu)", (unsigned long long)r->old_calls,
                       (unsigned long long)r->new_calls);
    }
    if (t->n > SHOWN_SCOPES)
        msg_printf(m, "\n    ... and %zu more", t->n - SHOWN_SCOPES);
    free(rows);
}

PROBE_EXPORT int
probe_budget_check(const char *name, probe_budget_kind kind, void (*fn)(void *), void *arg,
                   uint64_t limit, const probe_budget_options *opts, char *msg, size_t len)
{
    struct msgbuf m;
    char a[32], b[32], c[32];

    msg_init(&m, msg, len);
    if (!name || !fn || (kind != PROBE_BUDGET_INSTRUCTIONS && kind != PROBE_BUDGET_CPU)) {
        msg_printf(&m, "%s: invalid arguments", name ? name : "(null)");
        return PROBE_EINVAL;
    }
    const char *unit = kind == PROBE_BUDGET_CPU ? "CPU" : "instructions";
    if (kind == PROBE_BUDGET_CPU && probe_budget_on_valgrind()) {
        msg_printf(&m, "%s: CPU time not checked under Valgrind", name);
        return PROBE_BUDGET_UNMEASURED;
    }

    struct scope_table scopes = {0};
    struct measure_hook hook = {scopes_before, scopes_after_run, &scopes};
    probe_budget_result r;
    int rc = budget_measure(fn, arg, opts, &r, &hook);
    if (rc < 0) {
        scopes_free(&scopes);
        msg_printf(&m, "%s: measuring failed: %s", name, probe_strerror(rc));
        return rc;
    }
    if (kind == PROBE_BUDGET_INSTRUCTIONS && !r.has_instructions) {
        scopes_free(&scopes);
        msg_printf(&m, "%s: instructions not measured: %s", name, r.instructions_note);
        return PROBE_BUDGET_UNMEASURED;
    }

    uint64_t value = kind == PROBE_BUDGET_CPU ? r.cpu_min_ns : r.instructions_min;
    char measure[64];
    if (kind == PROBE_BUDGET_CPU)
        strcpy(measure, "cpu_ns");
    else
        snprintf(measure, sizeof(measure), "instructions/%s", r.instructions_source_name);
    /* Scope times under Valgrind are some 50 times longer: kept apart. */
    const char *scope_measure = r.on_valgrind ? "self_ns/valgrind" : "self_ns";

    const char *path = opts && opts->baseline ? opts->baseline
                                              : secure_getenv("PROBE_BUDGET_BASELINE");
    struct baseline base;
    int have_base = 0, recorded = 0;
    const struct baseline_entry *old = NULL;
    if (path && *path) {
        rc = baseline_open(path, &base);
        if (rc < 0) {
            scopes_free(&scopes);
            msg_printf(&m, "%s: baseline %s: %s", name, path, probe_strerror(rc));
            return rc;
        }
        have_base = 1;
        old = baseline_find(&base, name, measure, "-");
    }

    double soft = soft_limit(opts, kind, &r);
    int over_hard = limit && value > limit;
    int over_soft = old && (double)value > (double)old->value * (1.0 + soft / 100.0);
    if (have_base && !old && !over_hard) {
        rc = baseline_set(&base, name, measure, "-", value, 1);
        for (size_t i = 0; rc == 0 && i < scopes.n; i++)
            if (!baseline_find(&base, name, scope_measure, scopes.v[i].name))
                rc = baseline_set(&base, name, scope_measure, scopes.v[i].name,
                                  scopes.v[i].self_ns, scopes.v[i].calls);
        recorded = rc == 0;
    }

    if (over_hard) {
        msg_printf(&m, "%s: %s %s > budget %s (%s, ", name, figure(a, sizeof(a), kind, value),
                   unit, figure(b, sizeof(b), kind, limit),
                   fmt_pct(c, sizeof(c), 100.0 * ((double)value - (double)limit) / (double)limit));
        describe(&m, kind, &r);
        msg_printf(&m, ")");
    }
    if (over_soft) {
        msg_printf(&m, "%s%s: %s %s > baseline %s + %g %% (%s, ", over_hard ? "\n" : "", name,
                   figure(a, sizeof(a), kind, value), unit,
                   figure(b, sizeof(b), kind, old->value), soft,
                   old->value ? fmt_pct(c, sizeof(c),
                                        100.0 * ((double)value - (double)old->value) /
                                            (double)old->value)
                              : "new cost");
        describe(&m, kind, &r);
        msg_printf(&m, "; baseline %s)", path);
    }
    if (over_hard || over_soft) {
        list_scopes(&m, name, &scopes, have_base ? &base : NULL, scope_measure);
    } else {
        msg_printf(&m, "%s: %s %s", name, figure(a, sizeof(a), kind, value), unit);
        if (limit)
            msg_printf(&m, " <= budget %s", figure(b, sizeof(b), kind, limit));
        if (old)
            msg_printf(&m, ", within baseline %s + %g %%", figure(b, sizeof(b), kind, old->value),
                       soft);
        msg_printf(&m, " (");
        describe(&m, kind, &r);
        msg_printf(&m, "%s)", recorded ? "; baseline recorded" : "");
    }

    if (have_base) {
        rc = baseline_close(&base);
        if (rc < 0) {
            scopes_free(&scopes);
            msg_printf(&m, "\n%s: writing baseline %s: %s", name, path, probe_strerror(rc));
            return rc;
        }
    }
    scopes_free(&scopes);
    return over_hard || over_soft ? PROBE_BUDGET_OVER : PROBE_BUDGET_PASS;
}
