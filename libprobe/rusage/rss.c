/*
 * probe_current_rss(): the resident set now, from /proc/self/statm.
 *
 * Async-signal-safe: open/read/close into a stack buffer and a hand-made parser; no
 * stdio, no malloc. errno is left as the caller had it.
 */
#include <probe/rusage.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

/* statm is seven numbers in pages: "size resident shared text lib data dt\n". */
#define STATM_MAX 256

static int
statm_read(char *buf, size_t size, size_t *ret_len)
{
    size_t n = 0;
    int fd;

    do
        fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno == ENOENT ? PROBE_ENOTSUP : -errno;

    while (n < size) {
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd); /* read-only: nothing to lose; not retried on EINTR (Linux closes it) */
    *ret_len = n;
    return 0;
}

/* The second number of @buf, or PROBE_EIO when it is not there. */
static int
statm_resident(const char *buf, size_t len, uint64_t *out)
{
    size_t i = 0;

    for (int field = 0; field < 2; field++) {
        uint64_t v = 0;
        size_t start;

        while (i < len && buf[i] == ' ')
            i++;
        start = i;
        while (i < len && buf[i] >= '0' && buf[i] <= '9') {
            unsigned d = (unsigned)(buf[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return PROBE_EIO;
            v = v * 10 + d;
            i++;
        }
        if (i == start || i == len || (buf[i] != ' ' && buf[i] != '\n'))
            return PROBE_EIO;
        *out = v;
    }
    return 0;
}

PROBE_EXPORT int
probe_current_rss(size_t *bytes)
{
    char buf[STATM_MAX];
    size_t len = 0;
    uint64_t pages = 0;
    int saved = errno;

    if (!bytes)
        return PROBE_EINVAL;

    int rc = statm_read(buf, sizeof(buf), &len);
    if (rc == 0)
        rc = statm_resident(buf, len, &pages);
    /* glibc and musl answer _SC_PAGESIZE from a value kept since start-up: no lock,
     * no system call. */
    long page = sysconf(_SC_PAGESIZE);
    if (rc == 0 && page <= 0)
        rc = PROBE_ENOTSUP;
    errno = saved;
    if (rc < 0)
        return rc;

    uint64_t total =
        pages > UINT64_MAX / (uint64_t)page ? UINT64_MAX : pages * (uint64_t)page;
    *bytes = total > SIZE_MAX ? SIZE_MAX : (size_t)total;
    return 0;
}
