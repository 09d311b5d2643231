/* A program for the probe report and probe diff tests: "work FACTOR OUT.json" times
 * two functions, the second FACTOR times as long as the first, and saves a JSON
 * report; "trace FACTOR OUT.json" the same with the flight recorder on; "children N
 * PREFIX" forks N children that each save PREFIX<i>.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/report.h>
#include <probe/trace.h>

static volatile unsigned long sink;

static void
spin(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        sink += i;
}

static void
helper(unsigned long n)
{
    PROBE_SCOPE("helper");
    spin(n);
}

static void
steady(void)
{
    PROBE_SCOPE("steady");
    spin(200000);
}

static void
tunable(unsigned factor)
{
    PROBE_SCOPE("tunable");
    spin(400000);
    helper(200000ul * factor);
}

static void
work(unsigned factor)
{
    for (int i = 0; i < 200; i++) {
        steady();
        tunable(factor);
    }
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "trace") == 0) {
        if (probe_trace_start(NULL) != 0)
            return 1;
        work((unsigned)atoi(argv[2]));
        return probe_report_write(argv[3], "json") == 0 ? 0 : 1;
    }
    if (argc == 4 && strcmp(argv[1], "work") == 0) {
        work((unsigned)atoi(argv[2]));
        return probe_report_write(argv[3], "json") == 0 ? 0 : 1;
    }
    if (argc == 4 && strcmp(argv[1], "children") == 0) {
        int n = atoi(argv[2]);
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                char path[4096];
                snprintf(path, sizeof(path), "%s%d.json", argv[3], i);
                probe_thread_name("child");
                work(1 + (unsigned)i);
                _exit(probe_report_write(path, "json") == 0 ? 0 : 1);
            }
            int st;
            if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
                return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: report-work work|trace FACTOR OUT.json | children N PREFIX\n");
    return 2;
}
