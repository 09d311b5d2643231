/* Internal: the fleet module (pull endpoint and Pyroscope pusher, fleet.h). Shared
 * pieces: sockets with deadlines (net.c), URLs (url.c), profile windows (window.c),
 * the heap-profile provider (heap.c). */
#ifndef PROBE_FLEET_FLEET_H
#define PROBE_FLEET_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <probe/report.h>

/* ---- net.c: blocking-free socket I/O bounded by a CLOCK_MONOTONIC deadline ----- */
uint64_t net_now_ns(void);           /* CLOCK_MONOTONIC */
uint64_t net_realtime_ns(void);      /* CLOCK_REALTIME */
/* Connect to host:port within the deadline; returns a non-blocking fd or -errno
 * (-ETIMEDOUT, -ECONNREFUSED, PROBE_EINVAL for a name that does not resolve). */
int net_connect(const char *host, const char *port, uint64_t deadline_ns);
/* Write all of @buf before the deadline: 0 or -errno (-ETIMEDOUT). */
int net_write_all(int fd, const void *buf, size_t len, uint64_t deadline_ns);
/* Read at most @len bytes, waiting until the deadline for some: the count (0 at end
 * of stream) or -errno. @stop_fd (or -1) readable also ends the wait: -ECANCELED. */
long net_read(int fd, void *buf, size_t len, uint64_t deadline_ns, int stop_fd);
/* Wait until @fd_a (0) or @fd_b (1; -1 for none) is readable, or the deadline
 * (UINT64_MAX: none) passes (-ETIMEDOUT). */
int net_wait_readable(int fd_a, int fd_b, uint64_t deadline_ns);

/* ---- url.c ----------------------------------------------------------------------- */
enum url_scheme { URL_HTTP, URL_HTTPS, URL_FILE };
struct url {
    enum url_scheme scheme;
    char host[256];   /* without brackets */
    char port[8];
    char path[1024];  /* http(s): the prefix without a trailing '/'; file: the dir */
};
/* Parse an http://, https:// or file:// URL: 0, PROBE_EINVAL, or PROBE_ENOTSUP for
 * another scheme. */
int url_parse(const char *s, struct url *out);
/* Parse a listen address ("HOST:PORT", ":PORT", "PORT", "[V6]:PORT"): 0 or
 * PROBE_EINVAL. A missing host is 127.0.0.1. */
int url_parse_listen(const char *s, char *host, size_t hostlen, char *port,
                     size_t portlen);
/* Percent-encode @s (RFC 3986 unreserved characters kept) onto @out's end. Returns
 * 0, or PROBE_ENOSPC when it does not fit. */
int url_encode(const char *s, char *out, size_t outlen);

/* ---- window.c: delta CPU profiles ------------------------------------------------ */
struct window {
    probe_snapshot *base;   /* the snapshot the window started at */
    uint64_t t0_ns;         /* its CLOCK_REALTIME */
    uint64_t mono0_ns;      /* its CLOCK_MONOTONIC */
    int holds_sampler;
};
/* Hold the sampler (starting it at 100 Hz if it is not running) and take the base
 * snapshot. */
int window_open(struct window *w);
/* End the window now: its samples minus the base's as gzipped pprof (malloc'd, the
 * caller frees), and its bounds. With @roll the window goes on from here (the next
 * one starts exactly where this one ended); without, it is closed. */
int window_take(struct window *w, int roll, char **ret_buf, size_t *ret_len,
                uint64_t *ret_t0_ns, uint64_t *ret_t1_ns);
/* Close without a profile (release the sampler, free the base). */
void window_close(struct window *w);
/* The forked child: no sampler holds are inherited. */
void window_atfork_child(void);

/* ---- heap.c ---------------------------------------------------------------------- */
/* The heap profile as gzipped pprof (malloc'd): the heap profiler's (PROBE_MEM=1),
 * or PROBE_ENOTSUP when it is off. */
int fleet_heap_profile(char **ret_buf, size_t *ret_len);
/* Tests: a provider that replaces the heap profiler's. */
extern int (*fleet_heap_provider)(char **ret_buf, size_t *ret_len);
#define FLEET_HEAP_OFF "heap profiling is not on (PROBE_MEM=1 / probe run --mem)"

/* ---- curl.c (https, libcurl builds) ------------------------------------------------ */
/* POST @body to @url with extra header lines (each "Name: value"); the HTTP status,
 * or PROBE_ENOTSUP without libcurl, or another negative code. */
int curl_post(const char *url, const char *const *headers, size_t nheaders,
              const void *body, size_t len, uint64_t timeout_ns);

/* ---- env.c ------------------------------------------------------------------------ */
void fleet_env_init(void);

#endif
