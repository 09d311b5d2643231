/* The baseline file (PROBE_BUDGET_BASELINE): plain text, one figure a line,
 * "budget<TAB>measure<TAB>scope<TAB>value<TAB>calls", '#' comments. Internal. */
#ifndef PROBE_BUDGET_BASELINE_H
#define PROBE_BUDGET_BASELINE_H

#include <stddef.h>
#include <stdint.h>

struct baseline_entry {
    char *budget, *measure, *scope;     /* NULL budget: a line kept verbatim in raw */
    uint64_t value, calls;
    char *raw;
};

struct baseline {
    int fd;
    int changed;
    struct baseline_entry *v;
    size_t n, cap;
};

/* Open (creating it) and lock @path, and read it. 0 or a negative PROBE_E* code. */
int baseline_open(const char *path, struct baseline *b);

const struct baseline_entry *baseline_find(const struct baseline *b, const char *budget,
                                           const char *measure, const char *scope);

/* Add a figure, or replace one with the same key. 0 or PROBE_ENOMEM. */
int baseline_set(struct baseline *b, const char *budget, const char *measure,
                 const char *scope, uint64_t value, uint64_t calls);

/* Write the file back if it changed, unlock and close it; frees @b. */
int baseline_close(struct baseline *b);

#endif
