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

/* Why options were refused, for a message: filled by the parsers when not NULL. */
struct options_error {
    char msg[256];
};

/* "FORMAT option KEY=VALUE: ACCEPTED" (or "unknown option KEY", "empty option"),
 * into @err when not NULL. @return PROBE_EINVAL. */
int options_fail(struct options_error *err, const char *format, const struct option_kv *kv,
                 const char *accepted);

/* For an unknown key: "FORMAT has no option KEY (it takes: ACCEPTED)". */
int options_fail_key(struct options_error *err, const char *format,
                     const struct option_kv *kv, const char *accepted);

/* For options_next()'s error on @options: an empty pair. */
int options_fail_empty(struct options_error *err, const char *format, const char *options);

/* For a format that takes none: "FORMAT takes no options (got 'OPTIONS')". */
int options_fail_none(struct options_error *err, const char *format, const char *options);

#endif
