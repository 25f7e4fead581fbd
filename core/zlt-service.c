/* zlt-service.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-service.h"
