/* zlt-webhook-plugin.c: entry point of the webhook plugin */
#include "config.h"

#include "zlt-webhook-validator.h"

static gboolean
zlt_webhook_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_validator_type (loader, ZLT_TYPE_WEBHOOK_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (zlt_webhook_plugin_register)
