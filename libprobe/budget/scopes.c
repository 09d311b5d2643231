/* Scope costs per run, from the difference of two snapshots: the public snapshot
 * API only, so budgets see what a report would. Sites are matched by index (stable
 * within a process) and checked by name and place; costs are summed by scope name,
 * the key of baselines. */
#include <stdlib.h>
#include <string.h>

#include "budget/scopes.h"

static int
same_site(const probe_site_info *a, const probe_site_info *b)
{
    return a->kind == b->kind && a->line == b->line && a->name && b->name &&
           strcmp(a->name, b->name) == 0 && a->file && b->file &&
           strcmp(a->file, b->file) == 0;
}

static struct scope_cost *
find_or_add(struct scope_table *t, const char *name, int *added)
{
    *added = 0;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct scope_cost *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    t->v[t->n] = (struct scope_cost){.name = copy};
    *added = 1;
    return &t->v[t->n++];
}

void
scopes_before(void *ctx)
{
    struct scope_table *t = ctx;

    t->prev = probe_snapshot_take();
    if (!t->prev)
        t->failed = 1;
}

void
scopes_after_run(void *ctx)
{
    struct scope_table *t = ctx;
    probe_snapshot *now = probe_snapshot_take();

    if (!now || !t->prev) {
        t->failed = 1;
        probe_snapshot_free(now);
        return;
    }
    /* This run's figures by name, in a scratch table merged below. */
    struct scope_table run = {0};
    size_t count = probe_snapshot_site_count(now);
    for (size_t i = 0; i < count; i++) {
        const probe_site_info *s = probe_snapshot_site(now, i);
        if (!s || s->kind != PROBE_KIND_SCOPE || !s->name)
            continue;
        const probe_site_info *p = probe_snapshot_site(t->prev, i);
        uint64_t calls0 = 0, self0 = 0;
        if (p && same_site(p, s)) {
            calls0 = p->calls;
            self0 = p->self_ns;
        }
        if (s->calls <= calls0)
            continue;
        int added;
        struct scope_cost *c = find_or_add(&run, s->name, &added);
        if (!c) {
            t->failed = 1;
            break;
        }
        c->calls += s->calls - calls0;
        c->self_ns += s->self_ns > self0 ? s->self_ns - self0 : 0;
    }
    for (size_t i = 0; i < run.n; i++) {
        int added;
        struct scope_cost *c = find_or_add(t, run.v[i].name, &added);
        if (!c) {
            t->failed = 1;
            break;
        }
        if (added || run.v[i].self_ns < c->self_ns)
            c->self_ns = run.v[i].self_ns;
        c->calls = run.v[i].calls;
    }
    run.prev = NULL;
    scopes_free(&run);
    probe_snapshot_free(t->prev);
    t->prev = now;
}

void
scopes_free(struct scope_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
    probe_snapshot_free(t->prev);
    memset(t, 0, sizeof(*t));
}
