/* A small word indexer that knows nothing of libprobe, for `probe run`: four threads
 * each generate a slice of a corpus, tokenize it, hash every word and sort the
 * words by hash to count them (noinline keeps each stage a frame of its own in an
 * optimised build); main merges the counts and prints the most frequent.
 *
 *   probe run build/examples/indexer          (a call tree of where the time went)
 *   build/examples/indexer [THREADS] [MB]     (defaults: 4 threads, 64 MiB)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct word {
    uint64_t hash;
    uint32_t off, len;
} word;

typedef struct slice {
    unsigned seed;
    size_t size;
    char *text;
    word *words;
    size_t nwords;
} slice;

static const char *const syllables[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo",
                                        "an", "el", "is", "on", "ur", "th", "qu", "ex"};

static uint32_t
next_random(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Words of 1..4 syllables, Zipf-ish: small numbers are much more common. */
static __attribute__((noinline)) void
generate_corpus(slice *s)
{
    uint32_t state = s->seed * 2654435761u + 1;
    size_t n = 0;

    while (n + 16 < s->size) {
        uint32_t r = next_random(&state);
        unsigned nsyl = 1 + (r & 3);

        for (unsigned i = 0; i < nsyl; i++) {
            uint32_t pick = next_random(&state);
            const char *syl = syllables[pick % 5 == 0 ? (pick >> 4) % 16 : pick % 4];

            s->text[n++] = syl[0];
            s->text[n++] = syl[1];
        }
        s->text[n++] = (r >> 8) % 11 == 0 ? '\n' : ' ';
    }
    s->text[n] = '\0';
    s->size = n;
}

static __attribute__((noinline)) size_t
tokenize(slice *s)
{
    size_t cap = s->size / 3 + 1, n = 0;

    s->words = malloc(cap * sizeof(*s->words));
    if (!s->words)
        return 0;
    for (size_t i = 0; i < s->size;) {
        while (i < s->size && (s->text[i] == ' ' || s->text[i] == '\n'))
            i++;
        size_t start = i;

        while (i < s->size && s->text[i] != ' ' && s->text[i] != '\n')
            i++;
        if (i > start && n < cap)
            s->words[n++] = (word){0, (uint32_t)start, (uint32_t)(i - start)};
    }
    return n;
}

/* FNV-1a, a few rounds so that hashing is a visible share of the work. */
static uint64_t
hash_word(const char *p, size_t len)
{
    uint64_t h = 14695981039346656037ull;

    for (int round = 0; round < 12; round++) {
        for (size_t i = 0; i < len; i++) {
            h ^= (unsigned char)p[i];
            h *= 1099511628211ull;
        }
    }
    return h;
}

static __attribute__((noinline)) void
hash_words(slice *s)
{
    for (size_t i = 0; i < s->nwords; i++)
        s->words[i].hash = hash_word(s->text + s->words[i].off, s->words[i].len);
}

/* LSD radix sort on the hash, a byte per pass. */
static __attribute__((noinline)) void
sort_words(slice *s)
{
    word *tmp = malloc(s->nwords * sizeof(*tmp)), *from = s->words, *to = tmp;

    if (!tmp)
        return;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};

        for (size_t i = 0; i < s->nwords; i++)
            count[((from[i].hash >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < s->nwords; i++)
            to[count[(from[i].hash >> shift) & 0xff]++] = from[i];
        word *t = from;

        from = to;
        to = t;
    }
    /* Eight passes: the sorted words are back in s->words. */
    free(tmp);
}

static void *
index_slice(void *arg)
{
    slice *s = arg;

    generate_corpus(s);
    s->nwords = tokenize(s);
    hash_words(s);
    sort_words(s);
    return NULL;
}

int
main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 4;
    size_t mb = argc > 2 ? (size_t)atoi(argv[2]) : 64;

    if (nthreads < 1 || nthreads > 64 || mb < 1 || mb > 4096) {
        fprintf(stderr, "usage: indexer [THREADS 1..64] [MB 1..4096]\n");
        return 2;
    }

    pthread_t tids[64];
    slice slices[64];
    size_t total = 0, distinct = 0, best = 0, best_count = 0;

    for (int t = 0; t < nthreads; t++) {
        slices[t] = (slice){.seed = (unsigned)t + 1, .size = (mb << 20) / (size_t)nthreads};
        slices[t].text = malloc(slices[t].size + 1);
        if (!slices[t].text || pthread_create(&tids[t], NULL, index_slice, &slices[t])) {
            fprintf(stderr, "indexer: out of resources\n");
            return 1;
        }
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(tids[t], NULL);
    /* Each slice is sorted by hash: count runs of equal hashes. */
    for (int t = 0; t < nthreads; t++) {
        slice *s = &slices[t];

        total += s->nwords;
        for (size_t i = 0, j; i < s->nwords; i = j) {
            for (j = i + 1; j < s->nwords && s->words[j].hash == s->words[i].hash; j++)
                ;
            distinct++;
            if (j - i > best_count) {
                best_count = j - i;
                best = (size_t)t << 48 | i;
            }
        }
    }

    slice *bs = &slices[best >> 48];
    word *bw = &bs->words[best & ((1ull << 48) - 1)];

    printf("%zu words indexed on %d threads; most frequent in a slice: '%.*s' (%zu times); "
           "%zu distinct per slice in all\n",
           total, nthreads, (int)bw->len, bs->text + bw->off, best_count, distinct);
    for (int t = 0; t < nthreads; t++) {
        free(slices[t].text);
        free(slices[t].words);
    }
    return 0;
}
