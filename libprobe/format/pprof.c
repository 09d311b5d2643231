/*
 * The "pprof" formatter: the sampled stacks as a profile.proto message
 * (github.com/google/pprof/proto/profile.proto), gzip-compressed, as `go tool pprof`
 * reads it. One pprof sample per sampled stack, leaf first, with two values: the
 * timer expirations ("samples"/"count") and the time they stand for ("cpu" or, for
 * wall-clock sampling, "wall"/"nanoseconds"). Frames are already symbolized: each
 * distinct (address, name) is one location, at that absolute address, in the Mapping
 * of the executable segment of the loaded module that holds it (one Mapping per such
 * segment, with its file, offset and GNU build-id, has_functions set); each distinct
 * (name, source file) one function. With libdw, locations get their line and
 * functions their file. Documented in docs/formats.md. */
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
#include "stack/symbolize.h"
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
    const char **strs; /* borrowed: the snapshot's, literals, the modules' paths */
    size_t count;
    size_t cap;
    uint32_t *slots;  /* string index + 1; 0 is empty */
    size_t nslots;    /* a power of two, at least twice count */
};

/* Rows of PPROF_ROW words keyed by their first two, in an open-addressing hash table:
 * the functions (name, file) and the locations (address, name). A row's id is its
 * index + 1. */
#define PPROF_ROW 5
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

    LOC_ADDRESS = 0,
    LOC_NAME = 1,   /* string index of the frame's name */
    LOC_FUNCTION = 2,
    LOC_LINE = 3,   /* 0 if unknown */
    LOC_MAPPING = 4, /* 0: none */
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

/* ---- the modules: one Mapping per executable segment that holds a location -------- */

/* An executable PT_LOAD segment of a loaded module, as /proc/self/maps shows it. */
struct pprof_segment {
    uint64_t start, limit, offset;
    char *filename;     /* malloc'd; the module's (the main program's real path) */
    char build_id[2 * 64 + 1]; /* hex; "" if none */
    uint64_t id;        /* Mapping id once a location is in it, else 0 */
    int has_lines;      /* a location in it has a line */
    int main_program;   /* of the program itself: its mapping goes first */
};

struct pprof_modules {
    struct pprof_segment *v;
    size_t n, cap;
    int index;          /* of the module dl_iterate_phdr is at */
    int err;
};

static void
pprof_modules_free(struct pprof_modules *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].filename);
    free(m->v);
}

/* The module's NT_GNU_BUILD_ID note (read from its PT_NOTE segments in memory) as
 * hex into @hex, or "". */
static void
pprof_build_id(const struct dl_phdr_info *info, char hex[2 * 64 + 1])
{
    hex[0] = '\0';
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
                    hex[2 * k] = digits[(unsigned char)d[k] >> 4];
                    hex[2 * k + 1] = digits[(unsigned char)d[k] & 15];
                }
                hex[2 * nh->n_descsz] = '\0';
                return;
            }
            p += sizeof(*nh) + name + desc;
        }
    }
}

/* Every executable segment of every loaded module; the main program comes first. */
static int
pprof_modules_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct pprof_modules *m = data;
    int index = m->index++;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    char hex[2 * 64 + 1];
    int have_hex = 0;

    (void)size;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
            continue;
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 32;
            struct pprof_segment *v = realloc(m->v, cap * sizeof(*v));

            if (!v) {
                m->err = PROBE_ENOMEM;
                return 1;
            }
            m->v = v;
            m->cap = cap;
        }

        struct pprof_segment *seg = &m->v[m->n];
        uint64_t vaddr = info->dlpi_addr + ph->p_vaddr;
        /* Page-aligned, as the kernel maps it: the offset moves down with the start. */
        uint64_t skew = (ph->p_vaddr & (page - 1));

        if (skew > ph->p_offset)
            skew = 0;
        memset(seg, 0, sizeof(*seg));
        seg->start = vaddr - skew;
        seg->limit = (vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        seg->offset = ph->p_offset - skew;
        seg->main_program = index == 0;
        if (index == 0) {
            char exe[PATH_MAX];
            ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

            exe[n > 0 ? n : 0] = '\0';
            seg->filename = strdup(exe[0] ? exe : "/proc/self/exe");
        } else {
            seg->filename = strdup(info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name
                                                                         : "[unknown]");
        }
        if (!seg->filename) {
            m->err = PROBE_ENOMEM;
            return 1;
        }
        if (!have_hex) {
            pprof_build_id(info, hex);
            have_hex = 1;
        }
        memcpy(seg->build_id, hex, sizeof(hex));
        m->n++;
    }
    return 0;
}

/* The segment holding @addr, or NULL. */
static struct pprof_segment *
pprof_segment_of(struct pprof_modules *m, uint64_t addr)
{
    for (size_t i = 0; i < m->n; i++)
        if (addr >= m->v[i].start && addr < m->v[i].limit)
            return &m->v[i];
    return NULL;
}

/* What is being built besides the message. */
struct pprof_state {
    struct pprof_strings strings;
    struct pprof_table functions;
    struct pprof_table locations;
    struct pprof_modules modules;
    uint64_t nmappings;
};

/* The location id of a frame named @name at @addr (0: synthetic, no address), made
 * if new with its function, mapping and line. */
static int
pprof_location(struct pprof_state *st, const char *name, uint64_t addr, int is_return,
               uint64_t *out)
{
    uint64_t name_idx, *loc, *fn;
    int added;

    TRY(pprof_intern(&st->strings, name && *name ? name : PPROF_NO_FRAME, &name_idx));
    TRY(pprof_table_get(&st->locations, addr, name_idx, &loc, &added));
    *out = (uint64_t)(loc - st->locations.rows) / PPROF_ROW + 1;
    if (!added)
        return 0;

    uint64_t file_idx = 0;

    if (addr) {
        /* A return address may be one past its call, at the very end of a segment. */
        struct pprof_segment *seg = pprof_segment_of(&st->modules, addr);
        const char *file;
        unsigned line;

        if (!seg && is_return)
            seg = pprof_segment_of(&st->modules, addr - 1);
        if (seg && !seg->id)
            seg->id = ++st->nmappings;
        if (symbolize_line((uintptr_t)addr, is_return, &file, &line) == 0) {
            TRY(pprof_intern(&st->strings, file, &file_idx));
            loc[LOC_LINE] = line;
            if (seg)
                seg->has_lines = 1;
        }
        loc[LOC_MAPPING] = seg ? seg->id : 0;
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
        TRY(pprof_location(st, NULL, 0, 0, &ids[0]));
        n = 1;
    }
    for (unsigned k = 0; k < s->depth; k++) {
        unsigned f = s->depth - 1 - k; /* frames are root first */
        uint64_t addr = s->addresses ? s->addresses[f] : 0;

        TRY(pprof_location(st, s->frames[f], addr, k > 0, &ids[k]));
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

/* A Mapping for each segment that holds a location, in id order. */
static int
pprof_mappings(struct pb_buf *msg, struct pb_buf *sub, struct pprof_state *st)
{
    for (uint64_t id = 1; id <= st->nmappings; id++) {
        for (size_t i = 0; i < st->modules.n; i++) {
            const struct pprof_segment *seg = &st->modules.v[i];
            uint64_t filename, build_id;

            if (seg->id != id)
                continue;
            TRY(pprof_intern(&st->strings, seg->filename, &filename));
            TRY(pprof_intern(&st->strings, seg->build_id, &build_id));
            pb_reset(sub);
            pb_uint64(sub, MAPPING_ID, id);
            pb_uint64(sub, MAPPING_MEMORY_START, seg->start);
            pb_uint64(sub, MAPPING_MEMORY_LIMIT, seg->limit);
            pb_uint64(sub, MAPPING_FILE_OFFSET, seg->offset);
            pb_uint64(sub, MAPPING_FILENAME, filename);
            pb_uint64(sub, MAPPING_BUILD_ID, build_id);
            pb_uint64(sub, MAPPING_HAS_FUNCTIONS, 1);
            if (seg->has_lines) {
                pb_uint64(sub, MAPPING_HAS_FILENAMES, 1);
                pb_uint64(sub, MAPPING_HAS_LINE_NUMBERS, 1);
            }
            TRY(pb_message(msg, PROFILE_MAPPING, sub));
        }
    }
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
    /* pprof takes the first mapping for the program's: give the program's sampled
     * segments the first ids. */
    for (size_t i = 0; i < count; i++) {
        const probe_sample_info *s = probe_snapshot_sample(snap, i);
        for (unsigned k = 0; s && s->addresses && k < s->depth; k++) {
            struct pprof_segment *seg = pprof_segment_of(&st->modules, s->addresses[k]);
            if (seg && seg->main_program && !seg->id)
                seg->id = ++st->nmappings;
        }
    }
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
    struct pprof_state st = {0};

    (void)user;
    TRY(pprof_check_options(options));
    dl_iterate_phdr(pprof_modules_cb, &st.modules);

    int r = st.modules.err;

    if (r == 0)
        r = pprof_encode(snap, &msg, &sub, &inner, &st);
    if (r == 0)
        r = pprof_gzip(w, msg.data, msg.len);
    pprof_strings_free(&st.strings);
    pprof_table_free(&st.functions);
    pprof_table_free(&st.locations);
    pprof_modules_free(&st.modules);
    pb_free(&msg);
    pb_free(&sub);
    pb_free(&inner);
    return r;
}
