/* ookla.c - the ookla protocol of the test server */
#include <stddef.h>

#include "core/err.h"
#include "speedtest/server/server_priv.h"

/* NEEDSWORK: being written (issue 3). */
int server_ookla_start(struct server *s, struct server_ookla **out)
{
    (void)s;
    *out = NULL;
    return 0;
}

void server_ookla_stop(struct server_ookla *p)
{
    (void)p;
}
