/* privdrop.c — see privdrop.h. The order is the one that cannot leave a way back:
 * groups while still root, then the gid, the uid last; then prove that root is
 * really gone (a setuid(0) that works would mean it is not). */
#include "serve/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *what, int e)
{
    snprintf(err, errlen, "%s: %s", what, strerror(e));
    return -1;
}

int run_as_lookup(const char *name, struct run_as *ra, char *err, size_t errlen)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    int e;

    if (strlen(name) >= sizeof ra->name) {
        snprintf(err, errlen, "name too long");
        return -1;
    }
    e = getpwnam_r(name, &pw, buf, sizeof buf, &found);
    if (found == NULL) {
        if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
            snprintf(err, errlen, "no such user");
        else
            snprintf(err, errlen, "cannot look it up: %s", strerror(e));
        return -1;
    }
    snprintf(ra->name, sizeof ra->name, "%s", name);
    ra->uid = pw.pw_uid;
    ra->gid = pw.pw_gid;
    return 0;
}

int run_as_become(const struct run_as *ra, char *err, size_t errlen)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;

    /* Already that user (not root): nothing to give up, and no right to try. */
    if (ra->uid != 0 && getuid() == ra->uid && geteuid() == ra->uid && getgid() == ra->gid &&
        getegid() == ra->gid)
        return 0;
    if (setgroups(1, &ra->gid) < 0)
        return fail(err, errlen, "setgroups", errno);
    if (setresgid(ra->gid, ra->gid, ra->gid) < 0)
        return fail(err, errlen, "setresgid", errno);
    if (setresuid(ra->uid, ra->uid, ra->uid) < 0)
        return fail(err, errlen, "setresuid", errno);
    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
        return fail(err, errlen, "cannot check the new ids", errno);
    if (ruid != ra->uid || euid != ra->uid || suid != ra->uid || rgid != ra->gid ||
        egid != ra->gid || sgid != ra->gid) {
        snprintf(err, errlen, "the ids did not change as asked");
        return -1;
    }
    if (ra->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "root could be regained; refusing to go on");
        return -1;
    }
    return 0;
}
