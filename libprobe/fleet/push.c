/* The pusher: a sender thread that closes a profile window every interval and
 * POSTs it to Pyroscope's ingest API (or writes it under file://DIR). Windows wait
 * in a bounded queue (the oldest dropped and counted); failures back off
 * exponentially; every request is bounded by the time-out. */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/fleet.h>

#define PUSH_QUEUE_MAX 64u
#define PUSH_BACKOFF_MIN_NS 1000000000ull
#define PUSH_BACKOFF_MAX_NS 60000000000ull

struct item {
    const char *kind; /* "cpu", or "heap" from the memory module */
    char *buf;
    size_t len;
    uint64_t t0_ns, t1_ns;
};

static pthread_mutex_t push_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t push_cond;
static pthread_t push_thread;
static int push_running, push_stopping;
/* Serialises start and stop (they wait for the thread outside push_lock). */
static pthread_mutex_t push_control = PTHREAD_MUTEX_INITIALIZER;

static struct url target;
static char series_labels[2048]; /* "{k=v,...,hostname=H}" */
static char app_name[256];
static char tenant[256];
static probe_push_options opts;

static struct item queue[PUSH_QUEUE_MAX];
static unsigned qhead, qlen;
static probe_push_stats stats;
static struct window win;

/* ---- the name and the labels ------------------------------------------------------- */

static int
label_char_ok(char c, int key)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (c >= '0' && c <= '9') || c == '.' || (!key && (c == '-' || c == '/' || c == ':'));
}

/* "{k=v,...,hostname=H}" into @raw; PROBE_EINVAL for a bad label. */
static int
build_labels(const char *labels, char *raw, size_t rawlen)
{
    char host[256] = "";
    size_t n;
    int has_host = 0;

    n = (size_t)snprintf(raw, rawlen, "{");
    for (const char *p = labels; p && *p;) {
        size_t len = strcspn(p, ","), i = 0;

        if (len) {
            while (i < len && p[i] != '=')
                i++;
            if (i == 0 || i + 1 >= len) /* k=v, both non-empty */
                return PROBE_EINVAL;
            for (size_t k = 0; k < len; k++)
                if (k != i && !label_char_ok(p[k], k < i))
                    return PROBE_EINVAL;
            if (i == 8 && strncmp(p, "hostname", 8) == 0)
                has_host = 1;
            if (n + len + 2 >= rawlen)
                return PROBE_EINVAL;
            n += (size_t)snprintf(raw + n, rawlen - n, "%s%.*s",
                                  raw[n - 1] == '{' ? "" : ",", (int)len, p);
        }
        p += len + (p[len] == ',');
    }
    if (!has_host) {
        gethostname(host, sizeof(host) - 1);
        for (char *h = host; *h; h++)
            if (!label_char_ok(*h, 0))
                *h = '_';
        if (n + strlen(host) + 14 >= rawlen)
            return PROBE_EINVAL;
        n += (size_t)snprintf(raw + n, rawlen - n, "%shostname=%s",
                              raw[n - 1] == '{' ? "" : ",", host[0] ? host : "unknown");
    }
    if (n + 2 > rawlen)
        return PROBE_EINVAL;
    snprintf(raw + n, rawlen - n, "}");
    return 0;
}

static void
default_app(char *out, size_t len)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    const char *base = "app";

    if (n > 0) {
        path[n] = '\0';
        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    }
    size_t bl = strlen(base) < len - 1 ? strlen(base) : len - 1;

    memcpy(out, base, bl);
    out[bl] = '\0';
}

/* ---- sending ------------------------------------------------------------------------ */

/* Write the window under file://DIR: 0 or a negative code. */
static int
send_file(const struct item *it)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s.%s-%llu-%llu.pb.gz", target.path, app_name,
             it->kind, (unsigned long long)it->t0_ns, (unsigned long long)it->t1_ns);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd < 0)
        return -errno;
    const char *p = it->buf;
    size_t left = it->len;
    int r = 0;

    while (left && r == 0) {
        ssize_t n = write(fd, p, left);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            r = PROBE_EIO;
        else
            p += n, left -= (size_t)n;
    }
    close(fd);
    return r;
}

/* The HTTP status of the reply on @fd, or a negative code. */
static int
read_status(int fd, uint64_t deadline)
{
    char buf[256];
    size_t len = 0;

    while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
        long n = net_read(fd, buf + len, sizeof(buf) - 1 - len, deadline, -1);

        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    int status;

    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return PROBE_EIO;
    return status;
}

static int
send_http(const struct item *it, const char *query, uint64_t timeout_ns)
{
    char head[8192], extra[300] = "";
    uint64_t deadline = net_now_ns() + timeout_ns;

    if (tenant[0])
        snprintf(extra, sizeof(extra), "X-Scope-OrgID: %s\r\n", tenant);
    int n = snprintf(head, sizeof(head),
                     "POST %s/ingest?%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                     "User-Agent: libprobe/%d.%d\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                     target.path, query, strchr(target.host, ':') ? "[" : "", target.host,
                     strchr(target.host, ':') ? "]" : "", target.port, PROBE_VERSION_MAJOR,
                     PROBE_VERSION_MINOR, it->len, extra);

    if (n < 0 || (size_t)n >= sizeof(head))
        return PROBE_EINVAL;
    int fd = net_connect(target.host, target.port, deadline);

    if (fd < 0)
        return fd;
    int r = net_write_all(fd, head, (size_t)n, deadline);

    if (r == 0)
        r = net_write_all(fd, it->buf, it->len, deadline);
    if (r == 0)
        r = read_status(fd, deadline);
    close(fd);
    return r;
}

/* Send one window: 0 when the backend took it. */
static int
send_item(const struct item *it, uint64_t timeout_ns)
{
    char query[8192], name[2400], encoded[7200] = "";

    if (target.scheme == URL_FILE)
        return send_file(it);
    /* Pyroscope's series name: APP.KIND{labels}. */
    snprintf(name, sizeof(name), "%s.%s%s", app_name, it->kind, series_labels);
    if (url_encode(name, encoded, sizeof(encoded)) < 0)
        return PROBE_EINVAL;
    snprintf(query, sizeof(query), "name=%s&from=%llu&until=%llu&format=pprof&spyName=libprobe",
             encoded, (unsigned long long)(it->t0_ns / 1000000000u),
             (unsigned long long)(it->t1_ns / 1000000000u));
    int status;

    if (target.scheme == URL_HTTPS) {
        char url[12000], hdr[300] = "";
        const char *headers[2] = {"Content-Type: application/octet-stream", hdr};

        if (tenant[0])
            snprintf(hdr, sizeof(hdr), "X-Scope-OrgID: %s", tenant);
        snprintf(url, sizeof(url), "https://%s%s%s:%s%s/ingest?%s",
                 strchr(target.host, ':') ? "[" : "", target.host,
                 strchr(target.host, ':') ? "]" : "", target.port, target.path, query);
        status = curl_post(url, headers, tenant[0] ? 2 : 1, it->buf, it->len, timeout_ns);
    } else {
        status = send_http(it, query, timeout_ns);
    }
    if (status < 0)
        return status;
    return status >= 200 && status < 300 ? 0 : PROBE_EIO;
}

/* ---- the queue ---------------------------------------------------------------------- */

/* Called with push_lock held. */
static void
enqueue(struct item it)
{
    if (qlen == opts.queue) {
        free(queue[qhead].buf);
        qhead = (qhead + 1) % PUSH_QUEUE_MAX;
        qlen--;
        stats.dropped++;
    }
    queue[(qhead + qlen) % PUSH_QUEUE_MAX] = it;
    qlen++;
    stats.windows++;
    stats.queued = qlen;
}

/* Close the window now and queue it, with the heap profile when the memory module
 * provides one. Called without push_lock. */
static void
roll(void)
{
    struct item it = {.kind = "cpu"}, heap = {.kind = "heap"};

    if (window_take(&win, 1, &it.buf, &it.len, &it.t0_ns, &it.t1_ns) < 0)
        return; /* the next window covers this one too */
    int with_heap = fleet_heap_profile(&heap.buf, &heap.len) == 0;

    heap.t0_ns = it.t0_ns;
    heap.t1_ns = it.t1_ns;
    pthread_mutex_lock(&push_lock);
    enqueue(it);
    if (with_heap)
        enqueue(heap);
    pthread_mutex_unlock(&push_lock);
}

/* Send queued windows, oldest first, until one fails or @deadline. Returns 0 when
 * the queue was emptied. Called without push_lock; only this thread removes. */
static int
drain(uint64_t timeout_ns, uint64_t deadline)
{
    for (;;) {
        pthread_mutex_lock(&push_lock);
        if (qlen == 0) {
            pthread_mutex_unlock(&push_lock);
            return 0;
        }
        struct item it = queue[qhead];
        pthread_mutex_unlock(&push_lock);

        uint64_t now = net_now_ns();

        if (now >= deadline)
            return -1;
        int r = send_item(&it, timeout_ns < deadline - now ? timeout_ns : deadline - now);

        pthread_mutex_lock(&push_lock);
        if (r == 0) {
            /* Still the head unless the queue dropped it meanwhile. */
            if (qlen && queue[qhead].buf == it.buf) {
                free(it.buf);
                qhead = (qhead + 1) % PUSH_QUEUE_MAX;
                qlen--;
            }
            stats.sent++;
        } else {
            stats.failed++;
        }
        stats.queued = qlen;
        pthread_mutex_unlock(&push_lock);
        if (r < 0)
            return -1;
    }
}

static void
timespec_at(struct timespec *ts, uint64_t mono_ns)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000u);
    ts->tv_nsec = (long)(mono_ns % 1000000000u);
}

static void *
push_main(void *arg)
{
    uint64_t next = win.mono0_ns + opts.interval_ns, retry_at = 0, backoff = 0;

    (void)arg;
    pthread_setname_np(pthread_self(), "probe-push");
    for (;;) {
        struct timespec ts;
        uint64_t wake = next;

        if (retry_at && retry_at < wake)
            wake = retry_at;
        timespec_at(&ts, wake);
        pthread_mutex_lock(&push_lock);
        while (!push_stopping && net_now_ns() < wake)
            pthread_cond_timedwait(&push_cond, &push_lock, &ts);
        int stopping = push_stopping;
        pthread_mutex_unlock(&push_lock);
        if (stopping)
            break;

        uint64_t now = net_now_ns();

        if (now >= next) {
            roll();
            /* Late (a slow send): the next window starts now, not in the past. */
            next = win.mono0_ns + opts.interval_ns;
        }
        if (now >= retry_at) {
            if (drain(opts.timeout_ns, UINT64_MAX) == 0) {
                backoff = 0;
                retry_at = 0;
            } else {
                backoff = backoff ? backoff * 2 : PUSH_BACKOFF_MIN_NS;
                uint64_t cap = 4 * opts.interval_ns < PUSH_BACKOFF_MAX_NS
                                   ? 4 * opts.interval_ns
                                   : PUSH_BACKOFF_MAX_NS;
                if (backoff > cap)
                    backoff = cap;
                retry_at = net_now_ns() + backoff;
            }
        }
    }
    /* The final flush: the window so far, then everything queued, within the
     * time-out; what is left is dropped. */
    roll();
    drain(opts.timeout_ns, net_now_ns() + opts.timeout_ns);
    pthread_mutex_lock(&push_lock);
    while (qlen) {
        free(queue[qhead].buf);
        qhead = (qhead + 1) % PUSH_QUEUE_MAX;
        qlen--;
        stats.dropped++;
    }
    stats.queued = 0;
    pthread_mutex_unlock(&push_lock);
    window_close(&win);
    return NULL;
}

static void
push_atfork_child(void)
{
    /* The sender is the parent's; the child's queue is forgotten (not freed: its
     * state at the fork is unknown). */
    pthread_mutex_init(&push_lock, NULL);
    pthread_mutex_init(&push_control, NULL);
    push_running = push_stopping = 0;
    qlen = 0;
    win.base = NULL;
    win.holds_sampler = 0;
    window_atfork_child();
}

static void
push_once(void)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&push_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_atfork(NULL, NULL, push_atfork_child);
}

static const char *
env_or(const char *v, const char *name)
{
    return v ? v : secure_getenv(name);
}

PROBE_EXPORT int
probe_push_start(const probe_push_options *o)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct url u;
    int r;

    if (!o || o->size < sizeof(probe_push_options) || !o->url)
        return PROBE_EINVAL;
    if (o->interval_ns < PROBE_PUSH_INTERVAL_MIN || o->interval_ns > 3600000000000ull ||
        o->queue < 1 || o->queue > PUSH_QUEUE_MAX || o->timeout_ns < 10000000u ||
        o->timeout_ns > 60000000000ull)
        return PROBE_EINVAL;
    r = url_parse(o->url, &u);
    if (r < 0)
        return r;
    if (u.scheme == URL_HTTPS && curl_post(NULL, NULL, 0, NULL, 0, 0) == PROBE_ENOTSUP)
        return PROBE_ENOTSUP;
    pthread_once(&once, push_once);
    pthread_mutex_lock(&push_control);
    if (push_running) {
        pthread_mutex_unlock(&push_control);
        return PROBE_EBUSY;
    }
    const char *app = env_or(o->app, "PROBE_APP");
    const char *ten = env_or(o->tenant, "PROBE_PUSH_TENANT");

    if (app && *app)
        snprintf(app_name, sizeof(app_name), "%s", app);
    else
        default_app(app_name, sizeof(app_name));
    snprintf(tenant, sizeof(tenant), "%s", ten ? ten : "");
    r = strpbrk(app_name, "{}, \r\n") || strpbrk(tenant, "\r\n") ? PROBE_EINVAL : 0;
    if (r == 0)
        r = build_labels(env_or(o->labels, "PROBE_LABELS"), series_labels,
                         sizeof(series_labels));
    if (r == 0) {
        target = u;
        opts = *o;
        memset(&stats, 0, sizeof(stats));
        qhead = qlen = 0;
        push_stopping = 0;
        r = window_open(&win);
    }
    if (r == 0) {
        sigset_t all, old;

        /* As the listener's (http.c): SIGPROF open, so our CPU time is in the
         * profiles we send. */
        sigfillset(&all);
        sigdelset(&all, SIGPROF);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&push_thread, NULL, push_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
            window_close(&win);
            r = PROBE_ENOMEM;
        }
    }
    if (r == 0)
        push_running = 1;
    pthread_mutex_unlock(&push_control);
    return r;
}

PROBE_EXPORT int
probe_push_stop(void)
{
    pthread_mutex_lock(&push_control);
    if (push_running) {
        pthread_mutex_lock(&push_lock);
        push_stopping = 1;
        pthread_cond_signal(&push_cond);
        pthread_mutex_unlock(&push_lock);
        pthread_join(push_thread, NULL);
        push_running = 0;
    }
    pthread_mutex_unlock(&push_control);
    return 0;
}

PROBE_EXPORT int
probe_push_stats_get(probe_push_stats *out)
{
    if (!out || out->size < sizeof(probe_push_stats))
        return PROBE_EINVAL;
    pthread_mutex_lock(&push_lock);
    probe_push_stats s = stats;
    pthread_mutex_unlock(&push_lock);
    s.size = out->size;
    *out = s;
    return 0;
}

/* At exit: the final flush, bounded by the time-out. */
__attribute__((destructor)) static void
push_at_exit(void)
{
    probe_push_stop();
    probe_http_stop();
}
