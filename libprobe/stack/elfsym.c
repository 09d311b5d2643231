/* Function names from the ELF symbol tables of loaded modules (elfsym.h).
 *
 * A module's file is opened once (the main program through /proc/self/exe, which
 * names the running file even if it was replaced; a module named without an absolute
 * path through the file /proc/self/maps shows mapped), mapped read-only, and its
 * SHT_SYMTAB's functions copied into a sorted array with their names; the mapping is
 * then dropped. A file whose GNU build-id is not the loaded module's (replaced on
 * disk, or /proc/self/exe being an explicit loader) gives no names rather than wrong
 * ones. Lookups binary-search that array with the address less the module's
 * load bias. Symbols without a size are left out: an assembler label such as _init
 * would otherwise name the PLT after it. Modules are cached by path, bias and
 * build-id, at most
 * ELFSYM_MAX_MODULES of them and ELFSYM_MAX_BYTES in all (the least recently used go
 * first), under one mutex: snapshots may be taken from several threads at once.
 * Never used in a signal handler. */
#include "elfsym.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <probe/common.h>

#include "core/atomics.h"

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
    int pinned;             /* published for signal handlers: never evicted */
    uintptr_t bias;
    unsigned char build_id[MODULES_BUILD_ID_MAX]; /* the loaded module's: with path */
    unsigned build_id_len;  /* and bias, what makes an entry the same module */
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
/* The file's GNU build-id, from its SHT_NOTE sections: its length, or 0. */
static unsigned
elfsym_file_build_id(const unsigned char *map, size_t size, const ElfW(Shdr) *sh,
                     size_t shnum, unsigned char *out)
{
    for (size_t i = 0; i < shnum; i++) {
        if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset > size ||
            sh[i].sh_size > size - sh[i].sh_offset)
            continue;
        unsigned n = modules_note_build_id(map + sh[i].sh_offset, sh[i].sh_size, out);
        if (n)
            return n;
    }
    return 0;
}

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

    /* The file must be the module loaded: same build-id (when it has one). */
    unsigned char id[MODULES_BUILD_ID_MAX];
    unsigned idlen = elfsym_file_build_id(map, size, sh, shnum, id);
    if (idlen != e->build_id_len || memcmp(id, e->build_id, idlen) != 0)
        return PROBE_ENOENT;

    const ElfW(Shdr) *symtab = NULL, *strtab;

    /* .symtab, else (a stripped library) .dynsym: what dladdr() would find, read
     * here so that the fault dumper needs no dladdr(). */
    for (size_t i = 0; i < shnum && !symtab; i++)
        if (sh[i].sh_type == SHT_SYMTAB)
            symtab = &sh[i];
    for (size_t i = 0; i < shnum && !symtab; i++)
        if (sh[i].sh_type == SHT_DYNSYM)
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
elfsym_load(const char *path, const struct module *m, struct elfsym_cached *e)
{
    int r = PROBE_ENOENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    e->path = strdup(m->path); /* the key, even when @path was another file */
    if (!e->path)
        r = PROBE_ENOMEM;
    e->bias = m->bias;
    memcpy(e->build_id, m->build_id, m->build_id_len);
    e->build_id_len = m->build_id_len;
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
elfsym_get(const struct module *m)
{
    struct elfsym_cached *free_slot = NULL, *oldest = NULL;

    for (size_t i = 0; i < ELFSYM_MAX_MODULES; i++) {
        struct elfsym_cached *e = &elfsym_cache[i];

        if (!e->path) {
            if (!free_slot)
                free_slot = e;
            continue;
        }
        if (e->bias == m->bias && e->build_id_len == m->build_id_len &&
            memcmp(e->build_id, m->build_id, m->build_id_len) == 0 &&
            strcmp(e->path, m->path) == 0) {
            e->used = ++elfsym_clock;
            return e;
        }
        if (!e->pinned && (!oldest || e->used < oldest->used))
            oldest = e;
    }
    if (!free_slot && !oldest)
        return NULL; /* every slot pinned */
    if (!free_slot) {
        elfsym_evict(oldest);
        free_slot = oldest;
    }

    struct elfsym_cached *e = free_slot;

    /* The main program through /proc/self/exe, which names the running file even
     * if it was replaced; but started through an explicit loader, that is the
     * loader, whose build-id is not the program's: then its mapped file's path. */
    int r = elfsym_load(m->main_program ? "/proc/self/exe" : m->path, m, e);
    if (r == 0 && !e->nfns && m->main_program) {
        free(e->path);
        e->path = NULL;
        r = elfsym_load(m->path, m, e);
    }
    if (r < 0)
        return NULL;
    e->used = ++elfsym_clock;
    elfsym_bytes += e->bytes;
    /* Keep within the bound: drop the least recently used others. */
    while (elfsym_bytes > ELFSYM_MAX_BYTES) {
        struct elfsym_cached *lru = NULL;

        for (size_t i = 0; i < ELFSYM_MAX_MODULES; i++)
            if (elfsym_cache[i].path && &elfsym_cache[i] != e && !elfsym_cache[i].pinned &&
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
    struct module m;
    int r = PROBE_ENOENT;

    if (len == 0 || modules_find(addr, &m) < 0)
        return PROBE_ENOENT;
    pthread_mutex_lock(&elfsym_lock);

    const struct elfsym_cached *e = elfsym_get(&m);

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

/* ---- pinned tables, for signal handlers ----------------------------------------- */

/* A cached module's table, published for lock-free readers: appended only, and its
 * cache entry is never evicted, so what a reader sees stays valid. */
struct elfsym_pinned {
    uintptr_t bias, text_lo;
    unsigned char build_id[MODULES_BUILD_ID_MAX];
    unsigned build_id_len;
    const struct elfsym_fn *fns;
    size_t nfns;
    const char *names;
};

#define ELFSYM_MAX_PINNED (ELFSYM_MAX_MODULES * 3 / 4) /* the rest stay for snapshots */

static struct elfsym_pinned pinned[ELFSYM_MAX_PINNED];
static unsigned npinned;        /* published with release */

static int
pinned_is(const struct elfsym_pinned *p, const struct module *m)
{
    return p->bias == m->bias && p->text_lo == m->text_lo &&
           p->build_id_len == m->build_id_len &&
           memcmp(p->build_id, m->build_id, m->build_id_len) == 0;
}

int
elfsym_pin_loaded(void)
{
    unsigned n;
    struct module *copy;
    int r = modules_copy(&copy, &n); /* reading the files takes long */

    if (r < 0)
        return r;
    pthread_mutex_lock(&elfsym_lock);
    for (unsigned i = 0; i < n; i++) {
        const struct module *m = &copy[i];
        unsigned k;
        for (k = 0; k < npinned && !pinned_is(&pinned[k], m); k++)
            ;
        if (k < npinned)
            continue;
        if (npinned == ELFSYM_MAX_PINNED) {
            r = PROBE_ENOMEM;
            break;
        }
        struct elfsym_cached *e = elfsym_get(m);
        if (!e) {
            r = PROBE_ENOMEM;
            continue;
        }
        e->pinned = 1;
        struct elfsym_pinned *p = &pinned[npinned];
        p->bias = m->bias;
        p->text_lo = m->text_lo;
        memcpy(p->build_id, m->build_id, m->build_id_len);
        p->build_id_len = m->build_id_len;
        p->fns = e->fns;
        p->nfns = e->nfns;
        p->names = e->names;
        store_release(&npinned, npinned + 1);
    }
    pthread_mutex_unlock(&elfsym_lock);
    free(copy);
    return r;
}

PROBE_SIGSAFE int
elfsym_lookup_pinned(const struct module *m, uintptr_t addr, const char **ret_name,
                     uintptr_t *ret_offset)
{
    unsigned n = load_acquire(&npinned);

    for (unsigned k = 0; k < n; k++) {
        const struct elfsym_pinned *p = &pinned[k];
        if (!pinned_is(p, m))
            continue;
        struct elfsym_cached e = {.fns = (struct elfsym_fn *)p->fns, .nfns = p->nfns};
        uint64_t rel = (uint64_t)(addr - m->bias);
        const struct elfsym_fn *fn = elfsym_search(&e, rel);
        if (!fn)
            return PROBE_ENOENT;
        *ret_name = p->names + fn->name;
        *ret_offset = (uintptr_t)(rel - fn->start);
        return 0;
    }
    return PROBE_ENOENT;
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
