/* Names and lines for code addresses, at snapshot time (never in a handler): see
 * symbolize.h for the order in which names are tried. */
#include "symbolize.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfsym.h"
#include "modules.h"
#ifdef PROBE_HAVE_LIBDW
#include "debuginfo.h"
#endif

const char *
symbolize_pc(uintptr_t pc, int is_return, char *buf, size_t len)
{
    Dl_info info;
    /* A return address may be past the end of its call's function. */
    uintptr_t at = is_return && pc ? pc - 1 : pc;

    memset(&info, 0, sizeof(info));
    if (dladdr((void *)at, &info) && info.dli_sname && info.dli_sname[0])
        return info.dli_sname;
    if (elfsym_lookup(at, buf, len) == 0)
        return buf;
#ifdef PROBE_HAVE_LIBDW
    if (debuginfo_name(at, buf, len) == 0)
        return buf;
#endif
    struct module m;
    if (modules_find(at, &m) == 0) {
        const char *base = strrchr(m.path, '/');
        base = base ? base + 1 : m.path[0] ? m.path : "[unknown]";
        snprintf(buf, len, "%s+0x%lx", base, (unsigned long)(at - m.bias));
    } else if (info.dli_fname && info.dli_fname[0]) {
        const char *base = strrchr(info.dli_fname, '/');
        base = base ? base + 1 : info.dli_fname;
        snprintf(buf, len, "%s+0x%lx", base,
                 (unsigned long)(at - (uintptr_t)info.dli_fbase));
    } else {
        snprintf(buf, len, "[unknown]+0x%lx", (unsigned long)at);
    }
    return buf;
}

int
symbolize_line(uintptr_t pc, int is_return, const char **ret_file, unsigned *ret_line)
{
#ifdef PROBE_HAVE_LIBDW
    if (!pc)
        return PROBE_ENOENT;
    return debuginfo_line(is_return ? pc - 1 : pc, ret_file, ret_line);
#else
    (void)pc;
    (void)is_return;
    (void)ret_file;
    (void)ret_line;
    return PROBE_ENOTSUP;
#endif
}

int
symbolize_pin_lines(void)
{
#ifdef PROBE_HAVE_LIBDW
    unsigned n;
    struct module *copy;
    int r = modules_copy(&copy, &n);

    if (r < 0)
        return r;
    for (unsigned i = 0; i < n; i++)
        if (debuginfo_pin_lines(&copy[i]) == PROBE_ENOMEM)
            r = PROBE_ENOMEM;
    free(copy);
    return r;
#else
    return PROBE_ENOTSUP;
#endif
}

PROBE_SIGSAFE int
symbolize_line_pinned(const struct module *m, uintptr_t addr, const char **ret_file,
                      unsigned *ret_line)
{
#ifdef PROBE_HAVE_LIBDW
    return debuginfo_line_pinned(m, addr, ret_file, ret_line);
#else
    (void)m;
    (void)addr;
    (void)ret_file;
    (void)ret_line;
    return PROBE_ENOENT;
#endif
}

static void
fork_prepare(void)
{
    modules_fork_lock(1);
    elfsym_fork_lock(1);
#ifdef PROBE_HAVE_LIBDW
    debuginfo_fork_lock(1);
#endif
}

static void
fork_done(void)
{
#ifdef PROBE_HAVE_LIBDW
    debuginfo_fork_lock(0);
#endif
    elfsym_fork_lock(0);
    modules_fork_lock(0);
}

static void
fork_child(void)
{
    fork_done();
    modules_atfork_child();
}

void
symbolize_init(void)
{
    pthread_atfork(fork_prepare, fork_done, fork_child);
}
