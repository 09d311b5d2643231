/*
 * The probe command: what probe.c (the dispatcher) and the subcommands share.
 *
 * A subcommand is one function, `int cmd_<name>(int argc, char **argv)`, called
 * with argv[0] the subcommand's name; it returns the exit status of the command.
 * Adding one: write tools/<name>.c, declare its entry point and its one-line
 * synopsis here, and add a line to the table in probe.c.
 */
#ifndef PROBE_CMD_H
#define PROBE_CMD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses of the probe command itself (a subcommand that runs a program
 * otherwise exits with that program's status). */
#define CMD_EXIT_USAGE 2         /* bad command line */
#define CMD_EXIT_FAILURE 125     /* probe itself failed (as env(1), timeout(1)) */
#define CMD_EXIT_CANNOT_EXEC 126 /* the program was found but could not run */
#define CMD_EXIT_NOT_FOUND 127   /* the program was not found */

/* ---- subcommands ---------------------------------------------------------------- */

/* probe time: run a program and report its resource usage (tools/time.c). */
extern const char cmd_time_synopsis[]; /* "probe time [-f ...] COMMAND [ARGS...]" */
int cmd_time(int argc, char **argv);

/* probe run: run a program with libprobe preloaded; report where it spent its time
 * (tools/run.c). */
extern const char cmd_run_synopsis[];
int cmd_run(int argc, char **argv);
/* The format an output file's name asks for (".html" html, ...), or NULL (run.c). */
const char *run_format_of(const char *path);

/* probe report: render saved JSON reports, merged (tools/report.c). */
extern const char cmd_report_synopsis[];
int cmd_report(int argc, char **argv);

/* probe diff: compare two saved reports (tools/diff.c); exits 3 on --fail-above. */
extern const char cmd_diff_synopsis[];
int cmd_diff(int argc, char **argv);

/* Load a saved report, or print why not as one line and return NULL (report.c). */
struct probe_snapshot *cmd_load_report(const char *name, const char *path);
/* Write @data to @path (never through a symlink), or stdout when NULL; prints the
 * error; returns 0 or 1. */
int cmd_write_output(const char *name, const char *path, const char *data, size_t len);

/* ---- helpers for every subcommand (tools/probe.c) ------------------------------ */

/* "probe <name>: <message>\n" on stderr. */
void cmd_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cmd_error(), then the subcommand's synopsis and a hint to run --help; returns
 * CMD_EXIT_USAGE. */
int cmd_usage_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write all of @p buf to @p fd, retrying on EINTR and short writes.
 * @return 0, or -errno. */
int cmd_write_all(int fd, const void *buf, size_t len);

/* Before a subcommand returns @p status to main(): flush stdio, and leave without the
 * library's report at exit when PROBE_OUTPUT asks for one. That variable is meant for
 * the program probe runs; probe's own empty report would overwrite the program's. */
_Noreturn void cmd_exit(int status);

/*
 * A growing string. Every append sets @c failed instead of returning an error, so a
 * builder can append many pieces and check once at the end.
 */
typedef struct cmd_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed; data holds what fitted before */
} cmd_buf;

void cmd_buf_append(cmd_buf *b, const void *data, size_t len);
void cmd_buf_puts(cmd_buf *b, const char *s);
void cmd_buf_printf(cmd_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* @p s as a JSON string: quotes, escapes, and U+FFFD for each byte that is not part
 * of well-formed UTF-8 (the same rules as the library's JSON reports). */
void cmd_buf_json_string(cmd_buf *b, const char *s);
/* @p s quoted for a POSIX shell when it needs it, so a command line can be pasted
 * back; control characters are shown as $'\xHH'. */
void cmd_buf_shell_word(cmd_buf *b, const char *s);
void cmd_buf_free(cmd_buf *b);

#endif /* PROBE_CMD_H */
