/* zlt-plugin-loader.c: placeholder until its owner lands it */
#include "config.h"

#include "zlt-plugin-loader.h"
