/* zlt-node-manager.h: the node-to-node tunnels of one node */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-node-tunnel.h"
#include "zlt-plugin-loader.h"
#include "zlt-server.h"

G_BEGIN_DECLS

#define ZLT_TYPE_NODE_MANAGER (zlt_node_manager_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltNodeManager, zlt_node_manager, ZLT, NODE_MANAGER, GObject)

/* @node_name: this node's name (definitions whose `from` it is run an agent, those whose
 * `to` it is need @server, nullable, whose validator accepts their tokens and whose
 * registry shows their inbound status); transports from @loader. */
ZLT_AVAILABLE_IN_ALL
ZltNodeManager *zlt_node_manager_new (const char *node_name, ZltPluginLoader *loader,
                                      ZltServer *server);
ZLT_AVAILABLE_IN_ALL
const char *zlt_node_manager_get_node_name (ZltNodeManager *self);

/* Activates @tunnel for this node (see zlt_node_tunnel_activate()) and keeps it;
 * %ZLT_ERROR_DUPLICATE_NAME when the name is taken. Its agent starts at once when the
 * manager runs. Emits node-added. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_node_manager_add (ZltNodeManager *self, ZltNodeTunnel *tunnel, GError **error);
/* Stops and forgets the tunnel (its token too); %ZLT_ERROR_NOT_FOUND when unknown.
 * Emits node-removed. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_node_manager_remove (ZltNodeManager *self, const char *name, GError **error);
/* (nullable) (transfer none) */
ZLT_AVAILABLE_IN_ALL
ZltNodeTunnel *zlt_node_manager_lookup (ZltNodeManager *self, const char *name);
/* (transfer container): the tunnels, in the order they were added */
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_node_manager_get_tunnels (ZltNodeManager *self);
/* Inbound tunnels re-read their token files (a reload). */
ZLT_AVAILABLE_IN_ALL
void zlt_node_manager_refresh_tokens (ZltNodeManager *self);

ZLT_AVAILABLE_IN_ALL
void zlt_node_manager_start (ZltNodeManager *self);
ZLT_AVAILABLE_IN_ALL
void zlt_node_manager_stop (ZltNodeManager *self);
/* connections the outbound agents still relay */
ZLT_AVAILABLE_IN_ALL
guint zlt_node_manager_get_n_relays (ZltNodeManager *self);

G_END_DECLS
