/* Internal: a tiny protocol buffers encoder (varints, length-delimited fields, packed
 * repeated fields) into a growing buffer, for the "pprof" formatter. */
#ifndef PROBE_FORMAT_PROTOBUF_H
#define PROBE_FORMAT_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

/* An encoded message being built. Zero-initialized is empty and ready. */
struct pb_buf {
    uint8_t *data; /* malloc'd; NULL while empty */
    size_t len;
    size_t cap;
    int err; /* PROBE_ENOMEM once an append failed; sticky, later appends do nothing */
};

/* Forget the contents, keep the memory (for reuse as a scratch buffer). */
void pb_reset(struct pb_buf *b);

/* Free what @b holds; @b is empty afterwards. */
void pb_free(struct pb_buf *b);

/* Append a varint field (wire type 0). Zero is written too (explicit). */
int pb_uint64(struct pb_buf *b, unsigned field, uint64_t v);

/* Append an int64 field (wire type 0, two's complement as proto's int64). */
int pb_int64(struct pb_buf *b, unsigned field, int64_t v);

/* Append a length-delimited field (wire type 2): strings, bytes, submessages. */
int pb_bytes(struct pb_buf *b, unsigned field, const void *data, size_t len);

/* Append a NUL-terminated string field. */
int pb_string(struct pb_buf *b, unsigned field, const char *s);

/* Append @sub, an encoded message, as a submessage field. */
int pb_message(struct pb_buf *b, unsigned field, const struct pb_buf *sub);

/* Append @n values as one packed repeated uint64 (or int64: same bytes) field.
 * Nothing is written when @n is 0. */
int pb_packed_uint64(struct pb_buf *b, unsigned field, const uint64_t *v, size_t n);

/* @return 0, or the sticky error. */
int pb_error(const struct pb_buf *b);

#endif
