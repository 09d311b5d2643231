/* Numbers as text with no stdio and no locale: the one formatter for every writer
 * that may run in a signal handler (the fault dumper, probe_rusage_format(), the
 * stream writer). Internal, never installed. */
#ifndef PROBE_NUMFMT_H
#define PROBE_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

/* @v in decimal, at least @width digits (zero-padded, at most 20), into @buf, which
 * has room for 21 bytes; NUL-terminated. Returns its length. */
static inline PROBE_SIGSAFE size_t
numfmt_u64(char *buf, uint64_t v, unsigned width)
{
    char tmp[20];
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (width > n && width <= 20 && len < width - n)
        buf[len++] = '0';
    while (n > 0)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

/* @v as "0x" and lowercase hex digits, no leading zeros, into @buf (19 bytes);
 * NUL-terminated. Returns its length. */
static inline PROBE_SIGSAFE size_t
numfmt_hex(char *buf, uint64_t v)
{
    size_t n = 2;
    int shift = 60;

    buf[0] = '0';
    buf[1] = 'x';
    while (shift > 0 && ((v >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        buf[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
    buf[n] = '\0';
    return n;
}

#endif
