/* curl_lib.h - the lazily loaded libcurl, shared by http_client.c and transfer*.c (core-internal) */
#ifndef DST_CURL_LIB_H
#define DST_CURL_LIB_H

#include <curl/curl.h>

/*
 * libcurl is loaded with dlopen on first use, not linked (see http_client.c for why). This
 * table holds the functions the core uses; only the core files that wrap libcurl include this
 * header. The table is valid once dst_curl_load() returned 0.
 */
struct dst_curl_lib {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    const char *(*multi_strerror)(CURLMcode);
    CURLMcode (*multi_wakeup)(CURLM *);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLcode (*easy_pause)(CURL *, int);
};

extern struct dst_curl_lib dst_curl;

/*
 * Loads and initialises libcurl once per process (thread-safe); later calls return the first
 * outcome at once. 0, or DST_EDEP when the library or one of its functions is missing (logged).
 */
int dst_curl_load(void);

#endif
