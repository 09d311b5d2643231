/* probe_budget_measure() with a hook around the measured runs, for the scope costs
 * probe_budget_check() reads. Internal. */
#ifndef PROBE_BUDGET_MEASURE_H
#define PROBE_BUDGET_MEASURE_H

#include <probe/budget.h>

struct measure_hook {
    void (*before)(void *ctx);      /* once, before the first measured run */
    void (*after_run)(void *ctx);   /* after each measured run */
    void *ctx;
};

int budget_measure(void (*fn)(void *), void *arg, const probe_budget_options *opts,
                   probe_budget_result *out, const struct measure_hook *hook);

#endif
