/* The many-site loops of scope_overhead (see loops.h): 10,000 distinct PROBE_SCOPE
 * sites, each in a noinline function of its own, and 1,000 functions doing the floor's
 * work, reached the same way so that the call through a table costs both sides alike. */
#include <stdint.h>

#include <probe/probe.h>

#include "loops.h"

/* The same TLS model the library uses for its per-thread state. */
static __thread uint64_t sites_floor_acc __attribute__((tls_model("initial-exec")));

#define SC(n)                                                                            \
    static __attribute__((noinline)) void sc_##n(void)                                   \
    {                                                                                    \
        PROBE_SCOPE("site" #n);                                                          \
        LOOPS_BARRIER();                                                                 \
    }
#define FL(n)                                                                            \
    static __attribute__((noinline)) void fl_##n(void)                                   \
    {                                                                                    \
        uint64_t t0 = loops_now();                                                       \
        LOOPS_BARRIER();                                                                 \
        uint64_t t1 = loops_now();                                                       \
        sites_floor_acc += t1 - t0;                                                      \
    }
#define SC_PTR(n) sc_##n,
#define FL_PTR(n) fl_##n,

/* F applied to p0 .. p9, p00 .. p99, and so on: the digits are pasted on. */
#define D1(F, p) F(p##0) F(p##1) F(p##2) F(p##3) F(p##4) F(p##5) F(p##6) F(p##7) F(p##8) F(p##9)
#define D2(F, p) D1(F, p##0) D1(F, p##1) D1(F, p##2) D1(F, p##3) D1(F, p##4) D1(F, p##5) \
    D1(F, p##6) D1(F, p##7) D1(F, p##8) D1(F, p##9)
#define D3(F, p) D2(F, p##0) D2(F, p##1) D2(F, p##2) D2(F, p##3) D2(F, p##4) D2(F, p##5) \
    D2(F, p##6) D2(F, p##7) D2(F, p##8) D2(F, p##9)
#define D4(F, p) D3(F, p##0) D3(F, p##1) D3(F, p##2) D3(F, p##3) D3(F, p##4) D3(F, p##5) \
    D3(F, p##6) D3(F, p##7) D3(F, p##8) D3(F, p##9)

D4(SC, _)
D3(FL, _)

static void (*const sc_table[LOOPS_SITES])(void) = {D4(SC_PTR, _)};

/* 1,000 more sites, entered from one call site (one_call) through the scope's own
 * entry and exit, as PROBE_SCOPE expands to: the library's work for K sites with the
 * program's code the same at every K. */
#define ONE(n) PROBE__SITE_DECL(one_##n, PROBE_KIND_SCOPE, "one" #n);
#define ONE_PTR(n) &one_##n,

static struct probe__site *const *
one_sites(void)
{
    D3(ONE, _)
    static struct probe__site *const table[LOOPS_SIBLINGS_MAX] = {D3(ONE_PTR, _)};

    return table;
}

static __attribute__((noinline)) void
one_call(struct probe__site *site)
{
    probe__token t = probe__on() ? probe__scope_enter(site) : 0;
    LOOPS_BARRIER();
    if (t)
        probe__scope_exit(t);
}
static void (*const fl_table[LOOPS_SIBLINGS_MAX])(void) = {D3(FL_PTR, _)};

/* One pass over the first K functions, called directly one after the other: the
 * branch predictor knows every call, so a pass costs its K scopes (or floors) and
 * nothing for choosing them. */
#define SC_CALL(n) sc_##n();
#define FL_CALL(n) fl_##n();
static __attribute__((noinline)) void sc_pass1(void) { sc__0000(); }
static __attribute__((noinline)) void sc_pass2(void) { sc__0000(); sc__0001(); }
static __attribute__((noinline)) void
sc_pass8(void)
{
    sc__0000(); sc__0001(); sc__0002(); sc__0003();
    sc__0004(); sc__0005(); sc__0006(); sc__0007();
}
static __attribute__((noinline)) void sc_pass100(void) { D2(SC_CALL, _00) }
static __attribute__((noinline)) void sc_pass1000(void) { D3(SC_CALL, _0) }
static __attribute__((noinline)) void fl_pass1(void) { fl__000(); }
static __attribute__((noinline)) void fl_pass2(void) { fl__000(); fl__001(); }
static __attribute__((noinline)) void
fl_pass8(void)
{
    fl__000(); fl__001(); fl__002(); fl__003();
    fl__004(); fl__005(); fl__006(); fl__007();
}
static __attribute__((noinline)) void fl_pass100(void) { D2(FL_CALL, _0) }
static __attribute__((noinline)) void fl_pass1000(void) { D3(FL_CALL, _) }

static void (*pass_of(unsigned k, int floor))(void)
{
    switch (k) {
    case 1: return floor ? fl_pass1 : sc_pass1;
    case 2: return floor ? fl_pass2 : sc_pass2;
    case 8: return floor ? fl_pass8 : sc_pass8;
    case 100: return floor ? fl_pass100 : sc_pass100;
    case 1000: return floor ? fl_pass1000 : sc_pass1000;
    default: return NULL;
    }
}

/* n calls, in passes of k direct calls; the last n % k through @table. */
static void
run_passes(unsigned k, uint64_t n, int floor, void (*const *table)(void))
{
    void (*pass)(void) = pass_of(k, floor);
    uint64_t i = 0;

    if (pass)
        for (; i + k <= n; i += k)
            pass();
    for (unsigned j = 0; i < n; i++, j = j + 1 == k ? 0 : j + 1)
        table[j]();
}

__attribute__((noinline)) void
loops_siblings(unsigned k, uint64_t n)
{
    PROBE_SCOPE("sib_parent");

    run_passes(k, n, 0, sc_table);
}

__attribute__((noinline)) void
loops_siblings_floor(unsigned k, uint64_t n)
{
    run_passes(k, n, 1, fl_table);
}

__attribute__((noinline)) void
loops_siblings_table(unsigned k, uint64_t n)
{
    PROBE_SCOPE("sib_table_parent");
    unsigned j = 0;

    for (uint64_t i = 0; i < n; i++) {
        sc_table[j]();
        if (++j == k)
            j = 0;
    }
}

__attribute__((noinline)) void
loops_siblings_one_call_site(unsigned k, uint64_t n)
{
    PROBE_SCOPE("one_parent");
    struct probe__site *const *one_table = one_sites();
    unsigned j = 0;

    for (uint64_t i = 0; i < n; i++) {
        one_call(one_table[j]);
        if (++j == k)
            j = 0;
    }
}

__attribute__((noinline)) void
loops_siblings_table_floor(unsigned k, uint64_t n)
{
    unsigned j = 0;

    for (uint64_t i = 0; i < n; i++) {
        fl_table[j]();
        if (++j == k)
            j = 0;
    }
}

void
loops_first_touch(unsigned nsites)
{
    for (unsigned i = 0; i < nsites && i < LOOPS_SITES; i++)
        sc_table[i]();
}

uint64_t
loops_sites_floor_sum(void)
{
    return sites_floor_acc;
}
