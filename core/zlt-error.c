/* zlt-error.c */
#include "config.h"

#include "zlt-error.h"

/**
 * zlt_error_quark:
 *
 * The domain of the errors the library reports; #ZltError has its codes.
 *
 * Returns: the quark of %ZLT_ERROR
 */
/* clang-format off */
G_DEFINE_QUARK (zlt-error-quark, zlt_error)
/* clang-format on */
