/* zlt-session.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-session.h"
