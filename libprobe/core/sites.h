/* The registry of sites: every macro site of every loaded module, numbered densely
 * from 1 in registration order. A site's id never changes and never goes to another
 * site, so per-thread statistics can be indexed by it; a module unloaded and loaded
 * again (same file, same sites in the same order) gets its sites' ids back. */
#ifndef PROBE_CORE_SITES_H
#define PROBE_CORE_SITES_H

#include <probe/probe.h>
#include <stddef.h>

#define SITES_MAX 65536u            /* ids 1..SITES_MAX-1 */
#define SITES_ID_DROPPED 0xffffffffu /* registry full: hits are counted as dropped */

/* A copy of one site's description, as a snapshot keeps it. */
struct site_desc {
    probe_kind kind;
    unsigned line;
    int loaded;
    int usage;              /* a PROBE_RUSAGE_SCOPE site */
    const char *name;
    const char *function;
    const char *file;
};

/* Register one site that ran before its module's constructor did. Returns its id. */
uint32_t sites_register_one(struct probe__site *site);

/* The number of ids handed out (the highest id). */
size_t sites_count(void);

/* Lock the registry and read the description of @id (1-based) while locked. */
void sites_lock(void);
void sites_unlock(void);
int sites_describe_locked(uint32_t id, struct site_desc *out);
/* The name a report gives site @id, copied to @buf: its name, or file:line for a
 * line counter. Takes the lock. 0, or the error of sites_describe_locked(). */
int sites_name(uint32_t id, char *buf, size_t len);

/* After fork, in the child: release the lock the forking thread took (sites_lock)
 * before fork, so no vanished thread can be holding it. */
void sites_atfork_child(void);

#endif
