/* Internal: the "key=value[,key=value...]" options of a format name ("text:sort=self"),
 * walked one pair at a time by every formatter that takes options. */
#ifndef PROBE_FORMAT_OPTIONS_H
#define PROBE_FORMAT_OPTIONS_H

#include <stddef.h>

struct option_kv {
    const char *key, *value;    /* not NUL-terminated: use the lengths */
    size_t klen, vlen;
    int has_value;              /* there was an '=' */
};

/* The next pair at *@p, moving *@p past it. Returns 1 with @kv set, 0 at the end, or
 * PROBE_EINVAL for an empty pair ("a,,b", a trailing comma). NULL options are "". */
int options_next(const char **p, struct option_kv *kv);

/* Is @kv's key @key, with a value? */
int options_key(const struct option_kv *kv, const char *key);

/* Is @kv's value @value? */
int options_value(const struct option_kv *kv, const char *value);

#endif
