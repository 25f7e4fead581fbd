/* zlt-server-config.h: the [server] part of the config */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define ZLT_SERVER_CONFIG_GROUP "server"
#define ZLT_SERVER_CONFIG_DEFAULT_PORT 3679

#define ZLT_TYPE_SERVER_CONFIG (zlt_server_config_get_type ())
G_DECLARE_FINAL_TYPE (ZltServerConfig, zlt_server_config, ZLT, SERVER_CONFIG, GObject)

ZltServerConfig *zlt_server_config_new_default (void);
ZltServerConfig *zlt_server_config_new_from_keyfile (GKeyFile *keyfile, GError **error);
ZltServerConfig *zlt_server_config_new_from_file (const char *path, GError **error);
GKeyFile *zlt_server_config_to_keyfile (ZltServerConfig *self);

const char *zlt_server_config_get_listen_address (ZltServerConfig *self);
guint16 zlt_server_config_get_listen_port (ZltServerConfig *self);
const char *zlt_server_config_get_public_bind_address (ZltServerConfig *self);
const char *zlt_server_config_get_tls_certificate (ZltServerConfig *self);
const char *zlt_server_config_get_tls_key (ZltServerConfig *self);
gboolean zlt_server_config_get_use_tls (ZltServerConfig *self);
void zlt_server_config_get_port_range (ZltServerConfig *self, guint16 *min, guint16 *max);
guint zlt_server_config_get_max_tunnels (ZltServerConfig *self);
guint zlt_server_config_get_max_services_per_tunnel (ZltServerConfig *self);
guint zlt_server_config_get_heartbeat_interval (ZltServerConfig *self);
guint zlt_server_config_get_heartbeat_timeout (ZltServerConfig *self);
guint zlt_server_config_get_auth_timeout (ZltServerConfig *self);
guint zlt_server_config_get_connect_timeout (ZltServerConfig *self);
guint zlt_server_config_get_resume_grace (ZltServerConfig *self);
guint zlt_server_config_get_udp_idle_timeout (ZltServerConfig *self);
gboolean zlt_server_config_get_allow_legacy_auth (ZltServerConfig *self);
const char *zlt_server_config_get_validator (ZltServerConfig *self);
gboolean zlt_server_config_get_insecure (ZltServerConfig *self);
const char *zlt_server_config_get_validator_group (ZltServerConfig *self);
GKeyFile *zlt_server_config_get_keyfile (ZltServerConfig *self);

G_END_DECLS
