/* Profile windows: the sampler's table only grows (until probe_reset()), so the CPU
 * profile of a window is the snapshot at its end minus the snapshot at its start,
 * stack by stack. Rolling a window keeps the end snapshot as the next base: windows
 * are contiguous and every sample lands in exactly one. */
#include "fleet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <probe/sampler.h>

#include "core/samples.h"

/* Go's rate: enough for a profile of seconds, little overhead for a server. */
#define WINDOW_SAMPLER_INTERVAL 10000000u

static pthread_mutex_t sampler_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sampler_holds;
static int sampler_ours; /* started by us: stopped when the last hold goes */

static int
sampler_hold(void)
{
    int r = 0;

    pthread_mutex_lock(&sampler_lock);
    if (sampler_holds == 0 && !probe_sampler_is_running()) {
        probe_sampler_options o = PROBE_SAMPLER_OPTIONS_INIT;

        o.interval_ns = WINDOW_SAMPLER_INTERVAL;
        r = probe_sampler_start(&o);
        if (r == PROBE_EBUSY)
            r = 0; /* someone else started it meanwhile */
        else if (r == 0)
            sampler_ours = 1;
    }
    if (r == 0)
        sampler_holds++;
    pthread_mutex_unlock(&sampler_lock);
    return r;
}

static void
sampler_release(void)
{
    pthread_mutex_lock(&sampler_lock);
    if (sampler_holds && --sampler_holds == 0 && sampler_ours) {
        probe_sampler_stop();
        sampler_ours = 0;
    }
    pthread_mutex_unlock(&sampler_lock);
}

void
window_atfork_child(void)
{
    pthread_mutex_init(&sampler_lock, NULL);
    sampler_holds = 0;
    sampler_ours = 0;
}

int
window_open(struct window *w)
{
    int r = sampler_hold();

    memset(w, 0, sizeof(*w));
    if (r < 0)
        return r;
    w->holds_sampler = 1;
    w->base = probe_snapshot_take();
    w->t0_ns = net_realtime_ns();
    w->mono0_ns = net_now_ns();
    if (!w->base) {
        window_close(w);
        return PROBE_ENOMEM;
    }
    return 0;
}

void
window_close(struct window *w)
{
    probe_snapshot_free(w->base);
    w->base = NULL;
    if (w->holds_sampler)
        sampler_release();
    w->holds_sampler = 0;
}

static uint64_t
sample_hash(const probe_sample_info *s)
{
    uint64_t h = s->tid * 0x9e3779b97f4a7c15u ^ s->depth ^ (uint64_t)s->blocked << 40;

    for (unsigned i = 0; i < s->depth; i++)
        h = (h ^ s->addresses[i]) * 0x100000001b3u;
    return h ^ (h >> 29);
}

static int
sample_same(const probe_sample_info *a, const probe_sample_info *b)
{
    if (a->tid != b->tid || a->depth != b->depth || a->blocked != b->blocked ||
        a->nscopes != b->nscopes)
        return 0;
    if (a->depth && memcmp(a->addresses, b->addresses, a->depth * sizeof(uint64_t)))
        return 0;
    for (unsigned i = 0; i < a->nscopes; i++)
        if (strcmp(a->scopes[i], b->scopes[i]) != 0)
            return 0;
    return 1;
}

/* Subtract @base's samples from @cur's, stack by stack, and drop what is left at 0. */
static int
subtract(struct sample_set *cur, const probe_snapshot *base)
{
    size_t nb = probe_snapshot_sample_count(base), nslots = 16;

    if (!cur || nb == 0)
        return 0;
    while (nslots < 2 * nb)
        nslots *= 2;
    size_t *slots = calloc(nslots, sizeof(*slots)); /* base index + 1 */

    if (!slots)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < nb; i++) {
        size_t k = sample_hash(probe_snapshot_sample(base, i)) & (nslots - 1);

        while (slots[k])
            k = (k + 1) & (nslots - 1);
        slots[k] = i + 1;
    }
    size_t kept = 0;

    for (size_t i = 0; i < cur->n; i++) {
        probe_sample_info *s = &cur->v[i];

        for (size_t k = sample_hash(s) & (nslots - 1); slots[k]; k = (k + 1) & (nslots - 1)) {
            if (slots[k] == SIZE_MAX)
                continue; /* matched already */
            const probe_sample_info *b = probe_snapshot_sample(base, slots[k] - 1);

            if (!sample_same(s, b))
                continue;
            s->weight = s->weight > b->weight ? s->weight - b->weight : 0;
            s->cpu_ns = s->cpu_ns > b->cpu_ns ? s->cpu_ns - b->cpu_ns : 0;
            s->signals = s->signals > b->signals ? s->signals - b->signals : 0;
            slots[k] = SIZE_MAX; /* matched once; a probe chain goes on past it */
            break;
        }
        if (s->weight)
            cur->v[kept++] = *s;
    }
    cur->n = kept;
    free(slots);
    return 0;
}

int
window_take(struct window *w, int roll, char **ret_buf, size_t *ret_len,
            uint64_t *ret_t0_ns, uint64_t *ret_t1_ns)
{
    probe_snapshot *now = probe_snapshot_take();
    uint64_t t1 = net_realtime_ns(), mono1 = net_now_ns();
    struct sample_set *set;
    probe_sample_info *saved = NULL;
    size_t nsaved = 0;
    int r = 0;

    if (!now)
        return PROBE_ENOMEM;
    /* One snapshot ends this window and starts the next: the subtraction edits its
     * samples, so keep them to put back (the pointers stay the set's). */
    set = snapshot_sample_set(now);
    if (roll && set && set->n) {
        nsaved = set->n;
        saved = malloc(nsaved * sizeof(*saved));
        if (!saved)
            r = PROBE_ENOMEM;
        else
            memcpy(saved, set->v, nsaved * sizeof(*saved));
    }
    if (r == 0)
        r = subtract(set, w->base);
    snapshot_set_elapsed(now, mono1 - w->mono0_ns);
    if (r == 0)
        r = probe_snapshot_format(now, "pprof", ret_buf, ret_len);
    if (r == 0) {
        *ret_t0_ns = w->t0_ns;
        *ret_t1_ns = t1;
    }
    if (roll && r == 0) {
        if (saved) {
            memcpy(set->v, saved, nsaved * sizeof(*saved));
            set->n = nsaved;
        }
        probe_snapshot_free(w->base);
        w->base = now;
        w->t0_ns = t1;
        w->mono0_ns = mono1;
    } else {
        probe_snapshot_free(now);
    }
    free(saved);
    return r;
}
