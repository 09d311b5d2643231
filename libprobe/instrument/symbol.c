/* The names of functions libprobe-instrument meets at run time, from the stack part
 * (the one owner of symbol tables), so that an instrumented function and a sampled
 * frame of it carry the same name. Part of libprobe, not of libprobe-instrument. */
#include "symbol.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "stack/modules.h"
#include "stack/symbolize.h"

PROBE_EXPORT int
probe__symbol_describe(const void *addr, char *name, size_t name_len, char *file,
                       size_t file_len, unsigned *ret_line)
{
    const char *src = NULL, *n;
    unsigned line = 0;
    struct module m;

    if (!name || !name_len || !file || !file_len || !ret_line)
        return PROBE_EINVAL;
    /* The module table may never have been read (no sampler), or a module may have
     * been loaded since: .symtab names need it. */
    (void)modules_refresh_if_changed();
    /* The entry of a function, not a return address: looked up as is. */
    n = symbolize_pc((uintptr_t)addr, 0, name, name_len);
    if (n != name)
        snprintf(name, name_len, "%s", n);
    if (symbolize_line((uintptr_t)addr, 0, &src, &line) == 0 && src) {
        snprintf(file, file_len, "%s", src);
    } else if (modules_find((uintptr_t)addr, &m) == 0 && m.path[0]) {
        snprintf(file, file_len, "%s", m.path);
        line = 0;
    } else {
        snprintf(file, file_len, "?");
        line = 0;
    }
    *ret_line = line;
    return 0;
}
