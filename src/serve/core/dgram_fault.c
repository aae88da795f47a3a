#include "serve/core/dgram_fault.h"

#include "serve/core/worker.h"

void dgram_faults_free(struct worker *wk)
{
    (void)wk;
}
