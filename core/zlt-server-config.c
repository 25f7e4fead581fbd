/* zlt-server-config.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-server-config.h"
