/* log.h — one-line messages on stderr, each prefixed "kodama: " and written with a
 * single write(2) so that lines from a busy server never interleave. */
#ifndef KODAMA_LOG_H
#define KODAMA_LOG_H

#include <stdarg.h>

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap);
/* Print a message without the prefix (send -v's "Received ..." lines). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
