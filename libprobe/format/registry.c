/* The table of formatters, and the calls that run one into a buffer, fd or file. */
#include "registry.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callgrind.h"
#include "chrome.h"
#include "collapsed.h"
#include "html.h"
#include "json.h"
#include "options.h"
#include "pprof.h"
#include "speedscope.h"
#include "text.h"
#include "tree.h"
#include "writer.h"

enum slot_state {
    SLOT_FREE = 0,
    SLOT_ACTIVE,   /* found by name */
    SLOT_DRAINING, /* unregistered while reports still run it; freed by the last */
};

struct registry_slot {
    char name[REGISTRY_NAME_MAX + 1];
    registry_write_fn *write;
    void (*release)(void *user);
    void *user;
    registry_check_fn *check; /* built-ins only */
    unsigned users;           /* reports running this formatter right now */
    enum slot_state state;
    int builtin;
};

/* A formatter found by name, held until registry_put(). */
struct registry_ref {
    size_t slot;
    registry_write_fn *write;
    void *user;
    const char *options; /* after the ':', or "" */
};

static const struct {
    const char *name;
    registry_write_fn *write;
    registry_check_fn *check;
} builtins[] = {
    {"text", text_write, text_check_options},
    {"json", json_write, json_check_options},
    {"collapsed", collapsed_write, collapsed_check_options},
    {"callgrind", callgrind_write, callgrind_check_options},
    {"chrome", chrome_write, chrome_check_options},
    {"speedscope", speedscope_write, speedscope_check_options},
    {"tree", tree_write, tree_check_options},
    {"pprof", pprof_write, pprof_check_options},
    {"html", html_write, html_check_options},
};

/* Held only for table lookups and updates, never across a callback, so a
 * formatter may itself register, unregister or format. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct registry_slot slots[REGISTRY_SLOTS];
static int builtins_ready;

/* A child forked while another thread held the lock must not inherit it held. */
static void
registry_atfork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
}

/* In the parent and in the child alike, the forking thread holds the lock. */
static void
registry_atfork_release(void)
{
    pthread_mutex_unlock(&registry_lock);
}

__attribute__((constructor)) static void
registry_init(void)
{
    /* Only ENOMEM is possible, and a constructor cannot report it: the cost is the
     * (already tiny) chance of a child forked mid-lookup blocking on its first report. */
    (void)pthread_atfork(registry_atfork_prepare, registry_atfork_release,
                         registry_atfork_release);
}

/* Call with the lock held. */
static void
registry_install_builtins(void)
{
    if (builtins_ready)
        return;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        struct registry_slot *s = &slots[i];

        memcpy(s->name, builtins[i].name, strlen(builtins[i].name) + 1);
        s->write = builtins[i].write;
        s->check = builtins[i].check;
        s->state = SLOT_ACTIVE;
        s->builtin = 1;
    }
    builtins_ready = 1;
}

/* [a-z0-9_-]{1,31} */
static int
registry_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > REGISTRY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Call with the lock held. @return the active slot named @name, or -1. */
static long
registry_find(const char *name, size_t len)
{
    for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
        const struct registry_slot *s = &slots[i];

        if (s->state == SLOT_ACTIVE && strncmp(s->name, name, len) == 0 &&
            s->name[len] == '\0')
            return (long)i;
    }
    return -1;
}

static long
registry_find_free(void)
{
    for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
        if (slots[i].state == SLOT_FREE)
            return (long)i;
    }
    return -1;
}

/* Whether "name[:options]" names an active formatter, and if not, the active names
 * ("text, json, ...") in @names, for a message that says what would have worked. */
int
registry_describe(const char *format, char *names, size_t size)
{
    const char *colon = format ? strchr(format, ':') : NULL;
    size_t len = !format ? 0 : colon ? (size_t)(colon - format) : strlen(format);
    size_t used = 0;
    int known;

    pthread_mutex_lock(&registry_lock);
    registry_install_builtins();
    known = format && registry_name_valid(format, len) && registry_find(format, len) >= 0;
    if (size)
        names[0] = '\0';
    for (size_t i = 0; i < REGISTRY_SLOTS && size; i++) {
        if (slots[i].state != SLOT_ACTIVE)
            continue;
        int n = snprintf(names + used, size - used, "%s%s", used ? ", " : "",
                         slots[i].name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    pthread_mutex_unlock(&registry_lock);
    return known;
}

/* The first probe_formatter with a size: size, name, write, release, user. Later
 * versions only add fields at the end. */
#define REGISTRY_FORMATTER_SIZE_1 (offsetof(probe_formatter, user) + sizeof(void *))

PROBE_EXPORT int
probe_formatter_register(const probe_formatter *f)
{
    /* The size first: a struct without it has no name or write to read. */
    if (!f || f->size < REGISTRY_FORMATTER_SIZE_1 || !f->name || !f->write)
        return PROBE_EINVAL;

    size_t len = strnlen(f->name, REGISTRY_NAME_MAX + 1);

    if (!registry_name_valid(f->name, len))
        return PROBE_EINVAL;

    int r = 0;

    pthread_mutex_lock(&registry_lock);
    registry_install_builtins();
    long i = registry_find(f->name, len);
    long j = registry_find_free();

    if (i >= 0) {
        r = PROBE_EEXIST;
    } else if (j < 0) {
        r = PROBE_ENOSPC;
    } else {
        struct registry_slot *s = &slots[j];

        memset(s, 0, sizeof(*s));
        memcpy(s->name, f->name, len);
        s->write = f->write;
        s->release = f->release;
        s->user = f->user;
        s->state = SLOT_ACTIVE;
    }
    pthread_mutex_unlock(&registry_lock);
    return r;
}

PROBE_EXPORT int
probe_formatter_unregister(const char *name)
{
    if (!name)
        return PROBE_EINVAL;

    size_t len = strnlen(name, REGISTRY_NAME_MAX + 1);

    if (!registry_name_valid(name, len))
        return PROBE_ENOENT;

    void (*release)(void *) = NULL;
    void *user = NULL;
    int r = 0;

    pthread_mutex_lock(&registry_lock);
    registry_install_builtins();
    long i = registry_find(name, len);

    if (i < 0 || slots[i].builtin) {
        r = PROBE_ENOENT;
    } else if (slots[i].users > 0) {
        slots[i].state = SLOT_DRAINING;
    } else {
        release = slots[i].release;
        user = slots[i].user;
        memset(&slots[i], 0, sizeof(slots[i]));
    }
    pthread_mutex_unlock(&registry_lock);
    if (release)
        release(user);
    return r;
}

static void
registry_put(struct registry_ref *ref)
{
    struct registry_slot *s = &slots[ref->slot];
    void (*release)(void *) = NULL;
    void *user = NULL;

    pthread_mutex_lock(&registry_lock);
    if (--s->users == 0 && s->state == SLOT_DRAINING) {
        release = s->release;
        user = s->user;
        memset(s, 0, sizeof(*s));
    }
    pthread_mutex_unlock(&registry_lock);
    if (release)
        release(user);
}

/*
 * Find the formatter for "name[:options]" and hold it. Built-in formatters check
 * their options here, before a snapshot is taken or a file created; why they refuse
 * them goes to @err when not NULL.
 */
static int
registry_get_err(const char *format, struct registry_ref *ref, struct options_error *err)
{
    if (!format)
        return PROBE_EINVAL;

    const char *colon = strchr(format, ':');
    size_t len = colon ? (size_t)(colon - format) : strlen(format);

    if (!registry_name_valid(format, len))
        return PROBE_EINVAL;

    registry_check_fn *check = NULL;

    pthread_mutex_lock(&registry_lock);
    registry_install_builtins();
    long i = registry_find(format, len);

    if (i >= 0) {
        slots[i].users++;
        ref->slot = (size_t)i;
        ref->write = slots[i].write;
        ref->user = slots[i].user;
        check = slots[i].check;
    }
    pthread_mutex_unlock(&registry_lock);
    if (i < 0)
        return PROBE_EINVAL;

    ref->options = colon ? colon + 1 : "";
    if (check) {
        int r = check(ref->options, err);

        if (r < 0) {
            registry_put(ref);
            return r;
        }
    }
    return 0;
}

static int
registry_get(const char *format, struct registry_ref *ref)
{
    return registry_get_err(format, ref, NULL);
}

PROBE_EXPORT int
probe_format_check(const char *format, char *msg, size_t size)
{
    struct registry_ref ref;
    struct options_error err = {{0}};
    int r = registry_get_err(format, &ref, &err);

    if (r == 0) {
        registry_put(&ref);
        if (msg && size)
            msg[0] = '\0';
        return 0;
    }
    if (msg && size) {
        char names[512];

        if (err.msg[0])
            snprintf(msg, size, "%s", err.msg);
        else if (!format)
            snprintf(msg, size, "no format given");
        else if (!registry_describe(format, names, sizeof(names)))
            snprintf(msg, size, "unknown format '%.*s' (known: %s)",
                     (int)strcspn(format, ":"), format, names);
        else
            snprintf(msg, size, "format '%s': %s", format, probe_strerror(r));
    }
    return r;
}

/* The writer's failure comes first: a formatter may report it as something else. */
static int
registry_run(const struct registry_ref *ref, const probe_snapshot *snap, probe_writer *w)
{
    int r = ref->write(snap, w, ref->options, ref->user);
    int werr = writer_error(w);

    if (werr < 0)
        return werr;
    return r < 0 ? r : 0;
}

/* Run the formatter into @fd and flush, even after a formatter error. On PROBE_EIO
 * errno is the failed write's. */
static int
registry_run_fd(const struct registry_ref *ref, const probe_snapshot *snap, int fd)
{
    probe_writer w;

    writer_init_fd(&w, fd);

    int r = registry_run(ref, snap, &w);
    int f = writer_finish_fd(&w);

    return r < 0 ? r : f;
}

PROBE_EXPORT int
probe_snapshot_format(const probe_snapshot *snap, const char *format, char **ret_buf,
                      size_t *ret_len)
{
    struct registry_ref ref;

    if (!snap || !format || !ret_buf)
        return PROBE_EINVAL;

    int r = registry_get(format, &ref);

    if (r < 0)
        return r;

    probe_writer w;

    writer_init_memory(&w);
    r = registry_run(&ref, snap, &w);
    if (r < 0)
        writer_discard(&w);
    else
        r = writer_finish_memory(&w, ret_buf, ret_len);
    registry_put(&ref);
    return r;
}

PROBE_EXPORT int
probe_snapshot_write_fd(const probe_snapshot *snap, int fd, const char *format)
{
    struct registry_ref ref;

    if (!snap || !format)
        return PROBE_EINVAL;
    if (fd < 0)
        return PROBE_EBADF;

    int r = registry_get(format, &ref);

    if (r < 0)
        return r;
    r = registry_run_fd(&ref, snap, fd);

    int saved = errno;

    registry_put(&ref);
    errno = saved;
    return r;
}

/* Take the snapshot a report is made of; @ret_snap is set on success only. */
static int
registry_take(probe_snapshot **ret_snap)
{
    probe_snapshot *snap = probe_snapshot_take();

    if (!snap)
        return PROBE_ENOMEM;
    /* Nothing at all: no site registered, no sample, no timeline event, no tag. */
    if (probe_snapshot_site_count(snap) == 0 && probe_snapshot_sample_count(snap) == 0 &&
        probe_snapshot_event_count(snap) == 0 && !probe_snapshot_mem(snap)) {
        probe_snapshot_free(snap);
        return PROBE_ENODATA;
    }
    *ret_snap = snap;
    return 0;
}

/* A report of everything recorded so far: find the formatter, take a snapshot, hand
 * both to @write (which writes to @fd or to @path), and release them. */
typedef int (*report_sink)(const struct registry_ref *ref, const probe_snapshot *snap,
                           int fd, const char *path);

static int
registry_report(const char *format, report_sink write, int fd, const char *path)
{
    struct registry_ref ref;
    probe_snapshot *snap = NULL;
    int r = registry_get(format, &ref);

    if (r < 0)
        return r;
    r = registry_take(&snap);
    if (r == 0)
        r = write(&ref, snap, fd, path);

    int saved = errno;

    probe_snapshot_free(snap);
    registry_put(&ref);
    errno = saved;
    return r;
}

static int
registry_sink_fd(const struct registry_ref *ref, const probe_snapshot *snap, int fd,
                 const char *path)
{
    (void)path;
    return registry_run_fd(ref, snap, fd);
}

PROBE_EXPORT int
probe_report_fd(int fd, const char *format)
{
    if (!format)
        return PROBE_EINVAL;
    if (fd < 0)
        return PROBE_EBADF;
    return registry_report(format, registry_sink_fd, fd, NULL);
}

/* Write the report and close; a failing close(2) can be a lost write (NFS). */
static int
registry_sink_path(const struct registry_ref *ref, const probe_snapshot *snap, int unused,
                   const char *path)
{
    (void)unused;
    int fd = writer_open_path(path);

    if (fd < 0)
        return fd;

    int r = registry_run_fd(ref, snap, fd);
    int saved = errno;

    /* Linux releases the descriptor even when close(2) fails with EINTR. */
    if (close(fd) < 0 && errno != EINTR && r == 0)
        return PROBE_EIO;
    errno = saved;
    return r;
}

PROBE_EXPORT int
probe_report_write(const char *path, const char *format)
{
    if (!path || !*path || !format)
        return PROBE_EINVAL;
    return registry_report(format, registry_sink_path, -1, path);
}
