/* What libprobe's fault dumper prints when a program crashes.
 *
 * A worker thread dereferences a NULL pointer inside two PROBE_SCOPEs while the main
 * thread waits in its own. With probe_fault_enable() the process still dies by
 * SIGSEGV (exit status and core dump unchanged), but first it writes to stderr
 * every thread's scope stack, innermost first, and its native backtrace.
 *
 * Build (link with -rdynamic so the backtrace names your non-static functions):
 *   cc -rdynamic crash.c $(pkg-config --cflags --libs probe) -o crash
 * Run with "--no-crash" to see the same dump on demand, without crashing.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <probe/probe.h>

struct record {
    const char *name;
    int *value;
};

int parse_value(const struct record *r);
void *worker(void *arg);

int
parse_value(const struct record *r)
{
    PROBE_SCOPE("parse_value");
    return *r->value; /* NULL for the bad record */
}

void *
worker(void *arg)
{
    static int ok = 7;
    struct record records[] = {{"good", &ok}, {"bad", NULL}};
    long sum = 0;

    (void)arg;
    probe_thread_name("loader");
    PROBE_SCOPE("load_records");
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        sum += parse_value(&records[i]);
    printf("sum %ld\n", sum);
    return NULL;
}

int
main(int argc, char **argv)
{
    pthread_t t;
    int rc;

    probe_thread_name("main");
    rc = probe_fault_enable(STDERR_FILENO, 1);
    if (rc < 0) {
        fprintf(stderr, "probe_fault_enable: %s\n", probe_strerror(rc));
        return 1;
    }
    PROBE_SCOPE("main_loop");
    if (argc > 1 && strcmp(argv[1], "--no-crash") == 0)
        return probe_fault_dump(STDERR_FILENO, 1) < 0;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    return 0;
}
