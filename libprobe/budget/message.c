/* Number formats for budget messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "budget/message.h"

void
msg_init(struct msgbuf *m, char *buf, size_t len)
{
    m->buf = len ? buf : NULL;
    m->len = m->buf ? len : 0;
    m->pos = 0;
    if (m->buf)
        m->buf[0] = '\0';
}

void
msg_printf(struct msgbuf *m, const char *fmt, ...)
{
    va_list ap;

    if (!m->buf || m->pos + 1 >= m->len)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(m->buf + m->pos, m->len - m->pos, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    m->pos += (size_t)n;
    if (m->pos >= m->len)
        m->pos = m->len - 1;
}

const char *
fmt_count(char *buf, size_t len, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    size_t o = 0;

    for (int i = 0; i < n && o + 1 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < len)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *
fmt_ns(char *buf, size_t len, uint64_t ns)
{
    if (ns < 1000)
        snprintf(buf, len, "%llu ns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, len, "%.1f µs", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, len, "%.3f ms", (double)ns / 1e6);
    else
        snprintf(buf, len, "%.3f s", (double)ns / 1e9);
    return buf;
}

const char *
fmt_pct(char *buf, size_t len, double pct)
{
    double mag = pct < 0 ? -pct : pct;

    if (mag < 0.05)
        pct = mag = 0;  /* no "-0.0 %" */

    snprintf(buf, len, mag < 10 ? "%+.1f %%" : "%+.0f %%", pct);
    return buf;
}
