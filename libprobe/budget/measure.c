/* probe_budget_measure(): warm-up runs, then measured runs, each timed in thread CPU
 * time and wall time and counted in instructions where a source exists
 * (counter.c). Minimum, median and maximum of each. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "budget/counter.h"
#include "budget/measure.h"

#define MAX_RUNS 1000u

/* One measurement at a time: callgrind's dumps are numbered per process, and a
 * measurement is meant to have the machine to itself. */
static pthread_mutex_t measure_lock = PTHREAD_MUTEX_INITIALIZER;

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sorts @v. */
static void
summarize(uint64_t *v, unsigned n, uint64_t *min, uint64_t *median, uint64_t *max)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    *min = v[0];
    *max = v[n - 1];
    *median = n % 2 ? v[n / 2] : v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2;
}

static const char *
source_name(probe_budget_source s)
{
    switch (s) {
    case PROBE_BUDGET_SOURCE_CALLGRIND:
        return "callgrind";
    case PROBE_BUDGET_SOURCE_PERF:
        return "perf_event_open";
    default:
        return "none";
    }
}

int
budget_measure(void (*fn)(void *), void *arg, const probe_budget_options *opts,
               probe_budget_result *out, const struct measure_hook *hook)
{
    static const probe_budget_options defaults;
    int valgrind = counter_on_valgrind();

    if (!fn || !out)
        return PROBE_EINVAL;
    if (!opts)
        opts = &defaults;
    if (opts->runs > MAX_RUNS)
        return PROBE_EINVAL;
    unsigned warmup = opts->warmup ? opts->warmup : valgrind ? 1 : 2;
    unsigned runs = opts->runs ? opts->runs : valgrind ? 3 : 11;
    uint64_t cap = opts->max_wall_ns ? opts->max_wall_ns : 2000000000u;

    uint64_t *cpu = calloc(runs, sizeof(*cpu));
    uint64_t *wall = calloc(runs, sizeof(*wall));
    uint64_t *ins = calloc(runs, sizeof(*ins));
    if (!cpu || !wall || !ins) {
        free(cpu);
        free(wall);
        free(ins);
        return PROBE_ENOMEM;
    }

    probe_budget_result r;
    memset(&r, 0, sizeof(r));
    struct counter c;
    uint64_t dummy, spent = 0;
    unsigned n = 0;
    int counted = 1;

    pthread_mutex_lock(&measure_lock);
    counter_open(&c);
    for (unsigned i = 0; i < warmup; i++)
        fn(arg);
    if (hook && hook->before)
        hook->before(hook->ctx);
    while (n < runs && (n == 0 || spent < cap)) {
        if (counter_run(&c, fn, arg, &cpu[n], &wall[n], counted ? &ins[n] : &dummy) < 0)
            counted = 0;
        spent += wall[n];
        n++;
        if (hook && hook->after_run)
            hook->after_run(hook->ctx);
    }
    counted = counted && c.source != PROBE_BUDGET_SOURCE_NONE;
    r.instructions_source = counted ? c.source : PROBE_BUDGET_SOURCE_NONE;
    memcpy(r.instructions_note, c.note, sizeof(r.instructions_note));
    counter_close(&c);
    pthread_mutex_unlock(&measure_lock);

    r.warmup = warmup;
    r.runs = n;
    r.on_valgrind = valgrind;
    summarize(cpu, n, &r.cpu_min_ns, &r.cpu_median_ns, &r.cpu_max_ns);
    summarize(wall, n, &r.wall_min_ns, &r.wall_median_ns, &r.wall_max_ns);
    if (r.cpu_min_ns)
        r.cpu_spread_pct = 100.0 * (double)(r.cpu_max_ns - r.cpu_min_ns) / (double)r.cpu_min_ns;
    r.instructions_source_name = source_name(r.instructions_source);
    if (counted) {
        r.has_instructions = 1;
        r.instructions_exact = r.instructions_source == PROBE_BUDGET_SOURCE_CALLGRIND;
        summarize(ins, n, &r.instructions_min, &r.instructions_median, &r.instructions_max);
        r.instructions_note[0] = '\0';
    }
    free(cpu);
    free(wall);
    free(ins);
    *out = r;
    return 0;
}

PROBE_EXPORT int
probe_budget_measure(void (*fn)(void *), void *arg, const probe_budget_options *opts,
                     probe_budget_result *out)
{
    return budget_measure(fn, arg, opts, out, NULL);
}

PROBE_EXPORT int
probe_budget_on_valgrind(void)
{
    return counter_on_valgrind();
}
