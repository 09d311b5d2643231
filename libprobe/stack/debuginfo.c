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
#include <stdbool.h>
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

/* ---- pinned line tables, for signal handlers ------------------------------------- */

/* One row: from @addr (run-time) on, until the next row, the code is @file:@line;
 * line 0 ends a sequence (no line). */
struct line_row {
    uintptr_t addr;
    const char *file;   /* in the pool: lives as long as the library */
    unsigned line;
};

struct line_table {
    uintptr_t bias, text_lo;
    unsigned char build_id[MODULES_BUILD_ID_MAX];
    unsigned build_id_len;
    struct line_row *rows;
    size_t n;
};

#define DEBUGINFO_MAX_PINNED 64
#define DEBUGINFO_MAX_ROWS ((size_t)4 << 20)   /* 96 MiB of rows in all, at most */

static struct line_table line_tables[DEBUGINFO_MAX_PINNED];
static unsigned nline_tables;       /* published with release */
static size_t line_rows_total;

static int
line_table_is(const struct line_table *lt, const struct module *m)
{
    return lt->bias == m->bias && lt->text_lo == m->text_lo &&
           lt->build_id_len == m->build_id_len &&
           memcmp(lt->build_id, m->build_id, m->build_id_len) == 0;
}

static int
row_by_addr(const void *pa, const void *pb)
{
    const struct line_row *a = pa, *b = pb;

    if (a->addr != b->addr)
        return a->addr < b->addr ? -1 : 1;
    return (a->line == 0) - (b->line == 0); /* a sequence's start over another's end */
}

/* Append @row to @v (lock held). */
static int
rows_push(struct line_row **v, size_t *n, size_t *cap, struct line_row row)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        struct line_row *w = realloc(*v, c * sizeof(*w));
        if (!w)
            return -1;
        *v = w;
        *cap = c;
    }
    (*v)[(*n)++] = row;
    return 0;
}

/* Every line row of @mod's compilation units (lock held). */
static int
debuginfo_collect_rows(Dwfl_Module *mod, struct line_row **ret, size_t *ret_n)
{
    struct line_row *v = NULL;
    size_t n = 0, cap = 0;
    Dwarf_Die *cu = NULL;
    Dwarf_Addr bias;

    while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL) {
        Dwarf_Lines *lines;
        size_t nlines;
        if (dwarf_getsrclines(cu, &lines, &nlines) != 0)
            continue;
        for (size_t i = 0; i < nlines; i++) {
            Dwarf_Line *l = dwarf_onesrcline(lines, i);
            Dwarf_Addr a;
            int lineno = 0;
            bool end = false;
            if (!l || dwarf_lineaddr(l, &a) != 0)
                continue;
            (void)dwarf_lineendsequence(l, &end);
            const char *file = end ? NULL : dwarf_linesrc(l, NULL, NULL);
            if (!end && (dwarf_lineno(l, &lineno) != 0 || lineno <= 0 || !file))
                continue;
            struct line_row row = {(uintptr_t)(a + bias), file ? debuginfo_file(file) : NULL,
                                   end ? 0u : (unsigned)lineno};
            if (!end && !row.file)
                continue; /* the pool is full */
            if (line_rows_total + n >= DEBUGINFO_MAX_ROWS || rows_push(&v, &n, &cap, row) < 0) {
                free(v);
                return PROBE_ENOMEM;
            }
        }
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), row_by_addr);
    *ret = v;
    *ret_n = n;
    return 0;
}

/* Does the module's own file have a DWARF line table (built with -g, not stripped)?
 * Separate debuginfo is not read for dumps: libc's takes hundreds of milliseconds,
 * which every program that enables the dumper would pay at start. */
static int
debuginfo_own_lines(Dwfl_Module *mod)
{
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    size_t shstrndx;
    Elf_Scn *scn = NULL;

    if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
        return 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name;
        if (gelf_getshdr(scn, &sh) && (name = elf_strptr(elf, shstrndx, sh.sh_name)) &&
            sh.sh_type != SHT_NOBITS &&
            (strcmp(name, ".debug_line") == 0 || strcmp(name, ".zdebug_line") == 0))
            return 1;
    }
    return 0;
}

int
debuginfo_pin_lines(const struct module *m)
{
    int r = 0;

    pthread_mutex_lock(&debuginfo_lock);
    for (unsigned k = 0; k < nline_tables; k++) {
        if (line_table_is(&line_tables[k], m))
            goto out; /* pinned already */
    }
    if (nline_tables == DEBUGINFO_MAX_PINNED) {
        r = PROBE_ENOMEM;
        goto out;
    }
    Dwfl *dwfl = debuginfo_session();
    Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, m->text_lo) : NULL;
    struct line_row *rows = NULL;
    size_t n = 0;
    if (!mod || !debuginfo_own_lines(mod) ||
        (r = debuginfo_collect_rows(mod, &rows, &n)) < 0 || n == 0) {
        free(rows);
        r = r < 0 ? r : PROBE_ENOENT;
        goto out;
    }
    struct line_table *lt = &line_tables[nline_tables];
    lt->bias = m->bias;
    lt->text_lo = m->text_lo;
    memcpy(lt->build_id, m->build_id, m->build_id_len);
    lt->build_id_len = m->build_id_len;
    lt->rows = rows;
    lt->n = n;
    line_rows_total += n;
    __atomic_store_n(&nline_tables, nline_tables + 1, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&debuginfo_lock);
    return r;
}

PROBE_SIGSAFE int
debuginfo_line_pinned(const struct module *m, uintptr_t addr, const char **ret_file,
                      unsigned *ret_line)
{
    unsigned count = __atomic_load_n(&nline_tables, __ATOMIC_ACQUIRE);

    for (unsigned k = 0; k < count; k++) {
        const struct line_table *lt = &line_tables[k];
        if (!line_table_is(lt, m))
            continue;
        size_t a = 0, b = lt->n;
        while (a < b) { /* the first row above addr */
            size_t mid = a + (b - a) / 2;
            if (lt->rows[mid].addr <= addr)
                a = mid + 1;
            else
                b = mid;
        }
        if (a == 0 || lt->rows[a - 1].line == 0)
            return PROBE_ENOENT;
        *ret_file = lt->rows[a - 1].file;
        *ret_line = lt->rows[a - 1].line;
        return 0;
    }
    return PROBE_ENOENT;
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
