/* The library elf-fuzz mutates: static functions that burn CPU (for the sampler)
 * and call back into the test (for the fault dumper's unwinding) from inside. */
#include <stdint.h>
#include <time.h>

void fuzzmod_run(uint64_t ns, void (*inside)(void));

static volatile uint64_t fuzzmod_sink;

static uint64_t
fuzzmod_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static __attribute__((noinline)) void
fuzzmod_burn(uint64_t ns, void (*inside)(void))
{
    uint64_t start = fuzzmod_cpu_ns(), x = fuzzmod_sink;

    while (fuzzmod_cpu_ns() - start < ns) {
        for (uint64_t i = 0; i < 100000; i++)
            x = x * 2862933555777941757u + i;
        fuzzmod_sink = x;
    }
    if (inside)
        inside();
    fuzzmod_sink++;
}

void
fuzzmod_run(uint64_t ns, void (*inside)(void))
{
    fuzzmod_burn(ns, inside);
    fuzzmod_sink++;
}
