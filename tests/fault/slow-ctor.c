/* A library whose constructor holds the loader lock for a long time: it says so on
 * the pipe named by SLOW_CTOR_FD, then sleeps (stack-child's loader-crash mode). */
#include <stdlib.h>
#include <unistd.h>

static volatile int slept;

__attribute__((constructor)) static void
slow_ctor(void)
{
    const char *fd = getenv("SLOW_CTOR_FD");

    if (fd && write(atoi(fd), "x", 1) == 1)
        slept += (int)sleep(20); /* not a tail call: this frame stays on the stack */
}
