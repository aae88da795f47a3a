/* tls_wait.h — the handshake stage of a "+tls" listener's connections.
 *
 * An accepted connection (after its PROXY header, on "+proxy+tls") first completes
 * its TLS handshake here, for at most --tls-timeout, driven by a loop watch on
 * either engine; then it goes to the worker's engine (worker_serve) with its SSL in
 * struct accepted. A handshake that fails, is reset or does not finish in time
 * costs that one connection slot and nothing else: the connection is reset and
 * counted as DROP_BAD_TLS. Waiting connections count in wk->nconns. */
#ifndef KODAMA_TLS_WAIT_H
#define KODAMA_TLS_WAIT_H

struct worker;
struct listener;
struct accepted;

/* Set up the worker's list and deadline (after its loop exists). */
void tls_wait_init(struct worker *wk);

/* Take an accepted, admitted connection into the handshake stage. Never fails: out
 * of memory, the connection is closed. */
void tls_wait_start(struct worker *wk, struct listener *l, const struct accepted *a);

/* Close every connection still in its handshake (nothing was promised them). */
void tls_wait_close_all(struct worker *wk);

#endif
