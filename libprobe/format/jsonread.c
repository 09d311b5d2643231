/* A strict, bounded JSON reader: the whole document into a flat array of values,
 * strings decoded into one pool. Recursion is bounded by JSONREAD_MAX_DEPTH, memory
 * by a small multiple of the input. */
#include "jsonread.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/common.h>

struct jparse {
    const char *p, *end, *start;
    struct jdoc *doc;
    size_t cap;
    char *pool_at;
    size_t err_off;
    char *msg;
    size_t msglen;
    int rc;
};

static int
jp_fail(struct jparse *jp, const char *at, int rc, const char *fmt, ...)
{
    va_list ap;

    if (jp->rc)
        return jp->rc;
    jp->err_off = (size_t)(at - jp->start);
    va_start(ap, fmt);
    vsnprintf(jp->msg, jp->msglen, fmt, ap);
    va_end(ap);
    jp->rc = rc;
    return rc;
}

static void
jp_ws(struct jparse *jp)
{
    while (jp->p < jp->end &&
           (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static long
jp_new(struct jparse *jp, enum jv_type t)
{
    struct jdoc *d = jp->doc;

    if (d->n == jp->cap) {
        size_t cap = jp->cap ? jp->cap * 2 : 64;
        /* Every value takes at least one byte of input: this bounds the array. */
        if (cap > (size_t)(jp->end - jp->start) + 64)
            cap = (size_t)(jp->end - jp->start) + 64;
        if (cap <= d->n || cap > UINT32_MAX)
            return jp_fail(jp, jp->p, PROBE_ERANGE, "too many values");
        struct jv *v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return jp_fail(jp, jp->p, PROBE_ENOMEM, "out of memory");
        d->v = v;
        jp->cap = cap;
    }
    memset(&d->v[d->n], 0, sizeof(d->v[0]));
    d->v[d->n].type = (uint8_t)t;
    d->v[d->n].offset = (size_t)(jp->p - jp->start);
    return (long)d->n++;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
jp_hex4(struct jparse *jp, unsigned *out)
{
    unsigned v = 0;

    if (jp->end - jp->p < 4)
        return jp_fail(jp, jp->p, PROBE_EINVAL, "expected 4 hex digits after \\u");
    for (int i = 0; i < 4; i++) {
        int h = hexval(jp->p[i]);
        if (h < 0)
            return jp_fail(jp, jp->p + i, PROBE_EINVAL, "expected a hex digit after \\u");
        v = v * 16 + (unsigned)h;
    }
    jp->p += 4;
    *out = v;
    return 0;
}

static char *
put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Length of the well-formed UTF-8 sequence at @s (RFC 3629), or 0. */
static size_t
utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* A string at jp->p (on its '"'), decoded into the pool. */
static int
jp_string(struct jparse *jp, const char **out)
{
    char *o = jp->pool_at, *begin = o;

    jp->p++;
    for (;;) {
        if (jp->p >= jp->end)
            return jp_fail(jp, jp->p, PROBE_EINVAL, "expected '\"' to end the string");
        if ((size_t)(o - begin) > JSONREAD_MAX_STRING)
            return jp_fail(jp, jp->p, PROBE_ERANGE, "a string of at most %zu bytes",
                           JSONREAD_MAX_STRING);
        unsigned char c = (unsigned char)*jp->p;
        if (c == '"') {
            jp->p++;
            break;
        }
        if (c < 0x20)
            return jp_fail(jp, jp->p, PROBE_EINVAL,
                           "expected a string character, not control byte 0x%02x", c);
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)jp->p, (const unsigned char *)jp->end);
            if (!n)
                return jp_fail(jp, jp->p, PROBE_EINVAL, "expected valid UTF-8 in a string");
            memcpy(o, jp->p, n);
            o += n;
            jp->p += n;
            continue;
        }
        if (++jp->p >= jp->end)
            return jp_fail(jp, jp->p, PROBE_EINVAL, "expected an escape after '\\'");
        char e = *jp->p++;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            *o++ = to[k - from];
            continue;
        }
        if (e != 'u')
            return jp_fail(jp, jp->p - 1, PROBE_EINVAL,
                           "expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
        unsigned cp, lo;
        if (jp_hex4(jp, &cp) < 0)
            return jp->rc;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return jp_fail(jp, jp->p - 6, PROBE_EINVAL, "expected a high surrogate first");
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u')
                return jp_fail(jp, jp->p, PROBE_EINVAL,
                               "expected a \\u low surrogate after a high one");
            jp->p += 2;
            if (jp_hex4(jp, &lo) < 0)
                return jp->rc;
            if (lo < 0xdc00 || lo > 0xdfff)
                return jp_fail(jp, jp->p - 6, PROBE_EINVAL, "expected a low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp == 0)
            return jp_fail(jp, jp->p - 6, PROBE_EINVAL, "a string without NUL (\\u0000)");
        o = put_utf8(o, cp);
    }
    *o++ = '\0';
    jp->pool_at = o;
    *out = begin;
    return 0;
}

static int
jp_number(struct jparse *jp, struct jv *v)
{
    const char *s = jp->p;
    int neg = 0, frac = 0;
    uint64_t u = 0;
    int overflow = 0, digits = 0;
    long exp10 = 0;

    if (jp->p < jp->end && *jp->p == '-')
        neg = 1, jp->p++;
    if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9')
        return jp_fail(jp, jp->p, PROBE_EINVAL, "expected a digit");
    if (*jp->p == '0' && jp->p + 1 < jp->end && jp->p[1] >= '0' && jp->p[1] <= '9')
        return jp_fail(jp, jp->p, PROBE_EINVAL, "a number without leading zeros");
    for (; jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9'; jp->p++, digits++) {
        unsigned dgt = (unsigned)(*jp->p - '0');
        if (u > (UINT64_MAX - dgt) / 10)
            overflow = 1;
        else
            u = u * 10 + dgt;
        if (overflow)
            exp10++;
    }
    if (jp->p < jp->end && *jp->p == '.') {
        frac = 1;
        if (++jp->p >= jp->end || *jp->p < '0' || *jp->p > '9')
            return jp_fail(jp, jp->p, PROBE_EINVAL, "expected a digit after '.'");
        for (; jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9'; jp->p++) {
            if (u <= (UINT64_MAX - 9) / 10 && !overflow) {
                u = u * 10 + (unsigned)(*jp->p - '0');
                exp10--;
            }
        }
    }
    if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
        long e = 0;
        int eneg = 0;
        frac = 1;
        jp->p++;
        if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
            eneg = *jp->p++ == '-';
        if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9')
            return jp_fail(jp, jp->p, PROBE_EINVAL, "expected a digit in the exponent");
        for (; jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9'; jp->p++)
            if (e < 100000)
                e = e * 10 + (*jp->p - '0');
        exp10 += eneg ? -e : e;
    }
    if (!frac) {
        if (overflow || (neg && u > (uint64_t)INT64_MAX + 1))
            return jp_fail(jp, s, PROBE_ERANGE, "an integer within 64 bits");
        v->type = JV_INT;
        v->neg = (uint8_t)(neg && u);
        v->u = u;
        return 0;
    }
    /* Plain decimal, locale-free: mantissa scaled by an exact power of ten where one
     * exists, so short fractions ("0.384615789") come back as written. */
    double d = (double)u;
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                 1e20, 1e21, 1e22};
    if (exp10 < -400 || exp10 > 400)
        d = exp10 < 0 ? 0.0 : __builtin_inf();
    else
        for (long e = exp10; e; ) {
            long step = e > 22 ? 22 : e < -22 ? -22 : e;
            d = step > 0 ? d * p10[step] : d / p10[-step];
            e -= step;
        }
    if (!(d <= DBL_MAX))
        return jp_fail(jp, s, PROBE_ERANGE, "a finite number");
    v->type = JV_NUM;
    v->d = neg ? -d : d;
    return 0;
}

static int jp_value(struct jparse *jp, unsigned depth, long *ret);

static int
jp_literal(struct jparse *jp, const char *word, enum jv_type t, long *ret)
{
    size_t n = strlen(word);

    if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
        return jp_fail(jp, jp->p, PROBE_EINVAL, "expected a value");
    *ret = jp_new(jp, t);
    jp->p += n;
    return *ret < 0 ? (int)*ret : 0;
}

static int
jp_container(struct jparse *jp, unsigned depth, long *ret)
{
    int obj = *jp->p == '{';
    long self = jp_new(jp, obj ? JV_OBJ : JV_ARR), last = -1;

    if (self < 0)
        return (int)self;
    if (depth >= JSONREAD_MAX_DEPTH)
        return jp_fail(jp, jp->p, PROBE_ERANGE, "nesting at most %d deep",
                       JSONREAD_MAX_DEPTH);
    jp->p++;
    jp_ws(jp);
    if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
        jp->p++;
        *ret = self;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        long kid;

        jp_ws(jp);
        if (obj) {
            if (jp->p >= jp->end || *jp->p != '"')
                return jp_fail(jp, jp->p, PROBE_EINVAL, "expected '\"' to begin a member name");
            if (jp_string(jp, &key) < 0)
                return jp->rc;
            jp_ws(jp);
            if (jp->p >= jp->end || *jp->p != ':')
                return jp_fail(jp, jp->p, PROBE_EINVAL, "expected ':' after a member name");
            jp->p++;
        }
        if (jp_value(jp, depth + 1, &kid) < 0)
            return jp->rc;
        struct jv *v = jp->doc->v;
        v[kid].key = key;
        if (last < 0)
            v[self].first = (uint32_t)kid;
        else
            v[last].next = (uint32_t)kid;
        v[self].count++;
        last = kid;
        jp_ws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
            jp->p++;
            break;
        }
        return jp_fail(jp, jp->p, PROBE_EINVAL,
                       obj ? "expected ',' or '}' after a member" :
                             "expected ',' or ']' after an element");
    }
    *ret = self;
    return 0;
}

static int
jp_value(struct jparse *jp, unsigned depth, long *ret)
{
    jp_ws(jp);
    if (jp->p >= jp->end)
        return jp_fail(jp, jp->p, PROBE_EINVAL, "expected a value, not the end of input");
    switch (*jp->p) {
    case '{':
    case '[':
        return jp_container(jp, depth, ret);
    case '"': {
        long v = jp_new(jp, JV_STR);
        const char *s;
        if (v < 0 || jp_string(jp, &s) < 0)
            return jp->rc;
        jp->doc->v[v].s = s;
        *ret = v;
        return 0;
    }
    case 't':
        return jp_literal(jp, "true", JV_TRUE, ret);
    case 'f':
        return jp_literal(jp, "false", JV_FALSE, ret);
    case 'n':
        return jp_literal(jp, "null", JV_NULL, ret);
    default: {
        long v = jp_new(jp, JV_INT);
        if (v < 0 || jp_number(jp, &jp->doc->v[v]) < 0)
            return jp->rc;
        *ret = v;
        return 0;
    }
    }
}

int
jsonread_parse(const char *buf, size_t len, struct jdoc *doc, size_t *ret_off, char *msg,
               size_t msglen)
{
    struct jparse jp = {buf, buf + len, buf, doc, 0, NULL, 0, msg, msglen, 0};
    long root;

    memset(doc, 0, sizeof(*doc));
    if (len > JSONREAD_MAX_INPUT) {
        jp_fail(&jp, buf, PROBE_ERANGE, "a document of at most %zu bytes",
                JSONREAD_MAX_INPUT);
        goto fail;
    }
    /* Decoded strings are never longer than their source, plus a NUL each. */
    doc->pool = malloc(len + 1);
    if (!doc->pool) {
        jp_fail(&jp, buf, PROBE_ENOMEM, "out of memory");
        goto fail;
    }
    jp.pool_at = doc->pool;
    if (jp_value(&jp, 0, &root) < 0)
        goto fail;
    jp_ws(&jp);
    if (jp.p != jp.end) {
        jp_fail(&jp, jp.p, PROBE_EINVAL, "expected the end of input after the value");
        goto fail;
    }
    return 0;
fail:
    *ret_off = jp.err_off;
    jsonread_free(doc);
    return jp.rc;
}

void
jsonread_free(struct jdoc *doc)
{
    free(doc->v);
    free(doc->pool);
    memset(doc, 0, sizeof(*doc));
}

const struct jv *
jv_first(const struct jdoc *doc, const struct jv *v)
{
    return v && (v->type == JV_ARR || v->type == JV_OBJ) && v->count ? &doc->v[v->first]
                                                                     : NULL;
}

const struct jv *
jv_next(const struct jdoc *doc, const struct jv *v)
{
    return v && v->next ? &doc->v[v->next] : NULL;
}

const struct jv *
jv_get(const struct jdoc *doc, const struct jv *obj, const char *key)
{
    if (!obj || obj->type != JV_OBJ)
        return NULL;
    for (const struct jv *k = jv_first(doc, obj); k; k = jv_next(doc, k))
        if (strcmp(k->key, key) == 0)
            return k;
    return NULL;
}
