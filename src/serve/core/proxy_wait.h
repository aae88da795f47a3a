/* proxy_wait.h — the header stage of a "+proxy" listener's connections.
 *
 * An accepted connection first waits here for its PROXY protocol header (proxy.h),
 * for at most --proxy-timeout. The header is read without taking a byte beyond it
 * (recv with MSG_PEEK, parse, then read exactly what belongs to the header), so the
 * service sees the client's first bytes intact. Then the client the header names is
 * admitted under --max-per-ip and the connection goes to the worker's engine
 * (worker_serve) with that address; a LOCAL header (a health check) or an UNKNOWN
 * one keeps the connection's own peer. A bad, missing or late header: the
 * connection is reset and counted as DROP_BAD_PROXY.
 *
 * Both engines wait with a loop watch. Waiting connections count in wk->nconns. */
#ifndef KODAMA_PROXY_WAIT_H
#define KODAMA_PROXY_WAIT_H

struct worker;
struct listener;
struct accepted;

/* Set up the worker's list and deadline (after its loop exists). */
void proxy_wait_init(struct worker *wk);

/* Take an accepted connection (admitted under --max-conns only) into the header
 * stage. Never fails: out of memory, the connection is closed. */
void proxy_wait_start(struct worker *wk, struct listener *l, const struct accepted *a);

/* Close every waiting connection (no header yet: nothing was promised them). */
void proxy_wait_close_all(struct worker *wk);

#endif
