/*
 * libprobe budgets as Check assertions. Header only: include it after <check.h> in
 * a Check test file (it includes both <check.h> and <probe/probe.h>).
 *
 *   ck_assert_probe_cpu_below(fn, arg, ns)
 *       fn(arg)'s thread CPU time (minimum of the runs) is below @p ns nanoseconds.
 *       Not checked under Valgrind, whose CPU is some 50 times slower.
 *   ck_assert_probe_instructions_below(fn, arg, count)
 *       fn(arg) executes at most @p count instructions (minimum of the runs).
 *       Checked where instructions can be counted: under
 *       `valgrind --tool=callgrind` (exact) or with a hardware counter; elsewhere
 *       not checked (docs/budgets.md has the meson test recipe for callgrind).
 *   ck_assert_probe_scope_calls(name, op, n)
 *       The PROBE_SCOPE(s) named @p name completed (calls op n) calls so far, e.g.
 *       ck_assert_probe_scope_calls("parse", ==, 10).
 *   ck_assert_probe_scope_mean_below(name, ns)
 *       Their mean total time per call is below @p ns nanoseconds (not checked
 *       under Valgrind).
 *   ck_assert_probe_scope_self_mean_below(name, ns)
 *       The same for their self time (not in child scopes).
 *   ck_assert_probe_scope_p99_below(name, ns)
 *       Their 99th percentile call duration (the largest of the sites with that
 *       name, at the histogram's 12.5 % resolution) is below @p ns.
 *
 * The first two go through probe_budget_check() with the name of @p fn as the
 * budget's name, so PROBE_BUDGET_BASELINE=file also compares them with a baseline
 * (<probe/budget.h>). Their failure message explains itself: measure, figure,
 * budget, margin, source, runs, then the scopes whose time grew most. They work in
 * Check's fork and no-fork modes (no memory is held when an assertion fails).
 */
#ifndef PROBE_CHECK_H
#define PROBE_CHECK_H

#include <stdint.h>
#include <string.h>

#include <check.h>

#include <probe/probe.h>

#define PROBE__CK_BUDGET(kind, fn, arg, limit)                                          \
    do {                                                                                \
        char probe__msg[PROBE_BUDGET_MSG_MAX];                                          \
        int probe__rc = probe_budget_check(#fn, (kind), (fn), (void *)(arg),            \
                                           (uint64_t)(limit), NULL, probe__msg,         \
                                           sizeof(probe__msg));                         \
        ck_assert_msg(probe__rc == PROBE_BUDGET_PASS ||                                 \
                          probe__rc == PROBE_BUDGET_UNMEASURED,                         \
                      "%s", probe__msg);                                                \
    } while (0)

/** Assert that fn(arg) takes less than @p ns of thread CPU time (see above). */
#define ck_assert_probe_cpu_below(fn, arg, ns)                                          \
    PROBE__CK_BUDGET(PROBE_BUDGET_CPU, fn, arg, ns)

/** Assert that fn(arg) executes at most @p count instructions (see above). */
#define ck_assert_probe_instructions_below(fn, arg, count)                              \
    PROBE__CK_BUDGET(PROBE_BUDGET_INSTRUCTIONS, fn, arg, count)

/* Not for direct use: what every scope site named @p name recorded, from a fresh
 * snapshot. 1 if there is one, 0 if none, -1 if no snapshot. */
typedef struct probe__ck_scope_figures {
    uint64_t calls, total_ns, self_ns, p99_ns;
} probe__ck_scope_figures;

static inline int
probe__ck_scope_all(const char *name, probe__ck_scope_figures *out)
{
    probe_snapshot *snap = probe_snapshot_take();
    int found = 0;
    size_t i, n;

    memset(out, 0, sizeof(*out));
    if (!snap)
        return -1;
    n = probe_snapshot_site_count(snap);
    for (i = 0; i < n; i++) {
        const probe_site_info *s = probe_snapshot_site(snap, i);
        if (s && s->kind == PROBE_KIND_SCOPE && s->name && strcmp(s->name, name) == 0) {
            found = 1;
            out->calls += s->calls;
            out->total_ns += s->total_ns;
            out->self_ns += s->self_ns;
            if (s->p99_ns > out->p99_ns)
                out->p99_ns = s->p99_ns;
        }
    }
    probe_snapshot_free(snap);
    return found;
}

/* Not for direct use: @p f, what the scope(s) named @p name recorded, asserted to
 * exist (and, with @p must_run, to have completed a call). */
#define PROBE__CK_SCOPE_FIGURES(name, f, must_run)                                      \
    probe__ck_scope_figures f;                                                          \
    int f##_found = probe__ck_scope_all((name), &f);                                    \
    ck_assert_msg(f##_found >= 0, "scope %s: no snapshot (out of memory)", (name));     \
    ck_assert_msg(f##_found, "scope %s: no PROBE_SCOPE has that name", (name));         \
    ck_assert_msg(!(must_run) || f.calls > 0, "scope %s: never ran", (name))

/** Assert on the completed calls of the scope(s) named @p name: @p op is a
 *  comparison operator (==, <, >=, ...). */
#define ck_assert_probe_scope_calls(name, op, n)                                        \
    do {                                                                                \
        PROBE__CK_SCOPE_FIGURES(name, probe__f, 0);                                     \
        ck_assert_msg(probe__f.calls op (uint64_t)(n),                                  \
                      "scope %s: %llu calls, expected " #op " %llu", (name),            \
                      (unsigned long long)probe__f.calls, (unsigned long long)(n));     \
    } while (0)

/** Assert that the scope(s) named @p name ran and took less than @p ns per call on
 *  average (total time); not checked under Valgrind. */
#define ck_assert_probe_scope_mean_below(name, ns)                                      \
    do {                                                                                \
        PROBE__CK_SCOPE_FIGURES(name, probe__f, 1);                                     \
        ck_assert_msg(probe_budget_on_valgrind() ||                                     \
                          probe__f.total_ns / probe__f.calls < (uint64_t)(ns),          \
                      "scope %s: mean %llu ns per call over %llu calls >= budget %llu ns", \
                      (name), (unsigned long long)(probe__f.total_ns / probe__f.calls), \
                      (unsigned long long)probe__f.calls, (unsigned long long)(ns));    \
    } while (0)

/** Assert that the scope(s) named @p name ran and spent less than @p ns per call on
 *  average in their own code (self time); not checked under Valgrind. */
#define ck_assert_probe_scope_self_mean_below(name, ns)                                 \
    do {                                                                                \
        PROBE__CK_SCOPE_FIGURES(name, probe__f, 1);                                     \
        ck_assert_msg(probe_budget_on_valgrind() ||                                     \
                          probe__f.self_ns / probe__f.calls < (uint64_t)(ns),           \
                      "scope %s: mean self time %llu ns per call over %llu calls >= "   \
                      "budget %llu ns", (name),                                         \
                      (unsigned long long)(probe__f.self_ns / probe__f.calls),          \
                      (unsigned long long)probe__f.calls, (unsigned long long)(ns));    \
    } while (0)

/** Assert that the scope(s) named @p name ran and their 99th percentile call took
 *  less than @p ns (the largest p99 of the sites with that name); not checked under
 *  Valgrind. */
#define ck_assert_probe_scope_p99_below(name, ns)                                       \
    do {                                                                                \
        PROBE__CK_SCOPE_FIGURES(name, probe__f, 1);                                     \
        ck_assert_msg(probe_budget_on_valgrind() || probe__f.p99_ns < (uint64_t)(ns),   \
                      "scope %s: p99 %llu ns over %llu calls >= budget %llu ns", (name), \
                      (unsigned long long)probe__f.p99_ns,                              \
                      (unsigned long long)probe__f.calls, (unsigned long long)(ns));    \
    } while (0)

#endif /* PROBE_CHECK_H */
