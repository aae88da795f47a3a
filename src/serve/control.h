/* control.h — serve's --control: the faults of every listener, seen and changed at
 * run time over a small HTTP/1.1 API that curl can drive.
 *
 *   GET    /faults         every listener, its sockets and its faults (JSON)
 *   GET    /faults/NAME    one of them
 *   PUT    /faults/NAME    replace its faults with the body's KEY=VALUE,... text
 *   DELETE /faults/NAME    clear them
 *
 * NAME is the listener's name= (SERVICE-PORT by default). New connections see a
 * change at once, open ones at their next chunk. Served by a thread of its own
 * (httpd.c), which only ever writes the listeners' slots under their locks
 * (fault_slot_set). The API has no authentication: it listens on a unix socket or
 * a loopback address unless --control-any says otherwise. */
#ifndef KODAMA_CONTROL_H
#define KODAMA_CONTROL_H

#include <stddef.h>

#include "lib/addr.h"

struct worker_set;

#define CONTROL_BODY_MAX 4096

/* The bound --control socket, made before privileges are dropped. */
struct control_listen {
    int fd;
    char addr[ADDR_TEXT_MAX];       /* as bound, for the listening line */
    const char *kind;               /* "tcp" or "unix" */
    char *unlink_path;              /* a unix socket file to remove at exit */
};

/* Bind ADDR: unix:PATH (or unix:@NAME), HOST:PORT or [IPV6]:PORT on a loopback
 * address, or PORT alone on 127.0.0.1; any address with any. Returns 0, or -1 with
 * a line in err and *usage set when the text itself is wrong (a usage error). */
int control_listen(const char *text, int any, struct control_listen *cl, int *usage,
                   char *err, size_t errlen);
/* Close the socket and remove its file, if any. */
void control_listen_close(struct control_listen *cl);

struct control;

/* Serve cl in a thread of its own until control_stop; it reads the listeners of
 * ws's worker 0 and writes their slots. Returns NULL (reported) on failure. */
struct control *control_start(const struct control_listen *cl, const struct worker_set *ws);
void control_stop(struct control *c);

/* The whole response to one request (len bytes, as httpd gives them; full: the
 * most a request may be came and it is not whole), malloc'd in *out; 0 while more
 * is needed. */
int control_respond(void *ctl, const char *req, size_t len, int full, char **out,
                    size_t *out_len);

#endif
