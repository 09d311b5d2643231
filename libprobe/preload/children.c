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
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/probe.h>

#include "preload/preload.h"

static int mode = CHILDREN_INHERIT;
static pid_t root_pid;

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
    }
    pthread_atfork(NULL, NULL, atfork_child);
}
