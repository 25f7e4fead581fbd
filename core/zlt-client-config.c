/* zlt-client-config.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-client-config.h"
