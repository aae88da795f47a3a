/* cli.h — what every subcommand shares: the command table, usage errors in one
 * format, and getopt's failures turned into our messages. */
#ifndef KODAMA_CLI_H
#define KODAMA_CLI_H

#include <getopt.h>
#include <stdio.h>

#define KODAMA_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };


/* "kodama: <what>" then "Try 'kodama CMD --help'."; returns EXIT_USAGE. cmd may be
 * NULL for the top level. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* After getopt_long returned '?' or ':' (optstring must start with ':' or "+:"). */
int option_error(const char *cmd, int c, char **argv, const struct option *longopts);

#endif
