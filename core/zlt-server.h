/* zlt-server.h: the public end of the tunnel */
#pragma once

#include <gio/gio.h>

#include "zlt-message.h"
#include "zlt-version.h"
#include "zlt-plugin-loader.h"
#include "zlt-registry.h"
#include "zlt-server-config.h"
#include "zlt-control-transport.h"
#include "zlt-validator.h"

G_BEGIN_DECLS

#define ZLT_TYPE_SERVER (zlt_server_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltServer, zlt_server, ZLT, SERVER, GObject)

/* Builds a server from its config, taking the validator and transports from @loader. */
ZLT_AVAILABLE_IN_ALL
ZltServer *zlt_server_new (ZltServerConfig *config, ZltPluginLoader *loader, GError **error);
/* The same with every part given (tests, embedders). */
ZLT_AVAILABLE_IN_ALL
ZltServer *zlt_server_new_full (ZltServerConfig *config, ZltValidator *validator,
                                ZltControlTransport *control, ZltTransport *tcp, ZltTransport *udp);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_server_start (ZltServer *self, GError **error);
/* Disconnects every agent (Disconnect "server shutting down") and closes every port. */
ZLT_AVAILABLE_IN_ALL
void zlt_server_stop (ZltServer *self);

/* The control port actually bound (useful when the config asked for port 0). */
ZLT_AVAILABLE_IN_ALL
guint16 zlt_server_get_port (ZltServer *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_server_get_http_port (ZltServer *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_server_get_tls_port (ZltServer *self);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_server_lookup_hostname (ZltServer *self, const char *hostname);
/* Whether one replica of a service takes new connections now (::replica-changed). */
ZLT_AVAILABLE_IN_ALL
ZltReplicaState zlt_server_get_replica_state (ZltServer *self, ZltService *service);
ZLT_AVAILABLE_IN_ALL
ZltServerConfig *zlt_server_get_config (ZltServer *self);
ZLT_AVAILABLE_IN_ALL
ZltRegistry *zlt_server_get_registry (ZltServer *self);
ZLT_AVAILABLE_IN_ALL
ZltValidator *zlt_server_get_validator (ZltServer *self);
/* Whether services of @protocol can be registered (UDP needs the udp plugin). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_server_supports_protocol (ZltServer *self, ZltProtocol protocol);
/* Control connections open right now, authenticated or not. */
ZLT_AVAILABLE_IN_ALL
guint zlt_server_get_n_peers (ZltServer *self);
/* Public connections waiting for their data connection. */
ZLT_AVAILABLE_IN_ALL
guint zlt_server_get_n_pending (ZltServer *self);
/* Relayed connections. */
ZLT_AVAILABLE_IN_ALL
guint zlt_server_get_n_relays (ZltServer *self);
/* Relayed connections that ended with a failure since the server was made. */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_server_get_n_relay_errors (ZltServer *self);
/* Logins refused with a reason code since the server was made. */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_server_get_auth_failures (ZltServer *self, ZltReasonCode code);
/* Standby data connections parked now, of every tunnel (PROTOCOL-v2.md §8). */
ZLT_AVAILABLE_IN_ALL
guint zlt_server_get_n_standby (ZltServer *self);
/* Since start: Connect frames sent for public connections, and public connections
 * joined to a standby connection instead. */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_server_get_n_connects_sent (ZltServer *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_server_get_n_standby_joins (ZltServer *self);
/* Standby connections closed unused at the end of their lifetime, so far. */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_server_get_n_standby_retired (ZltServer *self);
/* How long a standby connection stays parked at most (ZLT_STANDBY_LIFETIME_MS by
 * default), for tests. Applies at once, to the connections parked now too. */
ZLT_AVAILABLE_IN_ALL
void zlt_server_set_standby_lifetime (ZltServer *self, guint lifetime_ms);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_server_disconnect_tunnel (ZltServer *self, const ZltUuid *tunnel_id,
                                       const char *reason, GError **error);

G_END_DECLS
