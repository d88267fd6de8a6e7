/* uuid.c - random and name-based UUIDs (libuuid) */
#include "core/uuid.h"

#include <ctype.h>
#include <string.h>
#include <uuid/uuid.h>

#include "core/err.h"

void dst_uuid_new(char out[DST_UUID_LEN + 1])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

/* dstmc's own namespace of name-based ids; changing it would change every derived id. */
static const char NAMESPACE[] = "5b2a4f1e-9a43-5c07-8d3e-2f6c1b7a9e40";

void dst_uuid_from_name(const char *name, char out[DST_UUID_LEN + 1])
{
    uuid_t ns, u;
    uuid_parse(NAMESPACE, ns);
    uuid_generate_sha1(u, ns, name, strlen(name));
    uuid_unparse_lower(u, out);
}

bool dst_uuid_valid(const char *s)
{
    if (!s || strlen(s) != DST_UUID_LEN)
        return false;
    for (int i = 0; i < DST_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int dst_uuid_normalize(const char *s, char out[DST_UUID_LEN + 1])
{
    if (!dst_uuid_valid(s))
        return DST_EINVAL;
    for (int i = 0; i <= DST_UUID_LEN; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return 0;
}
