/*
 * The "pprof" formatter: the sampled stacks as a profile.proto message
 * (github.com/google/pprof/proto/profile.proto), gzip-compressed, as `go tool pprof`
 * reads it. One pprof sample per sampled stack, leaf first, with two values: the
 * timer expirations ("samples"/"count") and the CPU time they stand for
 * ("cpu"/"nanoseconds"). Frames are already symbolized, so every distinct frame name
 * is one function and one location, and all locations sit in one placeholder mapping
 * (the main executable, has_functions set). Documented in docs/formats.md.
 */
#include "pprof.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "protobuf.h"
#include "writer.h"

/* Fields of profile.proto. */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,

    VALUE_TYPE_TYPE = 1,
    VALUE_TYPE_UNIT = 2,

    SAMPLE_LOCATION_ID = 1,
    SAMPLE_VALUE = 2,
    SAMPLE_LABEL = 3,

    LABEL_KEY = 1,
    LABEL_NUM = 3,

    MAPPING_ID = 1,
    MAPPING_MEMORY_START = 2,
    MAPPING_MEMORY_LIMIT = 3,
    MAPPING_FILE_OFFSET = 4,
    MAPPING_FILENAME = 5,
    MAPPING_BUILD_ID = 6,
    MAPPING_HAS_FUNCTIONS = 7,

    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_LINE = 4,

    LINE_FUNCTION_ID = 1,

    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
};

/* The one mapping every location references. */
#define PPROF_MAPPING_ID 1
/* Bytes of compressed output handed to the writer at a time. */
#define PPROF_CHUNK 16384
/* The name of a sample that has no frame at all. */
#define PPROF_NO_FRAME "[unknown]"

/* The string table, deduplicated through an open-addressing hash table. A string
 * that names a frame also has a location and function id (the same number). */
struct pprof_strings {
    const char **strs; /* borrowed: the snapshot's, literals, the executable's path */
    uint64_t *frame;   /* per string: its location/function id, 0 if not a frame */
    size_t count;
    size_t cap;
    uint32_t *slots;  /* string index + 1; 0 is empty */
    size_t nslots;    /* a power of two, at least twice count */
    uint64_t *frames; /* string index of frame id k + 1 */
    size_t nframes;
};

static uint64_t
pprof_hash(const char *s)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void
pprof_strings_free(struct pprof_strings *t)
{
    free(t->strs);
    free(t->frame);
    free(t->slots);
    free(t->frames);
}

static int
pprof_rehash(struct pprof_strings *t, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));

    if (!slots)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < t->count; i++) {
        size_t k = pprof_hash(t->strs[i]) & (nslots - 1);

        while (slots[k])
            k = (k + 1) & (nslots - 1);
        slots[k] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* The index of @s in the table, added if new. */
static int
pprof_intern(struct pprof_strings *t, const char *s, uint64_t *out)
{
    if (!s)
        s = "";
    if ((t->count + 1) * 2 > t->nslots) {
        if (t->count >= UINT32_MAX / 4)
            return PROBE_ENOMEM;
        TRY(pprof_rehash(t, t->nslots ? t->nslots * 2 : 256));
    }

    size_t k = pprof_hash(s) & (t->nslots - 1);

    for (; t->slots[k]; k = (k + 1) & (t->nslots - 1)) {
        if (strcmp(t->strs[t->slots[k] - 1], s) == 0) {
            *out = t->slots[k] - 1;
            return 0;
        }
    }
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 128;
        const char **strs = realloc(t->strs, cap * sizeof(*strs));

        if (!strs)
            return PROBE_ENOMEM;
        t->strs = strs;

        uint64_t *frame = realloc(t->frame, cap * sizeof(*frame));

        if (!frame)
            return PROBE_ENOMEM;
        t->frame = frame;
        t->cap = cap;
    }
    t->strs[t->count] = s;
    t->frame[t->count] = 0;
    t->slots[k] = (uint32_t)(t->count + 1);
    *out = t->count++;
    return 0;
}

/* The location (and function) id of the frame named @name, made if new. */
static int
pprof_frame(struct pprof_strings *t, const char *name, uint64_t *out)
{
    uint64_t idx;

    TRY(pprof_intern(t, name && *name ? name : PPROF_NO_FRAME, &idx));
    if (t->frame[idx] == 0) {
        uint64_t *frames = realloc(t->frames, (t->nframes + 1) * sizeof(*frames));

        if (!frames)
            return PROBE_ENOMEM;
        t->frames = frames;
        t->frames[t->nframes++] = idx;
        t->frame[idx] = t->nframes;
    }
    *out = t->frame[idx];
    return 0;
}

int
pprof_check_options(const char *options)
{
    return options && *options ? PROBE_EINVAL : 0;
}

/* A ValueType{type, unit} submessage. */
static int
pprof_value_type(struct pb_buf *msg, struct pb_buf *sub, unsigned field,
                 struct pprof_strings *t, const char *type, const char *unit)
{
    uint64_t ti, ui;

    TRY(pprof_intern(t, type, &ti));
    TRY(pprof_intern(t, unit, &ui));
    pb_reset(sub);
    pb_uint64(sub, VALUE_TYPE_TYPE, ti);
    pb_uint64(sub, VALUE_TYPE_UNIT, ui);
    return pb_message(msg, field, sub);
}

/* One Sample: location ids leaf first, values [expirations, cpu_ns], a "tid" label. */
static int
pprof_sample(struct pb_buf *msg, struct pb_buf *sub, struct pb_buf *label,
             struct pprof_strings *t, const probe_sample_info *s, uint64_t *ids,
             uint64_t tid_key)
{
    unsigned n = s->depth;

    if (n == 0) {
        TRY(pprof_frame(t, NULL, &ids[0]));
        n = 1;
    }
    for (unsigned k = 0; k < s->depth; k++)
        TRY(pprof_frame(t, s->frames[s->depth - 1 - k], &ids[k]));

    uint64_t values[2] = {s->weight, s->cpu_ns};

    pb_reset(label);
    pb_uint64(label, LABEL_KEY, tid_key);
    pb_uint64(label, LABEL_NUM, s->tid);
    pb_reset(sub);
    pb_packed_uint64(sub, SAMPLE_LOCATION_ID, ids, n);
    pb_packed_uint64(sub, SAMPLE_VALUE, values, 2);
    pb_message(sub, SAMPLE_LABEL, label);
    return pb_message(msg, PROFILE_SAMPLE, sub);
}

/* Every frame's Location (in the one mapping, one line) and Function. */
static int
pprof_frames(struct pb_buf *msg, struct pb_buf *sub, struct pb_buf *line,
             const struct pprof_strings *t)
{
    for (size_t i = 0; i < t->nframes; i++) {
        uint64_t id = i + 1;

        pb_reset(line);
        pb_uint64(line, LINE_FUNCTION_ID, id);
        pb_reset(sub);
        pb_uint64(sub, LOCATION_ID, id);
        pb_uint64(sub, LOCATION_MAPPING_ID, PPROF_MAPPING_ID);
        pb_message(sub, LOCATION_LINE, line);
        TRY(pb_message(msg, PROFILE_LOCATION, sub));
    }
    for (size_t i = 0; i < t->nframes; i++) {
        pb_reset(sub);
        pb_uint64(sub, FUNCTION_ID, i + 1);
        pb_uint64(sub, FUNCTION_NAME, t->frames[i]);
        pb_uint64(sub, FUNCTION_SYSTEM_NAME, t->frames[i]);
        TRY(pb_message(msg, PROFILE_FUNCTION, sub));
    }
    return 0;
}

/* The main executable's GNU build-id in hex; "" if it has none. */
struct pprof_build_id {
    char hex[2 * 64 + 1];
};

/* dl_iterate_phdr() lists the main program first: read its NT_GNU_BUILD_ID note. */
static int
pprof_build_id_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct pprof_build_id *out = data;

    (void)size;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;

        if (ph->p_type != PT_NOTE)
            continue;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
            size_t name = (nh->n_namesz + 3) & ~(size_t)3;
            size_t desc = (nh->n_descsz + 3) & ~(size_t)3;
            const char *d = p + sizeof(*nh) + name;

            if ((size_t)(end - p) < sizeof(*nh) + name + desc)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(p + sizeof(*nh), "GNU", 4) == 0 && nh->n_descsz <= 64) {
                static const char digits[] = "0123456789abcdef";

                for (size_t k = 0; k < nh->n_descsz; k++) {
                    out->hex[2 * k] = digits[(unsigned char)d[k] >> 4];
                    out->hex[2 * k + 1] = digits[(unsigned char)d[k] & 15];
                }
                out->hex[2 * nh->n_descsz] = '\0';
                return 1;
            }
            p += sizeof(*nh) + name + desc;
        }
    }
    return 1; /* only the main program */
}

/* The placeholder mapping: the main executable, functions already known. */
static int
pprof_mapping(struct pb_buf *msg, struct pb_buf *sub, uint64_t filename,
              uint64_t build_id)
{
    pb_reset(sub);
    pb_uint64(sub, MAPPING_ID, PPROF_MAPPING_ID);
    pb_uint64(sub, MAPPING_MEMORY_START, 0);
    pb_uint64(sub, MAPPING_MEMORY_LIMIT, 0);
    pb_uint64(sub, MAPPING_FILE_OFFSET, 0);
    pb_uint64(sub, MAPPING_FILENAME, filename);
    pb_uint64(sub, MAPPING_BUILD_ID, build_id);
    pb_uint64(sub, MAPPING_HAS_FUNCTIONS, 1);
    return pb_message(msg, PROFILE_MAPPING, sub);
}

/* Encode the whole Profile message into @msg. @exe is the executable's path. */
static int
pprof_encode(const probe_snapshot *snap, struct pb_buf *msg, struct pb_buf *sub,
             struct pb_buf *inner, struct pprof_strings *t, const char *exe,
             const char *build_id)
{
    const probe_sampler_info *si = probe_snapshot_sampler_info(snap);
    const probe_clock_info *clock = probe_snapshot_clock(snap);
    size_t count = probe_snapshot_sample_count(snap);
    unsigned deepest = 1;
    uint64_t empty, exe_idx, build_id_idx, tid_key;

    TRY(pprof_intern(t, "", &empty)); /* index 0, as pprof requires */
    TRY(pprof_value_type(msg, sub, PROFILE_SAMPLE_TYPE, t, "samples", "count"));
    TRY(pprof_value_type(msg, sub, PROFILE_SAMPLE_TYPE, t, "cpu", "nanoseconds"));
    TRY(pprof_value_type(msg, sub, PROFILE_PERIOD_TYPE, t, "cpu", "nanoseconds"));
    pb_int64(msg, PROFILE_PERIOD, si ? (int64_t)si->interval_ns : 0);
    if (clock) {
        struct timespec now;

        if (clock_gettime(CLOCK_REALTIME, &now) == 0) {
            int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;

            pb_int64(msg, PROFILE_TIME_NANOS, ns - (int64_t)clock->elapsed_ns);
        }
        pb_int64(msg, PROFILE_DURATION_NANOS, (int64_t)clock->elapsed_ns);
    }
    TRY(pprof_intern(t, exe, &exe_idx));
    TRY(pprof_intern(t, build_id, &build_id_idx));
    TRY(pprof_intern(t, "tid", &tid_key));
    TRY(pprof_mapping(msg, sub, exe_idx, build_id_idx));

    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        if (s && s->depth > deepest)
            deepest = s->depth;
    }

    uint64_t *ids = calloc(deepest, sizeof(*ids));
    int r = 0;

    if (!ids)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count && r == 0; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);

        if (s)
            r = pprof_sample(msg, sub, inner, t, s, ids, tid_key);
    }
    free(ids);
    TRY(r);
    TRY(pprof_frames(msg, sub, inner, t));
    for (size_t i = 0; i < t->count; i++)
        TRY(pb_string(msg, PROFILE_STRING_TABLE, t->strs[i]));
    return pb_error(msg);
}

/* Gzip @len bytes of @data into @w. */
static int
pprof_gzip(probe_writer *w, const uint8_t *data, size_t len)
{
    z_stream zs;
    unsigned char out[PPROF_CHUNK];
    int zr;

    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip header and trailer around the deflate stream. */
    zr = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                      Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return PROBE_ENOMEM;

    int r = 0;
    int flush = Z_NO_FLUSH;

    zs.next_in = (Bytef *)(uintptr_t)data;
    do {
        /* avail_in is a uInt: feed very large messages in pieces. */
        if (zs.avail_in == 0 && flush != Z_FINISH) {
            size_t piece = len > UINT_MAX ? UINT_MAX : len;

            zs.avail_in = (uInt)piece;
            len -= piece;
            if (len == 0)
                flush = Z_FINISH;
        }
        zs.next_out = out;
        zs.avail_out = sizeof(out);
        zr = deflate(&zs, flush);
        if (zr == Z_STREAM_ERROR) {
            r = PROBE_EINVAL;
            break;
        }
        r = probe_writer_write(w, out, sizeof(out) - zs.avail_out);
    } while (r == 0 && zr != Z_STREAM_END);
    deflateEnd(&zs);
    return r;
}

int
pprof_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    struct pb_buf msg = {0}, sub = {0}, inner = {0};
    struct pprof_strings t = {0};
    char exe[PATH_MAX];
    struct pprof_build_id build_id = {.hex = ""};
    ssize_t n;

    (void)user;
    TRY(pprof_check_options(options));
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    dl_iterate_phdr(pprof_build_id_cb, &build_id);

    int r = pprof_encode(snap, &msg, &sub, &inner, &t, exe, build_id.hex);

    if (r == 0)
        r = pprof_gzip(w, msg.data, msg.len);
    pprof_strings_free(&t);
    pb_free(&msg);
    pb_free(&sub);
    pb_free(&inner);
    return r;
}
