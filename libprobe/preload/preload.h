/* What `probe run` needs of the library when it is preloaded into a program that
 * knows nothing of it, configured from the environment (docs/environment.md):
 * PROBE_SAMPLE and PROBE_SAMPLE_HZ start the sampler, PROBE_CHILDREN says what
 * children do, and a death by a fatal signal still writes the PROBE_OUTPUT report.
 * Each works in a program linked with -lprobe as well. Hidden; called by init.c. */
#ifndef PROBE_PRELOAD_H
#define PROBE_PRELOAD_H

#include <sys/types.h>

/* PROBE_CHILDREN: what a child process does with the configuration. */
enum preload_children {
    CHILDREN_INHERIT = 0, /* unset: the environment is inherited as it is */
    CHILDREN_NONE,        /* "none": children are not profiled */
    CHILDREN_FOLLOW,      /* "follow": each child writes PROBE_OUTPUT.PID */
};

/* death.c: before the fault dumper is enabled, so that its "previous disposition"
 * is the handler that writes the report. */
void death_init(void);

/* sample.c: PROBE_SAMPLE, PROBE_SAMPLE_HZ; starts the sampler. */
void sample_init(void);
/* Start the sampler again as configured (a forked child starts with it stopped). */
void sample_restart(void);

/* children.c: PROBE_CHILDREN. Last of all: with "none" it removes the variables the
 * others have read, and libprobe's LD_PRELOAD entry, from the environment. */
void children_init(void);
/* CHILDREN_* */
int children_mode(void);
/* The process that writes PROBE_OUTPUT itself: the first one profiled. */
pid_t children_root_pid(void);

/* format/autoreport.c: whether PROBE_OUTPUT asks for a report at exit, and writing
 * it (at most once per process: at exit, or at a death by a fatal signal). */
int autoreport_is_set(void);
void autoreport_write_once(void);

#endif
