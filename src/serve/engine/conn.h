/* conn.h — a stream connection being served (tcp or unix) on the epoll engine.
 *
 * A service's plan (service.h) shapes the connection; the server drives it with the
 * calls below. The rules every connection follows, on either engine:
 * - output is a static part (a greeting; chargen's repeats until the server stops)
 *   then the ring (bytes copied for this connection, then echoed bytes), in order;
 * - input is echoed only while the ring has room, otherwise not read at all, which is
 *   the backpressure that bounds memory; other services read and discard it;
 * - after our shutdown(SHUT_WR) a connection lingers, discarding input, until the
 *   peer closes (at most LINGER_MS): closing with unread input would send a reset;
 * - a connection that neither sends nor receives for --idle-timeout is told goodbye;
 *   one whose output has not moved for --send-timeout is reset. */
#ifndef KODAMA_CONN_H
#define KODAMA_CONN_H

#include <stddef.h>
#include <sys/socket.h>


struct conn;
struct worker;
struct listener;

struct accepted;

/* Set up the worker's set of these connections (STREAM_CONN): both engines do. */
void conn_engine_init(struct worker *wk);

/* Serve a freshly accepted and admitted connection. Closes it (releasing its slot)
 * if out of memory. */
void conn_open(struct worker *wk, struct listener *l, const struct accepted *a);
/* The same with a shaper: its listener has faults, or may get some (--control).
 * On an engine that accepts blocking sockets, the socket is made non-blocking. */
void conn_open_shaped(struct worker *wk, struct listener *l, const struct accepted *a);

#endif
