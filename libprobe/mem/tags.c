/* The tag registry: a fixed array of PROBE_MEM_MAX_TAGS tags, looked up without a
 * lock (a tag once published never changes) and added under a mutex. */
#include "tags.h"

#include <pthread.h>
#include <string.h>

#include "msnap.h"

static struct mem_tag tags[PROBE_MEM_MAX_TAGS];
static unsigned ntags; /* published with release after the tag is written */
static pthread_mutex_t tags_mutex = PTHREAD_MUTEX_INITIALIZER;
uint64_t mem_tags_dropped;

struct mem_tag *
mem_tag_get(unsigned id)
{
    return id && id <= PROBE_MEM_MAX_TAGS ? &tags[id - 1] : NULL;
}

unsigned
mem_tag_count(void)
{
    return __atomic_load_n(&ntags, __ATOMIC_ACQUIRE);
}

static unsigned
tag_find(const char *name, size_t len, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (strncmp(tags[i].name, name, len) == 0 && tags[i].name[len] == '\0')
            return i + 1;
    }
    return 0;
}

COLD unsigned
mem_tag_intern(const char *name)
{
    size_t len = strnlen(name, PROBE_MEM_TAG_MAX_LEN);
    unsigned id = tag_find(name, len, mem_tag_count());

    if (id)
        return id;
    pthread_mutex_lock(&tags_mutex);
    id = tag_find(name, len, ntags);
    if (!id && ntags < PROBE_MEM_MAX_TAGS) {
        memcpy(tags[ntags].name, name, len);
        tags[ntags].name[len] = '\0';
        id = ntags + 1;
        __atomic_store_n(&ntags, id, __ATOMIC_RELEASE);
        mem_report_hook_install();
    }
    pthread_mutex_unlock(&tags_mutex);
    if (!id)
        __atomic_fetch_add(&mem_tags_dropped, 1, __ATOMIC_RELAXED);
    return id;
}

void
mem_tags_lock(void)
{
    pthread_mutex_lock(&tags_mutex);
}

void
mem_tags_unlock(void)
{
    pthread_mutex_unlock(&tags_mutex);
}
