/* zlt-client-config.h: the [agent] and [service:<name>] parts of the config */
#pragma once

#include <glib-object.h>

#include "zlt-version.h"
#include "zlt-service.h"
#include "zlt-types.h"

G_BEGIN_DECLS

#define ZLT_CLIENT_CONFIG_GROUP "agent"
#define ZLT_CLIENT_CONFIG_SERVICE_PREFIX "service:"
#define ZLT_CLIENT_CONFIG_DEFAULT_PATH "/tunnel/v1"
/* standby data connections an agent keeps parked at least (PROTOCOL-v2.md §8) */
#define ZLT_CLIENT_CONFIG_DEFAULT_STANDBY 8

/**
 * ZltServiceConfig:
 * @name: 1-64 letters, digits, '-' or '_'
 * @protocol: tcp or udp
 * @local_host: where the agent dials the service
 * @local_port: 1-65535
 * @remote_port: the public port asked for, 0 = any
 * @expose: a public listener, or reachable only by access sessions
 * @max_connections: live connections the server lets through at once, 0 = its own limit
 * @idle_timeout: seconds a connection may move no byte before it is cut, 0 = the
 *   server's
 * @proxy_protocol: the PROXY protocol header the agent writes to the service before
 *   the first byte of each connection (none, v1 or v2; PROTOCOL-v2.md §9)
 * @rate_limit_in: bytes per second toward the service (public clients to the service),
 *   summed over the service's connections and enforced by the agent, 0 = no limit
 * @rate_limit_out: bytes per second from the service to its public clients, 0 = no limit
 * @hostname: a hostname to be reached by on the server's shared HTTP and TLS ports
 *   instead of a port of its own (PROTOCOL-v2.md §10); %NULL = none
 *
 * One service the agent exposes, as configured. A plain boxed struct.
 */
typedef struct
{
  char *name;
  ZltProtocol protocol;
  char *local_host;
  guint16 local_port;
  guint16 remote_port;
  ZltExpose expose;
  guint max_connections;
  guint idle_timeout;
  ZltProxyProtocol proxy_protocol;
  guint64 rate_limit_in;
  guint64 rate_limit_out;
  char *hostname;
} ZltServiceConfig;

#define ZLT_TYPE_SERVICE_CONFIG (zlt_service_config_get_type ())
ZLT_AVAILABLE_IN_ALL
GType zlt_service_config_get_type (void) G_GNUC_CONST;

ZLT_AVAILABLE_IN_ALL
ZltServiceConfig *zlt_service_config_new (const char *name, ZltProtocol protocol,
                                          const char *local_host, guint16 local_port,
                                          guint16 remote_port, ZltExpose expose);
ZLT_AVAILABLE_IN_ALL
ZltServiceConfig *zlt_service_config_copy (const ZltServiceConfig *service);
ZLT_AVAILABLE_IN_ALL
void zlt_service_config_free (ZltServiceConfig *service);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_service_config_validate (const ZltServiceConfig *service, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltServiceConfig, zlt_service_config_free)

#define ZLT_TYPE_CLIENT_CONFIG (zlt_client_config_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltClientConfig, zlt_client_config, ZLT, CLIENT_CONFIG, GObject)

ZLT_AVAILABLE_IN_ALL
ZltClientConfig *zlt_client_config_new_default (void);
ZLT_AVAILABLE_IN_ALL
ZltClientConfig *zlt_client_config_new_from_keyfile (GKeyFile *keyfile, GError **error);
ZLT_AVAILABLE_IN_ALL
ZltClientConfig *zlt_client_config_new_from_keyfile_full (GKeyFile *keyfile, const char *base_dir,
                                                          GError **error);
ZLT_AVAILABLE_IN_ALL
ZltClientConfig *zlt_client_config_new_from_file (const char *path, GError **error);
ZLT_AVAILABLE_IN_ALL
GKeyFile *zlt_client_config_to_keyfile (ZltClientConfig *self);

ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_server_url (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_server_host (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_client_config_get_server_port (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_server_path (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_client_config_get_use_tls (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_token_file (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_token_env (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_tls_ca_file (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_client_config_get_tls_pinned_sha256 (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_client_config_get_tls_insecure (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_client_config_get_legacy_auth (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_client_config_get_retry_forever (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gdouble zlt_client_config_get_fatal_retry (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_client_config_get_heartbeat_interval (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_client_config_get_heartbeat_timeout (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gdouble zlt_client_config_get_backoff_min (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
gdouble zlt_client_config_get_backoff_max (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_client_config_get_standby_connections (ZltClientConfig *self);

ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_client_config_get_services (ZltClientConfig *self);
ZLT_AVAILABLE_IN_ALL
const ZltServiceConfig *zlt_client_config_lookup_service (ZltClientConfig *self, const char *name);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_client_config_add_service (ZltClientConfig *self, const ZltServiceConfig *service,
                                        GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_client_config_remove_service (ZltClientConfig *self, const char *name);

ZLT_AVAILABLE_IN_ALL
char *zlt_client_config_load_token (ZltClientConfig *self, GError **error);

G_END_DECLS
