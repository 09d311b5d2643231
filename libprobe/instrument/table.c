/* The address → site table of libprobe-instrument (table.h): the slow path that adds
 * a function the first time any thread calls it. */
#include "table.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "symbol.h"

struct table_slot table_slots[TABLE_SLOTS];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned nfuncs;         /* under the lock */
static int full;                /* set once under the lock, read without */

/* Sites never move and are never freed: the registry points at them for the life of
 * the process, as at a static descriptor. They come in chunks, under the lock. */
#define CHUNK_SITES 256
static struct probe__site *chunk;
static unsigned chunk_used = CHUNK_SITES;

static struct probe__site overflow_site = {
    PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, 0, 0,
    TABLE_OVERFLOW_NAME, TABLE_OVERFLOW_NAME, "?"};

NOINSTR static void
atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

NOINSTR static void
atfork_release(void)
{
    pthread_mutex_unlock(&lock);
}

/* The lock is a leaf (nothing else is taken under it), so a fork in another thread
 * is all that could leave it held in a child. */
NOINSTR __attribute__((constructor)) static void
table_init(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

/* A new site for @fn, its strings in one allocation. Called with the lock held. */
NOINSTR static struct probe__site *
site_new(const char *name, const char *file, unsigned line)
{
    size_t nlen = strlen(name) + 1, flen = strlen(file) + 1;
    char *s = malloc(nlen + flen);

    if (!s)
        return NULL;
    if (chunk_used == CHUNK_SITES) {
        struct probe__site *c = calloc(CHUNK_SITES, sizeof(*c));
        if (!c) {
            free(s);
            return NULL;
        }
        chunk = c;
        chunk_used = 0;
    }
    memcpy(s, name, nlen);
    memcpy(s + nlen, file, flen);
    struct probe__site *site = &chunk[chunk_used++];
    *site = (struct probe__site){PROBE__SITE_MAGIC, PROBE_KIND_SCOPE, line, 0,
                                 s, s, s + nlen};
    return site;
}

NOINSTR struct probe__site *
table_add(uintptr_t fn)
{
    char name[512], file[1024];
    unsigned line = 0;
    struct probe__site *site;

    if (__atomic_load_n(&full, __ATOMIC_RELAXED))
        return &overflow_site;
    /* Named outside the lock: naming takes the loader's lock, which a dlopen()ing
     * thread holds while its constructors run instrumented code. */
    if (probe__symbol_describe((const void *)fn, name, sizeof(name), file, sizeof(file),
                               &line) < 0) {
        strcpy(name, "?");
        strcpy(file, "?");
    }
    pthread_mutex_lock(&lock);
    if ((site = table_find(fn)))
        goto out; /* another thread added it meanwhile */
    if (nfuncs >= TABLE_MAX_FUNCS) {
        __atomic_store_n(&full, 1, __ATOMIC_RELAXED);
        site = &overflow_site;
        goto out;
    }
    if (!(site = site_new(name, file, line))) {
        site = &overflow_site; /* not kept: memory may come back */
        goto out;
    }
    uint32_t i = table_hash(fn);
    while (table_slots[i].fn)
        i = (i + 1) & (TABLE_SLOTS - 1);
    table_slots[i].site = site;
    __atomic_store_n(&table_slots[i].fn, fn, __ATOMIC_RELEASE);
    nfuncs++;
out:
    pthread_mutex_unlock(&lock);
    return site;
}
