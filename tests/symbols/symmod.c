/* A module for test-symbols: a static function, which the module's .dynsym does not
 * list (so dladdr(3) cannot name it), burning CPU under the exported entry point. */
#include <stdint.h>
#include <time.h>

#if defined(__clang__)
#define SYMMOD_NOINLINE __attribute__((noinline))
#else
#define SYMMOD_NOINLINE __attribute__((noinline, noclone))
#endif

uint64_t symmod_run(uint64_t ns);

static volatile uint64_t symmod_sink;

static uint64_t
symmod_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static SYMMOD_NOINLINE uint64_t
symmod_static_burn(uint64_t ns)
{
    uint64_t start = symmod_cpu_ns();
    uint64_t x = symmod_sink;

    while (symmod_cpu_ns() - start < ns) {
        for (uint64_t i = 0; i < 200000; i++)
            x = x * 2862933555777941757u + i;
        symmod_sink = x;
    }
    return x;
}

uint64_t
symmod_run(uint64_t ns)
{
    /* Not a tail call: the entry point stays on the stack. */
    return symmod_static_burn(ns) + symmod_sink;
}
