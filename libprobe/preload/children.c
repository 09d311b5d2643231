/* PROBE_CHILDREN: what the processes a profiled program starts do
 * (docs/environment.md).
 *
 * "none": before main, libprobe removes its variables and its own LD_PRELOAD entry
 * from the environment, so programs the process executes run unprofiled, and a
 * forked child that does not exec writes no report. The variables go with
 * unsetenv(), which edits the environment array in place: main()'s envp sees it too.
 *
 * "follow": every forked or executed descendant is profiled into PROBE_OUTPUT.PID.
 * The first process to load libprobe rewrites the value to "follow:PID" (an existing
 * variable's slot is replaced in place, so envp follows), which tells descendants
 * they are not it; a forked child starts with clean statistics and its own sampler. */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

#include "core/snapshot.h"
#include "preload/preload.h"

static int mode = CHILDREN_INHERIT;
static pid_t root_pid;
static time_t root_start; /* the first process's load time: older files are not ours */

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* snapshot_children_hook, in the first process of "follow": the files PROBE_OUTPUT.PID
 * that descendants wrote since it started (a child still running has written none),
 * sorted, NUL-terminated back to back. The parent's own report lists them. */
static int
children_reports(char **ret_buf, size_t *ret_len)
{
    const char *out = secure_getenv("PROBE_OUTPUT");
    char dir[PATH_MAX], full[PATH_MAX];
    char **names = NULL, *buf = NULL;
    size_t n = 0, cap = 0, len = 0;
    int rc = PROBE_ENOMEM;

    *ret_buf = NULL;
    *ret_len = 0;
    if (getpid() != root_pid || !out || !*out || !strcmp(out, "-") ||
        !strcmp(out, "stderr") || !strcmp(out, "stdout"))
        return 0;
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    size_t blen = strlen(base);

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == out ? 1 : (int)(slash - out), out);
    DIR *d = opendir(dir);

    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *s = e->d_name, *digits = s + blen + 1;
        struct stat st;

        if (strncmp(s, base, blen) != 0 || s[blen] != '.' || !*digits ||
            strspn(digits, "0123456789") != strlen(digits))
            continue;
        int w = slash ? snprintf(full, sizeof(full), "%s/%s", dir, s)
                      : snprintf(full, sizeof(full), "%s", s);
        if (w < 0 || (size_t)w >= sizeof(full) || lstat(full, &st) < 0 || !S_ISREG(st.st_mode) || st.st_mtime < root_start)
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 8) * sizeof(*names));
            if (!p)
                goto out;
            names = p;
        }
        if (!(names[n] = strdup(full)))
            goto out;
        len += strlen(full) + 1;
        n++;
    }
    if (n) {
        qsort(names, n, sizeof(*names), cmp_str);
        if (!(buf = malloc(len)))
            goto out;
        for (size_t i = 0, at = 0; i < n; i++) {
            size_t k = strlen(names[i]) + 1;
            memcpy(buf + at, names[i], k);
            at += k;
        }
        *ret_buf = buf;
        *ret_len = len;
    }
    rc = 0;
out:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* The variables that configure libprobe at load (docs/environment.md). */
static const char *const probe_vars[] = {
    "PROBE_OUTPUT", "PROBE_FORMAT", "PROBE_SAMPLE", "PROBE_SAMPLE_HZ",
    "PROBE_FAULT",  "PROBE_TRACE",  "PROBE_CLOCK",  "PROBE_CHILDREN",
    "PROBE_MEM",    "PROBE_MEM_SAMPLE", "PROBE_MEM_OUTPUT", "PROBE_MEM_FORMAT",
    "PROBE_HTTP",   "PROBE_PUSH",   "PROBE_PUSH_INTERVAL", "PROBE_APP",
    "PROBE_LABELS", "PROBE_PUSH_TENANT",
};

int
children_mode(void)
{
    return mode;
}

pid_t
children_root_pid(void)
{
    return root_pid;
}

/* A forked child (with "follow"): its report is its own work. The core's and the
 * sampler's fork handlers were registered first, so they have run. */
static void
atfork_child(void)
{
    probe_reset();
    sample_restart();
}

static int
same_file(const char *a, const char *b)
{
    const char *ba = strrchr(a, '/'), *bb = strrchr(b, '/');

    if (strcmp(a, b) == 0)
        return 1;
    /* "libprobe.so.0" given by name and found by the loader in its path. */
    return !strchr(a, '/') && bb && strcmp(a, bb + 1) == 0 && !ba;
}

/* Remove the entries naming this library from LD_PRELOAD (separated by ':' or ' '). */
static void
preload_remove_self(void)
{
    const char *pre = getenv("LD_PRELOAD");
    Dl_info info;

    if (!pre || !dladdr(&mode, &info) || !info.dli_fname)
        return;

    size_t len = strlen(pre);
    char *kept = malloc(len + 1), *copy = strdup(pre);

    if (!kept || !copy)
        goto out;
    kept[0] = '\0';
    for (char *save = NULL, *tok = strtok_r(copy, ": ", &save); tok;
         tok = strtok_r(NULL, ": ", &save)) {
        if (same_file(tok, info.dli_fname))
            continue;
        if (kept[0])
            strcat(kept, ":");
        strcat(kept, tok);
    }
    if (kept[0])
        setenv("LD_PRELOAD", kept, 1);
    else
        unsetenv("LD_PRELOAD");
out:
    free(kept);
    free(copy);
}

void
children_init(void)
{
    const char *v = secure_getenv("PROBE_CHILDREN");

    root_pid = getpid();
    if (!v || !*v)
        return;
    if (strcmp(v, "none") == 0) {
        mode = CHILDREN_NONE;
        for (size_t i = 0; i < sizeof(probe_vars) / sizeof(probe_vars[0]); i++)
            unsetenv(probe_vars[i]);
        preload_remove_self();
        return;
    }
    if (strncmp(v, "follow", 6) != 0 || (v[6] != '\0' && v[6] != ':')) {
        dprintf(STDERR_FILENO, "libprobe: PROBE_CHILDREN=%s: use none or follow\n", v);
        return;
    }
    mode = CHILDREN_FOLLOW;
    if (v[6] == ':') {
        char *end;
        long pid = strtol(v + 7, &end, 10);

        if (end != v + 7 && !*end && pid > 0)
            root_pid = (pid_t)pid;
    } else {
        char value[32];

        snprintf(value, sizeof(value), "follow:%ld", (long)root_pid);
        setenv("PROBE_CHILDREN", value, 1);
        root_start = time(NULL);
        __atomic_store_n(&snapshot_children_hook, children_reports, __ATOMIC_RELEASE);
    }
    pthread_atfork(NULL, NULL, atfork_child);
}
