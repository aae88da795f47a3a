/* relay.h — stdin to a socket and the socket to stdout, binary safe: the loop of
 * `connect`, and of `connect -l` once its peer has come.
 *
 * It follows OpenBSD netcat's readwrite(): four poll slots (stdin, net out, net in,
 * stdout) with one buffer per direction. The socket is non-blocking so a peer that
 * stops reading never stops us from reading what it sends; stdin and stdout are left
 * as they are (they may be shared with the shell) and only read or written after
 * poll says so. */
#ifndef KODAMA_RELAY_H
#define KODAMA_RELAY_H

#include "client/client.h"
#include "lib/ring.h"

struct relay {
    struct peer *p;                 /* the socket (and its TLS), and its name */
    struct peer plain;              /* relay_run's, for a bare descriptor */
    int udp;
    long udp_wait_ms;               /* udp: after stdin's end, how long to wait */
    int udp_until_quiet;            /* udp: end only by that wait (connect -l -u),
                                     * not when every datagram is answered */
    struct report *r;
    struct ring to_net, to_out;
    int stdin_open, net_in_open, net_out_open;
    int read_now;                   /* TLS holds decrypted bytes: read without polling */
    unsigned long dgrams_sent, dgrams_received;
};

/* The buffers, once for the command (stdin's state outlives a peer, for -k). */
void relay_init(struct relay *rl, int udp, long udp_wait_ms);
void relay_free(struct relay *rl);

/* Relay between stdio and the connected socket fd until the peer has closed (tcp,
 * unix) or the datagrams are done (udp). Bytes and the first byte go to r. Returns
 * V_OK, or the verdict after one line on stderr: reset (the peer reset), local
 * (stdin or stdout failed: "cannot write to stdout: Broken pipe"), refused (udp,
 * ICMP port unreachable). stdin left at its end stays there for the next peer. */
int relay_run(struct relay *rl, int fd, const char *name, struct report *r);
/* The same on a peer client_connect made, over TLS if it has it: at the end of
 * stdin our close_notify, then the FIN, and reading goes on until the peer's
 * close_notify or FIN. A TLS failure is tls (7). */
int relay_run_peer(struct relay *rl, struct peer *p, struct report *r);

#endif
