/* cli.h — what every subcommand shares: the command table, usage errors in one
 * format, and getopt's failures turned into our messages. */
#ifndef KODAMA_CLI_H
#define KODAMA_CLI_H

#include <getopt.h>
#include <stdio.h>

#define KODAMA_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
};

extern const struct command commands[];
const struct command *command_find(const char *name);

int cmd_serve(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
void help_serve(FILE *out);
void help_send(FILE *out);
void help_connect(FILE *out);
void help_bench(FILE *out);

/* "kodama: <what>" then "Try 'kodama CMD --help'."; returns EXIT_USAGE. cmd may be
 * NULL for the top level. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* After getopt_long returned '?' or ':' (optstring must start with ':' or "+:"). */
int option_error(const char *cmd, int c, char **argv, const struct option *longopts);

#endif
