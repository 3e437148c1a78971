/* fedrec: federated learning for recommender systems. The umbrella header: the whole
 * public API.
 *   core.h        errors, allocation hooks, random streams, thread pool, CRC, logging
 *   data.h        ratings files, datasets, splits, negatives, partitions, data sources
 *   model.h       the parameter slab, the models, optimizers, the model file
 *   train.h       centralized training
 *   eval.h        metrics over a scoring callback, top-K
 *   model_eval.h  metrics of a model
 *   fl.h          updates, TASK/RESULT messages, the client step, the round controller
 *   attack.h      a curious server's guess of which items a client touched (a harness)
 *   run.h         the training loop, run configs and presets, provenance
 *   runtime.h     the in-process simulator and fr_run
 *   privacy.h     the privacy accountant (later: clipping, noise, secure aggregation)
 *   net_client.h  a networked client process's state and step (fr_netc) */
#ifndef FEDREC_FEDREC_H
#define FEDREC_FEDREC_H
#include "fedrec/core.h"
#include "fedrec/data.h"
#include "fedrec/features.h"
#include "fedrec/pairset.h"
#include "fedrec/model.h"
#include "fedrec/train.h"
#include "fedrec/eval.h"
#include "fedrec/model_eval.h"
#include "fedrec/privacy.h"
#include "fedrec/fl.h"
#include "fedrec/attack.h"
#include "fedrec/run.h"
#include "fedrec/runtime.h"
#include "fedrec/net_client.h"
#endif
