/*
 * libprobe budgets: measure what a function costs, and check it against a budget.
 *
 * probe_budget_measure() runs a function a few times and reports its thread CPU
 * time, its wall time and, where a source exists, the instructions it executed.
 * Instructions come from the best source available, named in the result:
 *
 *   callgrind        The program runs under `valgrind --tool=callgrind`: each run is
 *                    bracketed by callgrind client requests (zero the counters, run,
 *                    dump) and the dump is read back. Exact and repeatable: the same
 *                    code gives the same count on any machine, however loaded.
 *   perf_event_open  The CPU's instruction counter, where the kernel allows it.
 *                    Counts user-mode instructions; a little noise between runs.
 *   none             Neither: instructions are reported unavailable, never guessed.
 *
 * probe_budget_check() measures and compares with an absolute budget and, when a
 * baseline file is named (PROBE_BUDGET_BASELINE=file), with the figures recorded
 * there, and writes a message that explains a failure: the measure, the figure, the
 * budget, the margin, the runs and the source, then the PROBE_SCOPEs the function
 * ran, those whose time grew most against the baseline first. <probe/check.h> wraps
 * it in Check assertions. docs/budgets.md says how to pick budgets and margins.
 */
#ifndef PROBE_BUDGET_H
#define PROBE_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Where instruction counts came from. */
typedef enum probe_budget_source {
    PROBE_BUDGET_SOURCE_NONE = 0,       /**< None available: no instruction figures. */
    PROBE_BUDGET_SOURCE_PERF = 1,       /**< perf_event_open(2), hardware counter. */
    PROBE_BUDGET_SOURCE_CALLGRIND = 2   /**< Valgrind's callgrind client requests. */
} probe_budget_source;

/**
 * How to measure. Zero-initialise and set what you need: every zero field means
 * its default. NULL options mean all defaults.
 */
typedef struct probe_budget_options {
    unsigned warmup;        /**< Unmeasured runs first; 0: 2 (1 under Valgrind). */
    unsigned runs;          /**< Measured runs, at most 1000; 0: 11 (3 under
                                 Valgrind, where counts do not vary). */
    uint64_t max_wall_ns;   /**< Stop measuring once the measured runs took this
                                 long (at least one run is made); 0: 2 s. */
    double soft_limit_pct;  /**< probe_budget_check(): how far above its baseline a
                                 figure may go, in %; 0: the environment's
                                 PROBE_BUDGET_SOFT_LIMIT, else 2 for exact
                                 instruction counts, 10 for perf counts, 25 for
                                 CPU time. */
    const char *baseline;   /**< probe_budget_check(): the baseline file; NULL: the
                                 environment's PROBE_BUDGET_BASELINE, else none;
                                 "": none. */
    uint64_t reserved[6];   /**< Zero; room for later fields. */
} probe_budget_options;

/** What probe_budget_measure() measured. Times are nanoseconds. */
typedef struct probe_budget_result {
    unsigned warmup;            /**< Unmeasured runs made. */
    unsigned runs;              /**< Measured runs made (fewer than asked when the
                                     time cap was reached). */
    uint64_t cpu_min_ns;        /**< Thread CPU time of one run: minimum, */
    uint64_t cpu_median_ns;     /**< median */
    uint64_t cpu_max_ns;        /**< and maximum over the runs. */
    double cpu_spread_pct;      /**< 100 * (max - min) / min; 0 when min is 0. */
    uint64_t wall_min_ns;       /**< Wall time (CLOCK_MONOTONIC) of one run. */
    uint64_t wall_median_ns;
    uint64_t wall_max_ns;
    int has_instructions;       /**< 1 when the instruction fields are set. */
    probe_budget_source instructions_source;
    const char *instructions_source_name; /**< "callgrind", "perf_event_open" or
                                               "none"; static. */
    int instructions_exact;     /**< 1 for callgrind: identical from run to run. */
    uint64_t instructions_min;  /**< Instructions of one run beyond those of a call
                                     to an empty function: minimum, */
    uint64_t instructions_median; /**< median */
    uint64_t instructions_max;  /**< and maximum. */
    int on_valgrind;            /**< 1 when running under Valgrind (any tool). */
    char instructions_note[160]; /**< Why instructions are unavailable; else "". */
    uint64_t reserved[8];       /**< Zero; room for later fields. */
} probe_budget_result;

/**
 * Run @p fn(@p arg) options->warmup times unmeasured, then options->runs times (or
 * until options->max_wall_ns), measuring each run on the calling thread.
 *
 * Under Valgrind, instructions come from callgrind or nowhere (a hardware counter
 * would count Valgrind's own work). Callgrind writes each dump next to its output
 * file: run it with its default output file name, or set PROBE_CALLGRIND_OUT_FILE to
 * the value given to --callgrind-out-file (docs/budgets.md). The dumps libprobe
 * makes are read and deleted. Instructions of other threads running meanwhile are
 * counted too under callgrind: measure single-threaded code.
 *
 * @param fn    The code to measure; called warmup + runs times.
 * @param arg   Passed to @p fn.
 * @param opts  NULL for defaults.
 * @param out   Written on success only.
 * @retval 0             Success (instructions may still be unavailable: see
 *                       out->has_instructions and out->instructions_note).
 * @retval PROBE_EINVAL  @p fn or @p out is NULL, or options->runs > 1000.
 * @retval PROBE_ENOMEM  Out of memory.
 * @note Thread-safe: measurements in different threads are serialised. Not
 *       async-signal-safe. @p fn must not call it.
 */
PROBE_EXPORT int probe_budget_measure(void (*fn)(void *), void *arg,
                                      const probe_budget_options *opts,
                                      probe_budget_result *out);

/** What probe_budget_check() compares. */
typedef enum probe_budget_kind {
    PROBE_BUDGET_INSTRUCTIONS = 1,  /**< Minimum instructions of one run. */
    PROBE_BUDGET_CPU = 2            /**< Minimum thread CPU time of one run, ns. */
} probe_budget_kind;

/** probe_budget_check(): within budget (and within the baseline's soft limit). */
#define PROBE_BUDGET_PASS 0
/** probe_budget_check(): over the budget or the baseline; the message says why. */
#define PROBE_BUDGET_OVER 1
/** probe_budget_check(): the measure is unavailable here (no instruction source;
 *  CPU time under Valgrind, which runs code some 50 times slower): not checked. */
#define PROBE_BUDGET_UNMEASURED 2

/** A message buffer size that holds any probe_budget_check() message whole. */
#define PROBE_BUDGET_MSG_MAX 2048

/**
 * Measure @p fn and check one figure against @p limit and against the baseline.
 *
 * The figure is the minimum over the runs (the least disturbed one). With a
 * baseline file, a figure it holds for @p name (and the same source) must not
 * exceed it by more than the soft limit; a figure it lacks is recorded there when
 * it is within @p limit, together with the self time per run of every PROBE_SCOPE
 * that @p fn ran. The file is plain text, one figure a line, meant to be reviewed
 * and committed; delete a line (or the file) to record it again.
 *
 * On failure the message reads, for instance,
 * "parse: 1,843,200 instructions > budget 1,500,000 (+23 %, callgrind, exact,
 * 3 runs)" and goes on with the scopes @p fn ran, those whose self time per run grew
 * most against the baseline first (baseline | now | delta), or the costliest first
 * when there is no baseline.
 *
 * @param name   The budget's name: the message's first word and the baseline's key.
 * @param kind   PROBE_BUDGET_INSTRUCTIONS or PROBE_BUDGET_CPU.
 * @param fn     The code to measure (probe_budget_measure()).
 * @param arg    Passed to @p fn.
 * @param limit  The absolute budget: instructions, or CPU nanoseconds; 0 for none
 *               (the baseline alone).
 * @param opts   NULL for defaults.
 * @param msg    Where the message goes (always written when @p len > 0, also on
 *               success: the figure, or why it was not measured); may be NULL.
 * @param len    Size of @p msg; PROBE_BUDGET_MSG_MAX holds any message.
 * @retval PROBE_BUDGET_PASS        Within budget.
 * @retval PROBE_BUDGET_OVER        Over the budget or the baseline's soft limit.
 * @retval PROBE_BUDGET_UNMEASURED  Not measurable here; nothing recorded.
 * @retval PROBE_EINVAL   @p name, @p fn NULL, @p kind unknown, or options invalid.
 * @retval PROBE_ENOMEM   Out of memory.
 * @retval PROBE_ELOOP    The baseline path is a symbolic link.
 * @retval -errno         Reading or writing the baseline file failed.
 * @note Thread-safe (the baseline file is locked while it is updated). Not
 *       async-signal-safe.
 */
PROBE_EXPORT int probe_budget_check(const char *name, probe_budget_kind kind,
                                    void (*fn)(void *), void *arg, uint64_t limit,
                                    const probe_budget_options *opts, char *msg,
                                    size_t len);

/**
 * @return 1 when the program runs under Valgrind (any tool), else 0.
 * @note Thread-safe and async-signal-safe.
 */
PROBE_EXPORT int probe_budget_on_valgrind(void);

/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_budget_measure probe__off_budget_measure
#define probe_budget_check probe__off_budget_check
#define probe_budget_on_valgrind probe__off_budget_on_valgrind

PROBE__STUB int probe_budget_measure(void (*fn)(void *), void *arg,
                                     const probe_budget_options *opts,
                                     probe_budget_result *out)
{
    (void)fn;
    (void)arg;
    (void)opts;
    (void)out;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_budget_check(const char *name, probe_budget_kind kind,
                                   void (*fn)(void *), void *arg, uint64_t limit,
                                   const probe_budget_options *opts, char *msg,
                                   size_t len)
{
    (void)name;
    (void)kind;
    (void)fn;
    (void)arg;
    (void)limit;
    (void)opts;
    (void)msg;
    (void)len;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_budget_on_valgrind(void) { return 0; }
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* PROBE_BUDGET_H */
