/*
 * A timeline for Perfetto: trace two threads and write a Chrome trace.
 *
 *   cc timeline.c $(pkg-config --cflags --libs probe) -o timeline
 *   ./timeline trace.json            # flight recorder, written with probe_report_write
 *   ./timeline trace.json stream     # streamed to the file while the threads run
 *
 * Open trace.json at https://ui.perfetto.dev ("Open trace file") or in
 * chrome://tracing: one track per thread, nested slices per scope, a counter track.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <probe/probe.h>

static unsigned
checksum(const char *s)
{
    PROBE_FUNC();
    unsigned h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

static void
handle_request(int i)
{
    PROBE_SCOPE("handle_request");
    char line[64];
    {
        PROBE_SCOPE("parse");
        snprintf(line, sizeof(line), "GET /item/%d HTTP/1.1", i);
    }
    PROBE_COUNT("bytes_in", (int64_t)strlen(line));
    (void)checksum(line);
}

static void *
server(void *arg)
{
    probe_thread_name((const char *)arg);
    for (int i = 0; i < 200; i++)
        handle_request(i);
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "trace.json";
    int stream = argc > 2 && strcmp(argv[2], "stream") == 0;
    probe_trace_options opts = PROBE_TRACE_OPTIONS_INIT;
    pthread_t a, b;
    int rc;

    if (stream) {
        opts.mode = PROBE_TRACE_STREAM;
        opts.path = path;
    }
    rc = probe_trace_start(&opts);
    if (rc < 0) {
        fprintf(stderr, "timeline: probe_trace_start: %s\n", probe_strerror(rc));
        return 1;
    }
    probe_thread_name("main");
    pthread_create(&a, NULL, server, "worker-a");
    pthread_create(&b, NULL, server, "worker-b");
    probe_trace_instant("workers started");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    rc = probe_trace_stop();
    if (rc == 0 && !stream)
        rc = probe_report_write(path, "chrome");
    if (rc < 0) {
        fprintf(stderr, "timeline: writing %s: %s\n", path, probe_strerror(rc));
        return 1;
    }
    printf("timeline: wrote %s; open it at https://ui.perfetto.dev\n", path);
    return 0;
}
