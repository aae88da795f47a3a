/* connect.h — the modes of `kodama connect`: the relay (cmd_connect.c), listening
 * for the peer (-l, listen.c) and scanning a port range (-z, scan.c). */
#ifndef KODAMA_CONNECT_H
#define KODAMA_CONNECT_H

#include "client/client.h"

struct connect_opts {
    struct client_opts c;
    int listen, keep, scan;
    unsigned port_first, port_last;     /* -z: the range */
};

/* -l: wait for a peer and relay it (-k: one after another, until a signal). */
int listen_run(struct connect_opts *o);

/* -z: HOST PORT[-PORT] at argv[optind]. EXIT_OK, or a usage error already told. */
int scan_take_ports(int argc, char **argv, struct connect_opts *o);
/* -z: connect to every port at once; one line (or JSON object) per port. Returns 0
 * if every port is open, else the verdict of the first port that is not. */
int scan_run(struct connect_opts *o);

#endif
