/* Internal: the lock-free pointer table (table.c). */
#ifndef PROBE_MEM_TABLE_H
#define PROBE_MEM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

/* Default number of slots (16 bytes each), and the bounds PROBE_MEM_TABLE may set. */
#define TABLE_DEFAULT_SLOTS ((size_t)1 << 20)
#define TABLE_MIN_SLOTS ((size_t)1 << 10)
#define TABLE_MAX_SLOTS ((size_t)1 << 28)
/* Slots an insert or a lookup looks at, from the pointer's hash on. */
#define TABLE_PROBES 64
/* Largest size an entry holds. */
#define TABLE_MAX_SIZE (((uint64_t)1 << 48) - 1)

enum table_result {
    TABLE_OK = 0,
    TABLE_FULL,      /* insert: no free slot within TABLE_PROBES */
    TABLE_MISSING,   /* remove: not tracked */
    TABLE_FREED,     /* remove: tracked, already freed (tag and size given) */
};

/* Map the table on first use; 0 or PROBE_ENOMEM. */
int table_ensure(void);

/* Number of slots, 0 before the first use. */
size_t table_slots(void);

enum table_result table_insert(uintptr_t key, unsigned tag, uint64_t size);

/* Mark @key freed; on TABLE_OK and TABLE_FREED, *@tag and *@size are the entry's. */
enum table_result table_remove(uintptr_t key, unsigned *tag, uint64_t *size);

/* In a forked child: entries other threads held busy at fork() become reusable
 * slots, counted in table_fork_lost, at the child's first use of the table. */
void table_after_fork(void);

extern uint64_t table_full_count HIDDEN;
extern uint64_t table_fork_lost HIDDEN;

#endif
