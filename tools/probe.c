/* The probe command: dispatch to a subcommand, usage, --help, --version; and the
 * helpers every subcommand shares (probe-cmd.h). */
#include "probe-cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <probe/common.h>

typedef struct cmd {
    const char *name;
    const char *synopsis;
    const char *summary;
    int (*run)(int argc, char **argv);
} cmd;

static const cmd commands[] = {
    {"run", cmd_run_synopsis, "run a program with libprobe preloaded; report where it spent its time",
     cmd_run},
    {"time", cmd_time_synopsis, "run a program; report its time, CPU, memory and I/O",
     cmd_time},
    {"report", cmd_report_synopsis, "render saved JSON reports (merged), sorted and filtered",
     cmd_report},
    {"diff", cmd_diff_synopsis, "compare two saved reports; exit 3 on a regression",
     cmd_diff},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
probe_usage(FILE *f)
{
    fputs("usage: probe COMMAND [ARGS...]\n"
          "       probe --help | --version\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n           %s\n", commands[i].name, commands[i].summary,
                commands[i].synopsis);
    fputs("\n"
          "Run 'probe COMMAND --help' for a command's options.\n",
          f);
}

static void
probe_version(void)
{
    printf("probe (libprobe) %d.%d.%d\n", PROBE_VERSION_MAJOR, PROBE_VERSION_MINOR,
           PROBE_VERSION_PATCH);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("probe: no command given\n", stderr);
        probe_usage(stderr);
        cmd_exit(CMD_EXIT_USAGE);
    }

    const char *name = argv[1];

    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        probe_usage(stdout);
        cmd_exit(0);
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        probe_version();
        cmd_exit(0);
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name) == 0)
            cmd_exit(commands[i].run(argc - 1, argv + 1));
    }
    if (name[0] == '-')
        fprintf(stderr, "probe: unknown option '%s'\n", name);
    else
        fprintf(stderr, "probe: unknown command '%s'\n", name);
    probe_usage(stderr);
    cmd_exit(CMD_EXIT_USAGE);
}

/* ---- helpers ------------------------------------------------------------------- */

static void
cmd_verror(const char *name, const char *fmt, va_list ap)
{
    fprintf(stderr, "probe %s: ", name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
cmd_error(const char *name, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cmd_verror(name, fmt, ap);
    va_end(ap);
}

int
cmd_usage_error(const char *name, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cmd_verror(name, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name) == 0)
            fprintf(stderr, "usage: %s\n", commands[i].synopsis);
    }
    fprintf(stderr, "Run 'probe %s --help' for more.\n", name);
    return CMD_EXIT_USAGE;
}

int
cmd_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void
cmd_exit(int status)
{
    const char *report = getenv("PROBE_OUTPUT");

    if (fflush(NULL) != 0 && status == 0)
        status = CMD_EXIT_FAILURE; /* e.g. --help > /dev/full */
    if (report && *report)
        _exit(status);
    exit(status);
}

/* ---- cmd_buf ------------------------------------------------------------------- */

void
cmd_buf_append(cmd_buf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->cap - b->len <= len) {
        size_t cap = b->cap ? b->cap : 256;

        while (cap - b->len <= len) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }

        char *p = realloc(b->data, cap);

        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void
cmd_buf_puts(cmd_buf *b, const char *s)
{
    cmd_buf_append(b, s, strlen(s));
}

void
cmd_buf_printf(cmd_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        cmd_buf_append(b, small, (size_t)n);
        return;
    }

    char *big = malloc((size_t)n + 1);

    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cmd_buf_append(b, big, (size_t)n);
    free(big);
}

/*
 * The length of the well-formed UTF-8 sequence at @p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if the byte at @p does not start one.
 */
static size_t
utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    /* The NUL terminator fails these tests, so a cut-off sequence stops here. */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

void
cmd_buf_json_string(cmd_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    cmd_buf_append(b, "\"", 1);
    while (*p) {
        size_t n = 0;

        /* A run of bytes that go out as they are: printable ASCII but '"' and '\\'. */
        while (p[n] >= 0x20 && p[n] < 0x80 && p[n] != '"' && p[n] != '\\')
            n++;
        cmd_buf_append(b, p, n);
        p += n;
        if (!*p)
            break;
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};

            cmd_buf_append(b, esc, 2);
            p++;
        } else if (*p < 0x20) {
            cmd_buf_printf(b, "\\u%04x", *p);
            p++;
        } else if ((n = utf8_len(p)) == 0) {
            cmd_buf_puts(b, "\\ufffd"); /* one per invalid byte */
            p++;
        } else if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
                   (p[2] == 0xa8 || p[2] == 0xa9)) {
            /* U+2028 and U+2029 are valid JSON but end a line in JavaScript. */
            cmd_buf_printf(b, "\\u%04x", 0x2028 + (p[2] - 0xa8));
            p += n;
        } else {
            cmd_buf_append(b, p, n);
            p += n;
        }
    }
    cmd_buf_append(b, "\"", 1);
}

void
cmd_buf_shell_word(cmd_buf *b, const char *s)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_@%+=:,./-";
    int control = 0;

    if (*s && strspn(s, safe) == strlen(s)) {
        cmd_buf_puts(b, s);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            control = 1;
    }
    if (!control) {
        /* 'it'\''s': a single quote ends the quoting, is escaped, and starts it again. */
        cmd_buf_append(b, "'", 1);
        for (const char *p = s; *p; p++) {
            if (*p == '\'')
                cmd_buf_puts(b, "'\\''");
            else
                cmd_buf_append(b, p, 1);
        }
        cmd_buf_append(b, "'", 1);
        return;
    }
    cmd_buf_puts(b, "$'");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\'' || *p == '\\')
            cmd_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            cmd_buf_printf(b, "\\x%02x", *p);
        else
            cmd_buf_append(b, p, 1);
    }
    cmd_buf_append(b, "'", 1);
}

void
cmd_buf_free(cmd_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
