/* services.h - the toy store's services, dispatched by main.c as `dstmc toystore <service>` */
#ifndef DST_TOYSTORE_SERVICES_H
#define DST_TOYSTORE_SERVICES_H

/* `dstmc toystore <catalog|order|frontend> [options]`: picks the service. */
int toystore_main(int argc, char **argv);

/* `dstmc toystore catalog`: the toys, their stock and its file; invalidations pushed. */
int catalog_main(int argc, char **argv);

/* `dstmc toystore order`: buys through the catalog, the order log, order numbers. */
int order_main(int argc, char **argv);

/* `dstmc toystore frontend`: the public face (the handout's REST API), with its cache. */
int frontend_main(int argc, char **argv);

#endif
