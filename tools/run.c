/* probe run: run a program with libprobe.so preloaded, sampling it, and write its
 * report when it ends (docs/probe-command.md). The program needs no libprobe code:
 * the library reads its configuration from the PROBE_* variables set here
 * (docs/environment.md). */
#include "probe-cmd.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <probe/probe.h>
#include <probe/report.h>
#include <probe/sampler.h>

#define NAME "run"
#define RUN_HZ_DEFAULT 1000ul
#define RUN_HZ_MAX (1000000000ul / PROBE_SAMPLER_INTERVAL_MIN)

#ifndef PROBE_LIBDIR
#define PROBE_LIBDIR "/usr/local/lib"
#endif

const char cmd_run_synopsis[] =
    "probe run [-o FILE] [-f FORMAT] [--hz N] [--wall] [--trace] [--follow-fork] "
    "[--no-fault] [--mem[=FILE]] [--push URL] [--] PROGRAM [ARGS...]";

extern char **environ;

static void
run_help(FILE *f)
{
    fprintf(f, "usage: %s\n", cmd_run_synopsis);
    fputs("\n"
          "Run PROGRAM with libprobe preloaded: sample where its threads spend their\n"
          "CPU time, dump every thread's stack if it crashes, and write a report when\n"
          "it ends. PROGRAM needs no libprobe code; if it has PROBE_SCOPEs of its own,\n"
          "they are in the same report. Without -o the report is a call tree on\n"
          "stderr; with -o, the last line on stderr names the file and what opens it.\n"
          "\n"
          "options:\n"
          "  -o, --output=FILE    write the report to FILE (created with mode 0644 or\n"
          "                       truncated before PROGRAM runs; a symbolic link is\n"
          "                       refused). The format follows the name: .json json,\n"
          "                       .pb.gz or .pprof pprof, .speedscope.json speedscope,\n"
          "                       .trace.json chrome, .folded or .collapsed collapsed,\n"
          "                       callgrind.out* callgrind, .txt text, .html html\n"
          "  -f, --format=FORMAT  the report's format, whatever FILE is called: tree,\n"
          "                       text, json, pprof, chrome, speedscope, collapsed,\n"
          "                       callgrind or html, with :options (docs/formats.md)\n"
          "      --hz=N           samples per second of CPU time (of wall time with\n"
          "                       --wall), 1..20000; default 1000\n"
          "      --wall           sample wall time: time blocked in the kernel too\n"
          "      --trace          record the flight recorder's timeline of scopes\n"
          "                       (shown by the chrome and speedscope formats)\n"
          "      --follow-fork    profile every child process too, each into FILE.PID;\n"
          "                       without it, children run unprofiled\n"
          "      --no-fault       no stack dump when PROGRAM crashes\n"
          "      --mem[=FILE]     profile the heap too: sampled allocation sites, leaks\n"
          "                       at exit, the heap at its peak, temporaries; to FILE\n"
          "                       (.pb.gz or .pprof pprof, .json json, else text), or\n"
          "                       on stderr (docs/memory.md)\n"
          "      --push=URL       push a CPU profile every PROBE_PUSH_INTERVAL seconds\n"
          "                       (15) to Pyroscope at URL, or to file://DIR\n"
          "                       (docs/fleet.md)\n"
          "  -h, --help           show this help and exit\n"
          "\n"
          "probe run exits with PROGRAM's exit status, or 128 + N if signal N killed\n"
          "it (the report is still written after a crash, best effort; _exit() and\n"
          "SIGKILL lose it). Errors: 127 PROGRAM not found, 126 PROGRAM cannot run\n"
          "with libprobe preloaded (not executable, static, setuid), 125 probe run\n"
          "itself failed (e.g. FILE not writable), 2 bad usage.\n"
          "\n"
          "environment:\n"
          "  PROBE_RUN_LIBRARY    the libprobe.so to preload (default: the one this\n"
          "                       command runs with)\n",
          f);
}

/* ---- formats -------------------------------------------------------------------- */

typedef struct run_format {
    const char *suffix; /* of the file name; a prefix when it ends with '*' */
    const char *format;
} run_format;

/* Longer suffixes first: "x.speedscope.json" is speedscope, not json. */
static const run_format run_formats[] = {
    {".speedscope.json", "speedscope"},
    {".trace.json", "chrome"},
    {".json", "json"},
    {".pb.gz", "pprof"},
    {".pprof", "pprof"},
    {".folded", "collapsed"},
    {".collapsed", "collapsed"},
    {"callgrind.out*", "callgrind"},
    {".txt", "text"},
    {".html", "html"},
    {".htm", "html"},
};

const char *
run_format_of(const char *path)
{
    const char *base = strrchr(path, '/');
    size_t len = strlen(path);

    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof(run_formats) / sizeof(run_formats[0]); i++) {
        const char *s = run_formats[i].suffix;
        size_t n = strlen(s);

        if (s[n - 1] == '*') {
            if (strncmp(base, s, n - 1) == 0)
                return run_formats[i].format;
        } else if (len > n && strcmp(path + len - n, s) == 0) {
            return run_formats[i].format;
        }
    }
    return NULL;
}

/* How to look at a report: the end of the last line on stderr. */
static void
run_open_hint(cmd_buf *b, const char *format, const char *path)
{
    size_t n = strcspn(format, ":");

    if (strncmp(format, "pprof", n) == 0 && n == 5) {
        cmd_buf_puts(b, "open it with: go tool pprof -http=: ");
        cmd_buf_shell_word(b, path);
    } else if (strncmp(format, "chrome", n) == 0 && n == 6) {
        cmd_buf_puts(b, "open it in https://ui.perfetto.dev (Open trace file)");
    } else if (strncmp(format, "speedscope", n) == 0 && n == 10) {
        cmd_buf_puts(b, "open it in https://www.speedscope.app");
    } else if (strncmp(format, "collapsed", n) == 0 && n == 9) {
        cmd_buf_puts(b, "draw it with: flamegraph.pl ");
        cmd_buf_shell_word(b, path);
        cmd_buf_puts(b, " > flame.svg");
    } else if (strncmp(format, "callgrind", n) == 0 && n == 9) {
        cmd_buf_puts(b, "open it with: callgrind_annotate ");
        cmd_buf_shell_word(b, path);
        cmd_buf_puts(b, " (or kcachegrind)");
    } else if (strncmp(format, "html", n) == 0 && n == 4) {
        cmd_buf_puts(b, "open it in a web browser: ");
        cmd_buf_shell_word(b, path);
    } else if (strncmp(format, "json", n) == 0 && n == 4) {
        cmd_buf_puts(b, "read it with: python3 -m json.tool ");
        cmd_buf_shell_word(b, path);
    } else {
        cmd_buf_puts(b, "read it with: less ");
        cmd_buf_shell_word(b, path);
    }
}

/* ---- checks before PROGRAM runs ------------------------------------------------ */

/* -o FILE: created or truncated now, never through a symbolic link, so that an
 * unwritable FILE is said before PROGRAM runs; made absolute, since PROGRAM may
 * change its directory. @return 0, or -1 after saying why. */
static int
run_prepare_output(const char *path, char **ret_abs)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd < 0) {
        if (errno == ELOOP)
            cmd_error(NAME, "cannot write the report to '%s': it is a symbolic link "
                            "(not followed)", path);
        else
            cmd_error(NAME, "cannot write the report to '%s': %s", path, strerror(errno));
        return -1;
    }
    close(fd);

    char cwd[PATH_MAX];
    cmd_buf b = {0};

    if (path[0] != '/') {
        if (!getcwd(cwd, sizeof(cwd))) {
            cmd_error(NAME, "getcwd: %s", strerror(errno));
            return -1;
        }
        cmd_buf_puts(&b, cwd);
        cmd_buf_puts(&b, "/");
    }
    cmd_buf_puts(&b, path);
    if (b.failed) {
        cmd_error(NAME, "out of memory");
        cmd_buf_free(&b);
        return -1;
    }
    *ret_abs = b.data;
    return 0;
}

/* PROGRAM as execvp(3) would find it. @return 0 with the path in @p out,
 * CMD_EXIT_NOT_FOUND or CMD_EXIT_CANNOT_EXEC after saying why. */
static int
run_find_program(const char *prog, char *out, size_t size)
{
    struct stat st;

    if (!*prog) {
        cmd_error(NAME, "'': command not found");
        return CMD_EXIT_NOT_FOUND;
    }
    if (strchr(prog, '/')) {
        if (stat(prog, &st) < 0) {
            cmd_error(NAME, "cannot run '%s': %s", prog, strerror(errno));
            return errno == ENOENT || errno == ENOTDIR ? CMD_EXIT_NOT_FOUND
                                                        : CMD_EXIT_CANNOT_EXEC;
        }
        if (S_ISDIR(st.st_mode) || access(prog, X_OK) < 0) {
            cmd_error(NAME, "cannot run '%s': %s", prog,
                      S_ISDIR(st.st_mode) ? "it is a directory" : "permission denied");
            return CMD_EXIT_CANNOT_EXEC;
        }
        snprintf(out, size, "%s", prog);
        return 0;
    }

    const char *path = getenv("PATH");
    int denied = 0;

    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        int n = (int)(end - p);

        /* An empty entry is the current directory. */
        if (snprintf(out, size, "%.*s%s%s", n, n ? p : ".", "/", prog) < (int)size &&
            stat(out, &st) == 0 && !S_ISDIR(st.st_mode)) {
            if (access(out, X_OK) == 0)
                return 0;
            denied = 1;
        }
        if (!*end)
            break;
        p = end;
    }
    if (denied) {
        cmd_error(NAME, "cannot run '%s': permission denied", prog);
        return CMD_EXIT_CANNOT_EXEC;
    }
    cmd_error(NAME, "'%s': command not found", prog);
    return CMD_EXIT_NOT_FOUND;
}

/* Whether the ELF file @p fd has a PT_INTERP program header: 1, 0, or -1 when it
 * is not an ELF file we can read (a script: left to the kernel). */
static int
run_elf_has_interp(int fd)
{
    unsigned char ident[EI_NIDENT];

    if (pread(fd, ident, sizeof(ident), 0) != (ssize_t)sizeof(ident) ||
        memcmp(ident, ELFMAG, SELFMAG) != 0)
        return -1;
    if (ident[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;

        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
            return -1;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;

            if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
                (ssize_t)sizeof(ph))
                return -1;
            if (ph.p_type == PT_INTERP)
                return 1;
        }
        return 0;
    }
    if (ident[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;

        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
            return -1;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf32_Phdr ph;

            if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint32_t)i * eh.e_phentsize)) !=
                (ssize_t)sizeof(ph))
                return -1;
            if (ph.p_type == PT_INTERP)
                return 1;
        }
        return 0;
    }
    return -1;
}

/* What keeps LD_PRELOAD from working: a set-user-ID or set-group-ID file (the
 * loader ignores LD_PRELOAD in it), or a static executable (no loader at all).
 * @return 0, or CMD_EXIT_CANNOT_EXEC after saying why. */
static int
run_check_program(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0; /* executable but not readable: exec will tell */
    if (fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
        close(fd);
        cmd_error(NAME,
                  "'%s' is set%s: the dynamic loader ignores LD_PRELOAD in it, so it "
                  "cannot be profiled; run a copy without that bit",
                  path, (st.st_mode & S_ISUID) ? "uid" : "gid");
        return CMD_EXIT_CANNOT_EXEC;
    }

    int interp = run_elf_has_interp(fd);

    close(fd);
    if (interp == 0) {
        cmd_error(NAME,
                  "'%s' is a static executable: libprobe cannot be preloaded into it; "
                  "link it with -lprobe and set PROBE_SAMPLE and PROBE_OUTPUT "
                  "(docs/environment.md)",
                  path);
        return CMD_EXIT_CANNOT_EXEC;
    }
    return 0;
}

/* The libprobe.so to preload: PROBE_RUN_LIBRARY, else the one this command runs
 * with (found in the build tree through its run path, or where it was installed),
 * else the one in the directory it was installed to. @return 0, or -1 after saying
 * why. */
static int
run_find_library(char *out, size_t size)
{
    const char *env = getenv("PROBE_RUN_LIBRARY");
    if (env && *env) {
        if (access(env, R_OK) < 0) {
            cmd_error(NAME, "PROBE_RUN_LIBRARY=%s: %s", env, strerror(errno));
            return -1;
        }
        snprintf(out, size, "%s", env);
        return 0;
    }
    /* The copy already loaded for this command (absent when it is linked
     * statically): the loader found it in the build tree or where it was installed. */
    char soname[32];
    void *h;
    struct link_map *map = NULL;

    snprintf(soname, sizeof(soname), "libprobe.so.%d", PROBE_VERSION_MAJOR);
    if ((h = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD))) {
        int found = dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name &&
                    realpath(map->l_name, out);

        dlclose(h);
        if (found)
            return 0;
    }
    snprintf(out, size, "%s/libprobe.so.%d", PROBE_LIBDIR, PROBE_VERSION_MAJOR);
    if (access(out, R_OK) == 0)
        return 0;
    cmd_error(NAME, "cannot find libprobe.so to preload (looked in %s); set "
                    "PROBE_RUN_LIBRARY to its path", PROBE_LIBDIR);
    return -1;
}

/* ---- the environment of PROGRAM ------------------------------------------------- */

typedef struct run_config {
    const char *output;  /* absolute path, or NULL: stderr */
    const char *format;
    unsigned long hz;
    int wall, trace, follow, no_fault;
    const char *library;
    int mem;
    const char *mem_output; /* absolute path, or NULL: stderr */
    const char *push;       /* --push URL, or NULL */
} run_config;

static int
run_env_name_is(const char *entry, const char *name)
{
    size_t n = strlen(name);

    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* The variables probe run sets; any inherited value is replaced. */
static const char *const run_env_vars[] = {
    "LD_PRELOAD",  "PROBE_OUTPUT", "PROBE_FORMAT", "PROBE_SAMPLE",
    "PROBE_SAMPLE_HZ", "PROBE_FAULT", "PROBE_CHILDREN",
    "PROBE_MEM", "PROBE_MEM_OUTPUT", "PROBE_MEM_FORMAT",
};

/* PROGRAM's environment: @p vec for execve, and the strings built for it, which
 * run_env_free() frees (the inherited ones belong to environ). */
typedef struct run_env {
    char **vec;
    char *built[8];
    size_t nbuilt;
} run_env;

static void
run_env_free(run_env *env)
{
    for (size_t i = 0; i < env->nbuilt; i++)
        free(env->built[i]);
    free(env->vec);
    *env = (run_env){0};
}

/* Keeps @p b's string in @p env, to be freed with it. */
static char *
run_env_own(run_env *env, cmd_buf *b)
{
    char *s = b->failed ? NULL : b->data;

    if (!s)
        cmd_buf_free(b);
    else
        env->built[env->nbuilt++] = s;
    *b = (cmd_buf){0};
    return s;
}

/* @return 0, or -1 when out of memory (with nothing left to free). */
static int
run_environment(const run_config *c, run_env *out)
{
    size_t n = 0;

    for (char **e = environ; *e; e++)
        n++;

    run_env re = {.vec = calloc(n + 16, sizeof(char *))};
    char **env = re.vec;
    size_t k = 0;
    const char *preload = getenv("LD_PRELOAD");
    cmd_buf b = {0};

    if (!env)
        return -1;
    for (char **e = environ; *e; e++) {
        int ours = 0;

        for (size_t i = 0; i < sizeof(run_env_vars) / sizeof(run_env_vars[0]); i++)
            ours |= run_env_name_is(*e, run_env_vars[i]);
        if (c->trace && run_env_name_is(*e, "PROBE_TRACE"))
            ours = 1;
        if (c->push && run_env_name_is(*e, "PROBE_PUSH"))
            ours = 1;
        if (!ours)
            env[k++] = *e;
    }
    /* After what is there: a sanitizer's runtime must stay first. */
    cmd_buf_puts(&b, "LD_PRELOAD=");
    if (preload && *preload) {
        cmd_buf_puts(&b, preload);
        cmd_buf_puts(&b, ":");
    }
    cmd_buf_puts(&b, c->library);
    env[k++] = run_env_own(&re, &b);
    cmd_buf_printf(&b, "PROBE_OUTPUT=%s", c->output ? c->output : "stderr");
    env[k++] = run_env_own(&re, &b);
    cmd_buf_printf(&b, "PROBE_FORMAT=%s", c->format);
    env[k++] = run_env_own(&re, &b);
    env[k++] = c->wall ? "PROBE_SAMPLE=wall" : "PROBE_SAMPLE=cpu";
    cmd_buf_printf(&b, "PROBE_SAMPLE_HZ=%lu", c->hz);
    env[k++] = run_env_own(&re, &b);
    if (!c->no_fault)
        env[k++] = "PROBE_FAULT=1";
    if (c->trace)
        env[k++] = "PROBE_TRACE=flight";
    env[k++] = c->follow ? "PROBE_CHILDREN=follow" : "PROBE_CHILDREN=none";
    if (c->mem) {
        env[k++] = "PROBE_MEM=1";
        if (c->mem_output) {
            cmd_buf_printf(&b, "PROBE_MEM_OUTPUT=%s", c->mem_output);
            env[k++] = run_env_own(&re, &b);
        }
    }
    if (c->push) {
        cmd_buf_printf(&b, "PROBE_PUSH=%s", c->push);
        env[k++] = run_env_own(&re, &b);
    }
    for (size_t i = 0; i < k; i++) {
        if (!env[i]) {
            run_env_free(&re);
            return -1; /* an allocation failed */
        }
    }
    *out = re;
    return 0;
}

/* ---- running it ------------------------------------------------------------------ */

typedef struct run_signals {
    struct sigaction intr, quit, chld;
} run_signals;

/* As probe time: the parent ignores SIGINT and SIGQUIT while PROGRAM runs, so a
 * Ctrl-C stops PROGRAM (which writes its report) and probe run reports its status. */
static void
run_signals_hold(run_signals *saved)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL};

    sigemptyset(&ign.sa_mask);
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &ign, &saved->intr);
    sigaction(SIGQUIT, &ign, &saved->quit);
    sigaction(SIGCHLD, &dfl, &saved->chld);
}

static void
run_signals_restore(const run_signals *saved)
{
    sigaction(SIGINT, &saved->intr, NULL);
    sigaction(SIGQUIT, &saved->quit, NULL);
    sigaction(SIGCHLD, &saved->chld, NULL);
}

/* @return PROGRAM's status as a shell's $? has it, or an error status after saying
 * why. */
static int
run_program(const char *path, char **argv, char **env)
{
    run_signals saved;
    int pipefd[2], err = 0, status;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        cmd_error(NAME, "pipe: %s", strerror(errno));
        return CMD_EXIT_FAILURE;
    }
    fflush(NULL);
    run_signals_hold(&saved);
    pid = fork();
    if (pid == 0) {
        run_signals_restore(&saved);
        execve(path, argv, env);
        err = errno;
        while (write(pipefd[1], &err, sizeof(err)) < 0 && errno == EINTR)
            ;
        _exit(err == ENOENT ? CMD_EXIT_NOT_FOUND : CMD_EXIT_CANNOT_EXEC);
    }
    if (pid < 0) {
        err = errno;
        run_signals_restore(&saved);
        close(pipefd[0]);
        close(pipefd[1]);
        cmd_error(NAME, "fork: %s", strerror(err));
        return CMD_EXIT_FAILURE;
    }
    close(pipefd[1]);

    ssize_t n;

    while ((n = read(pipefd[0], &err, sizeof(err))) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);

    pid_t w;

    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    int wait_err = errno;

    run_signals_restore(&saved);
    if (n == (ssize_t)sizeof(err)) {
        cmd_error(NAME, "cannot run '%s': %s", argv[0], strerror(err));
        return err == ENOENT ? CMD_EXIT_NOT_FOUND : CMD_EXIT_CANNOT_EXEC;
    }
    if (w < 0) {
        cmd_error(NAME, "waitpid: %s", strerror(wait_err));
        return CMD_EXIT_FAILURE;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

static int
run_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* With --follow-fork: the children's files, FILE.PID, written since @p since. */
static void
run_list_children(cmd_buf *b, const char *output, time_t since)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(output, '/');
    const char *base = slash + 1;
    size_t blen = strlen(base);
    char **names = NULL;
    size_t n = 0, cap = 0;

    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - output), output);
    if (!dir[0])
        strcpy(dir, "/");

    DIR *d = opendir(dir);

    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *s = e->d_name;
        struct stat st;
        char full[PATH_MAX];

        if (strncmp(s, base, blen) != 0 || s[blen] != '.' || !s[blen + 1] ||
            strspn(s + blen + 1, "0123456789") != strlen(s + blen + 1))
            continue;
        snprintf(full, sizeof(full), "%s/%s", strcmp(dir, "/") ? dir : "", s);
        if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode) || st.st_mtime < since)
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 8) * sizeof(*names));

            if (!p)
                break;
            names = p;
        }
        if (!(names[n] = strdup(full)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), run_cmp_str);
    if (n) {
        cmd_buf_printf(b, "probe run: %zu child report%s:", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            cmd_buf_puts(b, " ");
            cmd_buf_shell_word(b, names[i]);
        }
        cmd_buf_puts(b, "\n");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* After PROGRAM: the children's files, then one line naming the report. */
static void
run_summary(const run_config *c, const char *shown, time_t since)
{
    cmd_buf b = {0};
    struct stat st;

    if (c->follow)
        run_list_children(&b, c->output, since);
    if (stat(c->output, &st) < 0 || st.st_size == 0) {
        cmd_buf_puts(&b, "probe run: no report was written to ");
        cmd_buf_shell_word(&b, shown);
        cmd_buf_puts(&b, " (PROGRAM recorded nothing, ended by _exit() or SIGKILL, or "
                         "replaced itself by exec)\n");
    } else {
        cmd_buf_puts(&b, "probe run: wrote ");
        cmd_buf_shell_word(&b, shown);
        cmd_buf_printf(&b, " (%s); ", c->format);
        run_open_hint(&b, c->format, shown);
        cmd_buf_puts(&b, "\n");
    }
    if (!b.failed)
        (void)cmd_write_all(STDERR_FILENO, b.data, b.len);
    cmd_buf_free(&b);
}

/* ---- the subcommand ------------------------------------------------------------ */

enum { OPT_HZ = 256, OPT_WALL, OPT_TRACE, OPT_FOLLOW, OPT_NO_FAULT, OPT_MEM, OPT_PUSH };

int
cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"hz", required_argument, NULL, OPT_HZ},
        {"wall", no_argument, NULL, OPT_WALL},
        {"trace", no_argument, NULL, OPT_TRACE},
        {"follow-fork", no_argument, NULL, OPT_FOLLOW},
        {"no-fault", no_argument, NULL, OPT_NO_FAULT},
        {"mem", optional_argument, NULL, OPT_MEM},
        {"push", required_argument, NULL, OPT_PUSH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    run_config c = {.hz = RUN_HZ_DEFAULT};
    const char *path = NULL, *format = NULL, *mem_path = NULL;
    char library[PATH_MAX], program[PATH_MAX];
    char *abs_output = NULL, *end;
    int c_opt;

    opterr = 0;
    optind = 0;
    while ((c_opt = getopt_long(argc, argv, "+:o:f:h", longopts, NULL)) != -1) {
        switch (c_opt) {
        case 'o':
            path = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case OPT_HZ:
            errno = 0;
            c.hz = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || c.hz < 1 ||
                c.hz > RUN_HZ_MAX)
                return cmd_usage_error(NAME, "--hz=%s: use a rate from 1 to %lu", optarg,
                                       RUN_HZ_MAX);
            break;
        case OPT_WALL:
            c.wall = 1;
            break;
        case OPT_TRACE:
            c.trace = 1;
            break;
        case OPT_FOLLOW:
            c.follow = 1;
            break;
        case OPT_NO_FAULT:
            c.no_fault = 1;
            break;
        case OPT_MEM:
            c.mem = 1;
            if (optarg && !*optarg)
                return cmd_usage_error(NAME, "--mem=: name a file, or give --mem alone");
            mem_path = optarg;
            break;
        case OPT_PUSH:
            if (!*optarg)
                return cmd_usage_error(NAME, "--push: give a URL");
            c.push = optarg;
            break;
        case 'h':
            run_help(stdout);
            return 0;
        case ':':
            return cmd_usage_error(NAME, "option '%s' needs an argument",
                                   argv[optind - 1]);
        default:
            if (optopt == 0 || strchr("ofh", optopt))
                return cmd_usage_error(NAME, "invalid option '%s'", argv[optind - 1]);
            return cmd_usage_error(NAME, "unknown option '-%c'", optopt);
        }
    }
    if (optind >= argc)
        return cmd_usage_error(NAME, "no program given");

    /* The format: -f, else the file's name, else the call tree on stderr. */
    if (!format && path && !(format = run_format_of(path)))
        return cmd_usage_error(NAME,
                               "cannot tell the format from the name '%s': use -f FORMAT "
                               "or a known ending (.json, .pb.gz, .trace.json, ...)",
                               path);
    if (!format)
        format = "tree";

    char why[512];

    if (probe_format_check(format, why, sizeof(why)) < 0)
        return cmd_usage_error(NAME, "%s", why);
    c.format = format;

    int rc = run_find_program(argv[optind], program, sizeof(program));

    if (rc != 0)
        return rc;
    if ((rc = run_check_program(program)) != 0)
        return rc;
    if (run_find_library(library, sizeof(library)) < 0)
        return CMD_EXIT_FAILURE;
    c.library = library;
    if (path && run_prepare_output(path, &abs_output) < 0)
        return CMD_EXIT_FAILURE;
    c.output = abs_output;

    char *abs_mem = NULL;

    if (mem_path && run_prepare_output(mem_path, &abs_mem) < 0) {
        free(abs_output);
        return CMD_EXIT_FAILURE;
    }
    c.mem_output = abs_mem;

    run_env env;

    if (run_environment(&c, &env) < 0) {
        cmd_error(NAME, "out of memory");
        free(abs_output);
        free(abs_mem);
        return CMD_EXIT_FAILURE;
    }

    time_t since = time(NULL);

    rc = run_program(program, argv + optind, env.vec);
    if (path && rc != CMD_EXIT_FAILURE)
        run_summary(&c, path, since);
    free(abs_output);
    free(abs_mem);
    run_env_free(&env);
    return rc;
}
