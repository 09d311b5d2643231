/* Socket I/O for the listener and the pusher: every wait bounded by a deadline, so
 * neither a slow client nor a slow backend can hold a thread of ours for long. */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <probe/common.h>

static uint64_t
clock_read(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
net_now_ns(void)
{
    return clock_read(CLOCK_MONOTONIC);
}

uint64_t
net_realtime_ns(void)
{
    return clock_read(CLOCK_REALTIME);
}

/* Milliseconds left before @deadline_ns, rounded up; 0 when past. */
static int
ms_left(uint64_t deadline_ns)
{
    uint64_t now = net_now_ns();

    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

/* Wait until @fd is ready for @events (or @stop_fd readable): 0, -ETIMEDOUT,
 * -ECANCELED or -errno. */
static int
wait_fd(int fd, short events, uint64_t deadline_ns, int stop_fd)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = stop_fd, .events = POLLIN}};
        int ms = ms_left(deadline_ns);

        if (ms == 0)
            return -ETIMEDOUT;
        int n = poll(p, stop_fd >= 0 ? 2 : 1, ms);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (stop_fd >= 0 && p[1].revents)
            return -ECANCELED;
        if (n > 0)
            return 0;
    }
}

int
net_connect(const char *host, const char *port, uint64_t deadline_ns)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int r = -ECONNREFUSED;

    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return PROBE_EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);

        if (fd < 0) {
            r = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        r = -errno;
        if (errno == EINPROGRESS) {
            int err = 0;
            socklen_t len = sizeof(err);

            r = wait_fd(fd, POLLOUT, deadline_ns, -1);
            if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err) {
                freeaddrinfo(res);
                return fd;
            }
            if (r == 0)
                r = err ? -err : -ECONNREFUSED;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return r;
}

int
net_write_all(int fd, const void *buf, size_t len, uint64_t deadline_ns)
{
    const char *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int r = wait_fd(fd, POLLOUT, deadline_ns, -1);

        if (r < 0)
            return r;
    }
    return 0;
}

long
net_read(int fd, void *buf, size_t len, uint64_t deadline_ns, int stop_fd)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int r = wait_fd(fd, POLLIN, deadline_ns, stop_fd);

        if (r < 0)
            return r;
    }
}

int
net_wait_readable(int fd_a, int fd_b, uint64_t deadline_ns)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = fd_a, .events = POLLIN}, {.fd = fd_b, .events = POLLIN}};
        int ms = deadline_ns == UINT64_MAX ? -1 : ms_left(deadline_ns);

        if (ms == 0)
            return -ETIMEDOUT;
        int n = poll(p, fd_b >= 0 ? 2 : 1, ms);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (p[0].revents)
            return 0;
        if (n > 0)
            return 1;
    }
}
