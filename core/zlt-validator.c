/* zlt-validator.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-validator.h"
