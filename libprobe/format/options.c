/* Option pairs of a format name: see options.h. */
#include "options.h"

#include <stdio.h>
#include <string.h>

#include <probe/common.h>

int
options_next(const char **p, struct option_kv *kv)
{
    const char *s = *p ? *p : "";

    if (!*s)
        return 0;
    size_t len = strcspn(s, ",");
    const char *eq = memchr(s, '=', len);

    if (len == 0)
        return PROBE_EINVAL;
    kv->key = s;
    kv->klen = eq ? (size_t)(eq - s) : len;
    kv->has_value = eq != NULL;
    kv->value = eq ? eq + 1 : s + len;
    kv->vlen = eq ? len - kv->klen - 1 : 0;
    s += len;
    if (*s == ',' && *++s == '\0')
        return PROBE_EINVAL; /* a trailing comma */
    *p = s;
    return 1;
}

int
options_key(const struct option_kv *kv, const char *key)
{
    return kv->has_value && strlen(key) == kv->klen && memcmp(kv->key, key, kv->klen) == 0;
}

int
options_value(const struct option_kv *kv, const char *value)
{
    return strlen(value) == kv->vlen && memcmp(kv->value, value, kv->vlen) == 0;
}

int
options_fail(struct options_error *err, const char *format, const struct option_kv *kv,
             const char *accepted)
{
    if (err)
        snprintf(err->msg, sizeof(err->msg), "%s option %.*s=%.*s: %s", format,
                 (int)kv->klen, kv->key, (int)kv->vlen, kv->value, accepted);
    return PROBE_EINVAL;
}

int
options_fail_key(struct options_error *err, const char *format, const struct option_kv *kv,
                 const char *accepted)
{
    if (err && kv->has_value)
        snprintf(err->msg, sizeof(err->msg), "%s has no option '%.*s' (it takes %s)",
                 format, (int)kv->klen, kv->key, accepted);
    else if (err)
        snprintf(err->msg, sizeof(err->msg), "%s option '%.*s' has no value: write "
                 "KEY=VALUE (it takes %s)", format, (int)kv->klen, kv->key, accepted);
    return PROBE_EINVAL;
}

int
options_fail_empty(struct options_error *err, const char *format, const char *options)
{
    if (err)
        snprintf(err->msg, sizeof(err->msg),
                 "%s options '%s': an empty option (two commas, or one at the end)",
                 format, options ? options : "");
    return PROBE_EINVAL;
}

int
options_fail_none(struct options_error *err, const char *format, const char *options)
{
    if (err)
        snprintf(err->msg, sizeof(err->msg), "%s takes no options (got '%s')", format,
                 options ? options : "");
    return PROBE_EINVAL;
}
