/* listen_opts.h — what a SPEC's options (or a passed socket's FileDescriptorName=)
 * make of its listeners: one shared slot with their name and faults, and a relay's
 * resolved target. */
#ifndef KODAMA_LISTEN_OPTS_H
#define KODAMA_LISTEN_OPTS_H

#include <stddef.h>

#include "proto/spec.h"
#include "serve/core/worker.h"

/* Give the n listeners at ls (all of one SPEC, or passed sockets of one name) their
 * slot, from sp's options (sp->protos: theirs); ls[0] owns it. A relay's target is
 * resolved here (a name, once). Returns 0, or -1 with a line in err. */
int listen_group(struct listener *ls, size_t n, const struct spec *sp, char *err,
                 size_t errlen);

/* Name every slot of the n listeners: name= as given (two alike are an error),
 * else SERVICE-PORT (the port of its first socket, as bound; SERVICE-unix for a
 * unix socket), with "-2", "-3", ... if another has it already. Returns 0, or -1
 * with a line in err. */
int listen_names(struct listener *ls, size_t n, char *err, size_t errlen);

/* Free what l owns (its slot and relay target), if it owns them. */
void listen_group_free(struct listener *l);

#endif
