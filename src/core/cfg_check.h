/* cfg_check.h - option checks that need more than one value's text: listeners, URLs, paths */
#ifndef DST_CFG_CHECK_H
#define DST_CFG_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct dst_cfg;

/* One listening option of a service, for dst_cfg_check_listeners. */
struct dst_cfg_listener {
    const char *name;  /* the option's key: "listen", "server-http" */
    const char *value; /* "HOST:PORT" (already passed dst_cfg_check_hostport), or off */
    bool off_ok;       /* "off" and "" leave this listener out (dst_cfg_is_off) */
};

/*
 * Checks a service's listeners together, as start binds them, and reports each problem through
 * dst_cfg_fail to errf, naming the option (at most one problem per listener):
 * - the host resolves: "cannot resolve 'h': ...";
 * - no two listen on one port at overlapping addresses (the same address; 0.0.0.0 and any IPv4
 *   address; :: and any address, since the servers bind :: for both families): "--b: port 8080
 *   is also taken by --a: 0.0.0.0:8080 and 127.0.0.1:8080 overlap; give one of them another
 *   port";
 * - the port is free now (a socket is bound to it, as the server would, and closed at once; port
 *   0 is never tried): "--listen: port 3001 is in use: another dstmc machine? use --listen",
 *   naming the dstmc service whose default port it is, if any; or why else it cannot be bound
 *   (a privileged port, an address not on this machine).
 * At most 16 listeners are looked at (a service has up to four). Blocking (name resolution).
 * 0, or DST_EINVAL when any check failed.
 */
int dst_cfg_check_listeners(const struct dst_cfg *cfg, FILE *errf, const struct dst_cfg_listener *l,
                            int n);

/*
 * A check for an option holding another service's base URL (--api): "http://" or "https://", a
 * host name or address ("[V6]" in brackets), an optional port 1-65535, then anything starting
 * with '/', '?' or '#'; no blanks or control characters. DST_EINVAL with a reason in err.
 */
int dst_cfg_check_url(const char *value, char *err, size_t errlen);

/* The same, where "" means none and passes. */
int dst_cfg_check_url_or_empty(const char *value, char *err, size_t errlen);

/*
 * A check for a directory start writes into and creates when missing (one level, e.g. an
 * outbox): a directory this process can write, or a missing one whose parent is. "" passes.
 */
int dst_cfg_check_dir(const char *value, char *err, size_t errlen);

/*
 * A check for a file start opens for reading and writing, creating it when missing (a SQLite
 * database, which adds files beside it): its directory is writable, and the file, when there,
 * is a regular file this process can read and write.
 */
int dst_cfg_check_file_rw(const char *value, char *err, size_t errlen);

/* A check for a file start reads (e.g. a token file): a regular file this process can read. */
int dst_cfg_check_file_readable(const char *value, char *err, size_t errlen);

/*
 * A check for a file whose presence start watches (an enable file): it may be absent, but its
 * directory exists, and it is not a directory. "" passes.
 */
int dst_cfg_check_watched_file(const char *value, char *err, size_t errlen);

#endif
