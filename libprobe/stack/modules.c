/* The loaded modules (modules.h): one dl_iterate_phdr() scan into the table no reader
 * holds, then published; unloaded modules go to a bounded history.
 *
 * Two tables: readers count themselves in on the published one (modules_enter) and
 * check it is still the published one afterwards, a refresh publishes the other and,
 * next time, waits for the old one's readers to leave before rewriting it. With
 * sequentially consistent increments and loads on both sides, a reader either is seen
 * by the refresh's wait or sees the new table. */
#include "modules.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <probe/common.h>

#include "cfi.h"
#include "core/atomics.h"

/* How long a refresh waits for the readers of the table it is about to rewrite. */
#define MODULES_WAIT_NS 1000000000L

static pthread_mutex_t refresh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module_table tables[2];
static unsigned readers[2];
static int published = -1;      /* index of the published table, -1 before the first */
static uint64_t generation;

/* Unloaded modules, newest last (a ring), under refresh_lock. */
static struct module history[MODULES_HISTORY];
static unsigned nhistory, history_next;

/* dl_iterate_phdr's load and unload counts at the last refresh. */
static unsigned long long seen_adds, seen_subs;
static int seen_valid;

/* ---- interned paths: a module's path lives as long as the library -------------- */

struct path_ent {
    struct path_ent *next;
    char s[];
};

static struct path_ent *paths;

/* @s, stored once (under refresh_lock). "" when out of memory. */
static const char *
intern_path(const char *s)
{
    for (struct path_ent *p = paths; p; p = p->next)
        if (strcmp(p->s, s) == 0)
            return p->s;
    size_t n = strlen(s);
    struct path_ent *p = malloc(sizeof(*p) + n + 1);
    if (!p)
        return "";
    memcpy(p->s, s, n + 1);
    p->next = paths;
    paths = p;
    return p->s;
}

/* The absolute path of the file mapped at @addr, from /proc/self/maps, into @out:
 * -1 if none (the vDSO, anonymous memory). " (deleted)" is dropped. */
static int
maps_path(uintptr_t addr, char *out, size_t len)
{
    char line[PATH_MAX + 128];
    FILE *f = fopen("/proc/self/maps", "re");
    int r = -1;

    if (!f)
        return -1;
    while (r < 0 && fgets(line, sizeof(line), f)) {
        unsigned long a, b;
        int at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &at) < 2 || !at ||
            addr < a || addr >= b)
            continue;
        char *path = line + at;
        path[strcspn(path, "\n")] = '\0';
        char *deleted = strstr(path, " (deleted)");
        if (deleted && !deleted[10])
            *deleted = '\0';
        if (path[0] == '/' && strlen(path) < len) {
            strcpy(out, path);
            r = 0;
        }
        break;
    }
    fclose(f);
    return r;
}

/* ---- build-ids ------------------------------------------------------------------ */

unsigned
modules_note_build_id(const unsigned char *p, size_t len, unsigned char *out)
{
    size_t at = 0;

    while (len - at >= sizeof(ElfW(Nhdr))) {
        ElfW(Nhdr) nh;
        memcpy(&nh, p + at, sizeof(nh));
        at += sizeof(nh);
        size_t name = (nh.n_namesz + 3u) & ~(size_t)3, desc = (nh.n_descsz + 3u) & ~(size_t)3;
        if (name > len - at || desc > len - at - name)
            return 0;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(p + at, "GNU", 4) == 0 && nh.n_descsz > 0 &&
            nh.n_descsz <= MODULES_BUILD_ID_MAX) {
            memcpy(out, p + at + name, nh.n_descsz);
            return nh.n_descsz;
        }
        at += name + desc;
    }
    return 0;
}

PROBE_SIGSAFE void
module_build_id_hex(const struct module *m, char *hex)
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned k = 0; k < m->build_id_len; k++) {
        hex[2 * k] = digits[m->build_id[k] >> 4];
        hex[2 * k + 1] = digits[m->build_id[k] & 15];
    }
    hex[2 * m->build_id_len] = '\0';
}

/* Is [a, a + len) inside one of @m's loaded segments? */
static int
module_holds(const struct module *m, uintptr_t a, size_t len)
{
    for (unsigned i = 0; i < m->nseg; i++)
        if (a >= m->seg[i].lo && a <= m->seg[i].hi && len <= m->seg[i].hi - a)
            return 1;
    return 0;
}

/* The build-id from the module's PT_NOTE segments in memory: only notes that lie
 * inside a loaded segment are read (a PT_NOTE may point anywhere). */
static void
module_read_build_id(const struct dl_phdr_info *info, struct module *m)
{
    m->build_id_len = 0;
    for (ElfW(Half) k = 0; k < info->dlpi_phnum && !m->build_id_len; k++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_NOTE || ph->p_memsz == 0 || a < info->dlpi_addr ||
            !module_holds(m, a, ph->p_memsz))
            continue;
        m->build_id_len = modules_note_build_id((const unsigned char *)a, ph->p_memsz,
                                                m->build_id);
    }
}

/* ---- the scan ------------------------------------------------------------------- */

struct scan {
    struct module_table *t;
    int index;
};

static int
scan_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct scan *sc = arg;
    int index = sc->index++;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t pmask = (uintptr_t)(page > 0 ? page : 4096) - 1;

    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
        seen_adds = info->dlpi_adds;
        seen_subs = info->dlpi_subs;
        seen_valid = 1;
    }
    if (sc->t->n >= MODULES_MAX)
        return 1; /* the rest stay unknown: frame pointers and module-less names */
    struct module *m = &sc->t->m[sc->t->n];
    memset(m, 0, sizeof(*m));
    m->text_lo = UINTPTR_MAX;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_GNU_EH_FRAME)
            m->eh_hdr = lo;
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0 || m->nseg == MODULES_MAX_SEGMENTS ||
            lo + ph->p_memsz < lo)
            continue;
        struct module_segment *s = &m->seg[m->nseg++];
        /* Page-aligned, as the kernel maps it: the file offset moves down with it. */
        uintptr_t skew = ph->p_vaddr & pmask;
        if (skew > ph->p_offset)
            skew = 0;
        s->lo = lo - skew;
        s->hi = (lo + ph->p_memsz + pmask) & ~pmask;
        s->offset = ph->p_offset - skew;
        s->exec = (ph->p_flags & PF_X) != 0;
        if (s->exec && s->lo < m->text_lo)
            m->text_lo = s->lo;
        if (s->exec && s->hi > m->text_hi)
            m->text_hi = s->hi;
    }
    if (m->text_lo >= m->text_hi)
        return 0; /* no code: nothing to unwind or name */
    m->bias = info->dlpi_addr;
    m->main_program = index == 0;
    module_read_build_id(info, m);

    char buf[PATH_MAX];
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    m->name = intern_path(index == 0 ? "" : name);
    if (index == 0) {
        /* The file its code is mapped from: the program, also when it was started
         * through an explicit loader (then /proc/self/exe is the loader). */
        if (maps_path(m->text_lo, buf, sizeof(buf)) < 0) {
            ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
            buf[n > 0 ? n : 0] = '\0';
        }
        m->path = intern_path(buf[0] ? buf : "/proc/self/exe");
    } else if (name[0] == '/') {
        m->path = m->name;
    } else {
        /* The vDSO, or dlopen("./x.so") before a chdir: the mapped file, if any. */
        m->path = intern_path(maps_path(m->text_lo, buf, sizeof(buf)) == 0 ? buf : name);
    }
    cfi_parse_table(m);
    sc->t->n++;
    return 0;
}

static int
same_module(const struct module *a, const struct module *b)
{
    return a->bias == b->bias && a->text_lo == b->text_lo && a->path == b->path &&
           a->build_id_len == b->build_id_len &&
           memcmp(a->build_id, b->build_id, a->build_id_len) == 0;
}

/* Modules of @old that @new lacks go to the history (under refresh_lock). */
static void
remember_unloaded(const struct module_table *old, const struct module_table *new)
{
    for (unsigned i = 0; i < old->n; i++) {
        const struct module *m = &old->m[i];
        unsigned j;
        for (j = 0; j < new->n && !same_module(m, &new->m[j]); j++)
            ;
        if (j < new->n)
            continue;
        for (j = 0; j < nhistory && !same_module(m, &history[j]); j++)
            ;
        if (j < nhistory)
            continue; /* loaded again at the same place, unloaded again */
        history[history_next] = *m;
        history[history_next].cfi_table = 0; /* its memory is gone */
        history[history_next].eh_hdr = 0;
        history_next = (history_next + 1) % MODULES_HISTORY;
        if (nhistory < MODULES_HISTORY)
            nhistory++;
    }
}

static void
wait_ns(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

int
modules_refresh(void)
{
    pthread_mutex_lock(&refresh_lock);
    int cur = __atomic_load_n(&published, __ATOMIC_SEQ_CST);
    int next = cur == 0 ? 1 : 0;
    /* Readers of @next entered before @cur was published: wait for them to leave. */
    for (long waited = 0; __atomic_load_n(&readers[next], __ATOMIC_SEQ_CST); waited += 100000) {
        if (waited >= MODULES_WAIT_NS) {
            pthread_mutex_unlock(&refresh_lock);
            return PROBE_EBUSY;
        }
        wait_ns(100000);
    }
    struct module_table *t = &tables[next];
    struct scan sc = {.t = t};
    t->n = 0;
    dl_iterate_phdr(scan_module, &sc);
    /* Sorted by address, for binary searches (insertion: mostly in order already). */
    for (unsigned i = 1; i < t->n; i++) {
        struct module m = t->m[i];
        unsigned j = i;
        for (; j > 0 && t->m[j - 1].text_lo > m.text_lo; j--)
            t->m[j] = t->m[j - 1];
        t->m[j] = m;
    }
    t->generation = __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    if (cur >= 0)
        remember_unloaded(&tables[cur], t);
    __atomic_store_n(&published, next, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&refresh_lock);
    return 0;
}

uint64_t
modules_generation(void)
{
    return __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
}

static int
counts_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    int *changed = arg;

    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        *changed = !seen_valid || info->dlpi_adds != seen_adds || info->dlpi_subs != seen_subs;
    return 1; /* the counts are the same in every entry: one is enough */
}

int
modules_refresh_if_changed(void)
{
    int changed = 1;

    if (__atomic_load_n(&published, __ATOMIC_ACQUIRE) >= 0) {
        pthread_mutex_lock(&refresh_lock);
        dl_iterate_phdr(counts_cb, &changed);
        pthread_mutex_unlock(&refresh_lock);
    }
    return changed ? modules_refresh() : 0;
}

/* ---- readers -------------------------------------------------------------------- */

PROBE_SIGSAFE const struct module_table *
modules_enter(unsigned *token)
{
    for (;;) {
        int cur = __atomic_load_n(&published, __ATOMIC_SEQ_CST);
        if (cur < 0)
            return NULL;
        __atomic_add_fetch(&readers[cur], 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&published, __ATOMIC_SEQ_CST) == cur) {
            *token = (unsigned)cur;
            return &tables[cur];
        }
        __atomic_sub_fetch(&readers[cur], 1, __ATOMIC_SEQ_CST);
    }
}

PROBE_SIGSAFE void
modules_leave(unsigned token)
{
    __atomic_sub_fetch(&readers[token & 1], 1, __ATOMIC_RELEASE);
}

PROBE_SIGSAFE const struct module *
modules_of_pc(const struct module_table *t, uintptr_t pc)
{
    unsigned a = 0, b = t ? t->n : 0;

    while (a < b) { /* the first module starting above pc */
        unsigned mid = a + (b - a) / 2;
        if (t->m[mid].text_lo <= pc)
            a = mid + 1;
        else
            b = mid;
    }
    if (a == 0)
        return NULL;
    const struct module *m = &t->m[a - 1];
    if (pc >= m->text_hi)
        return NULL;
    const struct module_segment *s = module_segment_of(m, pc);
    return s && s->exec ? m : NULL;
}

PROBE_SIGSAFE const struct module *
modules_of_addr(const struct module_table *t, uintptr_t a)
{
    for (unsigned i = 0; t && i < t->n; i++)
        if (module_segment_of(&t->m[i], a))
            return &t->m[i];
    return NULL;
}

PROBE_SIGSAFE const struct module_segment *
module_segment_of(const struct module *m, uintptr_t addr)
{
    for (unsigned i = 0; i < m->nseg; i++)
        if (addr >= m->seg[i].lo && addr < m->seg[i].hi)
            return &m->seg[i];
    return NULL;
}

int
modules_copy(struct module **ret, unsigned *ret_n)
{
    unsigned token;
    const struct module_table *t = modules_enter(&token);

    if (!t)
        return PROBE_ENOENT;
    unsigned n = t->n;
    struct module *copy = malloc((n ? n : 1) * sizeof(*copy));
    if (copy)
        memcpy(copy, t->m, n * sizeof(*copy));
    modules_leave(token);
    if (!copy)
        return PROBE_ENOMEM;
    *ret = copy;
    *ret_n = n;
    return 0;
}

int
modules_find(uintptr_t addr, struct module *out)
{
    unsigned token;
    int r = PROBE_ENOENT;
    const struct module_table *t = modules_enter(&token);

    if (t) {
        const struct module *m = modules_of_addr(t, addr);
        if (m) {
            *out = *m;
            r = 0;
        }
        modules_leave(token);
    }
    if (r == 0)
        return 0;
    pthread_mutex_lock(&refresh_lock);
    for (unsigned k = 1; k <= nhistory; k++) { /* newest first */
        const struct module *m =
            &history[(history_next + MODULES_HISTORY - k) % MODULES_HISTORY];
        if (module_segment_of(m, addr)) {
            *out = *m;
            r = 0;
            break;
        }
    }
    pthread_mutex_unlock(&refresh_lock);
    return r;
}

/* ---- fork ----------------------------------------------------------------------- */

void
modules_fork_lock(int lock)
{
    if (lock)
        pthread_mutex_lock(&refresh_lock);
    else
        pthread_mutex_unlock(&refresh_lock);
}

/* The child has one thread: no reader is left in either table. */
void
modules_atfork_child(void)
{
    readers[0] = readers[1] = 0;
}
