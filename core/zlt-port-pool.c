/* zlt-port-pool.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-port-pool.h"
