/* The seam between the core and the memory tracker (libprobe/mem/): the core knows
 * nothing of tags; the tracker installs these when its first tag appears, and each
 * report snapshot then carries what @collect returns, freed with @free. */
#ifndef PROBE_CORE_MEMHOOK_H
#define PROBE_CORE_MEMHOOK_H

#include "attrs.h"

extern void *(*mem_collect_hook)(void) HIDDEN;
extern void (*mem_free_hook)(void *) HIDDEN;

#endif
