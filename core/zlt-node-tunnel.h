/* zlt-node-tunnel.h: one node-to-node tunnel definition and its live status */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-agent.h"
#include "zlt-plugin-loader.h"
#include "zlt-tunnel.h"
#include "zlt-types.h"
#include "zlt-validator.h"

G_BEGIN_DECLS

/* [node:NAME] groups of the daemon's config */
#define ZLT_NODE_CONFIG_PREFIX "node:"
/* the service the outbound side exposes, and the token name the inbound side registers */
#define ZLT_NODE_SERVICE_PREFIX "node-"
#define ZLT_NODE_TOKEN_PREFIX "node:"
/* NAME is a service name once prefixed with "node-" */
#define ZLT_NODE_NAME_MAX (ZLT_SERVICE_NAME_MAX - 5)

/**
 * ZltNodeDirection:
 * @ZLT_NODE_DIRECTION_NONE: this node is neither end (the definition is only shown)
 * @ZLT_NODE_DIRECTION_OUTBOUND: this node is `from`: it runs an agent for the tunnel
 * @ZLT_NODE_DIRECTION_INBOUND: this node is `to`: its server accepts the tunnel's token
 */
typedef enum
{
  ZLT_NODE_DIRECTION_NONE,
  ZLT_NODE_DIRECTION_OUTBOUND,
  ZLT_NODE_DIRECTION_INBOUND,
} ZltNodeDirection;

#define ZLT_TYPE_NODE_TUNNEL (zlt_node_tunnel_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltNodeTunnel, zlt_node_tunnel, ZLT, NODE_TUNNEL, GObject)

/* Reads [node:NAME] (@group) of @keyfile; relative paths are taken from @base_dir
 * (nullable). Fails with %ZLT_ERROR_INVALID_CONFIG naming the group and key. */
ZLT_AVAILABLE_IN_ALL
ZltNodeTunnel *zlt_node_tunnel_new_from_keyfile (GKeyFile *keyfile, const char *group,
                                                 const char *base_dir, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_node_name_is_valid (const char *name);

ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_name (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_from (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_to (ZltNodeTunnel *self);
/* nullable: only the outbound side needs it */
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_server (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_token_file (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_node_tunnel_get_local_port (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_node_tunnel_get_remote_port (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
ZltProtocol zlt_node_tunnel_get_protocol (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
ZltExpose zlt_node_tunnel_get_exposure (ZltNodeTunnel *self);
/* "node-NAME" */
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_service_name (ZltNodeTunnel *self);
/* Whether two tunnels have the same definition (every key, not the status). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_node_tunnel_equal (ZltNodeTunnel *self, ZltNodeTunnel *other);

ZLT_AVAILABLE_IN_ALL
ZltNodeDirection zlt_node_tunnel_get_direction (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
ZltTunnelState zlt_node_tunnel_get_state (ZltNodeTunnel *self);
/* nullable */
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_tunnel_get_last_error (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_node_tunnel_get_bytes_in (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_node_tunnel_get_bytes_out (ZltNodeTunnel *self);
/* round trip of the last heartbeat; -1 before the first (and on the inbound side) */
ZLT_AVAILABLE_IN_ALL
gint64 zlt_node_tunnel_get_latency_us (ZltNodeTunnel *self);
/* nullable: the outbound side's agent */
ZLT_AVAILABLE_IN_ALL
ZltAgent *zlt_node_tunnel_get_agent (ZltNodeTunnel *self);

/* For ZltNodeManager. activate decides the direction for @node_name: outbound builds
 * the agent (transports from @loader), inbound registers the token with @validator
 * (which must then be non-NULL). deactivate stops the agent or forgets the token. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_node_tunnel_activate (ZltNodeTunnel *self, const char *node_name,
                                   ZltPluginLoader *loader, ZltValidator *validator,
                                   GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_node_tunnel_deactivate (ZltNodeTunnel *self);
/* Inbound side: re-reads the token file and registers its hash again. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_node_tunnel_refresh_token (ZltNodeTunnel *self, GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_node_tunnel_start (ZltNodeTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_node_tunnel_stop (ZltNodeTunnel *self);
/* Inbound side: the server's tunnel authenticated with our token (nullable: none). */
ZLT_AVAILABLE_IN_ALL
void zlt_node_tunnel_follow_tunnel (ZltNodeTunnel *self, ZltTunnel *tunnel);
ZLT_AVAILABLE_IN_ALL
ZltTunnel *zlt_node_tunnel_get_followed_tunnel (ZltNodeTunnel *self);

G_END_DECLS
