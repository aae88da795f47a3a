/* listen.h — turn SPECs into bound listeners. */
#ifndef KODAMA_LISTEN_H
#define KODAMA_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/addr.h"
#include "proto/spec.h"
#include "serve/core/worker.h"

/* Bind every listener the SPECs name, in order (tcp before udp within a SPEC).
 * family is AF_UNSPEC, or AF_INET / AF_INET6 for -4 / -6. With port 0, the first
 * ephemeral port a SPEC gets is tried for its other sockets too, so that
 * echo@localhost:0 answers on one port over tcp and udp, IPv4 and IPv6.
 * reuseport binds tcp and udp sockets with SO_REUSEPORT, ready for listeners_copy.
 * Returns 0 with *out and *n set, or -1 with everything closed again and a line
 * such as "cannot listen on echo tcp [::]:7007: Address already in use" in err. */
int listen_specs(const struct spec *specs, size_t nspecs, int family, int reuseport,
                 struct listener **out, size_t *n, char *err, size_t errlen);

/* A listener of svc on a socket made elsewhere (passed by systemd or inetd): tcp,
 * udp or unix as its domain, type and protocol say; a stream socket must be
 * listening. It is made non-blocking and close-on-exec, and a wildcard udp socket
 * asks for each datagram's address, as listen_specs' own. Not bound with
 * SO_REUSEPORT, so the loops share it. Returns 0, or -1 with a line in err. */
int listener_from_fd(int fd, const struct service *svc, struct listener *l, char *err,
                     size_t errlen);

/* Listeners from the n descriptors first, first + 1, ..., each serving the service
 * its name says (names[i]; NULL or an unknown name is an error). On failure the
 * descriptors taken so far are closed. Returns 0 with *out set, or -1 with a line in
 * err. */
int listen_fds(int first, size_t n, char *const *names, struct listener **out,
               char *err, size_t errlen);

/* inetd "nowait": a listener that describes the connected stream socket fd (its
 * kind and our address) but accepts nothing (its w.fd is -1); fd stays the
 * caller's. Returns 0, or -1 with a line in err. */
int listener_for_conn(int fd, const struct service *svc, struct listener *l, char *err,
                      size_t errlen);

/* The same listeners for one more event loop: tcp and udp ones bound with
 * SO_REUSEPORT get a sibling socket of their own (the kernel spreads the load); the
 * others, or all with share, the same socket, which the loops then take turns to
 * serve. Returns 0 with *out set, or -1 with a line in err. */
int listeners_copy(const struct listener *ls, size_t n, int share, struct listener **out,
                   char *err, size_t errlen);

/* Remove l's unix socket file, if it made one; a failure is logged. */
void listener_remove_file(struct listener *l);

/* --user: make the unix socket files the user's, so that it can remove them when it
 * stops (in a sticky directory such as /tmp only a file's owner may). Returns 0, or
 * -1 with a line in err. */
int listeners_give_files(struct listener *ls, size_t n, uid_t uid, gid_t gid, char *err,
                         size_t errlen);

/* Close the descriptors, remove unix socket files, free the array. */
void listeners_close(struct listener *ls, size_t n);

#endif
