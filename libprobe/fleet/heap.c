/* The heap profile of /debug/pprof/heap and of the pusher: the memory module's
 * sampled heap (PROBE_MEM=1, docs/memory.md), written as its gzipped pprof into an
 * anonymous file and read back, so the fleet needs nothing of the heap's insides.
 * A provider registered in fleet_heap_provider (tests) comes first. */
#include "fleet.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <probe/common.h>
#include <probe/mem.h>

int (*fleet_heap_provider)(char **ret_buf, size_t *ret_len);

static int
heap_pprof(char **ret_buf, size_t *ret_len)
{
    int fd = memfd_create("probe-heap", MFD_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    int rc;

    if (fd < 0)
        return -errno;
    if ((rc = probe_mem_heap_fd(fd, "pprof")) < 0)
        goto out;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = PROBE_ENOMEM;
        goto out;
    }
    for (size_t got = 0; got < (size_t)st.st_size;) {
        ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (r <= 0) {
            rc = r < 0 ? -errno : PROBE_EIO;
            free(buf);
            goto out;
        }
        got += (size_t)r;
    }
    *ret_buf = buf;
    *ret_len = (size_t)st.st_size;
    rc = 0;
out:
    close(fd);
    return rc;
}

int
fleet_heap_profile(char **ret_buf, size_t *ret_len)
{
    int (*p)(char **, size_t *) = __atomic_load_n(&fleet_heap_provider, __ATOMIC_ACQUIRE);

    if (p)
        return p(ret_buf, ret_len);
    return probe_mem_heap_enabled() ? heap_pprof(ret_buf, ret_len) : PROBE_ENOTSUP;
}
