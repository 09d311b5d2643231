/* The stream writer of PROBE_TRACE_STREAM: a background thread that takes what the
 * threads' event rings hold (woken when a ring fills another quarter, else every few
 * milliseconds) and appends it, raw and unformatted, to an unlinked temporary file
 * beside the trace; the stop converts that file to the Chrome trace. Formatting JSON
 * (about 100 ns an event) while the program runs could not keep up with a thread
 * doing only scopes; one write(2) per ring run can. So a long run's trace is bounded
 * in memory, not in length. The core starts and stops it through
 * trace_stream_backend (core/trace.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
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

#define STREAM_PERIOD_NS 5000000 /* how often the rings are drained at the latest */
#define STREAM_BUSY 4096         /* a pass that took this many goes again at once */
#define STREAM_NAME_MAX 256
#define STREAM_DEPTH 512        /* open scopes tracked per thread for repairs */
#define STREAM_THREADS 4096     /* threads whose nesting is repaired */

/* What a thread has open in the file, so that the file stays properly nested when
 * events were dropped: an END whose BEGIN is missing is left out (and counted as
 * dropped, like a BEGIN beyond the depth tracked), an END that skips open scopes
 * closes them first, and scopes still open at the end are closed at the thread's
 * last timestamp. */
struct open_scopes {
    uint64_t tid;
    uint64_t last_ts;
    uint32_t depth;
    uint32_t ids[STREAM_DEPTH];
};

static struct {
    int fd;                     /* the Chrome trace, written at the stop */
    int raw;                    /* the raw events so far (unlinked) */
    pthread_t thread;
    int stopping;
    int err;                    /* first error, sticky */
    uint64_t lost;              /* events the raw file did not take */
    uint64_t raw_good;          /* bytes of whole runs in it: what the stop converts */
    uint64_t dropped;           /* events the threads dropped */
    uint64_t left_out;          /* events recorded but left out to keep the nesting */
    int first;                  /* no event written yet: no comma */
    probe_writer w;
    char **names;               /* site names by id, cached */
    size_t nnames;
    struct open_scopes *open[STREAM_THREADS];
    size_t nopen;
    uint64_t pid;
    struct trace_thread_name *tnames; /* threads to name in the footer */
    size_t ntnames;
} st = {.fd = -1, .raw = -1};

/* A run of one thread's events in the raw file: this header, then @bytes of @n
 * events, each a kind byte, the ticks since the event before (since @base for the
 * first) zigzag-coded, the site id (not for an instant) and the value (for a counter
 * or instant), as LEB128 varints: 3 or 4 bytes for a scope's event, not 24, which
 * one core's write(2) keeps up with where it could not with the rings' own layout. */
struct raw_run {
    uint64_t tid;
    uint64_t base;
    uint32_t n;
    uint32_t bytes;
};

#define RAW_CHUNK 65536         /* events per run at most */
#define RAW_EVENT_MAX 26        /* 1 + 10 + 5 + 10 bytes */

static uint8_t raw_buf[RAW_CHUNK * RAW_EVENT_MAX];

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
    free(st.tnames);
    st.tnames = NULL;
    st.ntnames = 0;
}

static int
write_event(const struct raw_event *e)
{
    int keep = stream_nest(e);

    if (keep == 0)
        st.left_out++; /* not in the file: counted with the dropped */
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
    char line[512], *p = line;

    if (e->kind < 1 || e->kind > 4)
        return 0;
    /* One write per event: the whole line is built here unless the name is long. */
    p = put_str(p, st.first ? "\n" : ",\n");
    st.first = 0;
    p = put_str(p, head[e->kind]);
    const char *name = e->kind == PROBE_EVENT_INSTANT ? NULL : site_json(e->id);
    size_t len = name ? strlen(name) : 0;
    if (name && len < 256) {
        memcpy(p, name, len);
        p += len;
    } else {
        TRY(probe_writer_write(w, line, (size_t)(p - line)));
        p = line;
        if (name)
            TRY(probe_writer_puts(w, name));
        else
            TRY(jsonstr_write(w, (const char *)(intptr_t)e->value));
    }
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

static void
stream_fail(int err)
{
    if (!st.err)
        st.err = err;
}

static inline uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t
zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int
raw_put(const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t w = write(st.raw, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PROBE_EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Encode up to RAW_CHUNK events of one thread as a run and write it (one write). */
static int
raw_run_write(uint64_t tid, const struct trace_event *e, size_t n)
{
    struct raw_run *run = (struct raw_run *)raw_buf;
    uint8_t *p = raw_buf + sizeof(*run);
    uint64_t prev = e[0].ts;

    for (size_t i = 0; i < n; i++) {
        uint32_t kind = e[i].kind;
        *p++ = (uint8_t)kind;
        p = put_varint(p, zigzag((int64_t)(e[i].ts - prev)));
        prev = e[i].ts;
        if (kind != PROBE_EVENT_INSTANT)
            p = put_varint(p, e[i].id);
        if (kind == PROBE_EVENT_COUNTER || kind == PROBE_EVENT_INSTANT)
            p = put_varint(p, zigzag(e[i].value));
    }
    *run = (struct raw_run){tid, e[0].ts, (uint32_t)n,
                            (uint32_t)(p - raw_buf - sizeof(*run))};
    TRY(raw_put(raw_buf, (size_t)(p - raw_buf)));
    st.raw_good += (uint64_t)(p - raw_buf);
    return 0;
}

/* trace_drain()'s callback: a thread's new events, one or two runs of its ring, into
 * the raw file. What cannot be written is counted as lost. */
static int
raw_write(void *ctx, uint64_t tid, const struct trace_event *a, size_t na,
          const struct trace_event *b, size_t nb)
{
    (void)ctx;
    for (int k = 0; k < 2; k++) {
        const struct trace_event *e = k ? b : a;
        size_t n = k ? nb : na;
        while (n) {
            size_t c = n < RAW_CHUNK ? n : RAW_CHUNK;
            /* Once a write failed the file no longer parses past it: count only. */
            if (!st.err && raw_run_write(tid, e, c) < 0)
                stream_fail(PROBE_EIO);
            if (st.err)
                st.lost += c;
            e += c;
            n -= c;
        }
    }
    return st.err;
}

static void *
stream_main(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&st.stopping, __ATOMIC_ACQUIRE)) {
        uint32_t token = trace_stream_sleep_prepare();
        int64_t n = trace_drain(0, raw_write, NULL, &st.dropped, &st.tnames, &st.ntnames);
        if (n < 0)
            stream_fail(PROBE_ENOMEM);
        /* Busy: go again at once (and let the threads' rings skip the wake-up). */
        trace_stream_sleep(token, n >= STREAM_BUSY ? 0 : STREAM_PERIOD_NS);
    }
    return NULL;
}

/* An unlinked file for the raw events: in @path's directory (O_TMPFILE, else a
 * named one removed at once), else in $TMPDIR or /tmp. */
static int
raw_open(const char *path)
{
    char dir[PATH_MAX], tmpl[PATH_MAX + 32];
    const char *slash = strrchr(path, '/');
    const char *tmp = secure_getenv("TMPDIR");
    const char *dirs[3] = {dir, tmp && *tmp ? tmp : "/tmp", "/tmp"};

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    for (int i = 0; i < 3; i++) {
        int fd = -1;
#ifdef O_TMPFILE
        fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
#endif
        snprintf(tmpl, sizeof(tmpl), "%s/.probe-stream-XXXXXX", dirs[i]);
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0) {
            unlink(tmpl);
            return fd;
        }
    }
    return -errno;
}

static int
stream_open(const char *path)
{
    int fd = writer_open_path(path);

    if (fd < 0)
        return fd;
    int raw = raw_open(path);
    if (raw < 0) {
        close(fd);
        return raw;
    }
    st.fd = fd;
    st.raw = raw;
    st.pid = (uint64_t)getpid();
    st.err = 0;
    st.lost = 0;
    st.raw_good = 0;
    st.dropped = 0;
    st.left_out = 0;
    st.first = 1;
    st.stopping = 0;
    writer_init_fd(&st.w, fd);
    int rc = pthread_create(&st.thread, NULL, stream_main, NULL);
    if (rc != 0) {
        writer_discard(&st.w);
        close(fd);
        close(raw);
        st.fd = st.raw = -1;
        return -rc;
    }
    return 0;
}

static int
read_full(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : PROBE_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static const uint8_t *
get_varint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    for (unsigned shift = 0; p < end && shift < 64; shift += 7) {
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return p;
        }
    }
    return NULL;
}

/* The raw file, run by run, as Chrome trace events. */
static int
stream_convert(void)
{
    struct raw_run run;
    int rc = 0;

    if (lseek(st.raw, 0, SEEK_SET) < 0)
        return PROBE_EIO;
    /* Up to the last whole run: after a failed write (counted as lost) the rest is
     * still a valid trace. */
    for (uint64_t at = 0; at < st.raw_good; at += sizeof(run) + run.bytes) {
        if (read_full(st.raw, &run, sizeof(run)) <= 0 || run.bytes > sizeof(raw_buf) ||
            read_full(st.raw, raw_buf, run.bytes) <= 0)
            return PROBE_EIO;
        const uint8_t *p = raw_buf, *end = raw_buf + run.bytes;
        uint64_t ts = run.base, v;
        for (uint32_t i = 0; i < run.n; i++) {
            struct trace_event e = {0};
            if (p == end)
                return PROBE_EIO;
            e.kind = *p++;
            if (!(p = get_varint(p, end, &v)))
                return PROBE_EIO;
            ts += (uint64_t)unzigzag(v);
            e.ts = ts;
            if (e.kind != PROBE_EVENT_INSTANT) {
                if (!(p = get_varint(p, end, &v)))
                    return PROBE_EIO;
                e.id = (uint32_t)v;
            }
            if (e.kind == PROBE_EVENT_COUNTER || e.kind == PROBE_EVENT_INSTANT) {
                if (!(p = get_varint(p, end, &v)))
                    return PROBE_EIO;
                e.value = unzigzag(v);
            }
            struct raw_event r;
            trace_event_raw(&e, run.tid, &r);
            TRY(write_event(&r));
        }
        TRY(writer_error(&st.w));
    }
    return rc;
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

/* Tracing is off: stop the thread, take what is left, convert the raw file. */
static int
stream_close(void)
{
    __atomic_store_n(&st.stopping, 1, __ATOMIC_RELEASE);
    trace_stream_wake();
    pthread_join(st.thread, NULL);

    if (trace_drain(1, raw_write, NULL, &st.dropped, &st.tnames, &st.ntnames) < 0)
        stream_fail(PROBE_ENOMEM);
    int rc = probe_writer_puts(&st.w, "{\"traceEvents\":[");
    if (rc == 0)
        rc = stream_convert();
    if (rc == 0)
        rc = stream_close_open(1);
    if (rc == 0)
        rc = write_footer(st.tnames, st.ntnames, st.dropped + st.lost + st.left_out);
    int frc = writer_finish_fd(&st.w);
    if (close(st.fd) < 0 && errno != EINTR && frc == 0)
        frc = PROBE_EIO;
    close(st.raw);
    st.fd = st.raw = -1;
    stream_free_session();
    if (st.err)
        return st.err == PROBE_ENOMEM ? PROBE_ENOMEM : PROBE_EIO;
    return rc < 0 ? rc : frc;
}

/* In a forked child: the writer thread is not there, the files are the parent's.
 * Drop the inherited state without writing or flushing anything. What the session
 * held is left, not freed: the thread may have been between a realloc() and storing
 * its result, so a pointer here may be freed already. It stays reachable, for leak
 * checkers (volatile: stores the compiler must keep). */
static void
stream_forget(void)
{
    static struct {
        char **volatile names;
        struct trace_thread_name *volatile tnames;
        struct open_scopes *volatile open[STREAM_THREADS];
    } left __attribute__((used));

    if (st.fd >= 0)
        close(st.fd); /* the child's copies of the descriptors */
    if (st.raw >= 0)
        close(st.raw);
    st.fd = st.raw = -1;
    left.names = st.names;
    left.tnames = st.tnames;
    for (size_t i = 0; i < st.nopen; i++)
        left.open[i] = st.open[i];
    st.names = NULL;
    st.nnames = 0;
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
