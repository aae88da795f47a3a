/* server.h — running a server: N workers on the listeners until a signal. */
#ifndef KODAMA_SERVER_H
#define KODAMA_SERVER_H

#include <stddef.h>

#include "serve/core/worker.h"

/* Serve until SIGINT/SIGTERM with cfg->threads event loops; takes ownership of the
 * listeners (worker 0 serves them, the others copies: see listeners_copy).
 * Returns 0 on a clean stop, 1 on a runtime failure (already reported). */
int server_run(struct listener *ls, size_t n, const struct serve_config *cfg);

#endif
