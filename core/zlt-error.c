/* zlt-error.c */
#include "config.h"

#include "zlt-error.h"

/* clang-format off */
G_DEFINE_QUARK (zlt-error-quark, zlt_error)
/* clang-format on */
