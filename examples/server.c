/* A long-running server with continuous profiling on: the /debug/pprof endpoint for
 * scrapers (Parca, Grafana Alloy, the OpenTelemetry Collector, go tool pprof) and,
 * given a URL, a push of a CPU profile every 15 s to Pyroscope. docs/fleet.md.
 *
 *   server [LISTEN [PUSH_URL [SECONDS]]]   e.g. server :6060 http://pyroscope:4040
 *
 * LISTEN defaults to 127.0.0.1:6060 (port 0: any free port, printed). The endpoint
 * has no authentication: keep it on loopback or behind the firewall. Runs until
 * SIGINT or SIGTERM. SECONDS is the push interval (default 15); PROBE_LABELS and
 * PROBE_PUSH_TENANT apply. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <probe/probe.h>

static volatile sig_atomic_t stopping;
static volatile unsigned long checksum;

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* The "request": parse, then render; the profile shows which costs more. */
static unsigned long
parse_request(unsigned long seed)
{
    PROBE_FUNC();
    unsigned long h = seed;

    for (int i = 0; i < 20000; i++)
        h = h * 6364136223846793005ul + 1442695040888963407ul;
    return h;
}

static unsigned long
render_response(unsigned long h)
{
    PROBE_FUNC();
    for (int i = 0; i < 60000; i++)
        h ^= h << 13, h ^= h >> 7, h ^= h << 17;
    return h;
}

static void *
worker(void *arg)
{
    unsigned long n = (unsigned long)(uintptr_t)arg;
    struct timespec idle = {0, 2000000};

    probe_thread_name("worker");
    while (!stopping) {
        PROBE_SCOPE("request");
        checksum += render_response(parse_request(n++));
        nanosleep(&idle, NULL); /* waiting for the next client */
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *listen = argc > 1 ? argv[1] : "127.0.0.1:6060";
    pthread_t threads[2];
    int r;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if ((r = probe_http_start(listen)) < 0) {
        fprintf(stderr, "server: cannot listen on %s: %s\n", listen, probe_strerror(r));
        return 1;
    }
    printf("listening on port %d: go tool pprof "
           "http://127.0.0.1:%d/debug/pprof/profile?seconds=10\n",
           probe_http_port(), probe_http_port());
    if (argc > 2) {
        probe_push_options opts = PROBE_PUSH_OPTIONS_INIT;

        opts.url = argv[2];
        opts.app = "example-server";
        if (argc > 3)
            opts.interval_ns = (uint64_t)(atof(argv[3]) * 1e9);
        if ((r = probe_push_start(&opts)) < 0) {
            fprintf(stderr, "server: cannot push to %s: %s\n", argv[2], probe_strerror(r));
            return 1;
        }
        printf("pushing to %s\n", argv[2]);
    }
    fflush(stdout);
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i * 1000));
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    probe_push_stop(); /* the last window, sent within the time-out */
    probe_http_stop();
    return 0;
}
