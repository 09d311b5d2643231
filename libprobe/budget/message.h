/* Budget messages: a bounded string builder and the number formats people read
 * ("1,843,200", "1.234 ms", "+23 %"). Internal. */
#ifndef PROBE_BUDGET_MESSAGE_H
#define PROBE_BUDGET_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

struct msgbuf {
    char *buf;      /* may be NULL when len is 0 */
    size_t len;
    size_t pos;     /* bytes written, the NUL not counted; stops at len - 1 */
};

void msg_init(struct msgbuf *m, char *buf, size_t len);
void msg_printf(struct msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each returns @buf; 32 bytes are enough. */
const char *fmt_count(char *buf, size_t len, uint64_t v);
const char *fmt_ns(char *buf, size_t len, uint64_t ns);
const char *fmt_pct(char *buf, size_t len, double pct);

#endif
