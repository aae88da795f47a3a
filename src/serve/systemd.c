/* systemd.c — socket activation and sd_notify without libsystemd (see systemd.h). */
#include "serve/systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "proto/spec.h"
#include "serve/services/service.h"

/* LISTEN_FDS beyond this is surely a mistake (systemd passes what a unit lists). */
#define SD_LISTEN_FDS_MAX 1024

static void unset_listen_env(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* Does field (len bytes) begin a name: a service's, alone or before its options? */
static int starts_a_name(const char *field, size_t len)
{
    char svc[SPEC_SERVICE_MAX + 1];
    size_t n = 0;

    while (n < len && field[n] != ',')
        n++;
    if (n == 0 || n > SPEC_SERVICE_MAX)
        return 0;
    memcpy(svc, field, n);
    svc[n] = '\0';
    return service_find(svc) != NULL;
}

/* One name per descriptor from "a:b:c"; an empty or missing one is NULL. The names
 * are joined with ':', and a relay's to=HOST:PORT (or [IPV6]:PORT, unix:PATH) has
 * ':' in it too: systemd-socket-activate --fdname=relay,to=127.0.0.1:8080 passes
 * that name whole, for one descriptor. So when there are more fields than
 * descriptors, a field that does not begin with a service's name is the rest of
 * the name before it. */
static char **split_names(const char *text, size_t n)
{
    char **names = xcalloc(n, sizeof *names);
    const char *p = text;
    size_t fields = 0;

    for (const char *q = text; q; q = strchr(q, ':'), q = q ? q + 1 : NULL)
        fields++;
    for (size_t i = 0; p && i < n; i++) {
        const char *end = strchr(p, ':');

        while (end && fields > n && !starts_a_name(end + 1, strcspn(end + 1, ":"))) {
            end = strchr(end + 1, ':');
            fields--;
        }
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len > 0) {
            names[i] = xmalloc(len + 1);
            memcpy(names[i], p, len);
            names[i][len] = '\0';
        }
        p = end ? end + 1 : NULL;
    }
    return names;
}

void sd_names_free(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int sd_take_listen_fds(char ***names, char *err, size_t errlen)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    const char *fdnames = getenv("LISTEN_FDNAMES");
    unsigned long want, n;
    char why[KODAMA_ERR_LEN];

    *names = NULL;
    /* Variables meant for another process (our parent's, inherited by mistake) are
     * none of our business: the SPECs are bound as usual. */
    if (pid == NULL || fds == NULL || parse_uint(pid, 1, (unsigned long)-1, &want, why,
                                                 sizeof why) < 0 || want != (unsigned long)getpid())
        return 0;
    if (parse_uint(fds, 0, SD_LISTEN_FDS_MAX, &n, why, sizeof why) < 0) {
        snprintf(err, errlen, "LISTEN_FDS='%s': %s (0 to %d)", fds, why, SD_LISTEN_FDS_MAX);
        unset_listen_env();
        return -1;
    }
    if (n > 0)
        *names = split_names(fdnames, n);
    unset_listen_env();
    return (int)n;
}

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static int notify_failed;
static char notify_text[sizeof notify_addr.sun_path + 2];  /* NOTIFY_SOCKET, for a line */

int sd_notify_open(char *err, size_t errlen)
{
    const char *path = getenv("NOTIFY_SOCKET");
    int abstract;

    if (path == NULL || path[0] == '\0')
        return 0;
    /* Only unix sockets: systemd 253's vsock form (vsock:CID:PORT) is for VMs. */
    if (path[0] != '/' && path[0] != '@') {
        snprintf(err, errlen, "NOTIFY_SOCKET='%s': not a path or an abstract name (@NAME)",
                 path);
        return -1;
    }
    abstract = path[0] == '@';
    notify_len = net_unix_addr(path + abstract, abstract, &notify_addr);
    if (notify_len == (socklen_t)-1) {
        snprintf(err, errlen, "NOTIFY_SOCKET='%s': %s", path, strerror(errno));
        return -1;
    }
    snprintf(notify_text, sizeof notify_text, "%s", path);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (notify_fd < 0) {
        snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
        return -1;
    }
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

int sd_notify_enabled(void)
{
    return notify_fd >= 0;
}

void sd_notify_send(const char *state)
{
    if (notify_fd < 0)
        return;
    if (sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL,
               (const struct sockaddr *)&notify_addr, notify_len) >= 0)
        return;
    /* A manager that is gone or busy must not stop the service: say so once. */
    if (!notify_failed)
        log_msg("cannot notify the service manager at NOTIFY_SOCKET=%s: %s", notify_text,
                strerror(errno));   /* which socket: the variable is gone by now */
    notify_failed = 1;
}

void sd_notify_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
}
