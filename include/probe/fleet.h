/*
 * libprobe fleet: hand a long-running program's profiles to a profiling backend,
 * window by window, without a restart.
 *
 * Pull: probe_http_start() (or PROBE_HTTP=ADDR) runs a small HTTP/1.1 listener thread
 * ("probe-http") that serves Go's conventional paths, so existing scrapers (Parca,
 * Grafana Alloy's pyroscope.scrape, the OpenTelemetry Collector's pprof receiver,
 * `go tool pprof URL`) work unchanged:
 *
 *   GET /debug/pprof/profile?seconds=N  CPU profile of the next N seconds (1..300,
 *                                       default 30) as gzipped pprof; the sampler is
 *                                       started for the window if it was not running.
 *   GET /debug/pprof/heap               404 until the memory module provides it.
 *   GET /debug/probe/report?format=F    The scope report now: json (default), text,
 *                                       tree or html.
 *   GET /debug/probe/trace?seconds=N    A Chrome trace of the next N seconds (1..60).
 *
 * One request at a time; 5 s read and write time-outs; a request head of at most
 * 8 KiB (431 beyond); 405 for any method but GET and HEAD; 404 for other paths. The
 * listener has NO AUTHENTICATION: bind it to loopback (the default) or keep it behind
 * the host's firewall.
 *
 * Push: probe_push_start() (or PROBE_PUSH=URL) runs a sender thread ("probe-push")
 * that, every interval, takes the delta CPU profile of the window just ended (and
 * the heap profile, once the memory module provides one) and POSTs it to
 * Pyroscope's ingest API:
 *
 *   POST /ingest?name=APP.cpu{k=v,...}&from=T0&until=T1&format=pprof&spyName=libprobe
 *
 * with the gzipped pprof as the body (T0 and T1 in Unix seconds; the profile's own
 * time_nanos and duration_nanos give the window exactly). Windows wait in a bounded
 * queue; when it is full the oldest is dropped and counted. Failed sends back off
 * exponentially (1 s doubling to 60 s, capped at the interval's 4 times). file://DIR
 * writes each window to DIR instead. https:// needs libprobe built with libcurl.
 *
 * A forked child has neither listener nor sender; it may start its own.
 */
#ifndef PROBE_FLEET_H
#define PROBE_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <probe/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Options of probe_push_start(). Initialise with PROBE_PUSH_OPTIONS_INIT. */
typedef struct probe_push_options {
    size_t size;            /**< sizeof(probe_push_options): lets the struct grow. */
    const char *url;        /**< http://HOST[:PORT][/PREFIX], https://... (libcurl
                                 builds) or file://DIR. Required. */
    const char *app;        /**< Application name; NULL: PROBE_APP, else the
                                 program's name. */
    const char *labels;     /**< "k=v,k2=v2" added to the series; NULL: PROBE_LABELS.
                                 "hostname" is always added. */
    const char *tenant;     /**< X-Scope-OrgID header value; NULL: PROBE_PUSH_TENANT,
                                 none if unset. */
    uint64_t interval_ns;   /**< Window length; 100 ms..1 h. Default 15 s. */
    unsigned queue;         /**< Windows kept while the backend is slow or down,
                                 1..64. Default 4. */
    uint64_t timeout_ns;    /**< Connect and send time-out of one request, and the
                                 bound of the final flush; 10 ms..60 s. Default 5 s. */
} probe_push_options;

#define PROBE_PUSH_INTERVAL_DEFAULT 15000000000ull
#define PROBE_PUSH_INTERVAL_MIN 100000000ull
#define PROBE_PUSH_QUEUE_DEFAULT 4u
#define PROBE_PUSH_TIMEOUT_DEFAULT 5000000000ull

#define PROBE_PUSH_OPTIONS_INIT                                                        \
    {sizeof(probe_push_options), NULL, NULL, NULL, NULL, PROBE_PUSH_INTERVAL_DEFAULT,  \
     PROBE_PUSH_QUEUE_DEFAULT, PROBE_PUSH_TIMEOUT_DEFAULT}

/** The pusher's counters since probe_push_start(). */
typedef struct probe_push_stats {
    size_t size;            /**< Set by the caller to sizeof(probe_push_stats). */
    uint64_t windows;       /**< Profiles taken: one a window, two when the memory
                                 module provides a heap profile (APP.heap). */
    uint64_t sent;          /**< Windows the backend accepted (2xx), or written. */
    uint64_t failed;        /**< Attempts that failed (connect, time-out, non-2xx). */
    uint64_t dropped;       /**< Windows dropped from a full queue, or unsent at stop. */
    uint64_t queued;        /**< Windows waiting now. */
} probe_push_stats;

#ifdef PROBE_DISABLE
/* Compiled out: the program links without libprobe; starting reports that. */
static inline int probe_http_start(const char *addr) { (void)addr; return PROBE_EDISABLED; }
static inline int probe_http_stop(void) { return 0; }
static inline int probe_http_port(void) { return 0; }
static inline int probe_push_start(const probe_push_options *opts)
{
    (void)opts;
    return PROBE_EDISABLED;
}
static inline int probe_push_stop(void) { return 0; }
static inline int probe_push_stats_get(probe_push_stats *out)
{
    (void)out;
    return PROBE_EDISABLED;
}
#else
/**
 * Start the HTTP listener.
 *
 * @param addr  "HOST:PORT", ":PORT" or "PORT" (these two bind 127.0.0.1), or NULL
 *              for 127.0.0.1:6060. HOST is an IPv4 or IPv6 literal ("[::1]:6060")
 *              or a name. PORT 0 picks a free port (probe_http_port()).
 * @retval 0              Listening.
 * @retval PROBE_EBUSY    Already listening.
 * @retval PROBE_EINVAL   @p addr cannot be parsed or resolved.
 * @retval -errno         socket(2), bind(2) or listen(2) failed (e.g. -EADDRINUSE),
 *                        or the thread could not be created.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_http_start(const char *addr);

/**
 * Stop the listener: a request being served is cut short (a profile window ends
 * early); waits for the thread. A no-op when not listening.
 * @retval 0  Always.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_http_stop(void);

/** @return The port listened on, or 0 when not listening. @note Thread-safe. */
PROBE_EXPORT int probe_http_port(void);

/**
 * Start pushing a delta CPU profile every interval (the sampler is started if it
 * is not running, at 100 Hz, and stopped again by probe_push_stop()).
 *
 * @param opts  Options; @c url is required.
 * @retval 0              Pushing.
 * @retval PROBE_EBUSY    Already pushing.
 * @retval PROBE_EINVAL   NULL @p opts, @c size too small, no or a bad url, an
 *                        option out of range, or a label that is not k=v.
 * @retval PROBE_ENOTSUP  An https:// url in a build without libcurl, or another
 *                        scheme.
 * @retval PROBE_ENOMEM   Out of memory, or the thread could not be created.
 * @retval other          The sampler could not be started (probe_sampler_start()).
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_push_start(const probe_push_options *opts);

/**
 * Stop pushing: the window in progress is closed and, with everything queued, sent
 * within the options' timeout_ns; what is left then is counted as dropped. A no-op
 * when not pushing.
 * @retval 0  Always.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_push_stop(void);

/**
 * Read the pusher's counters (kept after stop until the next start).
 * @retval 0             Success.
 * @retval PROBE_EINVAL  @p out is NULL or its @c size is too small.
 * @note Thread-safe. Not async-signal-safe.
 */
PROBE_EXPORT int probe_push_stats_get(probe_push_stats *out);

#endif /* PROBE_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* PROBE_FLEET_H */
