/* systemd.h — the two parts of systemd's daemon protocol that serve speaks, written
 * from the documented protocol rather than linked from libsystemd (docs/DESIGN.md):
 * socket activation (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) and
 * readiness notification (sd_notify(3): datagrams to $NOTIFY_SOCKET). */
#ifndef KODAMA_SYSTEMD_H
#define KODAMA_SYSTEMD_H

#include <stddef.h>

#define SD_LISTEN_FDS_START 3

/* The descriptors systemd passed us, if LISTEN_PID is our pid and LISTEN_FDS is set:
 * returns how many (they are SD_LISTEN_FDS_START onwards), 0 if none were passed to
 * this process, or -1 with a line in err if the variables are malformed. *names gets
 * one name per descriptor from LISTEN_FDNAMES (NULL where it names none), to free
 * with sd_names_free. The LISTEN_* variables are removed either way, so that nothing
 * we start inherits them. */
int sd_take_listen_fds(char ***names, char *err, size_t errlen);
void sd_names_free(char **names, size_t n);

/* Open the socket $NOTIFY_SOCKET names, if set (a path, or '@' for an abstract name).
 * Returns 0 (also when unset: notifications are then dropped), or -1 with a line in
 * err. */
int sd_notify_open(char *err, size_t errlen);

/* Send one notification such as "READY=1" or "STATUS=..."; does nothing without
 * $NOTIFY_SOCKET. Never blocks; a failure is logged once. */
void sd_notify_send(const char *state);
int sd_notify_enabled(void);
void sd_notify_close(void);

#endif
