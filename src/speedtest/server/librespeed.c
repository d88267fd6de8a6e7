/* librespeed.c - the librespeed HTTP protocol of the test server */
#include "core/err.h"
#include "speedtest/server/server_priv.h"

/* NEEDSWORK: being written (issue 3). */
int server_librespeed_mount(struct server *s, struct dst_http_server *http)
{
    (void)s;
    (void)http;
    return 0;
}
