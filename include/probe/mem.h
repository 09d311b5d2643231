/*
 * libprobe memory: tagged tracking of a program's own objects.
 *
 * A program marks the objects it allocates with a tag ("Document", "Node") and
 * the library keeps, per tag, the live count, live bytes, peak bytes, allocations,
 * frees and average size, in the manner of pympler's ClassTracker and objgraph's
 * show_growth. Snapshots freeze the figures; the difference of two snapshots shows
 * what grew. docs/memory.md describes the design, its limits and its cost.
 *
 *   PROBE_TRACK_ALLOC("Document", doc, sizeof *doc);
 *   ...
 *   PROBE_TRACK_FREE("Document", doc);
 *   free(doc);
 *
 * Freeing a pointer that is not tracked, or freeing a tracked pointer twice, is
 * counted under the tag the free names (a double free under the tag it was tracked
 * with), never a crash. Tracking is on whether or not profiling is recording.
 */
#ifndef PROBE_MEM_H
#define PROBE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== tagged tracking ========================================================== */

/** At most this many distinct tags; tracking under a further tag is counted in
 * probe_mem_info.tags_dropped and otherwise ignored. */
#define PROBE_MEM_MAX_TAGS 256

/** Longest tag name kept, in bytes; longer names are cut there (and so merge). */
#define PROBE_MEM_TAG_MAX_LEN 63

/** One tag's figures in a snapshot (or the change between two, see
 * probe_mem_snapshot_diff()). */
typedef struct probe_mem_tag_info {
    const char *name;           /**< The tag; owned by the snapshot. */
    int64_t live_count;         /**< Objects tracked and not yet freed. */
    int64_t live_bytes;         /**< Their bytes. */
    uint64_t peak_bytes;        /**< Most live bytes the tag ever had. */
    uint64_t allocs;            /**< Objects ever tracked. */
    uint64_t frees;             /**< Tracked objects freed. */
    uint64_t alloc_bytes;       /**< Bytes ever tracked. */
    uint64_t avg_bytes;         /**< alloc_bytes / allocs, 0 without allocations. */
    double share;               /**< live_bytes / all tags' live bytes, 0..1. */
    int64_t growth_count;       /**< live_count minus its value at the previous
                                     probe_mem_snapshot_take(); in a diff: b - a. */
    int64_t growth_bytes;       /**< The same for live_bytes. */
    uint64_t untracked_frees;   /**< Frees naming this tag of pointers not tracked. */
    uint64_t double_frees;      /**< Frees of this tag's pointers already freed. */
    uint64_t reserved[4];       /**< Zero; room for later fields. */
} probe_mem_tag_info;

/** Totals and losses of a snapshot. */
typedef struct probe_mem_info {
    size_t tags;                /**< Tags in the snapshot. */
    int64_t live_count;         /**< Sum over the tags. */
    int64_t live_bytes;         /**< Sum over the tags. */
    uint64_t table_slots;       /**< Size of the pointer table (PROBE_MEM_TABLE). */
    uint64_t table_full;        /**< Allocations not tracked: no free slot near their
                                     place in the pointer table. */
    uint64_t tags_dropped;      /**< Calls ignored: PROBE_MEM_MAX_TAGS tags in use. */
    uint64_t fork_lost;         /**< Entries another thread was changing at fork(),
                                     lost in the child. */
    int is_diff;                /**< 1 for a probe_mem_snapshot_diff() result. */
    uint64_t reserved[4];       /**< Zero; room for later fields. */
} probe_mem_info;

/** A frozen copy of every tag's figures. */
typedef struct probe_mem_snapshot probe_mem_snapshot;

struct probe_snapshot;

#if !defined(PROBE_DISABLE)

/**
 * Count @p size bytes at @p ptr as a live object of tag @p tag.
 *
 * The same pointer tracked twice without a free counts as two objects, which two
 * frees release.
 *
 * @param tag   A NUL-terminated tag name; at most PROBE_MEM_TAG_MAX_LEN bytes kept.
 * @param ptr   The object; NULL is ignored (a failed allocation) and returns 0.
 * @param size  Its size in bytes, below 2^48.
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p tag is NULL or @p size is 2^48 or more.
 * @retval PROBE_ENOSPC  Not tracked: PROBE_MEM_MAX_TAGS tags are in use, or the
 *                       pointer table is full where @p ptr goes (both counted).
 * @retval PROBE_ENOMEM  The pointer table could not be mapped (first use).
 * @note Thread-safe, lock-free after a tag's first use; the pointer may be freed on
 *       another thread. Not async-signal-safe (a tag's first use takes a lock).
 */
PROBE_EXPORT int probe_mem_track_alloc(const char *tag, const void *ptr, size_t size);

/**
 * Count the object at @p ptr as freed.
 *
 * @param tag  The tag the caller believes @p ptr has; a pointer that is not
 *             tracked is counted as an untracked free under it. A tracked pointer
 *             is freed under the tag it was tracked with.
 * @param ptr  NULL is ignored and returns 0, like free(3).
 * @retval 0             Success: a tracked object was freed.
 * @retval PROBE_EINVAL  @p tag is NULL.
 * @retval PROBE_ENOENT  @p ptr was not tracked: counted in untracked_frees.
 * @retval PROBE_EALREADY @p ptr was tracked and already freed: counted in the
 *                       double_frees of the tag it was tracked with.
 * @retval PROBE_ENOSPC  PROBE_MEM_MAX_TAGS tags are in use and @p tag is new.
 * @note Thread-safe, lock-free after a tag's first use. Not async-signal-safe.
 */
PROBE_EXPORT int probe_mem_track_free(const char *tag, const void *ptr);

/**
 * Freeze every tag's figures. Also sets the baseline the next snapshot's growth
 * fields are measured from.
 *
 * @return A snapshot to free with probe_mem_snapshot_free(), or NULL with errno set
 *         to ENOMEM.
 * @note Thread-safe: other threads may be tracking (their changes land in this
 *       snapshot or the next). Not async-signal-safe.
 */
PROBE_EXPORT probe_mem_snapshot *probe_mem_snapshot_take(void);

/**
 * What changed from @p a to @p b (taken earlier and later): each tag of either,
 * with live_count, live_bytes, allocs, frees, alloc_bytes, untracked_frees and
 * double_frees as b - a (counts that went down are 0, live figures may be
 * negative), growth_count/growth_bytes equal to the live change, peak_bytes and
 * avg_bytes as in @p b, and share from @p b. Tags are ordered by live-byte change,
 * largest growth first.
 *
 * @return A snapshot (its info's is_diff is 1) to free with probe_mem_snapshot_free(),
 *         or NULL with errno EINVAL (an argument is NULL) or ENOMEM.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT probe_mem_snapshot *probe_mem_snapshot_diff(const probe_mem_snapshot *a,
                                                         const probe_mem_snapshot *b);

/** Free a snapshot; NULL is a no-op. @note Thread-safe. */
PROBE_EXPORT void probe_mem_snapshot_free(probe_mem_snapshot *snap);

/** @return The number of tags, 0 for NULL. Tags are ordered by live bytes, largest
 * first (a diff: by growth). @note Thread-safe (the snapshot is immutable). */
PROBE_EXPORT size_t probe_mem_snapshot_tag_count(const probe_mem_snapshot *snap);

/** @return Tag @p i, or NULL when @p snap is NULL or @p i is out of range. */
PROBE_EXPORT const probe_mem_tag_info *probe_mem_snapshot_tag(const probe_mem_snapshot *snap,
                                                              size_t i);

/** @return The tag named @p name, or NULL (also for NULL arguments). */
PROBE_EXPORT const probe_mem_tag_info *probe_mem_snapshot_find(const probe_mem_snapshot *snap,
                                                               const char *name);

/** @return Totals and losses, or NULL for NULL. */
PROBE_EXPORT const probe_mem_info *probe_mem_snapshot_info(const probe_mem_snapshot *snap);

/**
 * Write a summary table to @p fd, one row per tag, largest live bytes first (a
 * diff: largest growth first): tag, live count, live bytes, average size, share of
 * the tracked bytes, growth since the previous snapshot, then the frees that were
 * untracked or double and any losses. The text report shows the same table.
 *
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p snap is NULL.
 * @retval PROBE_EBADF   @p fd is negative.
 * @retval PROBE_EIO     write(2) failed; errno is kept.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_mem_summary_fd(const probe_mem_snapshot *snap, int fd);

/**
 * The memory figures a report snapshot (<probe/report.h>) carries: what the JSON
 * report's "memory" section and the text report's memory summary show. Its growth
 * fields are measured from the last probe_mem_snapshot_take(), whose baseline a
 * report does not move.
 *
 * @return Owned by @p snap; NULL when @p snap is NULL or nothing was ever tracked.
 * @note Thread-safe.
 */
PROBE_EXPORT const probe_mem_snapshot *probe_snapshot_mem(const struct probe_snapshot *snap);

/* Not for direct use: what the macros expand to. @p cache holds the tag's id. */
PROBE_EXPORT int probe__mem_alloc(unsigned *cache, const char *tag, const void *ptr,
                                  size_t size);
PROBE_EXPORT int probe__mem_free(unsigned *cache, const char *tag, const void *ptr);

#if defined(__GNUC__) || defined(__clang__)
/**
 * Track @p ptr (@p size bytes) under @p tag, a string literal or any string that
 * stays the same at this call site: the site looks the tag up once and keeps its id.
 * A statement; use probe_mem_track_alloc() for its result.
 */
#define PROBE_TRACK_ALLOC(tag, ptr, size)                                              \
    do {                                                                               \
        static unsigned probe__mem_tag_id_;                                            \
        (void)probe__mem_alloc(&probe__mem_tag_id_, (tag), (ptr), (size));             \
    } while (0)

/** Count @p ptr as freed under @p tag (see probe_mem_track_free()). A statement. */
#define PROBE_TRACK_FREE(tag, ptr)                                                     \
    do {                                                                               \
        static unsigned probe__mem_tag_id_;                                            \
        (void)probe__mem_free(&probe__mem_tag_id_, (tag), (ptr));                      \
    } while (0)

/* Not for direct use: PROBE_MEM_TAG's entry and exit. Enter returns the tag that
 * was open before, which leave restores. */
PROBE_EXPORT unsigned probe__mem_tag_enter(unsigned *cache, const char *tag);
PROBE_EXPORT void probe__mem_tag_leave(unsigned *prev);

#define PROBE__MEM_CAT2(a, b) a##b
#define PROBE__MEM_CAT(a, b) PROBE__MEM_CAT2(a, b)
#define PROBE__MEM_TAG_AT(n, tag)                                                      \
    static unsigned PROBE__MEM_CAT(probe__mem_scope_id_, n);                           \
    unsigned PROBE__MEM_CAT(probe__mem_scope_prev_, n)                                 \
        __attribute__((cleanup(probe__mem_tag_leave), unused)) =                       \
            probe__mem_tag_enter(&PROBE__MEM_CAT(probe__mem_scope_id_, n), (tag))

/**
 * Count every allocation the calling thread makes from here to the end of the
 * enclosing block for tag @p tag (a string that stays the same at this site), as if
 * each were tracked with PROBE_TRACK_ALLOC: code that knows nothing of libprobe
 * included, since it is the interposed malloc (and calloc, realloc, ...) that counts
 * them. Such a block is matched when it is freed, anywhere and on any thread, and
 * leaves the tag then. Tag scopes nest: the innermost open one counts.
 *
 * Only with the heap profiler on (PROBE_MEM=1, `probe run --mem`) and libprobe.so
 * (not libprobe.a: the interposer is in the shared library); otherwise the scope
 * counts nothing. Costs two calls per scope; an allocation inside one, a pointer
 * table insert and its tag's atomic adds (as PROBE_TRACK_ALLOC); docs/memory.md.
 * A declaration, like PROBE_SCOPE: use it in a block, at most once per line.
 */
#define PROBE_MEM_TAG(tag) PROBE__MEM_TAG_AT(__LINE__, tag)
#else
#define PROBE_TRACK_ALLOC(tag, ptr, size) ((void)probe_mem_track_alloc((tag), (ptr), (size)))
#define PROBE_TRACK_FREE(tag, ptr) ((void)probe_mem_track_free((tag), (ptr)))
#define PROBE_MEM_TAG(tag) ((void)0) /* needs the cleanup attribute */
#endif

#else /* PROBE_DISABLE: no argument of a macro is evaluated, nothing links */

#define PROBE_TRACK_ALLOC(tag, ptr, size) ((void)0)
#define PROBE_TRACK_FREE(tag, ptr) ((void)0)
#define PROBE_MEM_TAG(tag) ((void)0)

static inline int
probe_mem_track_alloc(const char *tag, const void *ptr, size_t size)
{
    (void)tag, (void)ptr, (void)size;
    return PROBE_EDISABLED;
}

static inline int
probe_mem_track_free(const char *tag, const void *ptr)
{
    (void)tag, (void)ptr;
    return PROBE_EDISABLED;
}

static inline probe_mem_snapshot *
probe_mem_snapshot_take(void)
{
    return (probe_mem_snapshot *)0;
}

static inline probe_mem_snapshot *
probe_mem_snapshot_diff(const probe_mem_snapshot *a, const probe_mem_snapshot *b)
{
    (void)a, (void)b;
    return (probe_mem_snapshot *)0;
}

static inline void
probe_mem_snapshot_free(probe_mem_snapshot *snap)
{
    (void)snap;
}

static inline size_t
probe_mem_snapshot_tag_count(const probe_mem_snapshot *snap)
{
    (void)snap;
    return 0;
}

static inline const probe_mem_tag_info *
probe_mem_snapshot_tag(const probe_mem_snapshot *snap, size_t i)
{
    (void)snap, (void)i;
    return (const probe_mem_tag_info *)0;
}

static inline const probe_mem_tag_info *
probe_mem_snapshot_find(const probe_mem_snapshot *snap, const char *name)
{
    (void)snap, (void)name;
    return (const probe_mem_tag_info *)0;
}

static inline const probe_mem_info *
probe_mem_snapshot_info(const probe_mem_snapshot *snap)
{
    (void)snap;
    return (const probe_mem_info *)0;
}

static inline int
probe_mem_summary_fd(const probe_mem_snapshot *snap, int fd)
{
    (void)snap, (void)fd;
    return PROBE_EDISABLED;
}

static inline const probe_mem_snapshot *
probe_snapshot_mem(const struct probe_snapshot *snap)
{
    (void)snap;
    return (const probe_mem_snapshot *)0;
}

#endif /* PROBE_DISABLE */

/* ==== end of tagged tracking ==================================================== */

/* ==== heap profiling ========================================================== */


/*
 * With PROBE_MEM=1 in the environment when libprobe loads (`probe run --mem` sets
 * it), libprobe.so's malloc, calloc, realloc, free, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc, reallocarray and malloc_usable_size sample the
 * program's allocations: a Poisson process on bytes with a mean of PROBE_MEM_SAMPLE
 * bytes (524288 by default) records the native stack of each sampled block, scaled
 * to unbiased estimates, and remembers it until it is freed. At exit the heap report
 * goes to PROBE_MEM_OUTPUT (stderr when unset) in PROBE_MEM_FORMAT ("text", "json"
 * or "pprof"; by default from the file's name: .pb.gz or .pprof pprof, .json json).
 */

#if defined(PROBE_DISABLE)
static inline int
probe_mem_heap_enabled(void)
{
    return 0;
}
static inline int
probe_mem_heap_write(const char *path, const char *format)
{
    (void)path;
    (void)format;
    return PROBE_EDISABLED;
}
static inline int
probe_mem_heap_fd(int fd, const char *format)
{
    (void)fd;
    (void)format;
    return PROBE_EDISABLED;
}
#else
/**
 * Whether the heap profiler is on (PROBE_MEM=1 when the library loaded).
 *
 * @return 1 or 0.
 * @note Thread-safe and async-signal-safe.
 */
PROBE_EXPORT int probe_mem_heap_enabled(void);

/**
 * Write the heap report: the sampled allocation sites with their estimated bytes
 * and blocks allocated, in use (the leak report at exit), in use at the peak, and
 * temporary (freed by the allocating thread within 1 ms).
 *
 * @param path    A file (created with mode 0644 or truncated, never followed
 *                through a symbolic link), or "stderr", "stdout", "-" (stderr).
 * @param format  "text", "json" or "pprof" (a gzipped profile.proto with Go's heap
 *                sample types alloc_objects, alloc_space, inuse_objects and
 *                inuse_space).
 * @retval 0               Success.
 * @retval PROBE_EINVAL    @p path or @p format is NULL, or @p format is unknown.
 * @retval PROBE_ENODATA   The heap profiler is off.
 * @retval PROBE_ELOOP     @p path is a symbolic link.
 * @retval PROBE_ENOMEM    Out of memory.
 * @retval PROBE_EIO       A write failed (or another -errno from open(2)).
 * @note Thread-safe (allocations go on meanwhile). Not async-signal-safe.
 */
PROBE_EXPORT int probe_mem_heap_write(const char *path, const char *format);

/**
 * Like probe_mem_heap_write(), to the open descriptor @p fd (not closed).
 *
 * @retval PROBE_EBADF  @p fd is negative; otherwise as probe_mem_heap_write().
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_mem_heap_fd(int fd, const char *format);
#endif

#ifdef __cplusplus
}
#endif

#endif /* PROBE_MEM_H */
