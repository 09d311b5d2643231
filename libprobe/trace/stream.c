/* The stream writer of PROBE_TRACE_STREAM: a background thread that drains the
 * threads' full event buffers every few milliseconds and appends them to a Chrome
 * trace file, so a long run's trace is bounded in memory, not in length. The core
 * starts and stops it through trace_stream_backend (core/trace.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/report.h>

#include "core/trace.h"
#include "init.h"
#include "format/jsonstr.h"
#include "format/writer.h"
#include "numfmt.h"

#define STREAM_PERIOD_NS 5000000 /* how often full buffers are drained */
#define STREAM_NAME_MAX 256
#define STREAM_DEPTH 512        /* open scopes tracked per thread for repairs */
#define STREAM_THREADS 4096     /* threads whose nesting is repaired */

/* What a thread has open in the file, so that the file stays properly nested when
 * events were dropped: an END whose BEGIN is missing is left out, an END that
 * skips open scopes closes them first, and scopes still open at the end are closed
 * at the thread's last timestamp. */
struct open_scopes {
    uint64_t tid;
    uint64_t last_ts;
    uint32_t depth;
    uint32_t ids[STREAM_DEPTH];
};

static struct {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int err;                    /* first write error, sticky */
    int first;                  /* no event written yet: no comma */
    probe_writer w;
    char **names;               /* site names by id, cached */
    size_t nnames;
    struct raw_events batch;
    struct open_scopes *open[STREAM_THREADS];
    size_t nopen;
    uint64_t pid;
    struct trace_thread_name *tnames; /* threads to name in the footer */
    size_t ntnames;
} st = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* @s as a JSON string literal, quotes included, in a malloc'd buffer. */
static char *
json_literal(const char *s)
{
    probe_writer m;
    char *out = NULL;

    writer_init_memory(&m);
    if (jsonstr_write(&m, s) < 0 || writer_finish_memory(&m, &out, NULL) < 0)
        return NULL;
    return out;
}

/* Site @id's name as a JSON literal, escaped once and cached. */
static const char *
site_json(uint32_t id)
{
    if (id >= st.nnames) {
        size_t n = st.nnames ? st.nnames : 256;
        while (n <= id)
            n *= 2;
        char **v = realloc(st.names, n * sizeof(*v));
        if (!v)
            return "\"?\"";
        memset(v + st.nnames, 0, (n - st.nnames) * sizeof(*v));
        st.names = v;
        st.nnames = n;
    }
    if (!st.names[id]) {
        char buf[STREAM_NAME_MAX];
        if (trace_site_name(id, buf, sizeof(buf)) < 0)
            return "\"?\"";
        st.names[id] = json_literal(buf);
    }
    return st.names[id] ? st.names[id] : "\"?\"";
}

/* Decimal digits of @v at @p; returns the end. No stdio: millions of events. */
static char *
put_u64(char *p, uint64_t v)
{
    return p + numfmt_u64(p, v, 1);
}

static char *
put_str(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return p + n;
}

static struct open_scopes *
open_scopes_of(uint64_t tid)
{
    for (size_t i = 0; i < st.nopen; i++) {
        if (st.open[i]->tid == tid)
            return st.open[i];
    }
    if (st.nopen == STREAM_THREADS)
        return NULL;
    struct open_scopes *o = calloc(1, sizeof(*o));
    if (o) {
        o->tid = tid;
        st.open[st.nopen++] = o;
    }
    return o;
}

static int write_raw(const struct raw_event *e);

/* Keep the nesting right (see struct open_scopes). Returns 1 to write @e, 0 to
 * leave it out, or a negative error. */
static int
stream_nest(const struct raw_event *e)
{
    struct open_scopes *o = open_scopes_of(e->thread);

    if (!o)
        return 1; /* too many threads to track: written as it came */
    if (e->ts > o->last_ts)
        o->last_ts = e->ts;
    if (e->kind == PROBE_EVENT_BEGIN) {
        if (o->depth == STREAM_DEPTH)
            return 0;
        o->ids[o->depth++] = e->id;
        return 1;
    }
    if (e->kind != PROBE_EVENT_END)
        return 1;
    uint32_t d = o->depth;
    while (d > 0 && o->ids[d - 1] != e->id)
        d--;
    if (d == 0)
        return 0; /* its BEGIN was dropped */
    while (o->depth > d) { /* ENDs that were dropped inside it */
        struct raw_event close = {e->thread, e->ts, o->ids[--o->depth], PROBE_EVENT_END, 0};
        TRY(write_raw(&close));
    }
    o->depth--;
    return 1;
}

/* Close what is still open (with @write), and free the tracking in any case. */
static int
stream_close_open(int write)
{
    int rc = 0;

    for (size_t i = 0; i < st.nopen; i++) {
        struct open_scopes *o = st.open[i];
        while (write && rc == 0 && o->depth) {
            struct raw_event close = {o->tid, o->last_ts, o->ids[--o->depth],
                                      PROBE_EVENT_END, 0};
            rc = write_raw(&close);
        }
        free(o);
    }
    st.nopen = 0;
    return rc;
}

/* Everything a session holds, freed; nothing written. */
static void
stream_free_session(void)
{
    (void)stream_close_open(0);
    for (size_t i = 0; i < st.nnames; i++)
        free(st.names[i]);
    free(st.names);
    st.names = NULL;
    st.nnames = 0;
    free(st.batch.v);
    st.batch = (struct raw_events){0};
    free(st.tnames);
    st.tnames = NULL;
    st.ntnames = 0;
}

static int
write_event(const struct raw_event *e)
{
    int keep = stream_nest(e);

    return keep <= 0 ? keep : write_raw(e);
}

static int
write_raw(const struct raw_event *e)
{
    static const char *const head[] = {
        "", "{\"ph\":\"B\",\"cat\":\"scope\",\"name\":",
        "{\"ph\":\"E\",\"cat\":\"scope\",\"name\":",
        "{\"ph\":\"C\",\"cat\":\"counter\",\"name\":",
        "{\"ph\":\"i\",\"cat\":\"instant\",\"name\":"};
    probe_writer *w = &st.w;
    char line[160], *p = line;

    if (e->kind < 1 || e->kind > 4)
        return 0;
    TRY(probe_writer_puts(w, st.first ? "\n" : ",\n"));
    st.first = 0;
    TRY(probe_writer_puts(w, head[e->kind]));
    if (e->kind == PROBE_EVENT_INSTANT)
        TRY(jsonstr_write(w, (const char *)(intptr_t)e->value));
    else
        TRY(probe_writer_puts(w, site_json(e->id)));
    p = put_str(p, ",\"pid\":");
    p = put_u64(p, st.pid);
    p = put_str(p, ",\"tid\":");
    p = put_u64(p, e->thread);
    p = put_str(p, ",\"ts\":");
    p = put_u64(p, e->ts / 1000);
    *p++ = '.';
    *p++ = (char)('0' + e->ts / 100 % 10);
    *p++ = (char)('0' + e->ts / 10 % 10);
    *p++ = (char)('0' + e->ts % 10);
    if (e->kind == PROBE_EVENT_COUNTER) {
        p = put_str(p, ",\"args\":{\"value\":");
        if (e->value < 0)
            *p++ = '-';
        p = put_u64(p, e->value < 0 ? 0 - (uint64_t)e->value : (uint64_t)e->value);
        *p++ = '}';
    } else if (e->kind == PROBE_EVENT_INSTANT) {
        p = put_str(p, ",\"s\":\"t\"");
    }
    *p++ = '}';
    return probe_writer_write(w, line, (size_t)(p - line));
}

/* Drain once and write what came; with @final, the partial buffers too. */
static int
stream_pass(int final, struct trace_thread_name **names, size_t *nnames)
{
    st.batch.n = 0;
    if (trace_drain(final, &st.batch, names, nnames) < 0)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < st.batch.n; i++)
        TRY(write_event(&st.batch.v[i]));
    return writer_error(&st.w);
}

static void *
stream_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&st.lock);
    while (!st.stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += STREAM_PERIOD_NS;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&st.wake, &st.lock, &until);
        if (st.stopping)
            break;
        pthread_mutex_unlock(&st.lock);
        int rc = stream_pass(0, &st.tnames, &st.ntnames);
        pthread_mutex_lock(&st.lock);
        if (rc < 0 && !st.err)
            st.err = rc;
    }
    pthread_mutex_unlock(&st.lock);
    return NULL;
}

static int
stream_open(const char *path)
{
    int fd = writer_open_path(path);

    if (fd < 0)
        return fd;
    st.fd = fd;
    st.pid = (uint64_t)getpid();
    st.err = 0;
    st.first = 1;
    st.stopping = 0;
    writer_init_fd(&st.w, fd);
    (void)probe_writer_puts(&st.w, "{\"traceEvents\":[");
    int rc = pthread_create(&st.thread, NULL, stream_main, NULL);
    if (rc != 0) {
        writer_discard(&st.w);
        close(fd);
        st.fd = -1;
        return -rc;
    }
    return 0;
}

static int
write_footer(const struct trace_thread_name *names, size_t n, uint64_t dropped)
{
    probe_writer *w = &st.w;

    for (size_t i = 0; i < n; i++) {
        TRY(probe_writer_puts(w, st.first ? "\n" : ",\n"));
        st.first = 0;
        TRY(probe_writer_printf(w, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%ld,"
                                     "\"tid\":%" PRIu64 ",\"args\":{\"name\":",
                                  (long)getpid(), names[i].tid));
        TRY(jsonstr_write(w, names[i].name[0] ? names[i].name : "thread"));
        TRY(probe_writer_puts(w, "}}"));
    }
    return probe_writer_printf(w,
                               "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"schema\":"
                               "\"probe/1\",\"mode\":\"stream\",\"events_dropped\":%" PRIu64
                               "}}\n",
                               dropped);
}

/* Tracing is off: stop the thread, write what is left, finish the file. */
static int
stream_close(void)
{
    pthread_mutex_lock(&st.lock);
    st.stopping = 1;
    pthread_cond_signal(&st.wake);
    pthread_mutex_unlock(&st.lock);
    pthread_join(st.thread, NULL);

    int rc = stream_pass(1, &st.tnames, &st.ntnames);
    if (rc == 0)
        rc = stream_close_open(1);
    if (rc == 0)
        rc = write_footer(st.tnames, st.ntnames, st.batch.dropped);
    int frc = writer_finish_fd(&st.w);
    if (close(st.fd) < 0 && errno != EINTR && frc == 0)
        frc = PROBE_EIO;
    st.fd = -1;
    stream_free_session();
    if (st.err)
        return st.err == PROBE_ENOMEM ? PROBE_ENOMEM : PROBE_EIO;
    return rc < 0 ? rc : frc;
}

/* In a forked child: the writer thread is not there, the file is the parent's. Drop
 * the inherited state without writing or flushing anything. The thread's lock and
 * condition are renewed, not taken before fork: what they guard is reset here. What
 * the session held is left, not freed: the thread may have been between a realloc()
 * and storing its result, so a pointer here may be freed already. It stays
 * reachable, for leak checkers (volatile: stores the compiler must keep). */
static void
stream_forget(void)
{
    static struct {
        char **volatile names;
        struct raw_event *volatile batch;
        struct trace_thread_name *volatile tnames;
        struct open_scopes *volatile open[STREAM_THREADS];
    } left __attribute__((used));

    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.wake, NULL);
    if (st.fd >= 0)
        close(st.fd); /* the child's copy of the descriptor */
    st.fd = -1;
    left.names = st.names;
    left.batch = st.batch.v;
    left.tnames = st.tnames;
    for (size_t i = 0; i < st.nopen; i++)
        left.open[i] = st.open[i];
    st.names = NULL;
    st.nnames = 0;
    st.batch = (struct raw_events){0};
    st.nopen = 0;
    st.tnames = NULL;
    st.ntnames = 0;
}

static int
flight_dump_chrome(const char *path)
{
    return probe_report_write(path, "chrome");
}

static const struct trace_stream_ops stream_ops = {stream_open, stream_close, stream_forget,
                                                   flight_dump_chrome};

/* Called at load by init.c, before autoreport.c may start a stream. */
void
stream_install(void)
{
    trace_stream_backend = &stream_ops;
}
