/* Names and lines from debugging information through elfutils' libdwfl
 * (debuginfo.h). One Dwfl session for the process, made at the first lookup from
 * /proc/self/maps (dwfl_linux_proc_report) and reported again when a module was
 * loaded or unloaded since (modules_generation()). Its ELF and DWARF data are read
 * lazily, per module, when an address in it is looked up. Everything is under one
 * mutex: libdwfl is not thread-safe. Source file names are copied into a pool kept
 * for the life of the process (at most DEBUGINFO_MAX_FILES names), so that callers
 * may keep them without a lock. */
#include "debuginfo.h"

#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/common.h>

#include "modules.h"

#define DEBUGINFO_MAX_FILES 4096
#define DEBUGINFO_SLOTS (2 * DEBUGINFO_MAX_FILES)

static pthread_mutex_t debuginfo_lock = PTHREAD_MUTEX_INITIALIZER;
static Dwfl *debuginfo_dwfl;
static uint64_t debuginfo_gen;      /* modules_generation() at the last report */
static char *debuginfo_files[DEBUGINFO_SLOTS];
static size_t debuginfo_nfiles;

/* Separate debuginfo from the local build-id tree only. dwfl_standard_find_debuginfo
 * would also ask the debuginfod servers of DEBUGINFOD_URLS (set in many login
 * shells): network downloads, blocking a snapshot for seconds under our lock. */
static int
debuginfo_find_local(Dwfl_Module *mod, void **userdata, const char *modname,
                     Dwarf_Addr base, const char *file, const char *debuglink,
                     GElf_Word crc, char **ret_name)
{
    const unsigned char *id;
    GElf_Addr vaddr;
    char path[256];
    int len = dwfl_module_build_id(mod, &id, &vaddr);

    (void)userdata, (void)modname, (void)base, (void)file, (void)debuglink, (void)crc;
    if (len < 2 || len > 64)
        return -1;
    int n = snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", id[0]);
    for (int i = 1; i < len; i++)
        n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x", id[i]);
    snprintf(path + n, sizeof(path) - (size_t)n, ".debug");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && !(*ret_name = strdup(path))) {
        close(fd);
        return -1;
    }
    return fd;
}

static const Dwfl_Callbacks debuginfo_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = debuginfo_find_local,
};

/* The session, (re)reported if the modules changed (lock held). NULL on failure. */
static Dwfl *
debuginfo_session(void)
{
    uint64_t gen = modules_generation();

    if (debuginfo_dwfl && gen == debuginfo_gen)
        return debuginfo_dwfl;
    if (!debuginfo_dwfl) {
        debuginfo_dwfl = dwfl_begin(&debuginfo_callbacks);
        if (!debuginfo_dwfl)
            return NULL;
    }
    /* Modules reported again as they were are kept, with what was read of them. */
    dwfl_report_begin(debuginfo_dwfl);
    int r = dwfl_linux_proc_report(debuginfo_dwfl, getpid());

    if (dwfl_report_end(debuginfo_dwfl, NULL, NULL) != 0 || r != 0) {
        dwfl_end(debuginfo_dwfl);
        debuginfo_dwfl = NULL;
        return NULL;
    }
    debuginfo_gen = gen;
    return debuginfo_dwfl;
}

int
debuginfo_name(uintptr_t addr, char *buf, size_t len)
{
    int r = PROBE_ENOENT;

    if (len == 0)
        return PROBE_ENOENT;
    pthread_mutex_lock(&debuginfo_lock);

    Dwfl *dwfl = debuginfo_session();
    Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, addr) : NULL;

    if (mod) {
        GElf_Off off;
        GElf_Sym sym;
        const char *name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);

        /* Only a function that holds the address, as elfsym.c does. */
        if (name && name[0] && GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
            off < sym.st_size) {
            size_t n = strlen(name);

            if (n >= len)
                n = len - 1;
            memcpy(buf, name, n);
            buf[n] = '\0';
            r = 0;
        }
    }
    pthread_mutex_unlock(&debuginfo_lock);
    return r;
}

/* @s in the pool of file names (lock held): the pool's copy, or NULL when full or
 * out of memory. */
static const char *
debuginfo_file(const char *s)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */

    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;

    size_t k = h & (DEBUGINFO_SLOTS - 1);

    for (; debuginfo_files[k]; k = (k + 1) & (DEBUGINFO_SLOTS - 1))
        if (strcmp(debuginfo_files[k], s) == 0)
            return debuginfo_files[k];
    if (debuginfo_nfiles >= DEBUGINFO_MAX_FILES)
        return NULL;
    debuginfo_files[k] = strdup(s);
    if (debuginfo_files[k])
        debuginfo_nfiles++;
    return debuginfo_files[k];
}

/* The line of @addr in @mod by a walk over its compilation units: for files without
 * .debug_aranges (clang's default), where libdw before 0.191 finds no unit by address.
 * NULL if none holds it. */
static const char *
debuginfo_line_by_units(Dwfl_Module *mod, uintptr_t addr, int *ret_line)
{
    Dwarf_Die *cu = NULL;
    Dwarf_Addr bias;

    while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL) {
        if (dwarf_haspc(cu, addr - bias) <= 0)
            continue;

        Dwarf_Line *line = dwarf_getsrc_die(cu, addr - bias);

        if (!line || dwarf_lineno(line, ret_line) != 0)
            return NULL;
        return dwarf_linesrc(line, NULL, NULL);
    }
    return NULL;
}

int
debuginfo_line(uintptr_t addr, const char **ret_file, unsigned *ret_line)
{
    int r = PROBE_ENOENT;

    pthread_mutex_lock(&debuginfo_lock);

    Dwfl *dwfl = debuginfo_session();
    Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, addr) : NULL;
    Dwfl_Line *line = mod ? dwfl_module_getsrc(mod, addr) : NULL;
    int lineno = 0;
    const char *file = NULL;

    if (line)
        file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    else if (mod)
        file = debuginfo_line_by_units(mod, addr, &lineno);
    if (file && file[0] && lineno > 0) {
        const char *kept = debuginfo_file(file);

        if (kept) {
            *ret_file = kept;
            *ret_line = (unsigned)lineno;
            r = 0;
        } else {
            r = PROBE_ENOMEM;
        }
    }
    pthread_mutex_unlock(&debuginfo_lock);
    return r;
}

/* fork(): no other thread may hold the session's lock across it (symbolize.c). */
void
debuginfo_fork_lock(int lock)
{
    if (lock)
        pthread_mutex_lock(&debuginfo_lock);
    else
        pthread_mutex_unlock(&debuginfo_lock);
}
