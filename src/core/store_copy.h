/* store_copy.h - whole stores copied: store to store, and to and from JSON lines */
#ifndef DST_STORE_COPY_H
#define DST_STORE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/store.h"

/*
 * What is copied, kind by kind, in this order: "setting" (the schedules and other settings,
 * with their update times), "credential" (tokens and sessions, their hashes verbatim: a token
 * valid on one store is valid on the other), "result" (every column, demo and excluded too,
 * in seq order), "rollup" (the hourly and daily rollups as they are, and how far raw results
 * were pruned: see dst_store_rollups_put). Each kind is one entry of a table in store_copy.c
 * and one in store_export.c: a new kind of data is one more entry in each.
 * Nothing is ever deleted or overwritten on the target but a setting whose value differs (the
 * source's wins), so copies are idempotent: what is there already is counted and skipped.
 * A results row's received_ms becomes the time of the copy (nothing reads it).
 */

#define DST_STORE_KINDS_MAX 8

/* What a copy, export or import did with one kind. */
struct dst_store_tally {
    const char *kind; /* "setting", "credential", "result", "rollup" (static text) */
    int64_t total;    /* to go through (results: the source's rows after the resume point) */
    int64_t done;     /* gone through so far (the progress) */
    int64_t copied;   /* written: new, or a setting that differed */
    int64_t existing; /* already there as they are: skipped */
};

struct dst_store_report {
    struct dst_store_tally kinds[DST_STORE_KINDS_MAX];
    int nkinds;
};

/*
 * Called after each batch and at each kind's end; t is borrowed for the call. A non-zero
 * return stops the copy, export or import there (it returns that value): what was stored
 * stays, and a later run goes on from there.
 */
typedef int (*dst_store_progress_fn)(const struct dst_store_tally *t, void *ud);

struct dst_store_copy_opts {
    /*
     * What names the source for the resume point (its URL; only a SHA-256 of it is stored);
     * NULL: no resume point, every row is looked at (and skipped when there).
     */
    const char *from_name;
    size_t batch;                   /* results (rollups) per read and per insert; 0: 5000 */
    dst_store_progress_fn progress; /* may be NULL */
    void *ud;
    /* results with dst_store_insert (the API's batch insert), not dst_store_insert_bulk: for
     * comparison (bench/store.py) */
    bool no_bulk;
};

/*
 * Copies every kind from `from` to `to` (open stores: opening migrated to's schema). Results
 * go in batches of o->batch, read by seq from after the resume point and inserted with
 * dst_store_insert (ids already on `to` skipped). After each batch the highest source seq
 * copied and its row's id are put in a setting of `to` named after o->from_name; a later copy
 * from the same source starts after that seq, if the source still holds that id at that seq
 * (else from the start: a deleted newest row's seq is taken again on SQLite). A killed copy
 * thus goes on where it stopped, and a repeated one reads nothing. rep tells what happened
 * (filled as it goes, so it is meaningful after an error too). 0, or the first error.
 */
int dst_store_copy(struct dst_store *from, struct dst_store *to,
                   const struct dst_store_copy_opts *o, struct dst_store_report *rep);

/*
 * Whether a and b are one store under two names (two URLs of one database or file): puts a
 * random value in a setting of b and looks for it in a. Writes b.
 */
int dst_store_same(struct dst_store *a, struct dst_store *b, bool *same);

/* Whether a setting's key is the copy's own bookkeeping (never copied or exported). */
bool dst_store_copy_own_key(const char *key);

/*
 * Writes the store as JSON lines to out: a header {"kind":"header","format":"dstmc-export",
 * "version":2,...} (with "raw_pruned_ms" when raw results were pruned), one line per setting,
 * credential, result (the API's JSON form of a result with "kind":"result", reals with 17
 * digits: exact) and rollup ({"kind":"rollup","step_ms","t_ms","probe","count","failed", and
 * per measure {"n","min","max","sum","p50","p90"}, null for none), and {"kind":"end",...} with
 * the counts. o->from_name is not used. 0, DST_EIO when out fails, or a store error.
 */
int dst_store_export(struct dst_store *s, FILE *out, const struct dst_store_copy_opts *o,
                     struct dst_store_report *rep);

/*
 * Reads what dst_store_export wrote (lines up to 1 MiB) into s, results and rollups in
 * batches of o->batch (the header's raw_pruned_ms put first), idempotently as dst_store_copy. Each line is parsed and checked whole before any
 * of it is stored. At the first bad line it stops: what came before is stored, nothing of
 * that line or after; *line is its number (1-based; 0 when no line was at fault), err says
 * why. DST_EINVAL for a bad line, DST_EIO when reading fails, or a store error.
 */
int dst_store_import(struct dst_store *s, FILE *in, const struct dst_store_copy_opts *o,
                     struct dst_store_report *rep, int64_t *line, char *err, size_t errlen);

#endif
