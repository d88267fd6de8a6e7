/* client_api.h - the toy store front end's public API, as the client calls it */
#ifndef TOYSTORE_CLIENT_API_H
#define TOYSTORE_CLIENT_API_H

#include "toystore/client_stats.h"

struct dst_http_client;

#define TOYCLIENT_NAME_MAX 128

/* What one call came back with. */
struct toyclient_answer {
    enum toyclient_outcome outcome;
    double ms;                     /* from sending to the whole answer; -1 when none came */
    char msg[256];                 /* what went wrong (outcome != OK), naming the request */
    long long quantity;            /* query: the stock; order lookup: the order's quantity */
    long long number;              /* buy: the new order number; order lookup: its number */
    char name[TOYCLIENT_NAME_MAX]; /* order lookup: the order's product */
};

/*
 * The three calls, on c (its connection is kept alive between them). base is the front end's
 * URL without a trailing '/'. Each fills *a: OK only for a 2xx answer with the documented
 * {"data":{...}} (numbers integers, names strings); an error answer is NOT_FOUND (404),
 * OUT_OF_STOCK (its message says "out of stock") or REJECTED; BAD_REPLY for anything else
 * that came back; TRANSPORT when nothing did. Blocks up to timeout_ms.
 *
 * GET /products/<toy> → {"data":{"name","price","quantity"}}: a->quantity.
 */
void toyclient_query(struct dst_http_client *c, const char *base, const char *toy, long timeout_ms,
                     struct toyclient_answer *a);

/* POST /orders {"name":toy,"quantity":quantity} → {"data":{"order_number":n}}: a->number. */
void toyclient_buy(struct dst_http_client *c, const char *base, const char *toy, long long quantity,
                   long timeout_ms, struct toyclient_answer *a);

/* GET /orders/<number> → {"data":{"number","name","quantity"}}: a->number, name, quantity. */
void toyclient_order(struct dst_http_client *c, const char *base, long long number, long timeout_ms,
                     struct toyclient_answer *a);

#endif
