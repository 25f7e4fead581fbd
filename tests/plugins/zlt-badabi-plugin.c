/* zlt-badabi-plugin.c: exports both plugin symbols, but for an ABI that does not exist */
#include "config.h"

#include "zlt-plugin.h"

G_MODULE_EXPORT extern const guint32 zlt_plugin_abi_version;
G_MODULE_EXPORT const guint32 zlt_plugin_abi_version = ZLT_PLUGIN_ABI_VERSION + 41;

G_MODULE_EXPORT gboolean zlt_plugin_register (ZltPluginLoader *loader, GError **error);

G_MODULE_EXPORT gboolean
zlt_plugin_register (ZltPluginLoader *loader, GError **error)
{
  /* never reached: the loader refuses the module before calling this */
  g_error ("the loader called a module with the wrong ABI version");
  return FALSE;
}
