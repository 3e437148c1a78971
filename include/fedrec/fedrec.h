/* fedrec: federated learning for recommender systems. The umbrella header. */
#ifndef FEDREC_FEDREC_H
#define FEDREC_FEDREC_H
#include "fedrec/core.h"
#include "fedrec/data.h"
#endif
