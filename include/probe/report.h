/*
 * libprobe reports: snapshots, their accessors, formatters and report writers.
 *
 * A snapshot is an immutable copy of everything recorded, merged across all threads
 * (live and exited). Formatters read only snapshots. Built-in formats: "text",
 * "json", "collapsed" (folded stacks for FlameGraph and speedscope), "callgrind"
 * (for callgrind_annotate and KCachegrind), "chrome" (Trace Event Format for Perfetto
 * and chrome://tracing: the timeline when tracing, else the aggregate),
 * "speedscope", "tree" (the sampler's call tree, "tree:threshold=2,hide_libs=1"),
 * "pprof" (the sampler's stacks as gzipped profile.proto, for go tool pprof) and
 * "html" (one self-contained page: icicle graphs, a sortable table of scopes);
 * docs/formats.md describes all but text and json.
 * A format name may carry options after a colon, passed to the formatter:
 * "text:sort=self,limit=20,filter=^db_" (sort keys: total, self, calls, name; the
 * filter, a POSIX extended regex, comes last), "collapsed:weight=calls"
 * (weight=self_ns|calls), "callgrind:events=ns+calls" (events=ns|ns+calls).
 */
#ifndef PROBE_REPORT_H
#define PROBE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>
#include <probe/rusage.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An immutable snapshot. Opaque. */
typedef struct probe_snapshot probe_snapshot;

/**
 * One site, merged across threads. Times are nanoseconds.
 * For PROBE_LINE sites only @c calls (hits) is set; for PROBE_COUNT sites @c calls is
 * the number of updates and @c value the sum of the deltas.
 */
typedef struct probe_site_info {
    size_t index;           /**< Position in the snapshot, 0..site_count-1. */
    probe_kind kind;
    const char *name;       /**< Scope or counter name; "file:line" for line sites. */
    const char *function;
    const char *file;
    unsigned line;
    int loaded;             /**< 0 once the module that held the site was unloaded. */
    uint64_t calls;         /**< Completed calls (all, recursive ones included). */
    uint64_t prim_calls;    /**< Calls not nested in another call of the same site. */
    uint64_t total_ns;      /**< Inclusive time; nested recursive calls not recounted. */
    uint64_t self_ns;       /**< Time not spent in child scopes. */
    uint64_t min_ns;        /**< Shortest call (0 when calls == 0). */
    uint64_t max_ns;        /**< Longest call. */
    uint64_t p50_ns, p90_ns, p99_ns; /**< Percentiles of call duration, from a
                                          log-linear histogram (within 12.5%). */
    int64_t value;          /**< Counter sites: the sum of all deltas. */
    /* PROBE_RUSAGE_SCOPE sites only (has_usage = 1): the calling threads' usage spent
     * inside the scope, summed over usage_calls calls. */
    int has_usage;
    uint64_t usage_calls;   /**< Calls whose usage could be read. */
    uint64_t user_ns, system_ns;
    uint64_t minor_faults, major_faults;
    uint64_t voluntary_switches, involuntary_switches;
    /* Heap profiling (PROBE_MEM=1 with libprobe.so, docs/memory.md): exact, over
     * every open call of the scope (a recursive call's counted once). */
    uint64_t mem_allocs;    /**< Allocations made while the scope was open. */
    uint64_t mem_bytes;     /**< Bytes they asked for. */
    uint64_t mem_freed;     /**< Bytes freed meanwhile (malloc_usable_size). */
} probe_site_info;

/** A caller → callee edge between two scope sites. */
typedef struct probe_edge_info {
    size_t caller;          /**< Site index of the enclosing scope. */
    size_t callee;          /**< Site index of the scope entered inside it. */
    uint64_t calls;
    uint64_t total_ns;      /**< Callee's inclusive time under this caller. */
} probe_edge_info;

/**
 * A node of the calling-context tree: one path of nested scopes from a thread's top
 * level (main → parse → lex), merged over threads. Unlike edges, a node's time is
 * exactly the time spent on that path. Nodes come parents first.
 */
typedef struct probe_node_info {
    size_t index;           /**< Position in the snapshot, 0..node_count-1. */
    size_t parent;          /**< The enclosing node, or PROBE_NODE_ROOT at top level. */
    size_t site;            /**< Site index of the scope. */
    unsigned depth;         /**< 0 at top level. */
    uint64_t calls;
    uint64_t total_ns;      /**< Inclusive time of the calls on this path. */
    uint64_t self_ns;       /**< Time not spent in child scopes. */
    /* Heap profiling (PROBE_MEM=1, docs/memory.md): exact figures of this path and
     * the paths below it. */
    uint64_t mem_allocs;    /**< Allocations made while the path was open. */
    uint64_t mem_bytes;     /**< Bytes they asked for. */
    uint64_t mem_freed;     /**< Bytes freed meanwhile (malloc_usable_size). */
} probe_node_info;

/** probe_node_info.parent of a top-level node. */
#define PROBE_NODE_ROOT ((size_t)-1)

/** Kinds of timeline event (tracing, <probe/trace.h>). */
typedef enum probe_event_kind {
    PROBE_EVENT_BEGIN = 1,      /**< A scope was entered. */
    PROBE_EVENT_END = 2,        /**< The scope entered last and still open was left. */
    PROBE_EVENT_COUNTER = 3,    /**< A counter changed; @c value is the thread's value. */
    PROBE_EVENT_INSTANT = 4     /**< probe_trace_instant(); @c name says which. */
} probe_event_kind;

/** One timeline event. Events come grouped by thread, in time order in each. */
typedef struct probe_event_info {
    size_t thread;              /**< Index into the snapshot's threads. */
    probe_event_kind kind;
    uint64_t ts_ns;             /**< Since the library was loaded. */
    size_t site;                /**< Site index (BEGIN, END, COUNTER); SIZE_MAX else. */
    int64_t value;              /**< COUNTER: the thread's value after the change. */
    const char *name;           /**< INSTANT: its name; otherwise the site's name. */
} probe_event_info;

/**
 * One distinct sampled stack of one thread (sampler.h), aggregated over every sample
 * that had the same frames and open scopes. Frames are symbolized when the snapshot
 * is taken: a function name from dladdr(3), else from the module's ELF symbol table
 * (static functions, programs not linked with -rdynamic), else from its debugging
 * information (libdw builds), else "module+0xoffset" (the offset from the module's
 * load address), never a bare address. Names are not demangled.
 */
typedef struct probe_sample_info {
    size_t thread;              /**< Index into the snapshot's threads, or
                                     PROBE_SAMPLE_NO_THREAD for an unlisted thread. */
    uint64_t tid;               /**< Kernel thread id. */
    uint64_t weight;            /**< Timer expirations: each signal counts 1 + the
                                     expirations the kernel merged into it. */
    uint64_t cpu_ns;            /**< weight x the interval the samples were taken at:
                                     CPU time in PROBE_SAMPLE_CPU mode, wall time in
                                     PROBE_SAMPLE_WALL mode. */
    unsigned signals;           /**< Signals that delivered these samples. */
    unsigned depth;             /**< Number of frames. */
    const char *const *frames;  /**< Root first; the last is where the thread was. */
    unsigned nscopes;           /**< PROBE_SCOPEs open at the sample. */
    const char *const *scopes;  /**< Their names, outermost first. */
    const uint64_t *addresses;  /**< The frames' code addresses, parallel to
                                     @c frames: the interrupted PC last, return
                                     addresses above it. Stacks are told apart by
                                     address: two stacks through the same functions
                                     at different PCs are two samples (formatters
                                     that show names sum them). */
    int blocked;                /**< PROBE_SAMPLE_WALL: 1 if the thread was off CPU
                                     (blocked in the kernel) at these samples. */
    const size_t *frame_ids;    /**< Parallel to @c frames (root first): each
                                     frame's index in the snapshot's frame table,
                                     probe_snapshot_frame(). */
} probe_sample_info;

#define PROBE_SAMPLE_NO_THREAD ((size_t)-1)

/** The pseudo-frame the "tree" formatter shows under the call a thread blocked in
 *  (PROBE_SAMPLE_WALL samples with @c blocked set): off-CPU time. Not in @c frames,
 *  whose last frame is where the thread blocked (e.g. clock_nanosleep). */
#define PROBE_SAMPLE_BLOCKED_FRAME "[blocked]"


/**
 * A code mapping of the snapshot: one executable segment of a loaded module that
 * holds a sampled frame, as the kernel mapped it (page-aligned). Recorded when the
 * snapshot is taken, so a module unloaded since (dlclose) keeps its mapping. The
 * main program's mappings come first.
 */
typedef struct probe_mapping_info {
    uint64_t start;             /**< First address of the segment. */
    uint64_t limit;             /**< One past its last address. */
    uint64_t offset;            /**< File offset mapped at @c start. */
    const char *path;           /**< The module's file (the program's real path);
                                     "" when unknown. */
    const char *build_id;       /**< The GNU build-id in lowercase hex, "" if none. */
    int main_program;           /**< 1 for the program itself. */
} probe_mapping_info;

/** probe_frame_info.mapping of a frame that no known module holds. */
#define PROBE_NO_MAPPING ((size_t)-1)

/**
 * One frame of the snapshot's frame table: a distinct code address of the sampled
 * stacks, with its name, source line and mapping, resolved when the snapshot was
 * taken. A return address (any frame but a stack's last) is named after the call
 * before it (address - 1), so the same address as a leaf and as a return address is
 * two frames.
 */
typedef struct probe_frame_info {
    uint64_t address;           /**< The PC, or the return address. */
    const char *function;       /**< As in probe_sample_info.frames. */
    const char *file;           /**< Source file, NULL if unknown (libdw builds only). */
    unsigned line;              /**< Source line, 0 if unknown. */
    size_t mapping;             /**< Index of its mapping, or PROBE_NO_MAPPING. */
    int is_return;              /**< 1 for a return address. */
} probe_frame_info;

/** The sampler's counters, over everything in the snapshot. */
typedef struct probe_sampler_info {
    uint64_t interval_ns;       /**< Requested interval of the last start; 0 if never. */
    int mode;                   /**< probe_sample_mode of the last start. */
    int running;                /**< 1 if sampling when the snapshot was taken. */
    uint64_t signals;           /**< Timer signals handled. */
    uint64_t expirations;       /**< Expirations they stand for (signals + overruns),
                                     kept and dropped. */
    uint64_t dropped;           /**< Signals whose sample was lost: a full buffer or
                                     an aggregate table out of memory. */
    uint64_t dropped_expirations; /**< The expirations of those. */
} probe_sampler_info;

/** A thread that recorded something. */
typedef struct probe_thread_info {
    uint64_t tid;           /**< Kernel thread id. */
    const char *name;       /**< From probe_thread_name(), or "" */
    int live;               /**< 0 for a thread that has exited (data kept). */
    uint64_t scopes;        /**< Scope calls completed on this thread. */
    uint64_t events_dropped; /**< Timeline events of this thread not kept. */
} probe_thread_info;

/** Things that could not be recorded, and why. Never silently lost. */
typedef struct probe_loss_info {
    uint64_t depth_overflow;    /**< Scopes entered beyond the stack depth limit. */
    uint64_t unbalanced;        /**< PROBE_END without BEGIN, and scopes left open. */
    uint64_t edges_dropped;     /**< Calls whose path (tree node, edge) was not kept:
                                     a thread's 16,384 paths are all in use. */
    uint64_t sites_dropped;     /**< Site hits not kept: the site table is full. */
    uint64_t threads_unlisted;  /**< Exited threads folded without a listing. */
    uint64_t events_dropped;    /**< Timeline events not kept (all threads). */
    uint64_t stats_dropped;     /**< Calls left out of a histogram, and rusage
                                     measurements not kept, because the memory for
                                     them could not be allocated (the calls' other
                                     statistics are kept). */
} probe_loss_info;

/** The clock scopes were timed with. */
typedef struct probe_clock_info {
    const char *name;       /**< "tsc" or "clock_gettime(CLOCK_MONOTONIC)". */
    double ns_per_tick;     /**< Resolution of one tick, in nanoseconds. */
    uint64_t elapsed_ns;    /**< From the library's load (or reset) to the snapshot. */
} probe_clock_info;

/**
 * Freeze everything recorded so far into a snapshot. Other threads may keep
 * recording; each count is read whole (never torn). A thread that records while it
 * is read is read one figure after another, not at one instant: a scope's histogram
 * never holds more calls than its call count, and may lack calls made during the
 * snapshot (up to 4,096 per call path more); a thread that is not recording meanwhile
 * is read exactly.
 *
 * @return A snapshot the caller frees with probe_snapshot_free(), or NULL when out of
 *         memory (errno is ENOMEM).
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT probe_snapshot *probe_snapshot_take(void);

/**
 * Free a snapshot. NULL is a no-op.
 * @note Not while another thread still uses @p snap. Not async-signal-safe.
 */
PROBE_EXPORT void probe_snapshot_free(probe_snapshot *snap);

/**
 * @return The number of sites (every registered site, including never-run ones).
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_site_count(const probe_snapshot *snap);

/**
 * @return Site @p i, valid until the snapshot is freed; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_site_info *probe_snapshot_site(const probe_snapshot *snap,
                                                        size_t i);

/**
 * @return The number of caller → callee edges.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_edge_count(const probe_snapshot *snap);

/**
 * @return Edge @p i; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_edge_info *probe_snapshot_edge(const probe_snapshot *snap,
                                                        size_t i);

/**
 * @return The number of calling-context tree nodes (paths).
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_node_count(const probe_snapshot *snap);

/**
 * @return Node @p i, valid until the snapshot is freed; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_node_info *probe_snapshot_node(const probe_snapshot *snap,
                                                        size_t i);

/**
 * @return The number of timeline events held (flight recorder), 0 when not tracing
 *         or in stream mode (there the events are in the file).
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_event_count(const probe_snapshot *snap);

/**
 * @return Event @p i, valid until the snapshot is freed; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_event_info *probe_snapshot_event(const probe_snapshot *snap,
                                                          size_t i);

/**
 * @return The number of threads listed.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_thread_count(const probe_snapshot *snap);

/**
 * @return Thread @p i; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_thread_info *probe_snapshot_thread(const probe_snapshot *snap,
                                                            size_t i);

/**
 * @return The number of distinct sampled stacks (0 if the sampler never ran).
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_sample_count(const probe_snapshot *snap);

/** @return Sampled stack @p i, valid until the snapshot is freed; NULL if out of
 *          range. Stacks come grouped by thread.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_sample_info *probe_snapshot_sample(const probe_snapshot *snap,
                                                            size_t i);

/**
 * @return The number of code mappings holding sampled frames (0 without samples).
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_mapping_count(const probe_snapshot *snap);

/**
 * @return Mapping @p i, valid until the snapshot is freed; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable). Not async-signal-safe.
 */
PROBE_EXPORT const probe_mapping_info *probe_snapshot_mapping(const probe_snapshot *snap,
                                                              size_t i);

/**
 * @return The number of distinct frames of the sampled stacks.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT size_t probe_snapshot_frame_count(const probe_snapshot *snap);

/**
 * @return Frame @p i (probe_sample_info.frame_ids index it), valid until the snapshot
 *         is freed; NULL if out of range.
 * @note Thread-safe (the snapshot is immutable). Not async-signal-safe.
 */
PROBE_EXPORT const probe_frame_info *probe_snapshot_frame(const probe_snapshot *snap,
                                                          size_t i);

/** @return The sampler's counters (all zero if it never ran); NULL only if @p snap
 *          is NULL.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_sampler_info *probe_snapshot_sampler_info(const probe_snapshot *snap);

/**
 * @return What could not be recorded; NULL only if @p snap is NULL.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_loss_info *probe_snapshot_losses(const probe_snapshot *snap);

/**
 * @return The clock used; NULL only if @p snap is NULL.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_clock_info *probe_snapshot_clock(const probe_snapshot *snap);

/** @return The process's resource usage when the snapshot was taken; NULL only if
 *          @p snap is NULL. All zero if getrusage(2) failed. Unlike
 *          probe_getrusage()'s, its wall_ns is a duration: the process's age.
 * @note Thread-safe (the snapshot is immutable). Not async-signal-safe. */
PROBE_EXPORT const probe_rusage *probe_snapshot_rusage(const probe_snapshot *snap);

/** @return The schema/ABI name of snapshots, "probe/1". */
#define PROBE_SCHEMA "probe/1"

/**
 * Find a site by name (first match in index order).
 * @return The site, or NULL if none has that name or an argument is NULL.
 * @note Thread-safe (the snapshot is immutable: any threads may read it at once).
 *       Not async-signal-safe.
 */
PROBE_EXPORT const probe_site_info *probe_snapshot_find(const probe_snapshot *snap,
                                                        const char *name);

/* ---- writers and formatters -------------------------------------------------- */

/** Where a formatter's bytes go (a file descriptor or a growing buffer). Opaque. */
typedef struct probe_writer probe_writer;

/**
 * Append @p len bytes. After the first failure every later call fails too, and the
 * report call returns that error.
 * @retval 0 Success. @retval PROBE_EIO write(2) failed. @retval PROBE_ENOMEM.
 * @note Only from the formatter callback that was given @p w, on its thread (a
 *       writer is not shared). Not async-signal-safe.
 */
PROBE_EXPORT int probe_writer_write(probe_writer *w, const void *buf, size_t len);

/**
 * Append a NUL-terminated string. Errors as probe_writer_write().
 * @note Only from the formatter callback that was given @p w, on its thread (a
 *       writer is not shared). Not async-signal-safe.
 */
PROBE_EXPORT int probe_writer_puts(probe_writer *w, const char *s);

/**
 * Append printf-formatted text. Errors as probe_writer_write(), plus PROBE_EINVAL.
 * @note Only from the formatter callback that was given @p w, on its thread (a
 *       writer is not shared). Not async-signal-safe.
 */
PROBE_EXPORT int probe_writer_printf(probe_writer *w, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/**
 * A formatter: a named set of callbacks that turns a snapshot into bytes.
 * Register with probe_formatter_register(); the struct is copied.
 * Initialise with PROBE_FORMATTER_INIT, then set @c name and @c write (and
 * optionally @c release and @c user):
 *
 *     probe_formatter f = PROBE_FORMATTER_INIT;
 *     f.name = "mine";
 *     f.write = my_write;
 *     probe_formatter_register(&f);
 *
 * Code written before @c size existed must now set it: with designated
 * initializers (`{.name = "mine", .write = my_write}`) add
 * `.size = sizeof(probe_formatter)`; a positional initializer no longer fits.
 */
typedef struct probe_formatter {
    size_t size;        /**< sizeof(probe_formatter): lets the struct grow. */
    const char *name;   /**< Format name, [a-z0-9_-]{1,31}; copied. */
    /**
     * Write @p snap to @p w. @p options is the text after ':' in the format name, or
     * "" . Return 0 or a negative PROBE_E* code.
     */
    int (*write)(const probe_snapshot *snap, probe_writer *w, const char *options,
                 void *user);
    /** Optional: called with @p user when the formatter is unregistered. */
    void (*release)(void *user);
    void *user;
} probe_formatter;

#define PROBE_FORMATTER_INIT {sizeof(probe_formatter), 0, 0, 0, 0}

/**
 * Register a formatter, which report calls then find by name.
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p f, its name or its write callback is NULL, the name is
 *                       not [a-z0-9_-]{1,31}, or @c size is smaller than the first
 *                       probe_formatter with a size field (name, write, release and
 *                       user after it): 0 when it was not set. A larger size (a
 *                       newer header) is accepted; fields this version does not
 *                       know are ignored.
 * @retval PROBE_EEXIST  A formatter with that name is registered.
 * @retval PROBE_ENOSPC  The table of formatters (64) is full.
 * @note Thread-safe.
 */
PROBE_EXPORT int probe_formatter_register(const probe_formatter *f);

/**
 * Unregister a formatter registered with probe_formatter_register().
 * @retval 0 Success. @retval PROBE_EINVAL NULL name. @retval PROBE_ENOENT no such
 *         formatter, or it is built in (built-in formatters cannot be removed).
 */
PROBE_EXPORT int probe_formatter_unregister(const char *name);

/**
 * Format a snapshot into a newly allocated, NUL-terminated buffer.
 *
 * @param snap     The snapshot.
 * @param format   A format name, optionally with ":options".
 * @param ret_buf  Set to the buffer on success; free it with free().
 * @param ret_len  Optional: set to the length, without the NUL.
 * @retval 0             Success.
 * @retval PROBE_EINVAL  A NULL argument, or @p format names no registered formatter.
 * @retval PROBE_ENOMEM  Out of memory.
 * @retval other         The formatter's own error.
 * @note Thread-safe: several threads may format one snapshot at once. Not
 *       async-signal-safe.
 */
PROBE_EXPORT int probe_snapshot_format(const probe_snapshot *snap, const char *format,
                                       char **ret_buf, size_t *ret_len);

/**
 * Check a format name and its options, without formatting anything, and say what is
 * wrong with them: for a bad option, the option, its value and what it accepts.
 *
 * @param format  A format name, optionally with ":options".
 * @param msg     Optional (NULL): a one-line reason on PROBE_EINVAL, "" on success,
 *                NUL-terminated and truncated to @p size.
 * @param size    The size of @p msg.
 * @retval 0             @p format names a registered formatter that accepts the options
 *                       (a formatter registered by the program accepts any).
 * @retval PROBE_EINVAL  @p format is NULL, names no registered formatter, or has an
 *                       option its formatter refuses.
 * @retval PROBE_ENOMEM  Out of memory (text's filter= compiles its expression).
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_format_check(const char *format, char *msg, size_t size);

/**
 * Write a snapshot to @p fd in @p format.
 * @retval 0 Success. @retval PROBE_EINVAL bad format or NULL. @retval PROBE_EBADF
 *         @p fd is negative. @retval PROBE_EIO write(2) failed; errno is kept.
 * @note Thread-safe: several threads may write one snapshot at once. Not
 *       async-signal-safe.
 */
PROBE_EXPORT int probe_snapshot_write_fd(const probe_snapshot *snap, int fd,
                                         const char *format);

/**
 * Write a report of everything recorded so far to @p fd.
 *
 * @param fd      A descriptor open for writing; it is not closed.
 * @param format  "text", "json", or any registered format name (with ":options").
 * @retval 0              Success.
 * @retval PROBE_EINVAL   @p format is NULL or names no registered formatter.
 * @retval PROBE_EBADF    @p fd is negative.
 * @retval PROBE_ENODATA  No site is registered and nothing was sampled or traced.
 * @retval PROBE_EIO      write(2) failed; errno is kept.
 * @retval PROBE_ENOMEM   Out of memory.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_report_fd(int fd, const char *format);

/**
 * Write a report to the file at @p path, created with mode 0644 or truncated. A path
 * whose last component is a symbolic link is refused, never followed.
 *
 * @retval 0              Success.
 * @retval PROBE_EINVAL   @p path or @p format is NULL or empty, or no such format.
 * @retval PROBE_ENODATA  No site is registered and nothing was sampled or traced.
 * @retval PROBE_ELOOP    @p path is a symbolic link.
 * @retval PROBE_ENXIO    @p path is a FIFO that no process has open for reading (it
 *                        is never waited for; with a reader, writes wait for it).
 * @retval -errno         open(2) failed (PROBE_ENOENT, PROBE_EACCES, ...).
 * @retval PROBE_EIO      write(2) failed.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_report_write(const char *path, const char *format);

/* ---- saved reports ---------------------------------------------------------------- */

/** Why probe_snapshot_load() failed. Allocated by the caller; may grow at the end. */
typedef struct probe_load_error {
    int code;               /**< The PROBE_E* code, as errno is set to its negation. */
    size_t offset;          /**< Byte offset in the input where the problem is. */
    char message[200];      /**< What was expected there, one line, no newline. */
    uint64_t reserved[4];
} probe_load_error;

/**
 * Read a "probe/1" JSON report (docs/json-schema.md) into a snapshot that every
 * formatter renders: sites, edges, the call tree, threads, rusage, losses, samples,
 * frames, mappings, timeline events and the program's command.
 * Fields this version does not know are ignored. The reader is bounded: at most
 * 1 GiB of input, 64 levels of nesting, strings of 1 MiB; integers within 64 bits.
 *
 * @param path  The file.
 * @param err   Optional: filled on failure (code, byte offset, what was expected).
 * @return A snapshot to free with probe_snapshot_free(), or NULL with errno set:
 *         EINVAL (not JSON, or not a probe/1 report), ERANGE (a limit), ENOMEM,
 *         or open(2)/read(2)'s errno.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT probe_snapshot *probe_snapshot_load(const char *path, probe_load_error *err);

/** probe_snapshot_load() from a descriptor, read to its end; @p fd is not closed.
 * @note Thread-safe. Not async-signal-safe. */
PROBE_EXPORT probe_snapshot *probe_snapshot_load_fd(int fd, probe_load_error *err);

/** probe_snapshot_load() from @p len bytes at @p buf (need not be NUL-terminated).
 * @note Thread-safe. Not async-signal-safe. */
PROBE_EXPORT probe_snapshot *probe_snapshot_load_buffer(const void *buf, size_t len,
                                                        probe_load_error *err);

/**
 * Merge @p n snapshots (several runs, or the children of a forked program) into a
 * new one: sites matched by kind, name, file, line and function, with calls and
 * times summed, duration histograms summed so percentiles stay true (recomputed,
 * not averaged: exact where every input carries its histogram, as saved reports
 * and taken snapshots do); edges and call-tree paths matched by their sites and
 * summed; counters, losses and samples summed; threads kept apart, each named
 * "pid P: NAME" after the process its snapshot came from. With @p n == 1, a copy.
 * Timeline events are kept, each input's on its own (renumbered) threads. Tagged
 * memory is summed by tag name, the heap profiler's totals and top sites by their
 * frames; their peaks and the heap's timeline are dropped with several inputs (the
 * formatters say so; docs/probe-command.md).
 *
 * @return A snapshot to free with probe_snapshot_free(), or NULL with errno EINVAL
 *         (@p snaps NULL, @p n 0, or a NULL element) or ENOMEM.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT probe_snapshot *probe_snapshot_merge(const probe_snapshot *const *snaps,
                                                  size_t n);
/* Compiled out: each function above is a stub (the pattern: <probe/common.h>). */
#ifdef PROBE_DISABLE
#define probe_snapshot_take probe__off_snapshot_take
#define probe_snapshot_free probe__off_snapshot_free
#define probe_snapshot_site_count probe__off_snapshot_site_count
#define probe_snapshot_site probe__off_snapshot_site
#define probe_snapshot_edge_count probe__off_snapshot_edge_count
#define probe_snapshot_edge probe__off_snapshot_edge
#define probe_snapshot_node_count probe__off_snapshot_node_count
#define probe_snapshot_node probe__off_snapshot_node
#define probe_snapshot_event_count probe__off_snapshot_event_count
#define probe_snapshot_event probe__off_snapshot_event
#define probe_snapshot_thread_count probe__off_snapshot_thread_count
#define probe_snapshot_thread probe__off_snapshot_thread
#define probe_snapshot_sample_count probe__off_snapshot_sample_count
#define probe_snapshot_sample probe__off_snapshot_sample
#define probe_snapshot_mapping_count probe__off_snapshot_mapping_count
#define probe_snapshot_mapping probe__off_snapshot_mapping
#define probe_snapshot_frame_count probe__off_snapshot_frame_count
#define probe_snapshot_frame probe__off_snapshot_frame
#define probe_snapshot_sampler_info probe__off_snapshot_sampler_info
#define probe_snapshot_losses probe__off_snapshot_losses
#define probe_snapshot_clock probe__off_snapshot_clock
#define probe_snapshot_rusage probe__off_snapshot_rusage
#define probe_snapshot_find probe__off_snapshot_find
#define probe_writer_write probe__off_writer_write
#define probe_writer_puts probe__off_writer_puts
#define probe_writer_printf probe__off_writer_printf
#define probe_formatter_register probe__off_formatter_register
#define probe_format_check probe__off_format_check
#define probe_formatter_unregister probe__off_formatter_unregister
#define probe_snapshot_format probe__off_snapshot_format
#define probe_snapshot_write_fd probe__off_snapshot_write_fd
#define probe_report_fd probe__off_report_fd
#define probe_report_write probe__off_report_write
#define probe_snapshot_load probe__off_snapshot_load
#define probe_snapshot_load_fd probe__off_snapshot_load_fd
#define probe_snapshot_load_buffer probe__off_snapshot_load_buffer
#define probe_snapshot_merge probe__off_snapshot_merge

PROBE__STUB probe_snapshot *probe_snapshot_take(void) { return (probe_snapshot *)0; }
PROBE__STUB void probe_snapshot_free(probe_snapshot *snap) { (void)snap; }
PROBE__STUB size_t probe_snapshot_site_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_site_info *probe_snapshot_site(const probe_snapshot *snap,
                                                       size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_site_info *)0;
}
PROBE__STUB size_t probe_snapshot_edge_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_edge_info *probe_snapshot_edge(const probe_snapshot *snap,
                                                       size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_edge_info *)0;
}
PROBE__STUB size_t probe_snapshot_node_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_node_info *probe_snapshot_node(const probe_snapshot *snap,
                                                       size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_node_info *)0;
}
PROBE__STUB size_t probe_snapshot_event_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_event_info *probe_snapshot_event(const probe_snapshot *snap,
                                                         size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_event_info *)0;
}
PROBE__STUB size_t probe_snapshot_thread_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_thread_info *probe_snapshot_thread(const probe_snapshot *snap,
                                                           size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_thread_info *)0;
}
PROBE__STUB size_t probe_snapshot_sample_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_sample_info *probe_snapshot_sample(const probe_snapshot *snap,
                                                           size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_sample_info *)0;
}
PROBE__STUB size_t probe_snapshot_mapping_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_mapping_info *probe_snapshot_mapping(const probe_snapshot *snap,
                                                             size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_mapping_info *)0;
}
PROBE__STUB size_t probe_snapshot_frame_count(const probe_snapshot *snap)
{
    (void)snap;
    return 0;
}
PROBE__STUB const probe_frame_info *probe_snapshot_frame(const probe_snapshot *snap,
                                                         size_t i)
{
    (void)snap;
    (void)i;
    return (const probe_frame_info *)0;
}
PROBE__STUB const probe_sampler_info *probe_snapshot_sampler_info(
                                                                  const probe_snapshot *snap)
{
    (void)snap;
    return (const probe_sampler_info *)0;
}
PROBE__STUB const probe_loss_info *probe_snapshot_losses(const probe_snapshot *snap)
{
    (void)snap;
    return (const probe_loss_info *)0;
}
PROBE__STUB const probe_clock_info *probe_snapshot_clock(const probe_snapshot *snap)
{
    (void)snap;
    return (const probe_clock_info *)0;
}
PROBE__STUB const probe_rusage *probe_snapshot_rusage(const probe_snapshot *snap)
{
    (void)snap;
    return (const probe_rusage *)0;
}
PROBE__STUB const probe_site_info *probe_snapshot_find(const probe_snapshot *snap,
                                                       const char *name)
{
    (void)snap;
    (void)name;
    return (const probe_site_info *)0;
}
PROBE__STUB int probe_writer_write(probe_writer *w, const void *buf, size_t len)
{
    (void)w;
    (void)buf;
    (void)len;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_writer_puts(probe_writer *w, const char *s)
{
    (void)w;
    (void)s;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_writer_printf(probe_writer *w, const char *fmt, ...)
{
    (void)w;
    (void)fmt;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_format_check(const char *format, char *msg, size_t size)
{
    (void)format;
    if (msg && size)
        msg[0] = '\0';
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_formatter_register(const probe_formatter *f)
{
    (void)f;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_formatter_unregister(const char *name)
{
    (void)name;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_snapshot_format(const probe_snapshot *snap, const char *format,
                                      char **ret_buf, size_t *ret_len)
{
    (void)snap;
    (void)format;
    (void)ret_buf;
    (void)ret_len;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_snapshot_write_fd(const probe_snapshot *snap, int fd,
                                        const char *format)
{
    (void)snap;
    (void)fd;
    (void)format;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_report_fd(int fd, const char *format)
{
    (void)fd;
    (void)format;
    return PROBE_EDISABLED;
}
PROBE__STUB int probe_report_write(const char *path, const char *format)
{
    (void)path;
    (void)format;
    return PROBE_EDISABLED;
}
PROBE__STUB probe_snapshot *probe_snapshot_load(const char *path, probe_load_error *err)
{
    (void)path;
    (void)err;
    return (probe_snapshot *)0;
}
PROBE__STUB probe_snapshot *probe_snapshot_load_fd(int fd, probe_load_error *err)
{
    (void)fd;
    (void)err;
    return (probe_snapshot *)0;
}
PROBE__STUB probe_snapshot *probe_snapshot_load_buffer(const void *buf, size_t len,
                                                       probe_load_error *err)
{
    (void)buf;
    (void)len;
    (void)err;
    return (probe_snapshot *)0;
}
PROBE__STUB probe_snapshot *probe_snapshot_merge(const probe_snapshot *const *snaps,
                                                 size_t n)
{
    (void)snaps;
    (void)n;
    return (probe_snapshot *)0;
}
#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* PROBE_REPORT_H */
