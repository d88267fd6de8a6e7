/* client.h - `dstmc toystore client`: the toy store's client and load generator */
#ifndef TOYSTORE_CLIENT_H
#define TOYSTORE_CLIENT_H

/*
 * Runs --clients sessions against --frontend, each on its own kept-alive connection, then
 * checks every order it made with GET /orders/<n> and prints a summary (--json: one object).
 * Exit status: 0; 1 when an order did not match or a request failed in a way the API does not
 * document (no answer, an answer that is not its JSON, an error other than 404 or out of stock);
 * 2 on a configuration error. SIGTERM stops early; the summary is still printed.
 */
int toystore_client_main(int argc, char **argv);

#endif
