/* zlt-plugin-loader.h: finds, checks and loads transport and validator plugins */
#pragma once

#include <gio/gio.h>
#include <gmodule.h>

#include "zlt-version.h"
#include "zlt-control-transport.h"
#include "zlt-transport.h"
#include "zlt-validator.h"

G_BEGIN_DECLS

/* Bumped whenever a plugin built against an older core could misbehave. */
#define ZLT_PLUGIN_ABI_VERSION 1

#define ZLT_PLUGIN_ABI_SYMBOL "zlt_plugin_abi_version"
#define ZLT_PLUGIN_REGISTER_SYMBOL "zlt_plugin_register"

#define ZLT_TYPE_PLUGIN_LOADER (zlt_plugin_loader_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltPluginLoader, zlt_plugin_loader, ZLT, PLUGIN_LOADER, GObject)

/* The one entry point of a plugin: adds its types with
 * zlt_plugin_loader_add_transport_type() / _add_validator_type(). */
typedef gboolean (*ZltPluginRegisterFunc) (ZltPluginLoader *loader, GError **error);

/**
 * ZLT_PLUGIN_DEFINE:
 * @register_func: a `gboolean (ZltPluginLoader *loader, GError **error)` function
 *
 * Defines the only two symbols a plugin exports: `zlt_plugin_abi_version` and
 * `zlt_plugin_register`. Use it once, at file scope, in one source file of the plugin:
 *
 *   static gboolean
 *   my_register (ZltPluginLoader *loader, GError **error)
 *   {
 *     return zlt_plugin_loader_add_transport_type (loader, MY_TYPE_TRANSPORT, error);
 *   }
 *   ZLT_PLUGIN_DEFINE (my_register)
 *
 * Plugin types use plain G_DEFINE_TYPE: modules are made resident and never unloaded.
 */
#define ZLT_PLUGIN_DEFINE(register_func)                                                           \
  G_MODULE_EXPORT extern const guint32 zlt_plugin_abi_version;                                     \
  G_MODULE_EXPORT const guint32 zlt_plugin_abi_version = ZLT_PLUGIN_ABI_VERSION;                   \
  G_MODULE_EXPORT gboolean zlt_plugin_register (ZltPluginLoader *loader, GError **error);          \
  G_MODULE_EXPORT gboolean zlt_plugin_register (ZltPluginLoader *loader, GError **error)           \
  {                                                                                                \
    return register_func (loader, error);                                                          \
  }

ZLT_AVAILABLE_IN_ALL
ZltPluginLoader *zlt_plugin_loader_new (const char *directory);
ZLT_AVAILABLE_IN_ALL
const char *zlt_plugin_loader_get_directory (ZltPluginLoader *self);
ZLT_AVAILABLE_IN_ALL
const char *const *zlt_plugin_loader_get_directories (ZltPluginLoader *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_plugin_loader_load_all (ZltPluginLoader *self, GError **error);
ZLT_AVAILABLE_IN_ALL
GHashTable *zlt_plugin_loader_get_skipped (ZltPluginLoader *self);
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_plugin_loader_get_loaded (ZltPluginLoader *self);

/* For plugins (from their entry point) and for hosts with built-in types. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_plugin_loader_add_transport_type (ZltPluginLoader *self, GType type, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_plugin_loader_add_validator_type (ZltPluginLoader *self, GType type, GError **error);

ZLT_AVAILABLE_IN_ALL
GType zlt_plugin_loader_get_transport_type (ZltPluginLoader *self, const char *name);
ZLT_AVAILABLE_IN_ALL
GType zlt_plugin_loader_get_validator_type (ZltPluginLoader *self, const char *name);
ZLT_AVAILABLE_IN_ALL
GStrv zlt_plugin_loader_list_transports (ZltPluginLoader *self);
ZLT_AVAILABLE_IN_ALL
GStrv zlt_plugin_loader_list_validators (ZltPluginLoader *self);

/* The transports both ends of a tunnel need: "websocket" (control channel and data
 * connections), "tcp", and "udp" when that plugin is there (*udp is NULL otherwise). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_plugin_loader_new_tunnel_transports (ZltPluginLoader *self,
                                                  ZltControlTransport **control, ZltTransport **tcp,
                                                  ZltTransport **udp, GError **error);
ZLT_AVAILABLE_IN_ALL
ZltTransport *zlt_plugin_loader_new_transport (ZltPluginLoader *self, const char *name,
                                               GError **error);
ZLT_AVAILABLE_IN_ALL
ZltValidator *zlt_plugin_loader_new_validator (ZltPluginLoader *self, const char *name,
                                               GKeyFile *config, const char *group, GError **error);
/* @config_directory: where relative paths in @group start (nullable: the working
 * directory) */
ZLT_AVAILABLE_IN_ALL
ZltValidator *zlt_plugin_loader_new_validator_full (ZltPluginLoader *self, const char *name,
                                                    GKeyFile *config, const char *group,
                                                    const char *config_directory, GError **error);

G_END_DECLS
