/* Names for sampled addresses, at snapshot time (never in the handler): the symbol
 * dladdr(3) finds, else "module+0xoffset" from the module's load address. */
#include "sampler.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

const char *
symbolize_pc(uintptr_t pc, int is_return, char *buf, size_t len)
{
    Dl_info info;
    /* A return address may be past the end of its call's function. */
    uintptr_t at = is_return && pc ? pc - 1 : pc;

    memset(&info, 0, sizeof(info));
    if (dladdr((void *)at, &info) && info.dli_sname && info.dli_sname[0])
        return info.dli_sname;
    if (info.dli_fname && info.dli_fname[0]) {
        const char *base = strrchr(info.dli_fname, '/');
        base = base ? base + 1 : info.dli_fname;
        snprintf(buf, len, "%s+0x%lx", base,
                 (unsigned long)(at - (uintptr_t)info.dli_fbase));
    } else {
        snprintf(buf, len, "[unknown]+0x%lx", (unsigned long)at);
    }
    return buf;
}
