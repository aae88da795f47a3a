/* relay.h — the relay's connections (relay@ADDR,to=TARGET): a client accepted on
 * the relay's listener, connected to its target, and the bytes copied both ways,
 * faults applied (toward the client as on any listener; toward the target with
 * the up- keys), on the readiness path of either engine (relay.c). */
#ifndef KODAMA_RELAY_H
#define KODAMA_RELAY_H

struct worker;
struct listener;
struct accepted;

/* Set up the worker's set of relays (STREAM_RELAY): both engines do. */
void relay_engine_init(struct worker *wk);

/* Serve an accepted, admitted client of a relay listener: connect to its target
 * (within connect-timeout) and relay. Never fails: the client is closed (reset if
 * the target cannot be reached, and counted). */
void relay_open(struct worker *wk, struct listener *l, const struct accepted *a);

#endif
