/* zlt-crypto.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-crypto.h"
