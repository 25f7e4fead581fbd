/* zlt-error.c */
#include "config.h"

#include "zlt-error.h"

G_DEFINE_QUARK (zlt-error-quark, zlt_error)
