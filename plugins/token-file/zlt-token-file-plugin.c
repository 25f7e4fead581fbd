/* zlt-token-file-plugin.c: entry point of the token-file plugin */
#include "config.h"

#include "zlt-token-file-validator.h"

static gboolean
zlt_token_file_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_validator_type (loader, ZLT_TYPE_TOKEN_FILE_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (zlt_token_file_plugin_register)
