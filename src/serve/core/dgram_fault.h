/* dgram_fault.h — placeholder, filled in with the datagram faults. */
#ifndef KODAMA_DGRAM_FAULT_H
#define KODAMA_DGRAM_FAULT_H

struct worker;

void dgram_faults_free(struct worker *wk);

#endif
