/* privdrop.h — run as an unprivileged user once the sockets are bound. */
#ifndef KODAMA_PRIVDROP_H
#define KODAMA_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct run_as {
    char name[64];
    uid_t uid;
    gid_t gid;
};

/* Look the user up: 0, or -1 with a reason in err ("no such user"). */
int run_as_lookup(const char *name, struct run_as *ra, char *err, size_t errlen);

/* Become that user: supplementary groups, then group, then user (real, effective
 * and saved), and check that there is no way back. Returns 0, or -1 with a reason
 * in err; the caller must not go on serving after a failure. */
int run_as_become(const struct run_as *ra, char *err, size_t errlen);

#endif
