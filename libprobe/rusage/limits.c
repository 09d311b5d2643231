/*
 * Resource limits: getrlimit(2)/setrlimit(2) over named resources, with
 * PROBE_RLIM_INFINITY for "no limit" and uint64_t values whatever rlim_t is.
 */
#include <probe/rusage.h>

#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>

/* A resource this system does not have. */
#define RLIM_NONE (-1)

struct rlimit_entry {
    const char *name;
    int sys; /* RLIMIT_*, or RLIM_NONE */
};

#ifdef RLIMIT_CPU
#define SYS_CPU RLIMIT_CPU
#else
#define SYS_CPU RLIM_NONE
#endif
#ifdef RLIMIT_AS
#define SYS_AS RLIMIT_AS
#else
#define SYS_AS RLIM_NONE
#endif
#ifdef RLIMIT_NOFILE
#define SYS_NOFILE RLIMIT_NOFILE
#else
#define SYS_NOFILE RLIM_NONE
#endif
#ifdef RLIMIT_CORE
#define SYS_CORE RLIMIT_CORE
#else
#define SYS_CORE RLIM_NONE
#endif
#ifdef RLIMIT_DATA
#define SYS_DATA RLIMIT_DATA
#else
#define SYS_DATA RLIM_NONE
#endif
#ifdef RLIMIT_STACK
#define SYS_STACK RLIMIT_STACK
#else
#define SYS_STACK RLIM_NONE
#endif
#ifdef RLIMIT_FSIZE
#define SYS_FSIZE RLIMIT_FSIZE
#else
#define SYS_FSIZE RLIM_NONE
#endif
#ifdef RLIMIT_NPROC
#define SYS_NPROC RLIMIT_NPROC
#else
#define SYS_NPROC RLIM_NONE
#endif
#ifdef RLIMIT_MEMLOCK
#define SYS_MEMLOCK RLIMIT_MEMLOCK
#else
#define SYS_MEMLOCK RLIM_NONE
#endif

/* Indexed by probe_rlimit_resource. */
static const struct rlimit_entry rlimits[] = {
    [PROBE_RLIMIT_CPU] = {"cpu", SYS_CPU},
    [PROBE_RLIMIT_AS] = {"as", SYS_AS},
    [PROBE_RLIMIT_NOFILE] = {"nofile", SYS_NOFILE},
    [PROBE_RLIMIT_CORE] = {"core", SYS_CORE},
    [PROBE_RLIMIT_DATA] = {"data", SYS_DATA},
    [PROBE_RLIMIT_STACK] = {"stack", SYS_STACK},
    [PROBE_RLIMIT_FSIZE] = {"fsize", SYS_FSIZE},
    [PROBE_RLIMIT_NPROC] = {"nproc", SYS_NPROC},
    [PROBE_RLIMIT_MEMLOCK] = {"memlock", SYS_MEMLOCK},
};

#define RLIMITS_COUNT ((int)(sizeof(rlimits) / sizeof(rlimits[0])))
_Static_assert(RLIMITS_COUNT == PROBE_RLIMIT_MEMLOCK + 1, "a resource has no entry");

/* The RLIMIT_* of @resource in *out, or PROBE_EINVAL / PROBE_ENOTSUP. */
static int
rlimit_sys(int resource, int *out)
{
    if (resource < 0 || resource >= RLIMITS_COUNT)
        return PROBE_EINVAL;
    if (rlimits[resource].sys == RLIM_NONE)
        return PROBE_ENOTSUP;
    *out = rlimits[resource].sys;
    return 0;
}

static uint64_t
rlimit_to_u64(rlim_t v)
{
    return v == RLIM_INFINITY ? PROBE_RLIM_INFINITY : (uint64_t)v;
}

/* RLIM_INFINITY is the largest rlim_t on every system we know (all ones where rlim_t
 * is unsigned, INT64_MAX where it is signed), so a finite value must stay below it:
 * with a 32-bit rlim_t, 4 GiB of address space is PROBE_ERANGE rather than "no
 * limit". With a 64-bit unsigned rlim_t every finite uint64_t fits. */
static int
rlimit_from_u64(uint64_t v, rlim_t *out)
{
    if (v == PROBE_RLIM_INFINITY) {
        *out = RLIM_INFINITY;
        return 0;
    }
    if (v >= (uint64_t)RLIM_INFINITY)
        return PROBE_ERANGE;
    *out = (rlim_t)v;
    return 0;
}

PROBE_EXPORT int
probe_getrlimit(int resource, probe_rlimit *out)
{
    struct rlimit rl;
    int sys, saved = errno;

    if (!out)
        return PROBE_EINVAL;
    int rc = rlimit_sys(resource, &sys);
    if (rc < 0)
        return rc;
    if (getrlimit(sys, &rl) < 0) {
        rc = -errno;
        errno = saved;
        return rc;
    }
    out->soft = rlimit_to_u64(rl.rlim_cur);
    out->hard = rlimit_to_u64(rl.rlim_max);
    return 0;
}

PROBE_EXPORT int
probe_setrlimit(int resource, const probe_rlimit *lim)
{
    struct rlimit rl;
    int sys, saved = errno;

    if (!lim)
        return PROBE_EINVAL;
    int rc = rlimit_sys(resource, &sys);
    if (rc < 0)
        return rc;
    /* PROBE_RLIM_INFINITY is UINT64_MAX, so it compares above every finite value. */
    if (lim->soft > lim->hard)
        return PROBE_EINVAL;
    if ((rc = rlimit_from_u64(lim->soft, &rl.rlim_cur)) < 0 ||
        (rc = rlimit_from_u64(lim->hard, &rl.rlim_max)) < 0)
        return rc;
    if (setrlimit(sys, &rl) < 0) {
        /* EPERM (raising the hard limit without CAP_SYS_RESOURCE, or nofile above
         * fs.nr_open) is PROBE_EPERM: the codes are equal. */
        rc = -errno;
        errno = saved;
        return rc;
    }
    return 0;
}

PROBE_EXPORT const char *
probe_rlimit_name(int resource)
{
    if (resource < 0 || resource >= RLIMITS_COUNT)
        return NULL;
    return rlimits[resource].name;
}

/* ASCII only, no locale: strcasecmp(3) would depend on LC_CTYPE. */
static int
ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
name_eq(const char *a, const char *b)
{
    while (*a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

PROBE_EXPORT int
probe_rlimit_from_name(const char *name)
{
    if (!name)
        return PROBE_EINVAL;
    for (int i = 0; i < RLIMITS_COUNT; i++)
        if (name_eq(name, rlimits[i].name))
            return i;
    return PROBE_EINVAL;
}
