/* zlt-tunnel.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-tunnel.h"
