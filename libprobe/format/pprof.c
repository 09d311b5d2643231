/*
 * The "pprof" formatter: the sampled stacks as a profile.proto message
 * (github.com/google/pprof/proto/profile.proto), gzip-compressed, as `go tool pprof`
 * reads it. One pprof sample per sampled stack, leaf first, with two values: the
 * timer expirations ("samples"/"count") and the time they stand for ("cpu" or, for
 * wall-clock sampling, "wall"/"nanoseconds"). Everything comes from the snapshot,
 * nothing from the live process: each frame of its frame table that a sample uses is
 * one location, at that address, with that frame's line, in the Mapping of the
 * snapshot's mapping holding it (its file, offset and GNU build-id, has_functions
 * set; the program's first); each distinct (name, source file) one function.
 * Documented in docs/formats.md. */
#include "pprof.h"
#include "options.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    LABEL_STR = 2,
    LABEL_NUM = 3,

    MAPPING_ID = 1,
    MAPPING_MEMORY_START = 2,
    MAPPING_MEMORY_LIMIT = 3,
    MAPPING_FILE_OFFSET = 4,
    MAPPING_FILENAME = 5,
    MAPPING_BUILD_ID = 6,
    MAPPING_HAS_FUNCTIONS = 7,
    MAPPING_HAS_FILENAMES = 8,
    MAPPING_HAS_LINE_NUMBERS = 9,

    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_ADDRESS = 3,
    LOCATION_LINE = 4,

    LINE_FUNCTION_ID = 1,
    LINE_LINE = 2,

    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
    FUNCTION_FILENAME = 4,
};

/* Bytes of compressed output handed to the writer at a time. */
#define PPROF_CHUNK 16384
/* The name of a sample that has no frame at all. */
#define PPROF_NO_FRAME "[unknown]"

/* The string table, deduplicated through an open-addressing hash table. */
struct pprof_strings {
    const char **strs; /* borrowed: the snapshot's and literals */
    size_t count;
    size_t cap;
    uint32_t *slots;  /* string index + 1; 0 is empty */
    size_t nslots;    /* a power of two, at least twice count */
};

/* Rows of PPROF_ROW words keyed by their first two, in an open-addressing hash table:
 * the functions (name, file) and the locations (frame, name). A row's id is its
 * index + 1. */
#define PPROF_ROW 6
struct pprof_table {
    uint64_t *rows;
    size_t count;
    size_t cap;
    uint32_t *slots;  /* row index + 1; 0 is empty */
    size_t nslots;
};

/* Row words. */
enum {
    FUNC_NAME = 0,  /* string index */
    FUNC_FILE = 1,  /* string index, 0 ("") if unknown */

    LOC_FRAME = 0,  /* the snapshot's frame index + 1; 0: synthetic, no address */
    LOC_NAME = 1,   /* string index of the frame's name */
    LOC_FUNCTION = 2,
    LOC_LINE = 3,   /* 0 if unknown */
    LOC_MAPPING = 4, /* 0: none */
    LOC_ADDRESS = 5,
};

static uint64_t
pprof_hash(const char *s)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static uint64_t
pprof_hash2(uint64_t a, uint64_t b)
{
    uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15u)) * 0xff51afd7ed558ccdu;

    return h ^ (h >> 32);
}

static void
pprof_strings_free(struct pprof_strings *t)
{
    free(t->strs);
    free(t->slots);
}

static void
pprof_table_free(struct pprof_table *t)
{
    free(t->rows);
    free(t->slots);
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
        t->cap = cap;
    }
    t->strs[t->count] = s;
    t->slots[k] = (uint32_t)(t->count + 1);
    *out = t->count++;
    return 0;
}

static int
pprof_table_rehash(struct pprof_table *t, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));

    if (!slots)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < t->count; i++) {
        const uint64_t *row = &t->rows[i * PPROF_ROW];
        size_t k = pprof_hash2(row[0], row[1]) & (nslots - 1);

        while (slots[k])
            k = (k + 1) & (nslots - 1);
        slots[k] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* The row keyed (@a, @b), made (zeroed but for its key) if new; *ret_added says
 * whether it was. */
static int
pprof_table_get(struct pprof_table *t, uint64_t a, uint64_t b, uint64_t **out,
                int *ret_added)
{
    if ((t->count + 1) * 2 > t->nslots) {
        if (t->count >= UINT32_MAX / 4)
            return PROBE_ENOMEM;
        TRY(pprof_table_rehash(t, t->nslots ? t->nslots * 2 : 256));
    }

    size_t k = pprof_hash2(a, b) & (t->nslots - 1);

    for (; t->slots[k]; k = (k + 1) & (t->nslots - 1)) {
        uint64_t *row = &t->rows[(t->slots[k] - 1) * PPROF_ROW];

        if (row[0] == a && row[1] == b) {
            *out = row;
            *ret_added = 0;
            return 0;
        }
    }
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 128;
        uint64_t *rows = realloc(t->rows, cap * PPROF_ROW * sizeof(*rows));

        if (!rows)
            return PROBE_ENOMEM;
        t->rows = rows;
        t->cap = cap;
    }

    uint64_t *row = &t->rows[t->count * PPROF_ROW];

    memset(row, 0, PPROF_ROW * sizeof(*row));
    row[0] = a;
    row[1] = b;
    t->slots[k] = (uint32_t)(t->count + 1);
    t->count++;
    *out = row;
    *ret_added = 1;
    return 0;
}

int
pprof_check_options(const char *options, struct options_error *err)
{
    return options && *options ? options_fail_none(err, "pprof", options) : 0;
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

/* What is being built besides the message. */
struct pprof_state {
    const probe_snapshot *snap;
    struct pprof_strings strings;
    struct pprof_table functions;
    struct pprof_table locations;
    uint64_t *mapping_ids;  /* per snapshot mapping: its Mapping id, 0 if unused */
    unsigned char *mapping_lines; /* per snapshot mapping: a location has a line */
    size_t nmappings;
};

/* The location id of a frame named @name: snapshot frame @frame (SIZE_MAX for a
 * synthetic one, without address), made if new with its function, mapping and
 * line. */
static int
pprof_location(struct pprof_state *st, const char *name, size_t frame, uint64_t *out)
{
    const probe_frame_info *f = frame == SIZE_MAX ? NULL : probe_snapshot_frame(st->snap, frame);
    uint64_t name_idx, *loc, *fn;
    int added;

    if (f)
        name = f->function;
    TRY(pprof_intern(&st->strings, name && *name ? name : PPROF_NO_FRAME, &name_idx));
    TRY(pprof_table_get(&st->locations, f ? (uint64_t)frame + 1 : 0, name_idx, &loc,
                        &added));
    *out = (uint64_t)(loc - st->locations.rows) / PPROF_ROW + 1;
    if (!added)
        return 0;

    uint64_t file_idx = 0;

    if (f) {
        loc[LOC_ADDRESS] = f->address;
        if (f->file && f->line) {
            TRY(pprof_intern(&st->strings, f->file, &file_idx));
            loc[LOC_LINE] = f->line;
        }
        if (f->mapping < st->nmappings) {
            loc[LOC_MAPPING] = st->mapping_ids[f->mapping];
            if (loc[LOC_LINE])
                st->mapping_lines[f->mapping] = 1;
        }
    }
    uint64_t loc_row = (uint64_t)(loc - st->locations.rows);

    TRY(pprof_table_get(&st->functions, name_idx, file_idx, &fn, &added));
    st->locations.rows[loc_row + LOC_FUNCTION] =
        (uint64_t)(fn - st->functions.rows) / PPROF_ROW + 1;
    return 0;
}

/* One Sample: location ids leaf first, values [expirations, ns], a "tid" label,
 * and for a wall-mode blocked one a "state" label "blocked" (pprof -tagfocus). */
static int
pprof_sample(struct pb_buf *msg, struct pb_buf *sub, struct pb_buf *label,
             struct pprof_state *st, const probe_sample_info *s, uint64_t *ids,
             const uint64_t keys[3])
{
    unsigned n = s->depth;

    if (n == 0) {
        TRY(pprof_location(st, NULL, SIZE_MAX, &ids[0]));
        n = 1;
    }
    for (unsigned k = 0; k < s->depth; k++) {
        unsigned f = s->depth - 1 - k; /* frames are root first */

        TRY(pprof_location(st, s->frames[f], s->frame_ids ? s->frame_ids[f] : SIZE_MAX,
                           &ids[k]));
    }

    uint64_t values[2] = {s->weight, s->cpu_ns};

    pb_reset(label);
    pb_uint64(label, LABEL_KEY, keys[0]);
    pb_uint64(label, LABEL_NUM, s->tid);
    pb_reset(sub);
    pb_packed_uint64(sub, SAMPLE_LOCATION_ID, ids, n);
    pb_packed_uint64(sub, SAMPLE_VALUE, values, 2);
    pb_message(sub, SAMPLE_LABEL, label);
    if (s->blocked) {
        pb_reset(label);
        pb_uint64(label, LABEL_KEY, keys[1]);
        pb_uint64(label, LABEL_STR, keys[2]);
        pb_message(sub, SAMPLE_LABEL, label);
    }
    return pb_message(msg, PROFILE_SAMPLE, sub);
}

/* Every Location (its address, mapping and one line) and Function. */
static int
pprof_frames(struct pb_buf *msg, struct pb_buf *sub, struct pb_buf *line,
             const struct pprof_state *st)
{
    for (size_t i = 0; i < st->locations.count; i++) {
        const uint64_t *loc = &st->locations.rows[i * PPROF_ROW];

        pb_reset(line);
        pb_uint64(line, LINE_FUNCTION_ID, loc[LOC_FUNCTION]);
        if (loc[LOC_LINE])
            pb_int64(line, LINE_LINE, (int64_t)loc[LOC_LINE]);
        pb_reset(sub);
        pb_uint64(sub, LOCATION_ID, i + 1);
        if (loc[LOC_MAPPING])
            pb_uint64(sub, LOCATION_MAPPING_ID, loc[LOC_MAPPING]);
        if (loc[LOC_ADDRESS])
            pb_uint64(sub, LOCATION_ADDRESS, loc[LOC_ADDRESS]);
        pb_message(sub, LOCATION_LINE, line);
        TRY(pb_message(msg, PROFILE_LOCATION, sub));
    }
    for (size_t i = 0; i < st->functions.count; i++) {
        const uint64_t *fn = &st->functions.rows[i * PPROF_ROW];

        pb_reset(sub);
        pb_uint64(sub, FUNCTION_ID, i + 1);
        pb_uint64(sub, FUNCTION_NAME, fn[FUNC_NAME]);
        pb_uint64(sub, FUNCTION_SYSTEM_NAME, fn[FUNC_NAME]);
        if (fn[FUNC_FILE])
            pb_uint64(sub, FUNCTION_FILENAME, fn[FUNC_FILE]);
        TRY(pb_message(msg, PROFILE_FUNCTION, sub));
    }
    return 0;
}

/* A Mapping for each snapshot mapping that holds a location, in id order (the
 * snapshot's: the program's first). */
static int
pprof_mappings(struct pb_buf *msg, struct pb_buf *sub, struct pprof_state *st)
{
    for (size_t i = 0; i < st->nmappings; i++) {
        const probe_mapping_info *m = probe_snapshot_mapping(st->snap, i);
        uint64_t filename, build_id;

        if (!st->mapping_ids[i] || !m)
            continue;
        TRY(pprof_intern(&st->strings, m->path && *m->path ? m->path : "[unknown]",
                         &filename));
        TRY(pprof_intern(&st->strings, m->build_id, &build_id));
        pb_reset(sub);
        pb_uint64(sub, MAPPING_ID, st->mapping_ids[i]);
        pb_uint64(sub, MAPPING_MEMORY_START, m->start);
        pb_uint64(sub, MAPPING_MEMORY_LIMIT, m->limit);
        pb_uint64(sub, MAPPING_FILE_OFFSET, m->offset);
        pb_uint64(sub, MAPPING_FILENAME, filename);
        pb_uint64(sub, MAPPING_BUILD_ID, build_id);
        pb_uint64(sub, MAPPING_HAS_FUNCTIONS, 1);
        if (st->mapping_lines[i]) {
            pb_uint64(sub, MAPPING_HAS_FILENAMES, 1);
            pb_uint64(sub, MAPPING_HAS_LINE_NUMBERS, 1);
        }
        TRY(pb_message(msg, PROFILE_MAPPING, sub));
    }
    return 0;
}

/* Number the mappings that hold a sampled frame, in the snapshot's order. */
static int
pprof_number_mappings(struct pprof_state *st)
{
    size_t count = probe_snapshot_sample_count(st->snap);
    uint64_t next = 0;

    st->nmappings = probe_snapshot_mapping_count(st->snap);
    st->mapping_ids = calloc(st->nmappings ? st->nmappings : 1, sizeof(*st->mapping_ids));
    st->mapping_lines = calloc(st->nmappings ? st->nmappings : 1, 1);
    if (!st->mapping_ids || !st->mapping_lines)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(st->snap, i);

        for (unsigned k = 0; s && s->frame_ids && k < s->depth; k++) {
            const probe_frame_info *f = probe_snapshot_frame(st->snap, s->frame_ids[k]);

            if (f && f->mapping < st->nmappings)
                st->mapping_ids[f->mapping] = 1;
        }
    }
    for (size_t i = 0; i < st->nmappings; i++)
        if (st->mapping_ids[i])
            st->mapping_ids[i] = ++next;
    return 0;
}

/* Encode the whole Profile message into @msg. */
static int
pprof_encode(const probe_snapshot *snap, struct pb_buf *msg, struct pb_buf *sub,
             struct pb_buf *inner, struct pprof_state *st)
{
    const probe_sampler_info *si = probe_snapshot_sampler_info(snap);
    const probe_clock_info *clock = probe_snapshot_clock(snap);
    size_t count = probe_snapshot_sample_count(snap);
    unsigned deepest = 1;
    uint64_t empty, keys[3]; /* "tid", "state", "blocked" */
    /* Wall-clock sampling weighs stacks by elapsed time, not CPU time. */
    const char *kind = si && si->mode == PROBE_SAMPLE_WALL ? "wall" : "cpu";

    TRY(pprof_intern(&st->strings, "", &empty)); /* index 0, as pprof requires */
    TRY(pprof_value_type(msg, sub, PROFILE_SAMPLE_TYPE, &st->strings, "samples", "count"));
    TRY(pprof_value_type(msg, sub, PROFILE_SAMPLE_TYPE, &st->strings, kind, "nanoseconds"));
    TRY(pprof_value_type(msg, sub, PROFILE_PERIOD_TYPE, &st->strings, kind, "nanoseconds"));
    pb_int64(msg, PROFILE_PERIOD, si ? (int64_t)si->interval_ns : 0);
    if (clock) {
        struct timespec now;

        if (clock_gettime(CLOCK_REALTIME, &now) == 0) {
            int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;

            pb_int64(msg, PROFILE_TIME_NANOS, ns - (int64_t)clock->elapsed_ns);
        }
        pb_int64(msg, PROFILE_DURATION_NANOS, (int64_t)clock->elapsed_ns);
    }
    TRY(pprof_intern(&st->strings, "tid", &keys[0]));
    TRY(pprof_intern(&st->strings, "state", &keys[1]));
    TRY(pprof_intern(&st->strings, "blocked", &keys[2]));

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
            r = pprof_sample(msg, sub, inner, st, s, ids, keys);
    }
    free(ids);
    TRY(r);
    TRY(pprof_mappings(msg, sub, st));
    TRY(pprof_frames(msg, sub, inner, st));
    for (size_t i = 0; i < st->strings.count; i++)
        TRY(pb_string(msg, PROFILE_STRING_TABLE, st->strings.strs[i]));
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
    struct pprof_state st = {.snap = snap};

    (void)user;
    TRY(pprof_check_options(options, NULL));

    /* pprof takes the first mapping for the program's: the snapshot lists it first. */
    int r = pprof_number_mappings(&st);

    if (r == 0)
        r = pprof_encode(snap, &msg, &sub, &inner, &st);
    if (r == 0)
        r = pprof_gzip(w, msg.data, msg.len);
    pprof_strings_free(&st.strings);
    pprof_table_free(&st.functions);
    pprof_table_free(&st.locations);
    free(st.mapping_ids);
    free(st.mapping_lines);
    pb_free(&msg);
    pb_free(&sub);
    pb_free(&inner);
    return r;
}
