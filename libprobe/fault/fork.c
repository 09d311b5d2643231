/* fork() and the fault dumper's locks (docs/locks.md). The child keeps what the
 * parent registered (signal dispositions are inherited), so the locks that guard it
 * are taken before fork and released after, in parent and child alike; both are
 * leaves, so where they come in the order of the process's fork handlers does not
 * matter. The dump lock (a spin word) may be held by a thread that is not in the
 * child: the child frees it. The watchdog has its own child handler (watchdog.c). */
#include <pthread.h>

#include "fault/fault.h"
#include "init.h"

static void
fault_fork_prepare(void)
{
    fatal_fork_lock(1);
    user_fork_lock(1);
}

static void
fault_fork_parent(void)
{
    user_fork_lock(0);
    fatal_fork_lock(0);
}

static void
fault_fork_child(void)
{
    fault_fork_parent();
    /* The forking thread is not dumping: any owner is a thread the child lacks. */
    dump_unlock();
}

void
fault_fork_init(void)
{
    /* Only ENOMEM can fail it, at load: then a child forked mid-call may block. */
    (void)pthread_atfork(fault_fork_prepare, fault_fork_parent, fault_fork_child);
}
