/* zlt-message.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-message.h"
