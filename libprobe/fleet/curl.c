/* https:// for the pusher, through libcurl when the build has it (the "curl"
 * feature). Without it, curl_post() says PROBE_ENOTSUP and probe_push_start()
 * refuses https URLs. curl_post(NULL, ...) asks whether it is built in. */
#include "fleet.h"

#include <probe/common.h>

#ifdef PROBE_HAVE_CURL
#include <curl/curl.h>
#include <pthread.h>

static size_t
discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

static void
curl_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
curl_post(const char *url, const char *const *headers, size_t nheaders, const void *body,
          size_t len, uint64_t timeout_ns)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct curl_slist *list = NULL;
    long status = 0, ms = (long)(timeout_ns / 1000000u);
    CURL *c;

    if (!url)
        return 0;
    pthread_once(&once, curl_once);
    c = curl_easy_init();
    if (!c)
        return PROBE_ENOMEM;
    for (size_t i = 0; i < nheaders; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms ? ms : 1);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms ? ms : 1);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "libprobe");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);

    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? (int)status : PROBE_EIO;
}
#else
int
curl_post(const char *url, const char *const *headers, size_t nheaders, const void *body,
          size_t len, uint64_t timeout_ns)
{
    (void)url;
    (void)headers;
    (void)nheaders;
    (void)body;
    (void)len;
    (void)timeout_ns;
    return PROBE_ENOTSUP;
}
#endif
