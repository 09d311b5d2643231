/* Function names from the ELF symbol tables of loaded modules (elfsym.h).
 *
 * A module's file is opened once (the main program through /proc/self/exe, which
 * names the running file even if it was replaced), mapped read-only, and its
 * SHT_SYMTAB's functions copied into a sorted array with their names; the mapping is
 * then dropped. Lookups binary-search that array with the address less the module's
 * load bias. Symbols without a size are left out: an assembler label such as _init
 * would otherwise name the PLT after it. Modules are cached by path and bias, at most
 * ELFSYM_MAX_MODULES of them and ELFSYM_MAX_BYTES in all (the least recently used go
 * first), under one mutex: snapshots may be taken from several threads at once.
 * Never used in a signal handler. */
#include "elfsym.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <probe/common.h>

#define ELFSYM_MAX_MODULES 64
#define ELFSYM_MAX_BYTES ((size_t)256 << 20)

#if UINTPTR_MAX > 0xffffffffu
#define ELFSYM_CLASS ELFCLASS64
#else
#define ELFSYM_CLASS ELFCLASS32
#endif

/* One function: [start, start + size) in link-time addresses; name is an offset into
 * the module's names. */
struct elfsym_fn {
    uint64_t start;
    uint32_t size;
    uint32_t name;
    unsigned char rank;     /* for duplicates at one address: lower is preferred */
};

struct elfsym_cached {
    char *path;             /* NULL: a free slot */
    uintptr_t bias;
    uint64_t used;          /* LRU clock at the last lookup */
    struct elfsym_fn *fns;  /* sorted by start; NULL when the module has none */
    size_t nfns;
    char *names;
    size_t bytes;           /* memory held, for the bound */
};

static pthread_mutex_t elfsym_lock = PTHREAD_MUTEX_INITIALIZER;
static struct elfsym_cached elfsym_cache[ELFSYM_MAX_MODULES];
static uint64_t elfsym_clock;
static size_t elfsym_bytes;

/* ---- the loaded modules --------------------------------------------------------- */

struct elfsym_find {
    uintptr_t addr;
    struct elfsym_module *out;
    int index;
    int found;
};

static int
elfsym_find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct elfsym_find *f = data;
    int index = f->index++;

    (void)size;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;

        if (ph->p_type != PT_LOAD || f->addr - start >= ph->p_memsz)
            continue;
        /* The loader lists the program itself first, with no name. */
        const char *path = index == 0 ? "/proc/self/exe" : info->dlpi_name;

        if (!path || !path[0])
            return 1; /* the vDSO or another module without a file */
        size_t n = strlen(path);

        if (n >= sizeof(f->out->path))
            return 1;
        memcpy(f->out->path, path, n + 1);
        f->out->bias = info->dlpi_addr;
        f->found = 1;
        return 1;
    }
    return 0;
}

int
elfsym_find_module(uintptr_t addr, struct elfsym_module *out)
{
    struct elfsym_module m;
    struct elfsym_find f = {.addr = addr, .out = &m};

    dl_iterate_phdr(elfsym_find_cb, &f);
    if (!f.found)
        return PROBE_ENOENT;
    *out = m;
    return 0;
}

static int
elfsym_generation_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    uint64_t *out = data;

    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        *out = (uint64_t)info->dlpi_adds + (uint64_t)info->dlpi_subs;
    return 1;
}

uint64_t
elfsym_generation(void)
{
    static uint64_t unknown;
    uint64_t gen = UINT64_MAX;

    dl_iterate_phdr(elfsym_generation_cb, &gen);
    if (gen == UINT64_MAX) /* an old loader without the counts: always refresh */
        gen = __atomic_add_fetch(&unknown, 1, __ATOMIC_RELAXED) | (1ull << 63);
    return gen;
}

/* ---- reading a file's .symtab --------------------------------------------------- */

static int
elfsym_by_start(const void *pa, const void *pb)
{
    const struct elfsym_fn *a = pa, *b = pb;

    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

/* A section header's contents lie inside the file, aligned for @align. */
static int
elfsym_section_ok(const ElfW(Shdr) *sh, size_t size, size_t align)
{
    return sh->sh_offset <= size && sh->sh_size <= size - sh->sh_offset &&
           sh->sh_offset % align == 0;
}

/* Fill @e's functions from the ELF image @map of @size bytes. 0, or PROBE_ENOENT
 * when it is not a native ELF file with a .symtab, PROBE_ENOMEM. */
static int
elfsym_parse(const unsigned char *map, size_t size, struct elfsym_cached *e)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)(const void *)map;

    if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFSYM_CLASS || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
        eh->e_shoff == 0 || eh->e_shoff >= size ||
        eh->e_shoff % _Alignof(ElfW(Shdr)) != 0)
        return PROBE_ENOENT;

    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(const void *)(map + eh->e_shoff);
    size_t shnum = eh->e_shnum;

    if ((size - eh->e_shoff) / sizeof(*sh) < 1)
        return PROBE_ENOENT;
    if (shnum == 0) /* extended numbering: the count is in section 0 */
        shnum = sh[0].sh_size;
    if (shnum > (size - eh->e_shoff) / sizeof(*sh))
        return PROBE_ENOENT;

    const ElfW(Shdr) *symtab = NULL, *strtab;

    for (size_t i = 0; i < shnum && !symtab; i++)
        if (sh[i].sh_type == SHT_SYMTAB)
            symtab = &sh[i];
    if (!symtab || symtab->sh_entsize != sizeof(ElfW(Sym)) || symtab->sh_link >= shnum ||
        !elfsym_section_ok(symtab, size, _Alignof(ElfW(Sym))))
        return PROBE_ENOENT;
    strtab = &sh[symtab->sh_link];
    if (strtab->sh_type != SHT_STRTAB || !elfsym_section_ok(strtab, size, 1))
        return PROBE_ENOENT;

    const ElfW(Sym) *syms = (const ElfW(Sym) *)(const void *)(map + symtab->sh_offset);
    size_t nsyms = symtab->sh_size / sizeof(*syms);
    const char *str = (const char *)map + strtab->sh_offset;
    size_t strsize = strtab->sh_size;
    size_t nfns = 0, nbytes = 0;

    /* Two passes: count, then copy. */
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0, off = 0;

        for (size_t i = 0; i < nsyms; i++) {
            const ElfW(Sym) *s = &syms[i];
            unsigned type = ELF64_ST_TYPE(s->st_info);
            unsigned bind = ELF64_ST_BIND(s->st_info);

            if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF ||
                s->st_value == 0 || s->st_size == 0 || s->st_size > UINT32_MAX ||
                s->st_name == 0 || s->st_name >= strsize)
                continue;

            size_t n = strnlen(str + s->st_name, strsize - s->st_name);

            if (n == 0 || s->st_name + n >= strsize) /* unterminated */
                continue;
            if (pass == 1) {
                e->fns[k] = (struct elfsym_fn){
                    .start = s->st_value, .size = (uint32_t)s->st_size,
                    .name = (uint32_t)off,
                    .rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2};
                memcpy(e->names + off, str + s->st_name, n + 1);
            }
            k++;
            off += n + 1;
        }
        if (pass == 0) {
            if (k == 0)
                return PROBE_ENOENT;
            if (off > UINT32_MAX)
                return PROBE_ENOMEM;
            nfns = k;
            nbytes = off;
            e->fns = malloc(nfns * sizeof(*e->fns));
            e->names = malloc(nbytes);
            if (!e->fns || !e->names) {
                free(e->fns);
                free(e->names);
                e->fns = NULL;
                e->names = NULL;
                return PROBE_ENOMEM;
            }
        }
    }
    qsort(e->fns, nfns, sizeof(*e->fns), elfsym_by_start);

    /* One function per address: the preferred name of aliases. */
    size_t out = 0;

    for (size_t i = 0; i < nfns; i++)
        if (out == 0 || e->fns[out - 1].start != e->fns[i].start)
            e->fns[out++] = e->fns[i];
    e->nfns = out;
    e->bytes = out * sizeof(*e->fns) + nbytes;
    return 0;
}

/* Read @path's functions into @e (an empty slot). A file without any is cached too,
 * empty, so as not to be read again. */
static int
elfsym_load(const char *path, uintptr_t bias, struct elfsym_cached *e)
{
    int r = PROBE_ENOENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    e->path = strdup(path);
    if (!e->path)
        r = PROBE_ENOMEM;
    e->bias = bias;
    e->bytes = 0;
    if (fd >= 0 && e->path && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size > 0 && (uint64_t)st.st_size <= SIZE_MAX) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

        if (map != MAP_FAILED) {
            r = elfsym_parse(map, (size_t)st.st_size, e);
            munmap(map, (size_t)st.st_size);
        }
    }
    if (fd >= 0)
        close(fd);
    if (r == PROBE_ENOMEM) {
        free(e->path);
        e->path = NULL;
    }
    e->bytes += sizeof(*e) + (e->path ? strlen(e->path) + 1 : 0);
    return r == PROBE_ENOMEM ? r : 0;
}

static void
elfsym_evict(struct elfsym_cached *e)
{
    elfsym_bytes -= e->bytes;
    free(e->path);
    free(e->fns);
    free(e->names);
    memset(e, 0, sizeof(*e));
}

/* The cached module @path at @bias, read if new (lock held). NULL: out of memory. */
static struct elfsym_cached *
elfsym_get(const char *path, uintptr_t bias)
{
    struct elfsym_cached *free_slot = NULL, *oldest = NULL;

    for (size_t i = 0; i < ELFSYM_MAX_MODULES; i++) {
        struct elfsym_cached *e = &elfsym_cache[i];

        if (!e->path) {
            if (!free_slot)
                free_slot = e;
            continue;
        }
        if (e->bias == bias && strcmp(e->path, path) == 0) {
            e->used = ++elfsym_clock;
            return e;
        }
        if (!oldest || e->used < oldest->used)
            oldest = e;
    }
    if (!free_slot) {
        elfsym_evict(oldest);
        free_slot = oldest;
    }

    struct elfsym_cached *e = free_slot;

    if (elfsym_load(path, bias, e) < 0)
        return NULL;
    e->used = ++elfsym_clock;
    elfsym_bytes += e->bytes;
    /* Keep within the bound: drop the least recently used others. */
    while (elfsym_bytes > ELFSYM_MAX_BYTES) {
        struct elfsym_cached *lru = NULL;

        for (size_t i = 0; i < ELFSYM_MAX_MODULES; i++)
            if (elfsym_cache[i].path && &elfsym_cache[i] != e &&
                (!lru || elfsym_cache[i].used < lru->used))
                lru = &elfsym_cache[i];
        if (!lru)
            break;
        elfsym_evict(lru);
    }
    if (elfsym_bytes > ELFSYM_MAX_BYTES) { /* alone too big: keep it empty */
        elfsym_bytes -= e->bytes;
        free(e->fns);
        free(e->names);
        e->fns = NULL;
        e->names = NULL;
        e->nfns = 0;
        e->bytes = sizeof(*e) + strlen(e->path) + 1;
        elfsym_bytes += e->bytes;
    }
    return e;
}

/* The function of @e holding link-time address @rel, or NULL. */
static const struct elfsym_fn *
elfsym_search(const struct elfsym_cached *e, uint64_t rel)
{
    size_t lo = 0, hi = e->nfns;

    while (lo < hi) { /* the first function starting after rel */
        size_t mid = lo + (hi - lo) / 2;

        if (e->fns[mid].start <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;

    const struct elfsym_fn *fn = &e->fns[lo - 1];

    return rel - fn->start < fn->size ? fn : NULL;
}

int
elfsym_lookup(uintptr_t addr, char *buf, size_t len)
{
    struct elfsym_module m;
    int r = PROBE_ENOENT;

    if (len == 0 || elfsym_find_module(addr, &m) < 0)
        return PROBE_ENOENT;
    pthread_mutex_lock(&elfsym_lock);

    const struct elfsym_cached *e = elfsym_get(m.path, m.bias);

    if (!e) {
        r = PROBE_ENOMEM;
    } else {
        const struct elfsym_fn *fn = elfsym_search(e, (uint64_t)(addr - m.bias));

        if (fn) {
            const char *name = e->names + fn->name;
            size_t n = strlen(name);

            if (n >= len)
                n = len - 1;
            memcpy(buf, name, n);
            buf[n] = '\0';
            r = 0;
        }
    }
    pthread_mutex_unlock(&elfsym_lock);
    return r;
}

/* fork(): no other thread may hold the cache's lock across it (symbolize.c). */
void
elfsym_fork_lock(int lock)
{
    if (lock)
        pthread_mutex_lock(&elfsym_lock);
    else
        pthread_mutex_unlock(&elfsym_lock);
}
