/* uuid.h - random and name-based UUIDs (libuuid) */
#ifndef DST_UUID_H
#define DST_UUID_H

#include <stdbool.h>

#define DST_UUID_LEN 36

/* Writes a new random (v4) UUID in lower-case 8-4-4-4-12 form, NUL-terminated. */
void dst_uuid_new(char out[DST_UUID_LEN + 1]);

/*
 * Writes the name-based (v5, SHA-1) UUID of name in the dstmc namespace, lower case: the same
 * name always gives the same id (a result of a redelivered request keeps its id).
 */
void dst_uuid_from_name(const char *name, char out[DST_UUID_LEN + 1]);

/* True if s is a UUID in 8-4-4-4-12 hex form (any case). */
bool dst_uuid_valid(const char *s);

/* Copies s in lower case into out; DST_EINVAL if s is not a UUID. */
int dst_uuid_normalize(const char *s, char out[DST_UUID_LEN + 1]);

#endif
