/* Parse a stream-mode Chrome trace as JSON, whatever its size, for
 * check_stream_long.py: stream-verify FILE ("-": standard input)
 * The file must be one JSON object, {"traceEvents":[...], ..., "otherData":{...}};
 * each event is parsed (strings with their escapes, numbers, nested objects and
 * arrays) and its "ph", "name", "tid" and "ts" checked: per thread, timestamps never
 * go back and every "E" closes the innermost open "B" of the same name; at the end
 * nothing is open. Prints "begins N", "ends N", "events_dropped N" and "errors N"
 * (with the first errors on stderr); exits 0 only when errors is 0. Python's json
 * module would need minutes and gigabytes for a long run's file. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define MAX_DEPTH 4096

static FILE *in;
static int peeked = -2;
static long long errors, begins, ends, dropped = -1;

struct thread {
    long long tid;
    double last_ts;
    int depth;
    char *open[MAX_DEPTH];
};
static struct thread threads[MAX_THREADS];
static int nthreads;

static void
fail(const char *what)
{
    if (errors++ < 10)
        fprintf(stderr, "stream-verify: %s (offset %ld)\n", what, ftell(in));
}

static int
peek(void)
{
    if (peeked == -2)
        peeked = getc_unlocked(in);
    return peeked;
}

static int
next(void)
{
    int c = peek();
    peeked = -2;
    return c;
}

static void
ws(void)
{
    while (peek() == ' ' || peek() == '\n' || peek() == '\r' || peek() == '\t')
        next();
}

static int
expect(int want)
{
    ws();
    if (next() != want) {
        fail("unexpected character");
        return -1;
    }
    return 0;
}

/* A string after its opening quote, into @buf (cut at @len - 1). */
static int
string(char *buf, size_t len)
{
    size_t n = 0;

    for (;;) {
        int c = next();
        if (c == EOF || (c >= 0 && c < 0x20))
            return fail("bad string"), -1;
        if (c == '"')
            break;
        if (c == '\\') {
            c = next();
            if (c == 'u') {
                for (int i = 0; i < 4; i++) {
                    if (!isxdigit(next()))
                        return fail("bad \\u escape"), -1;
                }
                c = '?';
            } else if (!strchr("\"\\/bfnrt", c)) {
                return fail("bad escape"), -1;
            }
        }
        if (n + 1 < len)
            buf[n++] = (char)c;
    }
    if (len)
        buf[n] = '\0';
    return 0;
}

static int
number(double *out)
{
    char buf[64];
    size_t n = 0;

    while (n + 1 < sizeof(buf) && (isdigit(peek()) || strchr("+-.eE", peek())))
        buf[n++] = (char)next();
    buf[n] = '\0';
    char *end;
    *out = strtod(buf, &end);
    if (n == 0 || *end)
        return fail("bad number"), -1;
    return 0;
}

static int value(char *sbuf, size_t slen, double *num);

static int
object_or_array(int close)
{
    ws();
    if (peek() == close) {
        next();
        return 0;
    }
    for (;;) {
        if (close == '}') {
            char key[8];
            if (expect('"') < 0 || string(key, sizeof(key)) < 0 || expect(':') < 0)
                return -1;
        }
        if (value(NULL, 0, NULL) < 0)
            return -1;
        ws();
        int c = next();
        if (c == close)
            return 0;
        if (c != ',')
            return fail("expected , or a close"), -1;
    }
}

static int
value(char *sbuf, size_t slen, double *num)
{
    double d;

    ws();
    int c = peek();
    if (c == '"') {
        next();
        return string(sbuf, slen);
    }
    if (c == '{' || c == '[') {
        next();
        return object_or_array(c == '{' ? '}' : ']');
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
        for (; *w; w++) {
            if (next() != *w)
                return fail("bad literal"), -1;
        }
        return 0;
    }
    if (number(&d) < 0)
        return -1;
    if (num)
        *num = d;
    return 0;
}

static struct thread *
thread_of(long long tid)
{
    for (int i = 0; i < nthreads; i++) {
        if (threads[i].tid == tid)
            return &threads[i];
    }
    if (nthreads == MAX_THREADS)
        return NULL;
    threads[nthreads] = (struct thread){.tid = tid, .last_ts = -1};
    return &threads[nthreads++];
}

/* One trace event, after its '{'. */
static int
event(void)
{
    char ph[8] = "", name[256] = "", key[16];
    double tid = -1, ts = -1;

    ws();
    if (peek() == '}')
        return next(), fail("empty event"), -1;
    for (;;) {
        if (expect('"') < 0 || string(key, sizeof(key)) < 0 || expect(':') < 0)
            return -1;
        int rc = !strcmp(key, "ph")     ? value(ph, sizeof(ph), NULL)
                 : !strcmp(key, "name") ? value(name, sizeof(name), NULL)
                 : !strcmp(key, "tid")  ? value(NULL, 0, &tid)
                 : !strcmp(key, "ts")   ? value(NULL, 0, &ts)
                                        : value(NULL, 0, NULL);
        if (rc < 0)
            return -1;
        ws();
        int c = next();
        if (c == '}')
            break;
        if (c != ',')
            return fail("expected , or }"), -1;
    }
    if (!strcmp(ph, "M"))
        return 0;
    struct thread *t = thread_of((long long)tid);
    if (!t || ts < 0)
        return fail("event without tid or ts"), 0;
    if (ts < t->last_ts)
        fail("time goes back on a thread");
    t->last_ts = ts;
    if (!strcmp(ph, "B")) {
        begins++;
        if (t->depth == MAX_DEPTH)
            return fail("too deep"), 0;
        t->open[t->depth++] = strdup(name);
    } else if (!strcmp(ph, "E")) {
        ends++;
        if (!t->depth || strcmp(t->open[t->depth - 1], name))
            return fail("an E that does not close the innermost B"), 0;
        free(t->open[--t->depth]);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    char key[32];

    if (argc != 2 || !(in = strcmp(argv[1], "-") ? fopen(argv[1], "r") : stdin)) {
        fprintf(stderr, "usage: stream-verify FILE|-\n");
        return 2;
    }
    if (expect('{') < 0)
        goto out;
    for (;;) {
        if (expect('"') < 0 || string(key, sizeof(key)) < 0 || expect(':') < 0)
            goto out;
        ws();
        if (!strcmp(key, "traceEvents")) {
            if (expect('[') < 0)
                goto out;
            ws();
            if (peek() == ']') {
                next();
            } else {
                for (;;) {
                    if (expect('{') < 0 || event() < 0)
                        goto out;
                    ws();
                    int c = next();
                    if (c == ']')
                        break;
                    if (c != ',') {
                        fail("expected , or ] between events");
                        goto out;
                    }
                }
            }
        } else if (!strcmp(key, "otherData")) {
            if (expect('{') < 0)
                goto out;
            for (;;) {
                double d = -1;
                if (expect('"') < 0 || string(key, sizeof(key)) < 0 || expect(':') < 0 ||
                    value(NULL, 0, &d) < 0)
                    goto out;
                if (!strcmp(key, "events_dropped"))
                    dropped = (long long)d;
                ws();
                int c = next();
                if (c == '}')
                    break;
                if (c != ',') {
                    fail("expected , or } in otherData");
                    goto out;
                }
            }
        } else if (value(NULL, 0, NULL) < 0) {
            goto out;
        }
        ws();
        int c = next();
        if (c == '}')
            break;
        if (c != ',') {
            fail("expected , or } at the top");
            goto out;
        }
    }
    ws();
    if (peek() != EOF)
        fail("text after the object");
    for (int i = 0; i < nthreads; i++) {
        if (threads[i].depth)
            fail("scopes left open");
    }
    if (dropped < 0)
        fail("no otherData.events_dropped");
out:
    printf("begins %lld\nends %lld\nevents_dropped %lld\nerrors %lld\n", begins, ends,
           dropped, errors);
    fclose(in);
    return errors ? 1 : 0;
}
