/* store_copy_priv.h - what store_copy.c and store_export.c share */
#ifndef DST_STORE_COPY_PRIV_H
#define DST_STORE_COPY_PRIV_H

#include "core/store_backend.h"
#include "core/store_copy.h"

/* The tally of kind in rep, added (zeroed) when it is not there yet. */
struct dst_store_tally *store_copy_tally(struct dst_store_report *rep, const char *kind);

/* Calls o's progress callback, if any, and returns what it returned (0 without one). */
int store_copy_progress(const struct dst_store_copy_opts *o, const struct dst_store_tally *t);

/* Results gathered for one insert (deep copies), with the insert's created flags. */
struct store_batch {
    struct dst_result *rs;
    bool *created;
    size_t n, cap;
};

void store_batch_add(struct store_batch *b, const struct dst_result *r);
/* Releases the results (keeps the memory); store_batch_free also frees it. */
void store_batch_release(struct store_batch *b);
void store_batch_free(struct store_batch *b);

/* Appends up to max results of s with seq > after_seq, by seq. */
int store_batch_read(struct dst_store *s, int64_t after_seq, size_t max, struct store_batch *b);

/*
 * Inserts b into to (ids there already skipped) with dst_store_insert_bulk (dst_store_insert
 * when o->no_bulk), counts into t, and empties b.
 */
int store_batch_insert(struct dst_store *to, struct store_batch *b, struct dst_store_tally *t,
                       const struct dst_store_copy_opts *o);

/* The number of results of s with seq > after_seq. */
int store_count_after(struct dst_store *s, int64_t after_seq, int64_t *n);

#endif
