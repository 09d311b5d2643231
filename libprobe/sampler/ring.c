/* A thread's sample ring: one writer (the thread's signal handler), one reader (the
 * drainer, under the sampler lock). Preallocated with mmap so untouched pages cost
 * nothing; variable-length records of 64-bit words that may wrap around. */
#include "sampler.h"

#include <string.h>
#include <sys/mman.h>

#include "core/atomics.h"

int
ring_init(struct ring *r, unsigned samples)
{
    uint64_t words = 1;
    uint64_t want = (uint64_t)samples * SAMPLER_WORDS_PER_SAMPLE;

    while (words < want)
        words <<= 1;
    void *p = mmap(NULL, words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return PROBE_ENOMEM;
    r->w = p;
    r->mask = words - 1;
    r->head = r->tail = 0;
    return 0;
}

void
ring_free(struct ring *r)
{
    if (r->w)
        munmap(r->w, (r->mask + 1) * sizeof(uint64_t));
    r->w = NULL;
}

void
ring_clear(struct ring *r)
{
    store_release(&r->tail, load_acquire(&r->head));
}

static inline size_t
rec_words(const struct sample_rec *s)
{
    return 2 + (s->blocked != 0) + s->npcs + (s->nscopes + 1) / 2;
}

PROBE_SIGSAFE int
ring_push(struct ring *r, const struct sample_rec *s)
{
    uint64_t head = r->head, tail = load_acquire(&r->tail);
    size_t need = rec_words(s);

    if (need > r->mask + 1 - (head - tail))
        return -1;
    uint64_t at = head;
    r->w[at++ & r->mask] = s->weight;
    r->w[at++ & r->mask] = (uint64_t)s->npcs | (uint64_t)s->nscopes << 16 |
                           (uint64_t)(s->blocked != 0) << 32;
    if (s->blocked)
        r->w[at++ & r->mask] = s->ns;
    for (unsigned i = 0; i < s->npcs; i++)
        r->w[at++ & r->mask] = s->pcs[i];
    for (unsigned i = 0; i < s->nscopes; i += 2) {
        uint64_t hi = i + 1 < s->nscopes ? s->scopes[i + 1] : 0;
        r->w[at++ & r->mask] = s->scopes[i] | hi << 32;
    }
    store_release(&r->head, at);
    return 0;
}

int
ring_pop(struct ring *r, struct sample_rec *out)
{
    uint64_t tail = r->tail, head = load_acquire(&r->head);

    if (tail == head)
        return 0;
    out->weight = r->w[tail++ & r->mask];
    uint64_t c = r->w[tail++ & r->mask];
    out->npcs = (unsigned)(c & 0xffff);
    out->nscopes = (unsigned)(c >> 16 & 0xffff);
    out->blocked = (unsigned)(c >> 32 & 1);
    out->ns = out->blocked ? r->w[tail++ & r->mask] : 0;
    if (out->npcs > PROBE_SAMPLER_DEPTH_MAX)
        out->npcs = PROBE_SAMPLER_DEPTH_MAX; /* never written: a bug if it happens */
    if (out->nscopes > SAMPLER_MAX_SCOPES)
        out->nscopes = SAMPLER_MAX_SCOPES;
    for (unsigned i = 0; i < out->npcs; i++)
        out->pcs[i] = (uintptr_t)r->w[tail++ & r->mask];
    for (unsigned i = 0; i < out->nscopes; i += 2) {
        uint64_t v = r->w[tail++ & r->mask];
        out->scopes[i] = (uint32_t)v;
        if (i + 1 < out->nscopes)
            out->scopes[i + 1] = (uint32_t)(v >> 32);
    }
    store_release(&r->tail, tail);
    return 1;
}
