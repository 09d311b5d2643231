/* Internal: a strict, bounded JSON reader (RFC 8259) into a flat tree. Used by the
 * report loader (load.c); nothing here knows the probe/1 schema. */
#ifndef PROBE_FORMAT_JSONREAD_H
#define PROBE_FORMAT_JSONREAD_H

#include <stddef.h>
#include <stdint.h>

#include "attrs.h"

/* Limits: a document beyond them is an error, never unbounded work or memory. */
#define JSONREAD_MAX_INPUT ((size_t)1 << 30)   /* bytes of input */
#define JSONREAD_MAX_DEPTH 64                  /* nested arrays and objects */
#define JSONREAD_MAX_STRING ((size_t)1 << 20)  /* bytes of one decoded string */

enum jv_type { JV_NULL, JV_FALSE, JV_TRUE, JV_INT, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

/* One value. Children of an array or object are linked through @next (0 ends: the
 * root is value 0 and never a child); an object member's name is @key. */
struct jv {
    uint8_t type;
    uint8_t neg;        /* JV_INT: negative (then @u holds the magnitude) */
    uint32_t count;     /* JV_ARR, JV_OBJ: children */
    uint32_t first;     /* JV_ARR, JV_OBJ: first child */
    uint32_t next;      /* next sibling */
    size_t offset;      /* byte offset of the value in the input */
    const char *key;    /* object members: the name (decoded, NUL-terminated) */
    union {
        uint64_t u;     /* JV_INT */
        double d;       /* JV_NUM */
        const char *s;  /* JV_STR: decoded, NUL-terminated, valid UTF-8 */
    };
};

struct jdoc {
    struct jv *v;       /* v[0] is the root */
    size_t n;
    char *pool;         /* the decoded strings; the caller may take it (then NULL) */
};

/* Parse @len bytes. On failure returns a negative PROBE_E* code and sets *@ret_off
 * and @msg (what was expected there). Free @doc with jsonread_free(). */
int jsonread_parse(const char *buf, size_t len, struct jdoc *doc, size_t *ret_off,
                   char *msg, size_t msglen) HIDDEN;
void jsonread_free(struct jdoc *doc) HIDDEN;

/* Object member @key of @obj, or NULL. */
const struct jv *jv_get(const struct jdoc *doc, const struct jv *obj,
                        const char *key) HIDDEN;
/* First child / next sibling, or NULL. */
const struct jv *jv_first(const struct jdoc *doc, const struct jv *v) HIDDEN;
const struct jv *jv_next(const struct jdoc *doc, const struct jv *v) HIDDEN;

#endif
