#include <probe/probe.h>

#include <errno.h>

/* Where errno has the name, the code is -errno (STYLE.md): system errors pass through
 * and print the same. */
_Static_assert(PROBE_EPERM == -EPERM, "PROBE_EPERM");
_Static_assert(PROBE_ENOENT == -ENOENT, "PROBE_ENOENT");
_Static_assert(PROBE_EIO == -EIO, "PROBE_EIO");
_Static_assert(PROBE_ENXIO == -ENXIO, "PROBE_ENXIO");
_Static_assert(PROBE_EBADF == -EBADF, "PROBE_EBADF");
_Static_assert(PROBE_ENOMEM == -ENOMEM, "PROBE_ENOMEM");
_Static_assert(PROBE_EACCES == -EACCES, "PROBE_EACCES");
_Static_assert(PROBE_EBUSY == -EBUSY, "PROBE_EBUSY");
_Static_assert(PROBE_EEXIST == -EEXIST, "PROBE_EEXIST");
_Static_assert(PROBE_EINVAL == -EINVAL, "PROBE_EINVAL");
_Static_assert(PROBE_ENOSPC == -ENOSPC, "PROBE_ENOSPC");
_Static_assert(PROBE_ERANGE == -ERANGE, "PROBE_ERANGE");
_Static_assert(PROBE_ELOOP == -ELOOP, "PROBE_ELOOP");
_Static_assert(PROBE_ENOTSUP == -ENOTSUP, "PROBE_ENOTSUP");
_Static_assert(PROBE_EALREADY == -EALREADY, "PROBE_EALREADY");
/* The codes only libprobe has sit at -4096 and below, beyond every errno. */
_Static_assert(PROBE_ENODATA <= -4096 && PROBE_EFORMAT <= -4096 && PROBE_EDISABLED <= -4096,
               "library-only codes");

/* A switch over constants, no strerror(3): this must be async-signal-safe. */
PROBE_EXPORT const char *
probe_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case PROBE_EPERM: return "operation not permitted";
    case PROBE_ENOENT: return "no such file or directory";
    case PROBE_EIO: return "input/output error";
    case PROBE_ENXIO: return "no reader: the output is a FIFO nobody has open for reading";
    case PROBE_EBADF: return "bad file descriptor";
    case PROBE_ENOMEM: return "out of memory";
    case PROBE_EACCES: return "permission denied";
    case PROBE_EBUSY: return "already running";
    case PROBE_EEXIST: return "the name is already taken";
    case PROBE_EINVAL: return "invalid argument";
    case PROBE_ENOSPC: return "a fixed-size table or buffer is full";
    case PROBE_ERANGE: return "value out of range";
    case PROBE_ELOOP: return "the path is a symbolic link";
    case PROBE_ENOTSUP: return "not supported on this platform";
    case PROBE_EALREADY: return "already done (freed twice)";
    case PROBE_ENODATA: return "nothing has been recorded";
    case PROBE_EFORMAT: return "the formatter failed";
    case PROBE_EDISABLED: return "libprobe is compiled out (PROBE_DISABLE)";
    case -EINTR: return "interrupted system call";
    case -EAGAIN: return "resource temporarily unavailable";
    case -ENOTDIR: return "not a directory";
    case -EISDIR: return "is a directory";
    case -EROFS: return "read-only file system";
    case -EPIPE: return "broken pipe";
    case -ENAMETOOLONG: return "file name too long";
    case -EMFILE: return "too many open files";
    case -EFBIG: return "file too large";
    case -EDQUOT: return "disk quota exceeded";
    default: return err < 0 ? "unknown error" : "not an error code";
    }
}
