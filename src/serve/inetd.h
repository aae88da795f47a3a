/* inetd.h — `serve --inetd`: the socket an inetd (xinetd, openbsd-inetd,
 * systemd-socket-activate --inetd) passes on stdin, as a listener. */
#ifndef KODAMA_INETD_H
#define KODAMA_INETD_H

#include <stddef.h>

#include "serve/core/worker.h"

/* xinetd puts the socket on stderr too: if stderr is the socket on stdin, every
 * line from now on, usage errors included, goes to syslog, or it would be sent to
 * the client. Before anything is written. */
void inetd_log_setup(void);

/* Take stdin for svc: with udp, a bound datagram socket ("wait"), which becomes *l;
 * otherwise a connected stream socket ("nowait"), returned in *conn, with *l
 * describing it (see listener_for_conn). stdin and stdout are pointed at /dev/null
 * so that the socket is ours alone (closing it then really closes it), and so is
 * stderr if it is the same socket (xinetd does that): logs then go to syslog, never
 * to the client. Returns 0, or -1 with a line in err. */
int inetd_take_stdin(const struct service *svc, int udp, struct listener *l, int *conn,
                     char *err, size_t errlen);

#endif
