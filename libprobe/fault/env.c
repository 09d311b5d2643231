/* PROBE_FAULT=1 enables the fault dumper (to stderr, all threads) when the library
 * loads, for programs that cannot be changed (docs/environment.md). Ignored in setuid
 * and setgid programs (secure_getenv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/probe.h>

#include "init.h"

void
fault_env_init(void)
{
    const char *v = secure_getenv("PROBE_FAULT");
    int rc;

    if (!v || strcmp(v, "1") != 0)
        return;
    rc = probe_fault_enable(STDERR_FILENO, 1);
    if (rc < 0)
        dprintf(STDERR_FILENO, "libprobe: PROBE_FAULT=1: cannot enable the fault dumper: %s\n",
                probe_strerror(rc));
}
