/* probe time: run a program and report its wall time and resource usage, read with
 * wait4(2) for exactly that child (docs/probe-command.md). */
#include "probe-cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <probe/rusage.h>

#define NAME "time"

typedef enum time_format {
    TIME_TEXT,
    TIME_JSON,
} time_format;

/* What the run produced: the report is made from this alone. */
typedef struct time_result {
    char **argv;        /* the command, NULL-terminated */
    int wait_status;    /* from wait4() */
    probe_rusage usage; /* wall_ns is the elapsed time, not a clock reading */
} time_result;

/* The dispositions the parent changes while the child runs, saved so the child can
 * run with what probe was given and the parent can put them back. */
typedef struct time_signals {
    struct sigaction intr, quit, chld;
} time_signals;

const char cmd_time_synopsis[] =
    "probe time [-f text|json] [-o FILE] [--] COMMAND [ARGS...]";

static void
time_help(FILE *f)
{
    fprintf(f, "usage: %s\n", cmd_time_synopsis);
    fputs("\n"
          "Run COMMAND, wait for it, and report its wall time, user and system CPU\n"
          "time, peak resident set size, page faults, context switches and block I/O.\n"
          "probe time exits with COMMAND's exit status, or 128 + the signal number if\n"
          "a signal killed it (126: COMMAND cannot run; 127: not found; 125: probe\n"
          "time itself failed; 2: bad usage).\n"
          "\n"
          "options:\n"
          "  -f, --format=FORMAT  'text' (the default) or 'json' (schema probe-time/1)\n"
          "  -o, --output=FILE    write the report to FILE (created with mode 0644 or\n"
          "                       truncated; a symbolic link is refused), not stderr\n"
          "  -h, --help           show this help and exit\n",
          f);
}

/* ---- the report ---------------------------------------------------------------- */

static uint64_t
timeval_ns(struct timeval tv)
{
    return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

static uint64_t
timespec_ns(struct timespec ts)
{
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The rusage of one child in the library's units: nanoseconds and bytes. */
static void
time_usage_from_sys(const struct rusage *ru, uint64_t wall_ns, probe_rusage *out)
{
    memset(out, 0, sizeof(*out));
    out->wall_ns = wall_ns;
    out->user_ns = timeval_ns(ru->ru_utime);
    out->system_ns = timeval_ns(ru->ru_stime);
#ifdef __APPLE__
    out->max_rss_bytes = (uint64_t)ru->ru_maxrss; /* bytes on macOS */
#else
    out->max_rss_bytes = (uint64_t)ru->ru_maxrss * 1024u; /* KiB on Linux and BSDs */
#endif
    out->minor_faults = (uint64_t)ru->ru_minflt;
    out->major_faults = (uint64_t)ru->ru_majflt;
    out->voluntary_switches = (uint64_t)ru->ru_nvcsw;
    out->involuntary_switches = (uint64_t)ru->ru_nivcsw;
    out->block_in = (uint64_t)ru->ru_inblock;
    out->block_out = (uint64_t)ru->ru_oublock;
}

/* Signals as kill -l spells them. */
static const struct {
    int sig;
    const char *name;
} signal_names[] = {
    {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
    {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
    {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
    {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGSYS, "SIGSYS"},
#ifdef SIGSTKFLT
    {SIGSTKFLT, "SIGSTKFLT"},
#endif
#ifdef SIGWINCH
    {SIGWINCH, "SIGWINCH"},
#endif
#ifdef SIGIO
    {SIGIO, "SIGIO"},
#endif
#ifdef SIGPWR
    {SIGPWR, "SIGPWR"},
#endif
};

/* "SIGKILL" for 9, "SIGRTMIN+3" for a real-time signal, in @p buf if need be; NULL
 * for a number with no name. */
static const char *
time_signal_name(int sig, char buf[static 32])
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].sig == sig)
            return signal_names[i].name;
    }
#ifdef SIGRTMIN
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        snprintf(buf, 32, "SIGRTMIN+%d", sig - SIGRTMIN);
        return buf;
    }
#endif
    return NULL;
}

/* The status probe time exits with: the shell's $? for the same command. */
static int
time_exit_status(int wait_status)
{
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status))
        return 128 + WTERMSIG(wait_status);
    return CMD_EXIT_FAILURE; /* not reached: wait4() reported no stop */
}

static void
time_report_text(cmd_buf *b, const time_result *r)
{
    cmd_buf_puts(b, "Command: ");
    for (char **a = r->argv; *a; a++) {
        if (a != r->argv)
            cmd_buf_puts(b, " ");
        cmd_buf_shell_word(b, *a);
    }
    cmd_buf_puts(b, "\n");
    if (WIFSIGNALED(r->wait_status)) {
        int sig = WTERMSIG(r->wait_status);
        char buf[32];
        const char *name = time_signal_name(sig, buf);

        cmd_buf_puts(b, "Killed by signal: ");
        if (name)
            cmd_buf_printf(b, "%s (%d)", name, sig);
        else
            cmd_buf_printf(b, "%d", sig);
#ifdef WCOREDUMP
        if (WCOREDUMP(r->wait_status))
            cmd_buf_puts(b, ", core dumped");
#endif
        cmd_buf_puts(b, "\n");
    }
    cmd_buf_printf(b, "Exit status: %d\n", time_exit_status(r->wait_status));

    /* The numbers, as the library writes them. */
    int n = probe_rusage_format(&r->usage, NULL, 0);

    if (n < 0) {
        b->failed = 1;
        return;
    }

    char *block = malloc((size_t)n + 1);

    if (!block) {
        b->failed = 1;
        return;
    }
    probe_rusage_format(&r->usage, block, (size_t)n + 1);
    cmd_buf_append(b, block, (size_t)n);
    if (n > 0 && block[n - 1] != '\n')
        cmd_buf_puts(b, "\n");
    free(block);
}

static void
time_report_json(cmd_buf *b, const time_result *r)
{
    const probe_rusage *u = &r->usage;

    cmd_buf_puts(b, "{\"schema\":\"probe-time/1\",\"command\":[");
    for (char **a = r->argv; *a; a++) {
        if (a != r->argv)
            cmd_buf_puts(b, ",");
        cmd_buf_json_string(b, *a);
    }
    cmd_buf_printf(b,
                   "],\"exit_status\":%d,\"signal\":", time_exit_status(r->wait_status));
    if (WIFSIGNALED(r->wait_status)) {
        int sig = WTERMSIG(r->wait_status);
        char buf[32];
        const char *name = time_signal_name(sig, buf);

        if (name)
            cmd_buf_printf(b, "\"%s\"", name);
        else
            cmd_buf_printf(b, "%d", sig);
    } else {
        cmd_buf_puts(b, "null");
    }
    cmd_buf_printf(b,
                   ",\"wall_ns\":%" PRIu64 ",\"user_ns\":%" PRIu64
                   ",\"system_ns\":%" PRIu64 ",\"max_rss_bytes\":%" PRIu64
                   ",\"minor_faults\":%" PRIu64 ",\"major_faults\":%" PRIu64
                   ",\"voluntary_switches\":%" PRIu64 ",\"involuntary_switches\":%" PRIu64
                   ",\"block_in\":%" PRIu64 ",\"block_out\":%" PRIu64 "}\n",
                   u->wall_ns, u->user_ns, u->system_ns, u->max_rss_bytes,
                   u->minor_faults, u->major_faults, u->voluntary_switches,
                   u->involuntary_switches, u->block_in, u->block_out);
}

/* Write the report, or say on stderr why it could not be written. */
static void
time_report(int fd, const char *path, time_format format, const time_result *r)
{
    cmd_buf b = {0};

    if (format == TIME_JSON)
        time_report_json(&b, r);
    else
        time_report_text(&b, r);
    if (b.failed) {
        cmd_error(NAME, "cannot format the report: out of memory");
        cmd_buf_free(&b);
        return;
    }

    int rc = cmd_write_all(fd, b.data, b.len);

    cmd_buf_free(&b);
    if (rc < 0)
        cmd_error(NAME, "cannot write the report to %s: %s", path ? path : "stderr",
                  strerror(-rc));
}

/* ---- running the command ------------------------------------------------------- */

/* In the parent while the child runs: ignore SIGINT and SIGQUIT, as time(1) does, so
 * that a Ctrl-C at the terminal stops the child and the report is still written; and
 * take SIGCHLD's default, since an inherited SIG_IGN would reap the child before
 * wait4() could read its usage. */
static int
time_signals_hold(time_signals *saved)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL};

    sigemptyset(&ign.sa_mask);
    sigemptyset(&dfl.sa_mask);
    if (sigaction(SIGINT, &ign, &saved->intr) < 0 ||
        sigaction(SIGQUIT, &ign, &saved->quit) < 0 ||
        sigaction(SIGCHLD, &dfl, &saved->chld) < 0)
        return -errno;
    return 0;
}

static void
time_signals_restore(const time_signals *saved)
{
    sigaction(SIGINT, &saved->intr, NULL);
    sigaction(SIGQUIT, &saved->quit, NULL);
    sigaction(SIGCHLD, &saved->chld, NULL);
}

/* In the child: exec the command, or tell the parent why not through @p err_fd.
 * Only async-signal-safe calls after fork(). */
_Noreturn static void
time_child(char **argv, const time_signals *saved, int err_fd)
{
    time_signals_restore(saved);
    execvp(argv[0], argv);

    int err = errno;

    while (write(err_fd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(err == ENOENT ? CMD_EXIT_NOT_FOUND : CMD_EXIT_CANNOT_EXEC);
}

/*
 * Run @p r->argv and fill in @p r.
 * @return 0, or an exit status after saying what failed: CMD_EXIT_NOT_FOUND and
 *         CMD_EXIT_CANNOT_EXEC when exec failed, CMD_EXIT_FAILURE otherwise.
 */
static int
time_run(time_result *r)
{
    time_signals saved;
    struct timespec start, end;
    struct rusage ru;
    int pipefd[2], err;
    pid_t pid;

    /* Closed by a successful exec: EOF then means the command runs. */
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        cmd_error(NAME, "pipe: %s", strerror(errno));
        return CMD_EXIT_FAILURE;
    }
    if ((err = time_signals_hold(&saved)) < 0) {
        cmd_error(NAME, "sigaction: %s", strerror(-err));
        close(pipefd[0]);
        close(pipefd[1]);
        return CMD_EXIT_FAILURE;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid = fork();
    if (pid == 0)
        time_child(r->argv, &saved, pipefd[1]);
    if (pid < 0) {
        err = errno;
        time_signals_restore(&saved);
        close(pipefd[0]);
        close(pipefd[1]);
        cmd_error(NAME, "fork: %s", strerror(err));
        return CMD_EXIT_FAILURE;
    }
    close(pipefd[1]);

    ssize_t n;

    err = 0;
    while ((n = read(pipefd[0], &err, sizeof(err))) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);

    pid_t w;

    while ((w = wait4(pid, &r->wait_status, 0, &ru)) < 0 && errno == EINTR)
        ;
    int wait_err = errno;

    clock_gettime(CLOCK_MONOTONIC, &end);
    time_signals_restore(&saved);

    if (n == (ssize_t)sizeof(err)) {
        cmd_error(NAME, "cannot run '%s': %s", r->argv[0], strerror(err));
        return err == ENOENT ? CMD_EXIT_NOT_FOUND : CMD_EXIT_CANNOT_EXEC;
    }
    if (w < 0) {
        cmd_error(NAME, "wait4: %s", strerror(wait_err));
        return CMD_EXIT_FAILURE;
    }
    time_usage_from_sys(&ru, timespec_ns(end) - timespec_ns(start), &r->usage);
    return 0;
}

/* ---- the subcommand ------------------------------------------------------------ */

/* Open -o FILE: created 0644 or truncated, never through a symbolic link, and not
 * inherited by the command. @return the descriptor, or -1 after saying why. */
static int
time_open_output(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd >= 0)
        return fd;
    if (errno == ELOOP)
        cmd_error(NAME,
                  "cannot write the report to '%s': it is a symbolic link "
                  "(not followed)",
                  path);
    else
        cmd_error(NAME, "cannot write the report to '%s': %s", path, strerror(errno));
    return -1;
}

int
cmd_time(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    time_format format = TIME_TEXT;
    const char *path = NULL;
    int c;

    /* '+': options end at the command, so its own options stay its own. ':': a
     * missing argument is told apart from an unknown option. */
    opterr = 0;
    optind = 0; /* glibc: start over, whoever parsed before */
    while ((c = getopt_long(argc, argv, "+:f:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") == 0)
                format = TIME_TEXT;
            else if (strcmp(optarg, "json") == 0)
                format = TIME_JSON;
            else
                return cmd_usage_error(NAME, "unknown format '%s' (use 'text' or 'json')",
                                       optarg);
            break;
        case 'o':
            path = optarg;
            break;
        case 'h':
            time_help(stdout);
            return 0;
        case ':':
            return cmd_usage_error(NAME, "option '%s' needs an argument",
                                   argv[optind - 1]);
        default:
            /* optopt is 0 for an unknown or ambiguous long option, and a known
             * letter for a long option given an argument it does not take. */
            if (optopt == 0 || strchr("foh", optopt))
                return cmd_usage_error(NAME, "invalid option '%s'", argv[optind - 1]);
            return cmd_usage_error(NAME, "unknown option '-%c'", optopt);
        }
    }
    if (optind >= argc)
        return cmd_usage_error(NAME, "no command given");

    int fd = STDERR_FILENO;

    if (path && (fd = time_open_output(path)) < 0)
        return CMD_EXIT_FAILURE;

    time_result r = {.argv = argv + optind};
    int rc = time_run(&r);

    if (rc == 0) {
        /* Failing to write the report is said, but the command's status is kept:
         * scripts check it to know whether the command itself succeeded. */
        time_report(fd, path, format, &r);
        rc = time_exit_status(r.wait_status);
    }
    if (path && close(fd) < 0)
        cmd_error(NAME, "cannot write the report to '%s': %s", path, strerror(errno));
    return rc;
}
