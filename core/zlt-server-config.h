/* zlt-server-config.h: the [server] part of the config */
#pragma once

#include <glib-object.h>

#include "zlt-version.h"
#include "zlt-quota.h"
#include "zlt-types.h"

G_BEGIN_DECLS

#define ZLT_SERVER_CONFIG_GROUP "server"
/* [validator:NAME]: the settings of the validator plugin NAME */
#define ZLT_SERVER_CONFIG_VALIDATOR_PREFIX "validator:"
#define ZLT_SERVER_CONFIG_DEFAULT_PORT 3679
/* The most standby data connections a server parks for one tunnel, whatever its
 * config says (PROTOCOL-v2.md §8: the replay window covers this many at once). */
#define ZLT_SERVER_MAX_STANDBY 1024

/**
 * ZltServerLimits:
 * @max_preauth: connections not yet authenticated, in total
 * @max_preauth_per_source: the same per source address (IPv4, or IPv6 /64)
 * @max_peer_queue: bytes queued toward one peer that does not read; above it the peer
 *   is dropped
 * @max_frame_rate: frames per second a peer may send besides the answers it owes
 *   (ConnectAck/ConnectFail), with bursts of ten seconds' worth
 * @token_max: each token's (principal's) share, per #ZltQuotaKind; 0 = no limit
 * @max_connections_per_service: live connections of one service; 0 = no limit
 * @idle_timeout: seconds a relayed connection may move no byte; 0 = no limit
 * @port_hold: seconds a released public port is kept for its previous owner
 * @name_hold: seconds a service name stays its owner's after its last service went
 * @max_access_ttl: longest access session, in seconds; 0 = as long as the client asks
 * @standby_connections: standby data connections parked for one tunnel, at most
 *   (PROTOCOL-v2.md §8); 0 = none
 *
 * The server's limits on what peers may hold and do, all from [server].
 */
typedef struct
{
  guint max_preauth;
  guint max_preauth_per_source;
  guint max_peer_queue;
  guint max_frame_rate;
  guint token_max[ZLT_QUOTA_N_KINDS];
  guint max_connections_per_service;
  guint idle_timeout;
  guint port_hold;
  guint name_hold;
  guint max_access_ttl;
  guint standby_connections;
} ZltServerLimits;

#define ZLT_TYPE_SERVER_CONFIG (zlt_server_config_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltServerConfig, zlt_server_config, ZLT, SERVER_CONFIG, GObject)

ZLT_AVAILABLE_IN_ALL
ZltServerConfig *zlt_server_config_new_default (void);
ZLT_AVAILABLE_IN_ALL
ZltServerConfig *zlt_server_config_new_from_keyfile (GKeyFile *keyfile, GError **error);
ZLT_AVAILABLE_IN_ALL
ZltServerConfig *zlt_server_config_new_from_keyfile_full (GKeyFile *keyfile, const char *base_dir,
                                                          GError **error);
ZLT_AVAILABLE_IN_ALL
ZltServerConfig *zlt_server_config_new_from_file (const char *path, GError **error);
ZLT_AVAILABLE_IN_ALL
GKeyFile *zlt_server_config_to_keyfile (ZltServerConfig *self);

ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_listen_address (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_server_config_get_listen_port (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_public_bind_address (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_http_listen (ZltServerConfig *self, guint16 *port);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_tls_listen (ZltServerConfig *self, guint16 *port);
ZLT_AVAILABLE_IN_ALL
const char *const *zlt_server_config_get_hostname_domains (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_tls_certificate (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_tls_key (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_server_config_get_use_tls (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
void zlt_server_config_get_port_range (ZltServerConfig *self, guint16 *min, guint16 *max);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_max_tunnels (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_max_services_per_tunnel (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_heartbeat_interval (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_heartbeat_timeout (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
ZltReplicaBalance zlt_server_config_get_replica_balance (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_auth_timeout (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_connect_timeout (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_resume_grace (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
guint zlt_server_config_get_udp_idle_timeout (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_server_config_get_allow_legacy_auth (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_validator (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_server_config_get_insecure (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_validator_group (ZltServerConfig *self);
/* nullable: the config file's directory, where relative paths start (NULL: the working
 * directory) */
ZLT_AVAILABLE_IN_ALL
const char *zlt_server_config_get_config_directory (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
GKeyFile *zlt_server_config_get_keyfile (ZltServerConfig *self);
ZLT_AVAILABLE_IN_ALL
const ZltServerLimits *zlt_server_config_get_limits (ZltServerConfig *self);

G_END_DECLS
