/* The report writer: a buffered file descriptor or a growing memory buffer. */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest single write(2): stays far below SSIZE_MAX on every platform. */
#define WRITER_CHUNK ((size_t)1 << 30)

static int
writer_is_fd(const probe_writer *w)
{
    return w->fd >= 0;
}

void
writer_init_fd(probe_writer *w, int fd)
{
    w->fd = fd;
    w->err = 0;
    w->saved_errno = 0;
    w->buf = w->fdbuf;
    w->len = 0;
    w->cap = sizeof(w->fdbuf);
}

void
writer_init_memory(probe_writer *w)
{
    w->fd = -1;
    w->err = 0;
    w->saved_errno = 0;
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
}

int
writer_error(const probe_writer *w)
{
    return w->err;
}

static int
writer_fail(probe_writer *w, int err, int saved_errno)
{
    if (!w->err) {
        w->err = err;
        w->saved_errno = saved_errno;
    }
    return w->err;
}

/* Wait until a non-blocking descriptor takes data again, rather than lose it. */
static int
writer_wait_writable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};

    for (;;) {
        int n = poll(&pfd, 1, -1);

        if (n > 0)
            return (pfd.revents & (POLLERR | POLLNVAL)) ? -1 : 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* write(2) all of @p, through EINTR, short writes and EAGAIN. */
static int
writer_drain(probe_writer *w, const char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n < WRITER_CHUNK ? n : WRITER_CHUNK;
        ssize_t k = write(w->fd, p, chunk);

        if (k < 0) {
            int e = errno;

            if (e == EINTR)
                continue;
            if ((e == EAGAIN || e == EWOULDBLOCK) && writer_wait_writable(w->fd) == 0)
                continue;
            return writer_fail(w, PROBE_EIO, e);
        }
        if (k == 0)
            return writer_fail(w, PROBE_EIO, EIO);
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int
writer_flush(probe_writer *w)
{
    int r = writer_drain(w, w->buf, w->len);

    w->len = 0;
    return r;
}

/* Make room for @need more bytes plus a NUL in the memory buffer. */
static int
writer_reserve(probe_writer *w, size_t need)
{
    if (w->cap - w->len > need)
        return 0;
    if (need >= WRITER_MEMORY_MAX - w->len)
        return writer_fail(w, PROBE_ENOMEM, ENOMEM);

    size_t want = w->len + need + 1;
    size_t cap = w->cap ? w->cap : 4096;

    while (cap < want)
        cap *= 2;
    if (cap > WRITER_MEMORY_MAX)
        cap = WRITER_MEMORY_MAX;

    char *p = realloc(w->buf, cap);

    if (!p)
        return writer_fail(w, PROBE_ENOMEM, ENOMEM);
    w->buf = p;
    w->cap = cap;
    return 0;
}

static int
writer_append(probe_writer *w, const void *buf, size_t len)
{
    if (!writer_is_fd(w)) {
        int r = writer_reserve(w, len);

        if (r < 0)
            return r;
        memcpy(w->buf + w->len, buf, len);
        w->len += len;
        return 0;
    }
    if (len <= w->cap - w->len) {
        memcpy(w->buf + w->len, buf, len);
        w->len += len;
        return 0;
    }

    int r = writer_flush(w);

    if (r < 0)
        return r;
    if (len >= w->cap)
        return writer_drain(w, buf, len);
    memcpy(w->buf, buf, len);
    w->len = len;
    return 0;
}

PROBE_EXPORT int
probe_writer_write(probe_writer *w, const void *buf, size_t len)
{
    if (!w || (!buf && len > 0))
        return PROBE_EINVAL;
    if (w->err)
        return w->err;
    if (len == 0)
        return 0;
    return writer_append(w, buf, len);
}

PROBE_EXPORT int
probe_writer_puts(probe_writer *w, const char *s)
{
    if (!s)
        return PROBE_EINVAL;
    return probe_writer_write(w, s, strlen(s));
}

int
writer_putc(probe_writer *w, char c)
{
    if (w->err)
        return w->err;
    if (w->len + 1 < w->cap) {
        w->buf[w->len++] = c;
        return 0;
    }
    return writer_append(w, &c, 1);
}

/* Output too long for the descriptor's buffer: format it in a heap buffer. */
__attribute__((format(printf, 3, 0))) static int
writer_vprintf_long(probe_writer *w, size_t n, const char *fmt, va_list ap)
{
    char *tmp = malloc(n + 1);

    if (!tmp)
        return writer_fail(w, PROBE_ENOMEM, ENOMEM);

    int k = vsnprintf(tmp, n + 1, fmt, ap);
    int r = (k < 0 || (size_t)k != n) ? PROBE_EINVAL : writer_append(w, tmp, n);

    free(tmp);
    return r;
}

/*
 * Try to format in place; when it does not fit, make room (flush or grow) and
 * format again. A bad format is the caller's bug, not a stream failure: it is
 * returned but not sticky.
 */
__attribute__((format(printf, 2, 0))) static int
writer_vprintf(probe_writer *w, const char *fmt, va_list ap)
{
    va_list aq;
    size_t room = w->cap - w->len;
    char dummy[1];

    va_copy(aq, ap);
    int k = vsnprintf(room ? w->buf + w->len : dummy, room ? room : 1, fmt, aq);
    va_end(aq);
    if (k < 0)
        return PROBE_EINVAL;

    size_t n = (size_t)k;

    if (n < room) {
        w->len += n;
        return 0;
    }

    int r;

    if (writer_is_fd(w)) {
        if (n >= w->cap)
            return writer_vprintf_long(w, n, fmt, ap);
        r = writer_flush(w);
    } else {
        r = writer_reserve(w, n);
    }
    if (r < 0)
        return r;
    k = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
    if (k < 0 || (size_t)k != n)
        return PROBE_EINVAL;
    w->len += n;
    return 0;
}

PROBE_EXPORT int
probe_writer_printf(probe_writer *w, const char *fmt, ...)
{
    va_list ap;

    if (!w || !fmt)
        return PROBE_EINVAL;
    if (w->err)
        return w->err;
    va_start(ap, fmt);
    int r = writer_vprintf(w, fmt, ap);
    va_end(ap);
    return r;
}

int
writer_finish_fd(probe_writer *w)
{
    if (!w->err)
        (void)writer_flush(w);
    if (w->err == PROBE_EIO)
        errno = w->saved_errno;
    return w->err;
}

int
writer_finish_memory(probe_writer *w, char **ret_buf, size_t *ret_len)
{
    int r = w->err ? w->err : writer_reserve(w, 0);

    if (r < 0) {
        writer_discard(w);
        return r;
    }
    w->buf[w->len] = '\0';
    *ret_buf = w->buf;
    if (ret_len)
        *ret_len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return 0;
}

void
writer_discard(probe_writer *w)
{
    if (!writer_is_fd(w)) {
        free(w->buf);
        w->buf = NULL;
        w->len = w->cap = 0;
    }
}

int
writer_open_path(const char *path)
{
    /* Without O_NONBLOCK, opening a FIFO waits for a reader, for ever if none comes
     * (a report at exit would hang the process); with it, no reader is ENXIO. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                  0644);

    if (fd < 0) {
        /* FreeBSD reports a symlink refused by O_NOFOLLOW as EMLINK. */
        if (errno == ELOOP || errno == EMLINK)
            return PROBE_ELOOP;
        return -errno;
    }
    /* Open: writes wait for a slow reader again, as on any pipe. */
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
