/* serve.h — `kodama serve`, the entry point main.c dispatches to. */
#ifndef KODAMA_SERVE_H
#define KODAMA_SERVE_H

#include <stdio.h>

int cmd_serve(int argc, char **argv);
void help_serve(FILE *out);

#endif
