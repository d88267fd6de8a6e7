/* sse.h - server-sent events: a hub that fans events out to streaming HTTP replies */
#ifndef DST_SSE_H
#define DST_SSE_H

#include <stddef.h>
#include <stdint.h>

struct dst_http_req;
struct dst_sse_hub;

/*
 * A hub keeps the connected clients and the last DST_SSE_REPLAY events. Each event gets an
 * increasing id. A client that reconnects with a Last-Event-ID header first receives the
 * events it missed that are still kept. Every heartbeat_ms (0 → 15000) each client gets a
 * comment line, so dead connections are noticed and proxies keep the stream open. A client
 * more than max_buffer bytes (0 → 256 KiB) behind is disconnected (it will reconnect).
 */
#define DST_SSE_REPLAY 64

int dst_sse_hub_new(int heartbeat_ms, size_t max_buffer, struct dst_sse_hub **out);
/*
 * Ends every client stream and refuses new ones (attach answers 503); publish still works, and
 * reaches nobody. Call before stopping the HTTP server, so its drain does not wait on the
 * streams; free the hub only once the server is gone, since handlers still running in the
 * drain may publish. Calling it again does nothing.
 */
void dst_sse_hub_close(struct dst_sse_hub *hub);
/* Closes the hub if it is open, and frees it (a stream still ending frees it last). */
void dst_sse_hub_free(struct dst_sse_hub *hub);

/*
 * Answers req with a text/event-stream reply attached to the hub (200, no-cache headers,
 * "retry: 2000" first). Returns 0 or a DST_E* code if the reply could not be queued.
 */
int dst_sse_hub_attach(struct dst_sse_hub *hub, struct dst_http_req *req);

/*
 * Sends "id: N\nevent: EVENT\ndata: DATA\n\n" to every client. data may hold newlines (each
 * line becomes a data: line). Thread-safe; never blocks on a slow client. Returns the id.
 */
uint64_t dst_sse_hub_publish(struct dst_sse_hub *hub, const char *event, const char *data);

/*
 * From now on, event ids are the wall clock in microseconds (still increasing by at least one):
 * hubs of replicas that share a store then agree on the order of their ids, so a client that
 * reconnects to another replica with a Last-Event-ID gets that replica's events since then.
 */
void dst_sse_hub_clock_ids(struct dst_sse_hub *hub);
size_t dst_sse_hub_clients(struct dst_sse_hub *hub);

#endif
