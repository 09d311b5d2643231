/* The heap report (docs/memory.md "Heap profiling"): the sampled allocation sites
 * as text, as JSON, or as a gzipped profile.proto with Go's heap sample types, which
 * `go tool pprof -sample_index=inuse_space` reads. Stacks are named here, at report
 * time (symbolize.c), never in the allocation path. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <probe/mem.h>

#include "format/protobuf.h"
#include "mem/heap.h"
#include "stack/symbolize.h"

#define REPORT_ROWS 20      /* rows per text section */
#define REPORT_FRAMES 8     /* frames shown under a leak */
#define NAME_MAX_LEN 256

/* Which figure a section sorts and shows. */
enum metric { M_ALLOC, M_INUSE, M_PEAK, M_TEMP };

static double
space_of(const struct heap_site *s, enum metric m)
{
    switch (m) {
    case M_ALLOC: return s->alloc_space;
    case M_INUSE: return s->inuse_space;
    case M_PEAK: return s->peak_space;
    default: return s->temp_space;
    }
}

static double
objects_of(const struct heap_site *s, enum metric m)
{
    switch (m) {
    case M_ALLOC: return s->alloc_objects;
    case M_INUSE: return s->inuse_objects;
    case M_PEAK: return s->peak_objects;
    default: return s->temp_objects;
    }
}

static enum metric sort_metric;

static int
by_space_desc(const void *a, const void *b)
{
    double x = space_of(*(const struct heap_site *const *)a, sort_metric);
    double y = space_of(*(const struct heap_site *const *)b, sort_metric);

    return x < y ? 1 : x > y ? -1 : 0;
}

/* The sites with at least a byte of @m, largest first (malloc'd); their count. */
static size_t
ranked(const struct heap_profile *p, enum metric m, const struct heap_site ***ret)
{
    const struct heap_site **v = malloc((p->nsites + 1) * sizeof(*v));
    size_t n = 0;

    *ret = v;
    if (!v)
        return 0;
    for (unsigned i = 0; i < p->nsites; i++)
        if (space_of(&p->sites[i], m) >= 1.0)
            v[n++] = &p->sites[i];
    sort_metric = m;
    qsort(v, n, sizeof(*v), by_space_desc);
    return n;
}

static const char *
frame_name(uintptr_t pc, char *buf)
{
    return symbolize_pc(pc, 1, buf, NAME_MAX_LEN);
}

static void
human(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;

    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

/* ---- text ---------------------------------------------------------------------- */

static void
text_section(FILE *f, const struct heap_profile *p, enum metric m, const char *title,
             int with_stacks)
{
    const struct heap_site **v;
    size_t n = ranked(p, m, &v);
    char buf[NAME_MAX_LEN], hb[32];

    fprintf(f, "\n%s:\n", title);
    if (n == 0)
        fputs("  none\n", f);
    else
        fprintf(f, "  %12s %12s  %s\n", "bytes", "blocks", "allocated at");
    for (size_t i = 0; i < n && i < REPORT_ROWS; i++) {
        const struct heap_site *s = v[i];
        human(space_of(s, m), hb, sizeof(hb));
        fprintf(f, "  %12s %12.0f  ", hb, objects_of(s, m));
        for (unsigned k = 0; k < s->npcs && k < (with_stacks ? 1u : 3u); k++)
            fprintf(f, "%s%s", k ? " <- " : "", frame_name(s->pcs[k], buf));
        fputc('\n', f);
        for (unsigned k = 1; with_stacks && k < s->npcs && k < REPORT_FRAMES; k++)
            fprintf(f, "  %12s %12s    called from %s\n", "", "", frame_name(s->pcs[k], buf));
    }
    if (n > REPORT_ROWS)
        fprintf(f, "  ... %zu more sites\n", n - REPORT_ROWS);
    free(v);
}

static int
write_text(FILE *f, const struct heap_profile *p)
{
    char a[32], u[32], k[32], m[32];

    human(p->alloc_space, a, sizeof(a));
    human(p->inuse_space, u, sizeof(u));
    human(p->peak_space, k, sizeof(k));
    human((double)p->mean, m, sizeof(m));
    fprintf(f, "heap profile (pid %d): one sample per %s allocated on average, %llu "
               "samples; figures are estimates\n",
            (int)getpid(), m, (unsigned long long)p->samples);
    fprintf(f, "allocated %s in %.0f blocks; in use %s %s in %.0f blocks; peak %s\n", a,
            p->alloc_objects, p->at_exit ? "at exit" : "now", u, p->inuse_objects, k);
    if (p->dropped_stacks || p->dropped_live)
        fprintf(f, "dropped: %llu samples over the stack table, %llu over the live table\n",
                (unsigned long long)p->dropped_stacks, (unsigned long long)p->dropped_live);
    text_section(f, p, M_ALLOC, "top allocation sites (bytes allocated)", 0);
    text_section(f, p, M_INUSE, p->at_exit ? "leaks (in use at exit)" : "in use now", 1);
    snprintf(a, sizeof(a), "%s", k);
    char title[96];
    snprintf(title, sizeof(title), "in use at the peak (%s)", a);
    text_section(f, p, M_PEAK, title, 1);
    text_section(f, p, M_TEMP,
                 "temporary allocations (freed by the allocating thread within 1 ms)", 0);
    return 0;
}

/* ---- json ---------------------------------------------------------------------- */

static void
json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void
json_frames(FILE *f, const struct heap_site *s)
{
    char buf[NAME_MAX_LEN];

    fputs("\"frames\": [", f);
    for (unsigned k = 0; k < s->npcs; k++) {
        if (k)
            fputs(", ", f);
        json_string(f, frame_name(s->pcs[k], buf));
    }
    fputc(']', f);
}

static void
json_section(FILE *f, const struct heap_profile *p, enum metric m, const char *key)
{
    const struct heap_site **v;
    size_t n = ranked(p, m, &v);

    fprintf(f, ",\n  \"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n    {", i ? "," : "");
        json_frames(f, v[i]);
        fprintf(f, ", \"bytes\": %.0f, \"blocks\": %.0f}", space_of(v[i], m),
                objects_of(v[i], m));
    }
    fputs(n ? "\n  ]" : "]", f);
    free(v);
}

static int
write_json(FILE *f, const struct heap_profile *p)
{
    fprintf(f, "{\n  \"schema\": \"probe-heap/1\",\n  \"pid\": %d,\n  \"sample_bytes\": %llu,\n"
               "  \"samples\": %llu,\n  \"dropped_stacks\": %llu,\n  \"dropped_live\": %llu,\n"
               "  \"allocated_bytes\": %.0f,\n  \"allocated_blocks\": %.0f,\n"
               "  \"inuse_bytes\": %.0f,\n  \"inuse_blocks\": %.0f,\n  \"peak_bytes\": %.0f,\n"
               "  \"at_exit\": %s",
            (int)getpid(), (unsigned long long)p->mean, (unsigned long long)p->samples,
            (unsigned long long)p->dropped_stacks, (unsigned long long)p->dropped_live,
            p->alloc_space, p->alloc_objects, p->inuse_space, p->inuse_objects,
            p->peak_space, p->at_exit ? "true" : "false");
    json_section(f, p, M_ALLOC, "sites");
    json_section(f, p, M_INUSE, "leaks");
    json_section(f, p, M_PEAK, "peak");
    json_section(f, p, M_TEMP, "temporaries");
    fputs("\n}\n", f);
    return 0;
}

/* ---- pprof --------------------------------------------------------------------- */

enum {
    PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6, PROFILE_TIME_NANOS = 9,
    PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};

/* String indices: the fixed ones, then one name per location. */
static const char *const fixed_strings[] = {
    "", "alloc_objects", "count", "alloc_space", "bytes", "inuse_objects", "inuse_space",
    "space",
};

static int
cmp_pc(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

    return x < y ? -1 : x > y;
}

static void
value_type(struct pb_buf *b, unsigned field, uint64_t type, uint64_t unit)
{
    struct pb_buf vt = {0};

    pb_uint64(&vt, 1, type);
    pb_uint64(&vt, 2, unit);
    pb_message(b, field, &vt);
    pb_free(&vt);
}

static int
gzip_to(FILE *f, const uint8_t *data, size_t len)
{
    z_stream zs = {0};
    unsigned char out[16384];
    int zr = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                          Z_DEFAULT_STRATEGY);

    if (zr != Z_OK)
        return PROBE_ENOMEM;
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)len;
    do {
        zs.next_out = out;
        zs.avail_out = sizeof(out);
        zr = deflate(&zs, Z_FINISH);
        fwrite(out, 1, sizeof(out) - zs.avail_out, f);
    } while (zr == Z_OK);
    deflateEnd(&zs);
    return zr == Z_STREAM_END ? 0 : PROBE_EFORMAT;
}

static int
write_pprof(FILE *f, const struct heap_profile *p)
{
    struct pb_buf msg = {0}, sub = {0};
    size_t npc = 0, nfixed = sizeof(fixed_strings) / sizeof(fixed_strings[0]);
    char buf[NAME_MAX_LEN];

    for (unsigned i = 0; i < p->nsites; i++)
        npc += p->sites[i].npcs;
    uintptr_t *pcs = malloc((npc + 1) * sizeof(*pcs));
    uint64_t *ids = malloc((HEAP_STACK_DEPTH + 1) * sizeof(*ids));
    if (!pcs || !ids) {
        free(pcs);
        free(ids);
        return PROBE_ENOMEM;
    }
    npc = 0;
    for (unsigned i = 0; i < p->nsites; i++)
        for (unsigned k = 0; k < p->sites[i].npcs; k++)
            pcs[npc++] = p->sites[i].pcs[k];
    qsort(pcs, npc, sizeof(*pcs), cmp_pc);
    size_t nu = 0;
    for (size_t i = 0; i < npc; i++)
        if (nu == 0 || pcs[nu - 1] != pcs[i])
            pcs[nu++] = pcs[i];

    value_type(&msg, PROFILE_SAMPLE_TYPE, 1, 2);
    value_type(&msg, PROFILE_SAMPLE_TYPE, 3, 4);
    value_type(&msg, PROFILE_SAMPLE_TYPE, 5, 2);
    value_type(&msg, PROFILE_SAMPLE_TYPE, 6, 4);
    for (unsigned i = 0; i < p->nsites; i++) {
        const struct heap_site *s = &p->sites[i];
        uint64_t v[4] = {(uint64_t)(s->alloc_objects + 0.5), (uint64_t)(s->alloc_space + 0.5),
                         (uint64_t)(s->inuse_objects + 0.5), (uint64_t)(s->inuse_space + 0.5)};
        for (unsigned k = 0; k < s->npcs; k++) {
            uintptr_t *at = bsearch(&s->pcs[k], pcs, nu, sizeof(*pcs), cmp_pc);
            ids[k] = (uint64_t)(at - pcs) + 1;
        }
        pb_reset(&sub);
        pb_packed_uint64(&sub, 1, ids, s->npcs);
        pb_packed_uint64(&sub, 2, v, 4);
        pb_message(&msg, PROFILE_SAMPLE, &sub);
    }
    /* One location and one function per address, named as the text report names it
     * (pprof merges functions by name). */
    for (size_t i = 0; i < nu; i++) {
        struct pb_buf line = {0};
        pb_reset(&sub);
        pb_uint64(&sub, 1, i + 1);
        pb_uint64(&sub, 3, pcs[i]);
        pb_uint64(&line, 1, i + 1);
        pb_message(&sub, 4, &line);
        pb_free(&line);
        pb_message(&msg, PROFILE_LOCATION, &sub);
        pb_reset(&sub);
        pb_uint64(&sub, 1, i + 1);
        pb_uint64(&sub, 2, nfixed + i);
        pb_uint64(&sub, 3, nfixed + i);
        pb_message(&msg, PROFILE_FUNCTION, &sub);
    }
    for (size_t i = 0; i < nfixed; i++)
        pb_string(&msg, PROFILE_STRING_TABLE, fixed_strings[i]);
    for (size_t i = 0; i < nu; i++)
        pb_string(&msg, PROFILE_STRING_TABLE, frame_name(pcs[i], buf));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pb_int64(&msg, PROFILE_TIME_NANOS, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    value_type(&msg, PROFILE_PERIOD_TYPE, 7, 4);
    pb_int64(&msg, PROFILE_PERIOD, (int64_t)p->mean);
    pb_int64(&msg, PROFILE_DEFAULT_SAMPLE_TYPE, 6);

    int rc = pb_error(&msg) ? PROBE_ENOMEM : gzip_to(f, msg.data, msg.len);
    pb_free(&sub);
    pb_free(&msg);
    free(pcs);
    free(ids);
    return rc;
}

/* ---- the entry points ------------------------------------------------------------- */

int
heapreport_fd(const struct heap_profile *p, int fd, const char *format)
{
    int dupfd = dup(fd);
    FILE *f;

    if (dupfd < 0)
        return -errno;
    if (!(f = fdopen(dupfd, "w"))) {
        close(dupfd);
        return PROBE_ENOMEM;
    }
    int rc = !strcmp(format, "json") ? write_json(f, p)
           : !strcmp(format, "pprof") ? write_pprof(f, p)
                                      : write_text(f, p);
    if (fclose(f) != 0 && rc == 0)
        rc = PROBE_EIO;
    return rc;
}

static int
known_format(const char *format)
{
    return format && (!strcmp(format, "text") || !strcmp(format, "json") ||
                      !strcmp(format, "pprof"));
}

PROBE_EXPORT int
probe_mem_heap_enabled(void)
{
    return __atomic_load_n(&heap_on, __ATOMIC_RELAXED) != 0;
}

PROBE_EXPORT int
probe_mem_heap_fd(int fd, const char *format)
{
    struct heap_profile p;

    if (!known_format(format))
        return PROBE_EINVAL;
    if (fd < 0)
        return PROBE_EBADF;
    int rc = heap_profile_copy(&p);
    if (rc < 0)
        return rc;
    heap_guard(1);
    rc = heapreport_fd(&p, fd, format);
    heap_guard(0);
    heap_profile_free(&p);
    return rc;
}

PROBE_EXPORT int
probe_mem_heap_write(const char *path, const char *format)
{
    if (!path || !known_format(format))
        return PROBE_EINVAL;
    if (!strcmp(path, "stderr") || !strcmp(path, "-"))
        return probe_mem_heap_fd(STDERR_FILENO, format);
    if (!strcmp(path, "stdout"))
        return probe_mem_heap_fd(STDOUT_FILENO, format);
    if (!probe_mem_heap_enabled())
        return PROBE_ENODATA;

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == ELOOP ? PROBE_ELOOP : -errno;
    int rc = probe_mem_heap_fd(fd, format);
    if (close(fd) < 0 && rc == 0)
        rc = PROBE_EIO;
    return rc;
}
