/* The baseline file: read whole under an exclusive flock(2), updated in place, so
 * that test processes sharing a file take turns. Lines libprobe does not know are
 * kept as they are; new figures are appended, so a re-recorded file diffs cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <probe/common.h>

#include "budget/baseline.h"

#define HEADER                                                                         \
    "# libprobe budget baseline (PROBE_BUDGET_BASELINE), one figure a line:\n"      \
    "# budget, measure, scope (- for the whole call), value per run, calls per run.\n" \
    "# Delete a line to record that figure again on the next run.\n"

static struct baseline_entry *
grow(struct baseline *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        struct baseline_entry *v = realloc(b->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        b->v = v;
        b->cap = cap;
    }
    memset(&b->v[b->n], 0, sizeof(b->v[0]));
    return &b->v[b->n++];
}

/* Split one line (NUL-terminated, no newline) into an entry, or keep it raw. */
static int
parse_line(struct baseline *b, char *line)
{
    char *field[5];
    int n = 0;
    char *p = line;

    struct baseline_entry *e = grow(b);
    if (!e)
        return PROBE_ENOMEM;
    if (line[0] != '#') {
        while (n < 5) {
            field[n++] = p;
            p = strchr(p, '\t');
            if (!p)
                break;
            *p++ = '\0';
        }
    }
    char *end1 = NULL, *end2 = NULL;
    if (n == 5) {
        errno = 0;
        e->value = strtoull(field[3], &end1, 10);
        e->calls = strtoull(field[4], &end2, 10);
    }
    if (n == 5 && !errno && end1 != field[3] && !*end1 && end2 != field[4] && !*end2) {
        e->budget = strdup(field[0]);
        e->measure = strdup(field[1]);
        e->scope = strdup(field[2]);
        if (!e->budget || !e->measure || !e->scope)
            return PROBE_ENOMEM;
        return 0;
    }
    /* Put the tabs back and keep the line as it was. */
    for (int i = 1; i < n; i++)
        field[i][-1] = '\t';
    e->raw = strdup(line);
    return e->raw ? 0 : PROBE_ENOMEM;
}

static void
free_entries(struct baseline *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].budget);
        free(b->v[i].measure);
        free(b->v[i].scope);
        free(b->v[i].raw);
    }
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

int
baseline_open(const char *path, struct baseline *b)
{
    memset(b, 0, sizeof(*b));
    b->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (b->fd < 0)
        return errno == ELOOP || errno == EMLINK ? PROBE_ELOOP : -errno;
    while (flock(b->fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            int e = -errno;
            close(b->fd);
            return e;
        }

    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            char *t = realloc(text, cap + 65536);
            if (!t) {
                free(text);
                close(b->fd);
                return PROBE_ENOMEM;
            }
            text = t;
            cap += 65536;
        }
        ssize_t got = read(b->fd, text + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = -errno;
            free(text);
            close(b->fd);
            return e;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    text[len] = '\0';
    if (len == 0)
        b->changed = 1;     /* new: at least the header gets written */
    int rc = 0;
    for (char *line = text; rc == 0 && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line)
            rc = parse_line(b, line);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    if (rc < 0) {
        free_entries(b);
        close(b->fd);
    }
    return rc;
}

const struct baseline_entry *
baseline_find(const struct baseline *b, const char *budget, const char *measure,
              const char *scope)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct baseline_entry *e = &b->v[i];
        if (e->budget && strcmp(e->budget, budget) == 0 &&
            strcmp(e->measure, measure) == 0 && strcmp(e->scope, scope) == 0)
            return e;
    }
    return NULL;
}

/* A copy of @s that fits in one field: no tab, no line break, not empty. */
static char *
field_dup(const char *s)
{
    char *d = strdup(*s ? s : "-");

    if (d)
        for (char *p = d; *p; p++)
            if (*p == '\t' || *p == '\n' || *p == '\r')
                *p = ' ';
    return d;
}

int
baseline_set(struct baseline *b, const char *budget, const char *measure,
             const char *scope, uint64_t value, uint64_t calls)
{
    struct baseline_entry *e = (struct baseline_entry *)baseline_find(b, budget, measure,
                                                                       scope);
    if (!e) {
        e = grow(b);
        if (!e)
            return PROBE_ENOMEM;
        e->budget = field_dup(budget);
        e->measure = field_dup(measure);
        e->scope = field_dup(scope);
        if (!e->budget || !e->measure || !e->scope)
            return PROBE_ENOMEM;
    }
    e->value = value;
    e->calls = calls;
    b->changed = 1;
    return 0;
}

static int
write_all(int fd, const char *s, size_t len, off_t *off)
{
    while (len) {
        ssize_t put = pwrite(fd, s, len, *off);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return put < 0 ? -errno : PROBE_EIO;
        s += put;
        len -= (size_t)put;
        *off += put;
    }
    return 0;
}

int
baseline_close(struct baseline *b)
{
    int rc = 0;

    if (b->changed) {
        off_t off = 0;
        int has_header = b->n > 0 && b->v[0].raw && strncmp(b->v[0].raw, "# libprobe", 10) == 0;
        if (!has_header)
            rc = write_all(b->fd, HEADER, strlen(HEADER), &off);
        for (size_t i = 0; rc == 0 && i < b->n; i++) {
            const struct baseline_entry *e = &b->v[i];
            char num[64];
            if (e->raw) {
                rc = write_all(b->fd, e->raw, strlen(e->raw), &off);
                if (rc == 0)
                    rc = write_all(b->fd, "\n", 1, &off);
                continue;
            }
            const char *parts[] = {e->budget, "\t", e->measure, "\t", e->scope, "\t"};
            for (size_t j = 0; rc == 0 && j < sizeof(parts) / sizeof(parts[0]); j++)
                rc = write_all(b->fd, parts[j], strlen(parts[j]), &off);
            int nl = snprintf(num, sizeof(num), "%llu\t%llu\n",
                              (unsigned long long)e->value, (unsigned long long)e->calls);
            if (rc == 0)
                rc = write_all(b->fd, num, (size_t)nl, &off);
        }
        if (rc == 0 && ftruncate(b->fd, off) < 0)
            rc = -errno;
    }
    free_entries(b);
    close(b->fd);   /* also releases the lock */
    b->fd = -1;
    return rc;
}
