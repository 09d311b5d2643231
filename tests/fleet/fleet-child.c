/* The program test_fleet.py profiles from outside: a busy thread in a named hot
 * function (in a scope, so recording can be checked), the listener and/or the
 * pusher from the environment (PROBE_HTTP, PROBE_PUSH) or from its arguments.
 *
 *   fleet-child http      listen on 127.0.0.1:0, print "port N"
 *   fleet-child push      print "stats ..." lines every 100 ms; at SIGTERM stop
 *                         pushing and print "cpu_ns N": the process's CPU time
 *                         from main() to the end of the last window
 *   fleet-child fork      listen, fork; the child says whether it listens
 *   fleet-child loop      only the busy thread (probe run --push)
 * Each runs until SIGTERM (or stdin closes). */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>

static volatile sig_atomic_t done;
static volatile unsigned long sink;
static void *volatile kept; /* FLEET_CHILD_HEAP: a live block for the heap profile */

static void
on_term(int sig)
{
    (void)sig;
    done = 1;
}

__attribute__((noinline)) static void
fleet_hot_loop(void)
{
    PROBE_SCOPE("fleet_work");
    for (unsigned long i = 0; i < 200000; i++)
        sink = sink * 31 + i;
}

static void *
burner(void *arg)
{
    (void)arg;
    while (!done)
        fleet_hot_loop();
    return NULL;
}

static unsigned long long
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Wait @ms; a closed stdin (the test went away) ends the program too. */
static void
nap_ms(int ms)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    char c;

    if (poll(&p, 1, ms) > 0 && read(STDIN_FILENO, &c, 1) <= 0)
        done = 1;
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "http";
    unsigned long long cpu0 = cpu_ns();
    pthread_t t;

    signal(SIGTERM, on_term);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("FLEET_CHILD_HEAP"))
        kept = memset(malloc(1 << 20), 1, 1 << 20);
    if (strcmp(mode, "http") == 0 || strcmp(mode, "fork") == 0) {
        int r = probe_http_start("127.0.0.1:0");

        if (r < 0) {
            printf("error %s\n", probe_strerror(r));
            return 1;
        }
        printf("port %d\n", probe_http_port());
        if (probe_http_start("127.0.0.1:0") != PROBE_EBUSY) {
            printf("error second start not EBUSY\n");
            return 1;
        }
    }
    if (strcmp(mode, "fork") == 0) {
        /* Let the listener thread finish starting: under AddressSanitizer, a fork
         * while another thread is inside its allocator leaves the child's
         * allocator locked (glibc's malloc has no such problem). */
        nap_ms(200);
        pid_t pid = fork();

        if (pid == 0) {
            /* The child: no listener, and it may start its own. */
            int port = probe_http_port();
            int r = probe_http_start("127.0.0.1:0");

            printf("child port %d restart %d\n", port, r);
            probe_http_stop();
            _exit(0);
        }
        waitpid(pid, NULL, 0);
    }
    pthread_create(&t, NULL, burner, NULL);
    while (!done) {
        if (strcmp(mode, "push") == 0) {
            probe_push_stats st = {.size = sizeof(st)};

            if (probe_push_stats_get(&st) == 0)
                printf("stats windows=%llu sent=%llu failed=%llu dropped=%llu queued=%llu\n",
                       (unsigned long long)st.windows, (unsigned long long)st.sent,
                       (unsigned long long)st.failed, (unsigned long long)st.dropped,
                       (unsigned long long)st.queued);
        }
        nap_ms(100);
    }
    pthread_join(t, NULL);
    if (strcmp(mode, "push") == 0) {
        probe_push_stop();
        printf("cpu_ns %llu\n", cpu_ns() - cpu0);
        probe_push_stats st = {.size = sizeof(st)};

        probe_push_stats_get(&st);
        printf("final windows=%llu sent=%llu failed=%llu dropped=%llu queued=%llu\n",
               (unsigned long long)st.windows, (unsigned long long)st.sent,
               (unsigned long long)st.failed, (unsigned long long)st.dropped,
               (unsigned long long)st.queued);
    }
    probe_http_stop();
    return 0;
}
