/* Internal: PROBE_MEM_TAG scopes (scope.c). While one is open on a thread, the
 * malloc interposer tracks that thread's allocations under its tag, in the pointer
 * table of tagged tracking, keyed by the block's address with its low bit set so
 * that they never meet a PROBE_TRACK_ALLOC entry of the same block. Frees find them
 * through the heap filter's upper half (heap.h), so an untagged free stays one load
 * and a branch. */
#ifndef PROBE_MEM_SCOPE_H
#define PROBE_MEM_SCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

/* The tag id of the calling thread's innermost open PROBE_MEM_TAG, 0 for none. */
extern __thread unsigned mem_scope_tag __attribute__((tls_model("initial-exec"))) HIDDEN;

/* An allocation of @size bytes at @p made while a tag scope is open. */
void mem_scope_alloc(void *p, size_t size) HIDDEN;
/* A free of @p, whose filter slot counts a tag-scope block. */
void mem_scope_free(void *p) HIDDEN;

/* track.c: track @key (@size bytes) under tag @id; 0 or PROBE_ENOSPC/PROBE_ENOMEM. */
int mem_track_id(unsigned id, uintptr_t key, size_t size) HIDDEN;
/* track.c: free @key if it is tracked and live; 1 if it was, else 0, counting
 * nothing (the filter's hint was wrong). */
int mem_untrack_key(uintptr_t key) HIDDEN;

#endif
