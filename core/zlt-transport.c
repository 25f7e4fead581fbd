/* zlt-transport.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-transport.h"
