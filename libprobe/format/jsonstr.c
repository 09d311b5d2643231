/*
 * JSON string literals from any bytes, shared by the formatters that write JSON
 * ("json", "chrome", "speedscope"): invalid UTF-8 becomes U+FFFD, control bytes,
 * '"', '\\', U+2028 and U+2029 are escaped, so the output is always valid JSON and
 * valid UTF-8.
 */
#include "jsonstr.h"

#include <stddef.h>

#include "writer.h"

/*
 * The length of the well-formed UTF-8 sequence at @p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if the byte at @p does not start one.
 */
static size_t
jsonstr_utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    /* The NUL terminator fails these tests, so a cut-off sequence stops here. */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

/* Bytes that go out as they are: printable ASCII but '"' and '\\' (and, for a
 * literal inside an HTML <script>, '<', '>' and '&'). */
static size_t
jsonstr_plain_run(const unsigned char *p, int html)
{
    size_t n = 0;

    while (p[n] >= 0x20 && p[n] < 0x80 && p[n] != '"' && p[n] != '\\' &&
           !(html && (p[n] == '<' || p[n] == '>' || p[n] == '&')))
        n++;
    return n;
}

/* One byte or sequence that needs care; @return how many bytes it used. */
static int
jsonstr_write_special(probe_writer *w, const unsigned char *p, size_t *used)
{
    *used = 1;
    if (*p == '"' || *p == '\\') {
        char esc[2] = {'\\', (char)*p};

        return probe_writer_write(w, esc, 2);
    }
    if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
        return probe_writer_printf(w, "\\u%04x", *p);

    size_t len = jsonstr_utf8_len(p);

    if (len == 0)
        return probe_writer_puts(w, "\\ufffd"); /* one per invalid byte */
    *used = len;
    /* U+2028 and U+2029 are valid JSON but end a line in JavaScript. */
    if (len == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
        return probe_writer_printf(w, "\\u%04x", 0x2028 + (p[2] - 0xa8));
    return probe_writer_write(w, p, len);
}

static int
jsonstr_write_as(probe_writer *w, const char *s, int html)
{
    if (!s)
        return probe_writer_puts(w, "null");

    const unsigned char *p = (const unsigned char *)s;

    TRY(writer_putc(w, '"'));
    while (*p) {
        size_t n = jsonstr_plain_run(p, html);

        TRY(probe_writer_write(w, p, n));
        p += n;
        if (*p) {
            TRY(jsonstr_write_special(w, p, &n));
            p += n;
        }
    }
    return writer_putc(w, '"');
}

int
jsonstr_write(probe_writer *w, const char *s)
{
    return jsonstr_write_as(w, s, 0);
}

int
jsonstr_write_html(probe_writer *w, const char *s)
{
    return jsonstr_write_as(w, s, 1);
}
