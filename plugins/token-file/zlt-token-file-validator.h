/* zlt-token-file-validator.h: the "token-file" validator: token hashes from a private
 * file, reloaded when it changes, plus tokens added at runtime */
#pragma once

#include "zlt-plugin.h"

G_BEGIN_DECLS

#define ZLT_TYPE_TOKEN_FILE_VALIDATOR (zlt_token_file_validator_get_type ())
G_DECLARE_FINAL_TYPE (ZltTokenFileValidator, zlt_token_file_validator, ZLT, TOKEN_FILE_VALIDATOR,
                      ZltValidator)

G_END_DECLS
