/* services.h - the toy store's services, dispatched by main.c as `dstmc toystore <service>` */
#ifndef DST_TOYSTORE_SERVICES_H
#define DST_TOYSTORE_SERVICES_H

/* `dstmc toystore <catalog|order|frontend|client> [options]`: picks the service. */
int toystore_main(int argc, char **argv);

/* `dstmc toystore catalog`: the toys, their stock and its file; invalidations pushed. */
int catalog_main(int argc, char **argv);

/* `dstmc toystore order`: buys through the catalog, the order log, order numbers. */
int order_main(int argc, char **argv);

/* `dstmc toystore frontend`: the public face (the handout's REST API), with its cache. */
int frontend_main(int argc, char **argv);

/*
 * `dstmc toystore client`: the client and load generator. Runs --clients sessions against
 * --frontend, each on its own kept-alive connection, then checks every order it made with
 * GET /orders/<n> and prints a summary (--json: one object). Exit status: 0; 1 when an order did
 * not match or a request failed in a way the API does not document (no answer, an answer that is
 * not its JSON, an error other than 404 or out of stock); 2 on a configuration error. SIGTERM
 * stops early; the summary is still printed.
 */
int client_main(int argc, char **argv);

/*
 * `dstmc toystore up`: the catalog, --replicas order replicas and the front end, each a child
 * process (this binary again) with its files under --data-dir, restarted when it exits; prints
 * the front end's "listening on" line and "toy store: URL" on stdout. SIGTERM stops them all.
 */
int toystore_up_main(int argc, char **argv);

#endif
