/* Option pairs of a format name: see options.h. */
#include "options.h"

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
