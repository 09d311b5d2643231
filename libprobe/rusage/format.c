/*
 * probe_rusage_format(): a reading as "label: value" lines, like `/usr/bin/time -v`.
 *
 * Async-signal-safe, so no stdio and no locale: the digits are made here, and the
 * output goes through a bounded cursor that counts what it could not store, which
 * gives snprintf(3)'s return value.
 */
#include <probe/rusage.h>

#include <stdint.h>

#include "numfmt.h"

/* Where the block goes: buf[0..len-1]; pos counts every byte of the block, stored or
 * not, so it ends as the length the whole block needs. */
struct out {
    char *buf;
    size_t len;
    size_t pos;
};

static void
out_char(struct out *o, char c)
{
    if (o->len > 0 && o->pos < o->len - 1)
        o->buf[o->pos] = c;
    o->pos++;
}

static void
out_str(struct out *o, const char *s)
{
    while (*s)
        out_char(o, *s++);
}

/* @v in decimal, at least @width digits (zero-padded). */
static void
out_u64(struct out *o, uint64_t v, int width)
{
    char digits[21];

    (void)numfmt_u64(digits, v, (unsigned)width);
    out_str(o, digits);
}

/* Nanoseconds as seconds with microseconds ("1.234567 s"), truncated to the
 * microsecond as /usr/bin/time does. */
static void
out_seconds(struct out *o, uint64_t ns)
{
    out_u64(o, ns / 1000000000u, 1);
    out_char(o, '.');
    out_u64(o, ns % 1000000000u / 1000u, 6);
    out_str(o, " s");
}

/* Bytes, then the same in the largest binary unit that is at least 1 with one
 * decimal rounded to nearest: "12345678 bytes (11.8 MiB)". Below 1 KiB there is
 * nothing to add. */
static void
out_bytes(struct out *o, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB"};
    int u = -1;

    out_u64(o, bytes, 1);
    out_str(o, " bytes");
    while (u + 1 < (int)(sizeof(units) / sizeof(units[0])) &&
           bytes >= UINT64_C(1) << (10 * (u + 2)))
        u++;
    if (u < 0)
        return;

    int shift = 10 * (u + 1);
    uint64_t unit = UINT64_C(1) << shift;
    uint64_t whole = bytes >> shift;
    uint64_t tenths = ((bytes & (unit - 1)) * 10 + unit / 2) >> shift; /* 0..10 */
    if (tenths == 10) {
        whole++;
        tenths = 0;
    }
    /* 1023.96 KiB rounds to 1.0 MiB, not 1024.0 KiB. */
    if (whole == 1024 && u + 1 < (int)(sizeof(units) / sizeof(units[0]))) {
        whole = 1;
        u++;
    }
    out_str(o, " (");
    out_u64(o, whole, 1);
    out_char(o, '.');
    out_u64(o, tenths, 1);
    out_char(o, ' ');
    out_str(o, units[u]);
    out_char(o, ')');
}

static void
line_seconds(struct out *o, const char *label, uint64_t ns)
{
    out_str(o, label);
    out_str(o, ": ");
    out_seconds(o, ns);
    out_char(o, '\n');
}

static void
line_count(struct out *o, const char *label, uint64_t n)
{
    out_str(o, label);
    out_str(o, ": ");
    out_u64(o, n, 1);
    out_char(o, '\n');
}

PROBE_EXPORT int
probe_rusage_format(const probe_rusage *ru, char *buf, size_t len)
{
    struct out o = {buf, len, 0};

    if (!ru || (!buf && len > 0))
        return PROBE_EINVAL;

    line_seconds(&o, "Wall clock time", ru->wall_ns);
    line_seconds(&o, "User time", ru->user_ns);
    line_seconds(&o, "System time", ru->system_ns);
    out_str(&o, "Maximum resident set size: ");
    out_bytes(&o, ru->max_rss_bytes);
    out_char(&o, '\n');
    line_count(&o, "Minor page faults", ru->minor_faults);
    line_count(&o, "Major page faults", ru->major_faults);
    line_count(&o, "Voluntary context switches", ru->voluntary_switches);
    line_count(&o, "Involuntary context switches", ru->involuntary_switches);
    line_count(&o, "Block input operations", ru->block_in);
    line_count(&o, "Block output operations", ru->block_out);

    if (len > 0)
        buf[o.pos < len ? o.pos : len - 1] = '\0';
    /* Bounded: 449 bytes with every field at UINT64_MAX, far below INT_MAX. */
    return (int)o.pos;
}
