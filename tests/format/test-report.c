/* Report entry points and the formatter registry: every error path, and custom
 * formatters end to end. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../common.h"

/* Check caps the size of a failure message: a report goes to stderr instead. */
#define assert_report(cond, report, ...)                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "Assertion '%s' failed; the report:\n%s\n", #cond,           \
                    (report));                                                           \
            ck_abort_msg(__VA_ARGS__);                                                   \
        }                                                                                \
    } while (0)

/* ---- helpers ------------------------------------------------------------------ */

static void
record_something(void)
{
    PROBE_SCOPE("rp_scope");
}

/* A fresh directory for this test; removed by the shell's tmp cleanup at worst. */
static char *
make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];

    snprintf(tmpl, sizeof(tmpl), "%s/probe-report-XXXXXX", base && *base ? base : "/tmp");

    char *dir = mkdtemp(tmpl);

    ck_assert_msg(dir != NULL, "mkdtemp: %s", strerror(errno));
    return strdup(dir);
}

static char *
path_in(const char *dir, const char *name)
{
    char buf[1024];

    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return strdup(buf);
}

/* The whole content of the file at @path (NUL-terminated), or NULL. */
static char *
slurp_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;

    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    ck_assert_int_eq(n, 0);
    close(fd);
    buf[len] = '\0';
    return buf;
}

static void
write_path(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(close(fd), 0);
}

/* An anonymous file to report into, and read back. */
static int
scratch_fd(void)
{
    FILE *f = tmpfile();

    ck_assert_ptr_nonnull(f);

    int fd = dup(fileno(f));

    ck_assert_int_ge(fd, 0);
    fclose(f);
    return fd;
}

static char *
slurp_fd(int fd)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return slurp_path(path);
}

/* ---- a custom formatter ------------------------------------------------------- */

struct custom_state {
    char options[256];
    int calls;
    int released;
    int fail_with;   /* returned by write when nonzero */
    size_t long_len; /* write one printf of this many bytes when nonzero */
};

static struct custom_state custom;

static int
custom_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    struct custom_state *st = user;

    st->calls++;
    snprintf(st->options, sizeof(st->options), "%s", options);
    if (st->fail_with)
        return st->fail_with;

    int r = probe_writer_printf(w, "custom %zu sites [%s]\n",
                                probe_snapshot_site_count(snap), options);

    if (r == 0 && st->long_len) {
        char *big = malloc(st->long_len + 1);

        ck_assert_ptr_nonnull(big);
        memset(big, 'x', st->long_len);
        big[st->long_len] = '\0';
        r = probe_writer_printf(w, "<%s>", big);
        free(big);
    }
    if (r == 0)
        r = probe_writer_puts(w, "end\n");
    return r;
}

static void
custom_release(void *user)
{
    ((struct custom_state *)user)->released++;
}

static void
register_custom(const char *name)
{
    probe_formatter f = {sizeof(probe_formatter), name, custom_write, custom_release,
                         &custom};

    ck_assert_int_eq(probe_formatter_register(&f), 0);
}

static int
noop_write(const probe_snapshot *snap, probe_writer *w, const char *options, void *user)
{
    return 0;
}

/* ---- argument errors ---------------------------------------------------------- */

START_TEST(report_fd_rejects_bad_format)
{
    int fd = scratch_fd();

    record_something();
    ck_assert_int_eq(probe_report_fd(fd, NULL), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, "nosuch"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, ""), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, ":sort=name"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, "TEXT"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, "text:sort=bogus"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_fd(fd, "json:pretty"), PROBE_EINVAL);
    /* Nothing was written by the failed calls. */
    char *out = slurp_fd(fd);
    ck_assert_str_eq(out, "");
    free(out);
    close(fd);
}
END_TEST

START_TEST(report_fd_rejects_negative_fd)
{
    record_something();
    ck_assert_int_eq(probe_report_fd(-1, "text"), PROBE_EBADF);
    ck_assert_int_eq(probe_report_fd(-42, "json"), PROBE_EBADF);
}
END_TEST

START_TEST(report_fd_closed_fd_is_eio)
{
    int fds[2];

    record_something();
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(close(fds[1]), 0);
    close(fds[0]);
    errno = 0;
    ck_assert_int_eq(probe_report_fd(fds[1], "text"), PROBE_EIO);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(report_fd_readonly_fd_is_eio)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    record_something();
    ck_assert_int_ge(fd, 0);
    errno = 0;
    ck_assert_int_eq(probe_report_fd(fd, "json"), PROBE_EIO);
    ck_assert_int_eq(errno, EBADF);
    close(fd);
}
END_TEST

START_TEST(report_fd_writes_text_and_json)
{
    int fd = scratch_fd();

    record_something();
    ck_assert_int_eq(probe_report_fd(fd, "text"), 0);
    ck_assert_int_eq(probe_report_fd(fd, "json"), 0);

    char *out = slurp_fd(fd);

    assert_report(strncmp(out, "libprobe report", 15) == 0, out,
                  "see the report on stderr");
    ck_assert_ptr_nonnull(strstr(out, "rp_scope ("));
    ck_assert_ptr_nonnull(strstr(out, "{\"schema\":\"probe/1\""));
    ck_assert_ptr_nonnull(strstr(out, "\"name\":\"rp_scope\""));
    /* Everything was flushed: the JSON document is complete. */
    assert_report(out[strlen(out) - 1] == '\n' && out[strlen(out) - 2] == '}', out,
                  "see the report on stderr");
    free(out);
    close(fd);
}
END_TEST

/* ---- files -------------------------------------------------------------------- */

START_TEST(report_write_rejects_bad_arguments)
{
    char *dir = make_tmpdir();
    char *path = path_in(dir, "out.txt");
    struct stat st;

    record_something();
    ck_assert_int_eq(probe_report_write(NULL, "text"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_write("", "text"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_write(path, NULL), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_write(path, ""), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_write(path, "nosuch"), PROBE_EINVAL);
    ck_assert_int_eq(probe_report_write(path, "text:sort=bogus"), PROBE_EINVAL);
    /* The format is checked before the file is created. */
    ck_assert_int_eq(stat(path, &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    free(path);
    rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(report_write_creates_and_truncates)
{
    char *dir = make_tmpdir();
    char *path = path_in(dir, "out.json");
    struct stat st;

    record_something();
    write_path(path, "old content that is longer than nothing at all, and then some more "
                     "so the new report must truncate it, not overwrite its start only");
    ck_assert_int_eq(probe_report_write(path, "json"), 0);

    char *out = slurp_path(path);

    assert_report(strncmp(out, "{\"schema\":\"probe/1\"", 19) == 0, out,
                  "see the report on stderr");
    ck_assert_ptr_null(strstr(out, "old content"));
    ck_assert_int_eq(out[strlen(out) - 1], '\n');
    free(out);
    unlink(path);

    mode_t old = umask(022);

    ck_assert_int_eq(probe_report_write(path, "text"), 0);
    umask(old);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    unlink(path);
    free(path);
    rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(report_write_missing_dir_is_enoent)
{
    char *dir = make_tmpdir();
    char *path = path_in(dir, "no/such/dir/out.txt");

    record_something();
    ck_assert_int_eq(probe_report_write(path, "text"), PROBE_ENOENT);
    free(path);
    rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(report_write_unwritable_dir_is_eacces)
{
    char *dir = make_tmpdir();
    char *path = path_in(dir, "out.txt");
    int status = -1;

    record_something();
    ck_assert_int_eq(chmod(dir, 0555), 0);

    /* Root ignores permissions: a child drops to nobody, and this process can
     * still clean up. */
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(2);

        int r = probe_report_write(path, "text");

        _exit(r == PROBE_EACCES ? 0 : r == 0 ? 3 : 4);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x (2: setuid failed, 3: written, 4: other error)",
                  status);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(chmod(dir, 0700), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    free(path);
    free(dir);
}
END_TEST

START_TEST(report_write_refuses_symlink)
{
    char *dir = make_tmpdir();
    char *target = path_in(dir, "target");
    char *link = path_in(dir, "link");

    record_something();
    write_path(target, "precious");
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(probe_report_write(link, "text"), PROBE_ELOOP);
    ck_assert_int_eq(probe_report_write(link, "json"), PROBE_ELOOP);

    char *kept = slurp_path(target);

    ck_assert_str_eq(kept, "precious");
    free(kept);
    /* A dangling link is refused too, and nothing is created behind it. */
    ck_assert_int_eq(unlink(target), 0);
    ck_assert_int_eq(probe_report_write(link, "text"), PROBE_ELOOP);
    ck_assert_int_eq(access(target, F_OK), -1);
    unlink(link);
    rmdir(dir);
    free(target);
    free(link);
    free(dir);
}
END_TEST

START_TEST(report_write_missing_dir_says_so)
{
    record_something();
    ck_assert_int_eq(probe_report_write("/nonexistent-probe-dir/report.txt", "text"),
                     PROBE_ENOENT);
    ck_assert_str_eq(probe_strerror(PROBE_ENOENT), "no such file or directory");
}
END_TEST

START_TEST(report_write_full_device_is_eio)
{
    record_something();
    if (access("/dev/full", W_OK) != 0)
        return; /* no /dev/full here: nothing to test */
    ck_assert_int_eq(probe_report_write("/dev/full", "text"), PROBE_EIO);
    ck_assert_int_eq(errno, ENOSPC);
}
END_TEST

/* ---- the registry ------------------------------------------------------------- */

START_TEST(formatter_register_rejects_bad_arguments)
{
    static const char *const bad_names[] = {
        "",    "Text",    "has space", "a:b",
        "a/b", "dot.ted", "\xc3\xa9",  "abcdefghijklmnopqrstuvwxyz012345", /* 32 bytes */
    };
    probe_formatter f = {sizeof(probe_formatter), "good", noop_write, NULL, NULL};

    ck_assert_int_eq(probe_formatter_register(NULL), PROBE_EINVAL);
    f.name = NULL;
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EINVAL);
    f.name = "good";
    f.write = NULL;
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EINVAL);
    f.write = noop_write;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        f.name = bad_names[i];
        ck_assert_msg(probe_formatter_register(&f) == PROBE_EINVAL, "\"%s\"", f.name);
    }
    /* 31 bytes and every allowed character is fine. */
    f.name = "abcdefghijklmnopqrstuvwxyz0_-9a";
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_formatter_unregister(f.name), 0);
}
END_TEST

/* The struct can grow: its size is checked, and one written before the field is
 * refused rather than misread. */
START_TEST(formatter_register_checks_size)
{
    probe_formatter f = PROBE_FORMATTER_INIT;
    /* The first version: size, name, write, release, user. */
    const size_t first = offsetof(probe_formatter, user) + sizeof(void *);
    probe_snapshot *snap = test_snap();
    char *buf = NULL;

    ck_assert_uint_eq(f.size, sizeof(probe_formatter));
    ck_assert_ptr_null(f.name);
    ck_assert(f.release == NULL && f.write == NULL && f.user == NULL);
    f.name = "sized";
    f.write = noop_write;
    f.size = 0; /* {.name = ..., .write = ...} as written before the field */
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EINVAL);
    f.size = first - 1;
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EINVAL);
    f.size = 1;
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EINVAL);
    /* None of these was registered. */
    ck_assert_int_eq(probe_snapshot_format(snap, "sized", &buf, NULL), PROBE_EINVAL);

    f.size = sizeof(probe_formatter);
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_snapshot_format(snap, "sized", &buf, NULL), 0);
    free(buf);
    ck_assert_int_eq(probe_formatter_unregister("sized"), 0);

    /* A newer header's larger struct: the fields this version knows are used. */
    struct {
        probe_formatter f;
        char later[64];
    } newer;

    memset(&newer, 0xff, sizeof(newer));
    newer.f = f;
    newer.f.size = sizeof(newer);
    ck_assert_int_eq(probe_formatter_register(&newer.f), 0);
    ck_assert_int_eq(probe_snapshot_format(snap, "sized", &buf, NULL), 0);
    free(buf);
    ck_assert_int_eq(probe_formatter_unregister("sized"), 0);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(formatter_register_duplicate_is_eexist)
{
    probe_formatter f = {sizeof(probe_formatter), "dup", noop_write, NULL, NULL};

    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EEXIST);
    f.name = "text";
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EEXIST);
    f.name = "json";
    ck_assert_int_eq(probe_formatter_register(&f), PROBE_EEXIST);
    ck_assert_int_eq(probe_formatter_unregister("dup"), 0);
    /* Once gone, the name is free again. */
    f.name = "dup";
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_formatter_unregister("dup"), 0);
}
END_TEST

START_TEST(formatter_unregister_errors)
{
    ck_assert_int_eq(probe_formatter_unregister(NULL), PROBE_EINVAL);
    ck_assert_int_eq(probe_formatter_unregister("nosuch"), PROBE_ENOENT);
    ck_assert_int_eq(probe_formatter_unregister(""), PROBE_ENOENT);
    ck_assert_int_eq(probe_formatter_unregister("Not A Name"), PROBE_ENOENT);
    /* Built-in formatters stay. */
    ck_assert_int_eq(probe_formatter_unregister("text"), PROBE_ENOENT);
    ck_assert_int_eq(probe_formatter_unregister("json"), PROBE_ENOENT);

    probe_snapshot *snap = test_snap();
    char *buf = NULL;

    ck_assert_int_eq(probe_snapshot_format(snap, "text", &buf, NULL), 0);
    free(buf);
    ck_assert_int_eq(probe_snapshot_format(snap, "json", &buf, NULL), 0);
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(formatter_table_is_bounded)
{
    probe_formatter f = {sizeof(probe_formatter), NULL, noop_write, NULL, NULL};
    char names[64][16];
    int n = 0, r = 0;

    for (n = 0; n < 64; n++) {
        snprintf(names[n], sizeof(names[n]), "fill-%d", n);
        f.name = names[n];
        r = probe_formatter_register(&f);
        if (r != 0)
            break;
    }
    ck_assert_int_eq(r, PROBE_ENOSPC);
    /* The built-ins hold slots of the 64 too. */
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, 62);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(probe_formatter_unregister(names[i]), 0);
    f.name = names[0];
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_formatter_unregister(names[0]), 0);
}
END_TEST

START_TEST(formatter_custom_used_by_report_fd)
{
    int fd = scratch_fd();

    record_something();
    memset(&custom, 0, sizeof(custom));
    register_custom("mine");
    ck_assert_int_eq(probe_report_fd(fd, "mine:hello=1,x"), 0);
    ck_assert_str_eq(custom.options, "hello=1,x");
    ck_assert_int_eq(probe_report_fd(fd, "mine"), 0);
    ck_assert_str_eq(custom.options, "");
    ck_assert_int_eq(probe_report_fd(fd, "mine:"), 0);
    ck_assert_str_eq(custom.options, "");
    ck_assert_int_eq(custom.calls, 3);

    char *out = slurp_fd(fd);

    assert_report(strstr(out, " sites [hello=1,x]\nend\ncustom ") != NULL, out,
                  "see the report on stderr");
    assert_report(strstr(out, " sites []\nend\n") != NULL, out,
                  "see the report on stderr");
    free(out);
    close(fd);

    ck_assert_int_eq(custom.released, 0);
    ck_assert_int_eq(probe_formatter_unregister("mine"), 0);
    ck_assert_int_eq(custom.released, 1);
    ck_assert_int_eq(probe_report_fd(1, "mine"), PROBE_EINVAL);
}
END_TEST

START_TEST(formatter_error_is_returned)
{
    int fd = scratch_fd();

    record_something();
    memset(&custom, 0, sizeof(custom));
    custom.fail_with = PROBE_EFORMAT;
    register_custom("failing");
    ck_assert_int_eq(probe_report_fd(fd, "failing"), PROBE_EFORMAT);

    probe_snapshot *snap = test_snap();
    char *buf = (char *)"untouched";
    size_t len = 12345;

    ck_assert_int_eq(probe_snapshot_format(snap, "failing:x", &buf, &len), PROBE_EFORMAT);
    ck_assert_str_eq(buf, "untouched");
    ck_assert_uint_eq(len, 12345);
    ck_assert_str_eq(custom.options, "x");
    probe_snapshot_free(snap);
    ck_assert_int_eq(probe_formatter_unregister("failing"), 0);
    close(fd);
}
END_TEST

/* Unregisters itself while running: the release waits for the report to end. */
static int
self_removing_write(const probe_snapshot *snap, probe_writer *w, const char *options,
                    void *user)
{
    struct custom_state *st = user;

    st->calls++;
    ck_assert_int_eq(probe_formatter_unregister("selfrm"), 0);
    /* Gone for new lookups at once, but not released under a running report. */
    ck_assert_int_eq(probe_formatter_unregister("selfrm"), PROBE_ENOENT);
    ck_assert_int_eq(st->released, 0);
    return probe_writer_puts(w, "still here\n");
}

START_TEST(formatter_unregistered_while_running)
{
    probe_formatter f = {sizeof(probe_formatter), "selfrm", self_removing_write,
                         custom_release, &custom};
    int fd = scratch_fd();

    record_something();
    memset(&custom, 0, sizeof(custom));
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_report_fd(fd, "selfrm"), 0);
    ck_assert_int_eq(custom.calls, 1);
    ck_assert_int_eq(custom.released, 1);
    ck_assert_int_eq(probe_report_fd(fd, "selfrm"), PROBE_EINVAL);

    char *out = slurp_fd(fd);

    ck_assert_str_eq(out, "still here\n");
    free(out);
    close(fd);
    /* The name can be taken again. */
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_formatter_unregister("selfrm"), 0);
    ck_assert_int_eq(custom.released, 2);
}
END_TEST

/* A formatter built on another: formats the snapshot as JSON and wraps it. */
static int
wrapping_write(const probe_snapshot *snap, probe_writer *w, const char *options,
               void *user)
{
    char *inner = NULL;
    int r = probe_snapshot_format(snap, "json", &inner, NULL);

    if (r < 0)
        return r;
    r = probe_writer_printf(w, "wrapped(%s)", inner);
    free(inner);
    return r;
}

START_TEST(formatter_may_call_the_registry)
{
    probe_formatter f = {sizeof(probe_formatter), "wrap", wrapping_write, NULL, NULL};
    int fd = scratch_fd();

    record_something();
    ck_assert_int_eq(probe_formatter_register(&f), 0);
    ck_assert_int_eq(probe_report_fd(fd, "wrap"), 0);

    char *out = slurp_fd(fd);

    assert_report(strncmp(out, "wrapped({\"schema\":\"probe/1\"", 26) == 0, out,
                  "no JSON inside");
    assert_report(strcmp(out + strlen(out) - 3, "}\n)") == 0, out, "JSON cut short");
    free(out);
    close(fd);
    ck_assert_int_eq(probe_formatter_unregister("wrap"), 0);
}
END_TEST

/* Long printf output goes through whole, to a descriptor and to a buffer. */
START_TEST(writer_printf_long_output)
{
    static const size_t sizes[] = {8190, 8191, 8192, 8193, 20000, 300000};

    record_something();
    memset(&custom, 0, sizeof(custom));
    register_custom("long");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int fd = scratch_fd();
        probe_snapshot *snap = test_snap();
        char *buf = NULL, *out;
        size_t len = 0;

        custom.long_len = sizes[i];
        ck_assert_int_eq(probe_snapshot_write_fd(snap, fd, "long"), 0);
        out = slurp_fd(fd);
        ck_assert_int_eq(probe_snapshot_format(snap, "long", &buf, &len), 0);
        ck_assert_str_eq(out, buf);
        ck_assert_uint_eq(strlen(buf), len);

        const char *lt = strchr(buf, '<');
        const char *gt = strchr(buf, '>');

        ck_assert_ptr_nonnull(lt);
        ck_assert_ptr_nonnull(gt);
        ck_assert_uint_eq((size_t)(gt - lt - 1), sizes[i]);
        ck_assert_str_eq(gt, ">end\n");
        free(out);
        free(buf);
        probe_snapshot_free(snap);
        close(fd);
    }
    ck_assert_int_eq(probe_formatter_unregister("long"), 0);
}
END_TEST

START_TEST(writer_rejects_null)
{
    ck_assert_int_eq(probe_writer_write(NULL, "x", 1), PROBE_EINVAL);
    ck_assert_int_eq(probe_writer_puts(NULL, "x"), PROBE_EINVAL);
    ck_assert_int_eq(probe_writer_printf(NULL, "%d", 1), PROBE_EINVAL);
}
END_TEST

/* ---- snapshots ---------------------------------------------------------------- */

START_TEST(snapshot_format_buffer)
{
    record_something();

    probe_snapshot *snap = test_snap();
    char *buf = NULL, *again = NULL;
    size_t len = 0;

    ck_assert_int_eq(probe_snapshot_format(snap, "json", &buf, &len), 0);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(strlen(buf), len);
    assert_report(strncmp(buf, "{\"schema\":\"probe/1\"", 19) == 0, buf,
                  "see the report on stderr");
    ck_assert_ptr_nonnull(strstr(buf, "\"name\":\"rp_scope\""));
    /* The length is optional, and the same snapshot formats the same way. */
    ck_assert_int_eq(probe_snapshot_format(snap, "json", &again, NULL), 0);
    ck_assert_str_eq(buf, again);
    free(again);
    free(buf);
    probe_snapshot_free(snap);
}
END_TEST

START_TEST(snapshot_format_errors)
{
    probe_snapshot *snap = test_snap();
    char *buf = (char *)"untouched";
    size_t len = 7;

    ck_assert_int_eq(probe_snapshot_format(NULL, "text", &buf, &len), PROBE_EINVAL);
    ck_assert_int_eq(probe_snapshot_format(snap, NULL, &buf, &len), PROBE_EINVAL);
    ck_assert_int_eq(probe_snapshot_format(snap, "text", NULL, &len), PROBE_EINVAL);
    ck_assert_int_eq(probe_snapshot_format(snap, "nosuch", &buf, &len), PROBE_EINVAL);
    ck_assert_int_eq(probe_snapshot_format(snap, "json:x", &buf, &len), PROBE_EINVAL);
    ck_assert_str_eq(buf, "untouched");
    ck_assert_uint_eq(len, 7);

    ck_assert_int_eq(probe_snapshot_write_fd(NULL, 1, "text"), PROBE_EINVAL);
    ck_assert_int_eq(probe_snapshot_write_fd(snap, 1, NULL), PROBE_EINVAL);
    ck_assert_int_eq(probe_snapshot_write_fd(snap, -1, "text"), PROBE_EBADF);
    ck_assert_int_eq(probe_snapshot_write_fd(snap, 1, "nosuch"), PROBE_EINVAL);
    probe_snapshot_free(snap);
}
END_TEST

static Suite *
report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc;

    tc = tcase_create("report-fd");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, report_fd_rejects_bad_format);
    tcase_add_test(tc, report_fd_rejects_negative_fd);
    tcase_add_test(tc, report_fd_closed_fd_is_eio);
    tcase_add_test(tc, report_fd_readonly_fd_is_eio);
    tcase_add_test(tc, report_fd_writes_text_and_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("report-write");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, report_write_rejects_bad_arguments);
    tcase_add_test(tc, report_write_creates_and_truncates);
    tcase_add_test(tc, report_write_missing_dir_is_enoent);
    tcase_add_test(tc, report_write_unwritable_dir_is_eacces);
    tcase_add_test(tc, report_write_refuses_symlink);
    tcase_add_test(tc, report_write_missing_dir_says_so);
    tcase_add_test(tc, report_write_full_device_is_eio);
    suite_add_tcase(s, tc);

    tc = tcase_create("formatters");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, formatter_register_rejects_bad_arguments);
    tcase_add_test(tc, formatter_register_checks_size);
    tcase_add_test(tc, formatter_register_duplicate_is_eexist);
    tcase_add_test(tc, formatter_unregister_errors);
    tcase_add_test(tc, formatter_table_is_bounded);
    tcase_add_test(tc, formatter_custom_used_by_report_fd);
    tcase_add_test(tc, formatter_error_is_returned);
    tcase_add_test(tc, formatter_unregistered_while_running);
    tcase_add_test(tc, formatter_may_call_the_registry);
    tcase_add_test(tc, writer_printf_long_output);
    tcase_add_test(tc, writer_rejects_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("snapshot-format");
    tcase_add_checked_fixture(tc, test_setup, NULL);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, snapshot_format_buffer);
    tcase_add_test(tc, snapshot_format_errors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return test_run(report_suite());
}
