/* A tiny protocol buffers encoder: just what profile.proto needs. */
#include "protobuf.h"

#include <stdlib.h>
#include <string.h>

#include <probe/common.h>

enum pb_wire {
    PB_WIRE_VARINT = 0,
    PB_WIRE_LEN = 2,
};

/* Make room for @more bytes. */
static int
pb_reserve(struct pb_buf *b, size_t more)
{
    if (b->err < 0)
        return b->err;
    if (more <= b->cap - b->len)
        return 0;

    size_t cap = b->cap ? b->cap : 256;

    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            b->err = PROBE_ENOMEM;
            return b->err;
        }
        cap *= 2;
    }

    uint8_t *p = realloc(b->data, cap);

    if (!p) {
        b->err = PROBE_ENOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static int
pb_raw_varint(struct pb_buf *b, uint64_t v)
{
    if (pb_reserve(b, 10) < 0)
        return b->err;
    do {
        uint8_t byte = v & 0x7f;

        v >>= 7;
        b->data[b->len++] = byte | (v ? 0x80 : 0);
    } while (v);
    return 0;
}

static int
pb_tag(struct pb_buf *b, unsigned field, enum pb_wire wire)
{
    return pb_raw_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

static size_t
pb_varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void
pb_reset(struct pb_buf *b)
{
    b->len = 0;
}

void
pb_free(struct pb_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int
pb_error(const struct pb_buf *b)
{
    return b->err;
}

int
pb_uint64(struct pb_buf *b, unsigned field, uint64_t v)
{
    if (pb_tag(b, field, PB_WIRE_VARINT) < 0)
        return b->err;
    return pb_raw_varint(b, v);
}

int
pb_int64(struct pb_buf *b, unsigned field, int64_t v)
{
    return pb_uint64(b, field, (uint64_t)v);
}

int
pb_bytes(struct pb_buf *b, unsigned field, const void *data, size_t len)
{
    if (pb_tag(b, field, PB_WIRE_LEN) < 0 || pb_raw_varint(b, len) < 0 ||
        pb_reserve(b, len) < 0)
        return b->err;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int
pb_string(struct pb_buf *b, unsigned field, const char *s)
{
    return pb_bytes(b, field, s, strlen(s));
}

int
pb_message(struct pb_buf *b, unsigned field, const struct pb_buf *sub)
{
    if (sub->err < 0) {
        if (b->err == 0)
            b->err = sub->err;
        return sub->err;
    }
    return pb_bytes(b, field, sub->data, sub->len);
}

int
pb_packed_uint64(struct pb_buf *b, unsigned field, const uint64_t *v, size_t n)
{
    size_t len = 0;

    if (n == 0)
        return b->err;
    for (size_t i = 0; i < n; i++)
        len += pb_varint_size(v[i]);
    if (pb_tag(b, field, PB_WIRE_LEN) < 0 || pb_raw_varint(b, len) < 0)
        return b->err;
    for (size_t i = 0; i < n; i++) {
        if (pb_raw_varint(b, v[i]) < 0)
            return b->err;
    }
    return 0;
}
