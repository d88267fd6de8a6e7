/* services.h - the tools that serve the services from outside, dispatched by main.c */
#ifndef DST_TOOLS_SERVICES_H
#define DST_TOOLS_SERVICES_H

/*
 * `dstmc health [URL]`: GET the URL (default: /ping on the port of DSTMC_LISTEN, else 8080, on
 * 127.0.0.1); exits 0 on a 2xx answer within the timeout, 1 otherwise, 2 on bad options. A
 * container's HEALTHCHECK, so that the image needs no curl.
 */
int health_main(int argc, char **argv);

#endif
