/* libFuzzer target: probe_snapshot_load_buffer() on any bytes must return a snapshot
 * or an error with an offset inside the input, never crash, hang or leak; a
 * snapshot it returns must render in every built-in format, and its JSON must load again to the same JSON.
 * Seeds: corpus-load/, real reports. Build: meson -Dfuzz=true with CC=clang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <probe/report.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    probe_load_error err;
    probe_snapshot *s = probe_snapshot_load_buffer(data, size, &err);

    if (!s) {
        if (err.offset > size || !err.message[0] || err.code >= 0)
            abort();
        return 0;
    }
    char *a = NULL, *b = NULL, *t = NULL;
    size_t alen = 0;
    if (probe_snapshot_format(s, "json", &a, &alen) == 0) {
        probe_snapshot *again = probe_snapshot_load_buffer(a, alen, &err);
        if (!again)
            abort(); /* what we wrote, we must read */
        if (probe_snapshot_format(again, "json", &b, NULL) == 0 && strcmp(a, b) != 0)
            abort();
        const probe_snapshot *two[] = {s, again};
        probe_snapshot *m = probe_snapshot_merge(two, 2);
        probe_snapshot_free(m);
        probe_snapshot_free(again);
    }
    /* Every built-in formatter must cope with whatever the loader accepted. */
    static const char *const formats[] = {"text", "tree", "collapsed", "pprof", "chrome",
                                          "speedscope", "callgrind"};
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (probe_snapshot_format(s, formats[i], &t, NULL) == 0)
            free(t);
        t = NULL;
    }
    free(a);
    free(b);
    probe_snapshot_free(s);
    return 0;
}
