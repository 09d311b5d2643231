/* URLs of the pusher (http://, https://, file://) and the listener's address. */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <probe/common.h>

/* Split "HOST:PORT" / "[V6]:PORT" / "HOST" (@n bytes at @s) into @host and @port. */
static int
split_host_port(const char *s, size_t n, char *host, size_t hostlen, char *port,
                size_t portlen, const char *default_port)
{
    const char *end = s + n, *h = s, *p = NULL;
    size_t hl, pl;

    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);

        if (!close)
            return PROBE_EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        if (close + 1 < end) {
            if (close[1] != ':')
                return PROBE_EINVAL;
            p = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);

        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return PROBE_EINVAL; /* a bare IPv6 literal needs brackets */
        hl = colon ? (size_t)(colon - s) : n;
        if (colon)
            p = colon + 1;
    }
    if (p) {
        pl = (size_t)(end - p);
    } else {
        p = default_port;
        pl = strlen(p);
    }
    if (hl >= hostlen || pl == 0 || pl >= portlen || pl > 5)
        return PROBE_EINVAL;
    for (size_t i = 0; i < pl; i++)
        if (p[i] < '0' || p[i] > '9')
            return PROBE_EINVAL;
    memcpy(port, p, pl);
    port[pl] = '\0';
    if (atoi(port) > 65535)
        return PROBE_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    return 0;
}

int
url_parse(const char *s, struct url *out)
{
    struct url u;
    const char *rest;

    if (!s || !out)
        return PROBE_EINVAL;
    memset(&u, 0, sizeof(u));
    if (strncmp(s, "http://", 7) == 0) {
        u.scheme = URL_HTTP;
        rest = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        u.scheme = URL_HTTPS;
        rest = s + 8;
    } else if (strncmp(s, "file://", 7) == 0) {
        u.scheme = URL_FILE;
        if (!s[7] || strlen(s + 7) >= sizeof(u.path))
            return PROBE_EINVAL;
        strcpy(u.path, s + 7);
        *out = u;
        return 0;
    } else {
        return strstr(s, "://") ? PROBE_ENOTSUP : PROBE_EINVAL;
    }
    size_t n = strcspn(rest, "/?#");

    if (n == 0 || rest[n] == '?' || rest[n] == '#')
        return PROBE_EINVAL;
    if (memchr(rest, '@', n))
        return PROBE_EINVAL; /* no credentials in URLs */
    if (split_host_port(rest, n, u.host, sizeof(u.host), u.port, sizeof(u.port),
                        u.scheme == URL_HTTPS ? "443" : "80") < 0 || !u.host[0])
        return PROBE_EINVAL;
    const char *path = rest + n;
    size_t pl = strlen(path);

    if (strpbrk(path, "?# \r\n"))
        return PROBE_EINVAL;
    while (pl && path[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(u.path))
        return PROBE_EINVAL;
    memcpy(u.path, path, pl);
    u.path[pl] = '\0';
    *out = u;
    return 0;
}

int
url_parse_listen(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    int r;

    if (!s || !*s)
        s = "127.0.0.1:6060";
    if (strspn(s, "0123456789") == strlen(s)) /* "6060": loopback */
        r = split_host_port(s, 0, host, hostlen, port, portlen, s);
    else
        r = split_host_port(s, strlen(s), host, hostlen, port, portlen, "6060");
    if (r == 0 && !host[0])
        snprintf(host, hostlen, "127.0.0.1");
    return r;
}

int
url_encode(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';

        if (n + (keep ? 1 : 3) >= outlen)
            return PROBE_ENOSPC;
        if (keep) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return 0;
}
