/* Cells the text formatters share: human times and names that stay on one line. */
#include "cells.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "writer.h"

/* @ns in a unit picked for it, always 9 columns wide ("µ" is one column). */
void
cells_time(char *buf, size_t size, uint64_t ns)
{
    static const struct {
        uint64_t div;
        const char *unit;
    } units[] = {{1000000000, "s "}, {1000000, "ms"}, {1000, "µs"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ns < units[i].div)
            continue;

        double v = (double)ns / (double)units[i].div;
        int prec = v < 10 ? 3 : v < 100 ? 2 : v < 1000 ? 1 : 0;

        snprintf(buf, size, "%6.*f %s", prec, v, units[i].unit);
        return;
    }
    snprintf(buf, size, "%6" PRIu64 " ns", ns);
}

/* cells_time() without the padding, for running text. */
const char *
cells_time_trim(char *buf, size_t size, uint64_t ns)
{
    cells_time(buf, size, ns);

    size_t n = strlen(buf);

    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    return buf + strspn(buf, " ");
}

/* Names are any bytes: escape control bytes so that one site stays one line. */
int
cells_put_name(probe_writer *w, const char *s)
{
    if (!s)
        return probe_writer_puts(w, "?");
    for (const char *p = s; *p;) {
        size_t run = 0;

        while (p[run] && (unsigned char)p[run] >= 0x20 && p[run] != 0x7f)
            run++;
        TRY(probe_writer_write(w, p, run));
        p += run;
        if (*p) {
            TRY(probe_writer_printf(w, "\\x%02x", (unsigned char)*p));
            p++;
        }
    }
    return 0;
}
