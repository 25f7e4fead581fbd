/* zlt-postgres-plugin.c: entry point of the postgres plugin */
#include "config.h"

#include "zlt-postgres-validator.h"

static gboolean
zlt_postgres_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_validator_type (loader, ZLT_TYPE_POSTGRES_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (zlt_postgres_plugin_register)
