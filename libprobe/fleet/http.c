/* The pull endpoint: one listener thread serving Go's /debug/pprof paths, one
 * request at a time, every read and write bounded in size and time. It only reads
 * snapshots: recording threads never wait for it. */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <probe/fleet.h>
#include <probe/report.h>
#include <probe/trace.h>

#define HTTP_HEAD_MAX 8192
#define HTTP_IO_TIMEOUT_NS 5000000000ull
#define HTTP_PROFILE_DEFAULT 30
#define HTTP_PROFILE_MAX 300
#define HTTP_TRACE_MAX 60

static pthread_mutex_t http_lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = -1;
static int stop_pipe[2] = {-1, -1};
static int listen_port;
static pthread_t http_thread;
static int http_running;

struct request {
    int fd;
    int head_only; /* HEAD */
    char target[HTTP_HEAD_MAX];
};

static int
respond(int fd, int head_only, int status, const char *reason, const char *type,
        const char *extra, const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%sCache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, type, len, extra ? extra : "");
    uint64_t deadline = net_now_ns() + HTTP_IO_TIMEOUT_NS;
    int r = net_write_all(fd, head, (size_t)n, deadline);

    if (r == 0 && !head_only && len)
        r = net_write_all(fd, body, len, deadline);
    return r;
}

static void
respond_text(struct request *rq, int status, const char *reason, const char *extra,
             const char *text)
{
    respond(rq->fd, rq->head_only, status, reason, "text/plain; charset=utf-8", extra,
            text, strlen(text));
}

/* The value of query parameter @key in @query ("a=1&b=2"), copied into @out. */
static int
query_get(const char *query, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);

    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = strcspn(p + kl + 1, "&");

            if (vl >= outlen)
                return -1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
    }
    return 0;
}

/* seconds=N in 1..@max, else @def; -1 when malformed. */
static int
query_seconds(const char *query, int def, int max)
{
    char v[16];
    char *end;
    int got = query_get(query, "seconds", v, sizeof(v));

    if (got == 0)
        return def;
    if (got < 0)
        return -1;
    long n = strtol(v, &end, 10);

    if (end == v || *end || n < 1 || n > max)
        return -1;
    return (int)n;
}

/* Wait @seconds, or less when the listener stops: 0, or -1 when stopped. */
static int
wait_window(int seconds)
{
    int r = net_wait_readable(stop_pipe[0], -1,
                              net_now_ns() + (uint64_t)seconds * 1000000000u);

    return r == -ETIMEDOUT ? 0 : -1;
}

static void
serve_profile(struct request *rq, const char *query)
{
    int seconds = query_seconds(query, HTTP_PROFILE_DEFAULT, HTTP_PROFILE_MAX);
    struct window w;
    char *buf = NULL;
    size_t len = 0;
    uint64_t t0, t1;

    if (seconds < 0) {
        respond_text(rq, 400, "Bad Request", NULL, "seconds: use 1 to 300\n");
        return;
    }
    int r = window_open(&w);

    if (r < 0) {
        char msg[128];

        snprintf(msg, sizeof(msg), "cannot start the sampler: %s\n", probe_strerror(r));
        respond_text(rq, 500, "Internal Server Error", NULL, msg);
        return;
    }
    wait_window(seconds); /* stopped early: the window so far */
    r = window_take(&w, 0, &buf, &len, &t0, &t1);
    window_close(&w);
    if (r < 0) {
        respond_text(rq, 500, "Internal Server Error", NULL, probe_strerror(r));
        return;
    }
    respond(rq->fd, rq->head_only, 200, "OK", "application/octet-stream",
            "Content-Disposition: attachment; filename=\"profile\"\r\n", buf, len);
    free(buf);
}

static void
serve_heap(struct request *rq)
{
    char *buf = NULL;
    size_t len = 0;
    int r = fleet_heap_profile(&buf, &len);

    if (r == PROBE_ENOTSUP) {
        respond_text(rq, 404, "Not Found", NULL, FLEET_HEAP_OFF "\n");
        return;
    }
    if (r < 0) {
        respond_text(rq, 500, "Internal Server Error", NULL, probe_strerror(r));
        return;
    }
    respond(rq->fd, rq->head_only, 200, "OK", "application/octet-stream", NULL, buf, len);
    free(buf);
}

/* The text of @s with &, < and > escaped, in a <pre>. */
static char *
html_page(const char *s, size_t *ret_len)
{
    static const char pre[] = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                              "<title>libprobe report</title></head><body><pre>\n";
    static const char post[] = "</pre></body></html>\n";
    size_t n = strlen(s), cap = sizeof(pre) + sizeof(post) + 5 * n, len = 0;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    len = (size_t)sprintf(out, "%s", pre);
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;

        if (e) {
            memcpy(out + len, e, strlen(e));
            len += strlen(e);
        } else {
            out[len++] = *s;
        }
    }
    len += (size_t)sprintf(out + len, "%s", post);
    *ret_len = len;
    return out;
}

static void
serve_report(struct request *rq, const char *query)
{
    char format[16] = "json";
    const char *type = "application/json";

    if (query_get(query, "format", format, sizeof(format)) < 0 ||
        (strcmp(format, "json") && strcmp(format, "text") && strcmp(format, "tree") &&
         strcmp(format, "html"))) {
        respond_text(rq, 400, "Bad Request", NULL, "format: use json, text, tree or html\n");
        return;
    }
    probe_snapshot *snap = probe_snapshot_take();
    char *buf = NULL;
    size_t len = 0;
    int html = strcmp(format, "html") == 0;
    int r = snap ? probe_snapshot_format(snap, html ? "text" : format, &buf, &len)
                 : PROBE_ENOMEM;

    probe_snapshot_free(snap);
    if (r == 0 && html) {
        char *page = html_page(buf, &len);

        free(buf);
        buf = page;
        r = page ? 0 : PROBE_ENOMEM;
        type = "text/html; charset=utf-8";
    } else if (strcmp(format, "json")) {
        type = "text/plain; charset=utf-8";
    }
    if (r < 0)
        respond_text(rq, 500, "Internal Server Error", NULL, probe_strerror(r));
    else
        respond(rq->fd, rq->head_only, 200, "OK", type, NULL, buf, len);
    free(buf);
}

static void
serve_trace(struct request *rq, const char *query)
{
    int seconds = query_seconds(query, 1, HTTP_TRACE_MAX);

    if (seconds < 0) {
        respond_text(rq, 400, "Bad Request", NULL, "seconds: use 1 to 60\n");
        return;
    }
    /* A flight recorder for the window, unless tracing is on already. */
    int started = probe_trace_start(NULL) == 0;

    wait_window(seconds);
    probe_snapshot *snap = probe_snapshot_take();

    if (started)
        probe_trace_stop();
    char *buf = NULL;
    size_t len = 0;
    int r = snap ? probe_snapshot_format(snap, "chrome", &buf, &len) : PROBE_ENOMEM;

    probe_snapshot_free(snap);
    if (r < 0)
        respond_text(rq, 500, "Internal Server Error", NULL, probe_strerror(r));
    else
        respond(rq->fd, rq->head_only, 200, "OK", "application/json", NULL, buf, len);
    free(buf);
}

/* Read the request head within the time-out; parse its request line. Returns 0, or
 * the HTTP status to answer with (-1: say nothing, the client went away). */
static int
read_request(struct request *rq)
{
    char head[HTTP_HEAD_MAX + 1];
    size_t len = 0;
    uint64_t deadline = net_now_ns() + HTTP_IO_TIMEOUT_NS;

    while (!memmem(head, len, "\r\n\r\n", 4) && !memmem(head, len, "\n\n", 2)) {
        if (len == HTTP_HEAD_MAX)
            return 431;
        long n = net_read(rq->fd, head + len, HTTP_HEAD_MAX - len, deadline, stop_pipe[0]);

        if (n == -ETIMEDOUT)
            return 408;
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    head[len] = '\0';
    char *eol = strpbrk(head, "\r\n");
    *eol = '\0';
    char *sp1 = strchr(head, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;

    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/')
        return 400;
    *sp1 = *sp2 = '\0';
    if (strcmp(head, "HEAD") == 0)
        rq->head_only = 1;
    else if (strcmp(head, "GET") != 0)
        return 405;
    snprintf(rq->target, sizeof(rq->target), "%s", sp1 + 1);
    return 0;
}

static void
serve(int fd)
{
    struct request rq = {.fd = fd};
    int status = read_request(&rq);

    switch (status) {
    case -1:
        return;
    case 0:
        break;
    case 405:
        respond_text(&rq, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                     "only GET and HEAD\n");
        return;
    case 408:
        respond_text(&rq, 408, "Request Timeout", NULL, "request not read in time\n");
        return;
    case 431:
        respond_text(&rq, 431, "Request Header Fields Too Large", NULL,
                     "the request head is limited to 8 KiB\n");
        return;
    default:
        respond_text(&rq, 400, "Bad Request", NULL, "malformed request\n");
        return;
    }
    char *query = strchr(rq.target, '?');

    if (query)
        *query++ = '\0';
    if (strcmp(rq.target, "/debug/pprof/profile") == 0)
        serve_profile(&rq, query);
    else if (strcmp(rq.target, "/debug/pprof/heap") == 0)
        serve_heap(&rq);
    else if (strcmp(rq.target, "/debug/probe/report") == 0)
        serve_report(&rq, query);
    else if (strcmp(rq.target, "/debug/probe/trace") == 0)
        serve_trace(&rq, query);
    else
        respond_text(&rq, 404, "Not Found", NULL,
                     "paths: /debug/pprof/profile?seconds=N, /debug/pprof/heap, "
                     "/debug/probe/report?format=json|text|tree|html, "
                     "/debug/probe/trace?seconds=N\n");
}

static void *
http_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "probe-http");
    for (;;) {
        /* Wait for stop (the pipe) or a client. */
        int r = net_wait_readable(stop_pipe[0], listen_fd, UINT64_MAX);

        if (r != 1)
            break;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
            continue;
        serve(fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

static void
close_all(void)
{
    if (listen_fd >= 0)
        close(listen_fd);
    for (int i = 0; i < 2; i++)
        if (stop_pipe[i] >= 0)
            close(stop_pipe[i]);
    listen_fd = stop_pipe[0] = stop_pipe[1] = -1;
    listen_port = 0;
}

static int
http_listen(const char *addr)
{
    char host[256], port[8];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    int r = url_parse_listen(addr, host, sizeof(host), port, sizeof(port));

    if (r < 0)
        return r;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return PROBE_EINVAL;
    r = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai && listen_fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol), one = 1;

        if (fd < 0) {
            r = -errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 8) < 0) {
            r = -errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        getsockname(fd, (struct sockaddr *)&ss, &sl);
        listen_port = ntohs(ss.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                : ((struct sockaddr_in *)&ss)->sin_port);
        listen_fd = fd;
        r = 0;
    }
    freeaddrinfo(res);
    return r;
}

static void
http_atfork_child(void)
{
    /* The thread is not the child's: no listener, and the socket is let go. */
    pthread_mutex_init(&http_lock, NULL);
    if (http_running)
        close_all();
    http_running = 0;
    window_atfork_child();
}

static void
http_register_atfork(void)
{
    pthread_atfork(NULL, NULL, http_atfork_child);
}

PROBE_EXPORT int
probe_http_start(const char *addr)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    int r;

    pthread_once(&once, http_register_atfork);
    pthread_mutex_lock(&http_lock);
    if (http_running) {
        pthread_mutex_unlock(&http_lock);
        return PROBE_EBUSY;
    }
    r = http_listen(addr);
    if (r == 0 && pipe2(stop_pipe, O_CLOEXEC) < 0)
        r = -errno;
    if (r == 0) {
        sigset_t all, old;

        /* The program's signals blocked: its handlers never run on our thread. SIGPROF
         * stays open, so that the sampler sees the CPU time we cost. */
        sigfillset(&all);
        sigdelset(&all, SIGPROF);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&http_thread, NULL, http_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (r == 0)
        http_running = 1;
    else
        close_all();
    pthread_mutex_unlock(&http_lock);
    return r;
}

PROBE_EXPORT int
probe_http_stop(void)
{
    pthread_mutex_lock(&http_lock);
    if (http_running) {
        if (write(stop_pipe[1], "x", 1) < 0) {
            /* a full pipe has said it already */
        }
        pthread_join(http_thread, NULL);
        close_all();
        http_running = 0;
    }
    pthread_mutex_unlock(&http_lock);
    return 0;
}

PROBE_EXPORT int
probe_http_port(void)
{
    pthread_mutex_lock(&http_lock);
    int port = http_running ? listen_port : 0;
    pthread_mutex_unlock(&http_lock);
    return port;
}
