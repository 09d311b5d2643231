/* Internal: the report writer behind the opaque probe_writer. */
#ifndef PROBE_FORMAT_WRITER_H
#define PROBE_FORMAT_WRITER_H

#include <stddef.h>

#include <probe/report.h>

/* Bytes gathered before a write(2) on a descriptor. */
#define WRITER_FD_BUFFER 8192
/* A memory report larger than this fails with PROBE_ENOMEM: memory stays bounded. */
#define WRITER_MEMORY_MAX ((size_t)1 << 30)

/* Lives on the caller's stack; only the library sees the layout. */
struct probe_writer {
    int fd;          /* the descriptor, or -1 for the memory backend */
    int err;         /* first failure (PROBE_EIO, PROBE_ENOMEM); sticky */
    int saved_errno; /* errno of the write(2) that failed */
    char *buf;       /* fd: fdbuf; memory: malloc'd, grows */
    size_t len;      /* bytes held in buf */
    size_t cap;      /* size of buf */
    char fdbuf[WRITER_FD_BUFFER];
};

/* Return from the calling function if @expr (an int) is a negative error. */
#define TRY(expr)                                                                        \
    do {                                                                                 \
        int try_rc_ = (expr);                                                            \
        if (try_rc_ < 0)                                                                 \
            return try_rc_;                                                              \
    } while (0)

/* Start writing to @fd (not closed by the writer). */
void writer_init_fd(probe_writer *w, int fd);

/* Start writing into a growing malloc'd buffer. */
void writer_init_memory(probe_writer *w);

/* The sticky error, 0 if none. */
int writer_error(const probe_writer *w);

/* Append one byte. */
int writer_putc(probe_writer *w, char c);

/* Flush what is buffered to the descriptor. On PROBE_EIO errno is the write's. */
int writer_finish_fd(probe_writer *w);

/* Hand over the NUL-terminated buffer (the caller frees it), or fail and free it. */
int writer_finish_memory(probe_writer *w, char **ret_buf, size_t *ret_len);

/* Free what the writer holds without producing anything. */
void writer_discard(probe_writer *w);

/* Create or truncate @path for writing, never through a symbolic link, and never
 * waiting for a FIFO's reader. The descriptor, or PROBE_ELOOP (a symlink),
 * PROBE_ENXIO (a FIFO nobody reads), or another -errno of open(2). */
int writer_open_path(const char *path);

#endif
