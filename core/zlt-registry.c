/* zlt-registry.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-registry.h"
