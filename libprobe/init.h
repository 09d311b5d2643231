/* The load-time initialisation of every module, called in order by init.c. Each is
 * hidden, and named after its file. */
#ifndef PROBE_INIT_H
#define PROBE_INIT_H

void lifecycle_init(void);   /* core: the clock, thread exit and fork hooks */
void stream_install(void);   /* trace/stream.c: the stream writer for the core */
void symbolize_init(void);  /* stack/symbolize.c: fork handling of the module and
                                symbol tables (before the sampler's: runs after) */
void sampler_init(void);     /* sampler/timer.c: the core's hooks, fork handling */
void fault_fork_init(void);  /* fault/fork.c: fork handling of its locks */
void fault_env_init(void);   /* fault/env.c: PROBE_FAULT */
void heap_init(void);        /* mem/heap.c: PROBE_MEM, the heap profiler */
void autoreport_init(void);  /* format/autoreport.c: PROBE_TRACE, PROBE_OUTPUT */

#endif
