/* zlt-tunnel.h: one agent's control session, seen from the server or the agent */
#pragma once

#include <gio/gio.h>

#include "zlt-service.h"
#include "zlt-types.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_TYPE_TUNNEL (zlt_tunnel_get_type ())
G_DECLARE_FINAL_TYPE (ZltTunnel, zlt_tunnel, ZLT, TUNNEL, GObject)

ZltTunnel *zlt_tunnel_new (ZltRole role);

const ZltUuid *zlt_tunnel_get_id (ZltTunnel *self);
char *zlt_tunnel_dup_id_string (ZltTunnel *self);
void zlt_tunnel_set_id (ZltTunnel *self, const ZltUuid *id);
ZltRole zlt_tunnel_get_role (ZltTunnel *self);
ZltTunnelState zlt_tunnel_get_state (ZltTunnel *self);
void zlt_tunnel_set_state (ZltTunnel *self, ZltTunnelState state);
const char *zlt_tunnel_get_peer_address (ZltTunnel *self);
void zlt_tunnel_set_peer_address (ZltTunnel *self, const char *peer_address);
const char *zlt_tunnel_get_client_id (ZltTunnel *self);
void zlt_tunnel_set_client_id (ZltTunnel *self, const char *client_id);
const char *zlt_tunnel_get_token_name (ZltTunnel *self);
void zlt_tunnel_set_token_name (ZltTunnel *self, const char *token_name);
gint64 zlt_tunnel_get_created (ZltTunnel *self);
gint64 zlt_tunnel_get_last_activity (ZltTunnel *self);
guint64 zlt_tunnel_get_bytes_in (ZltTunnel *self);
guint64 zlt_tunnel_get_bytes_out (ZltTunnel *self);

void zlt_tunnel_touch (ZltTunnel *self);
void zlt_tunnel_restart (ZltTunnel *self);
void zlt_tunnel_add_bytes (ZltTunnel *self, guint64 bytes_in, guint64 bytes_out);
void zlt_tunnel_flush_notify (ZltTunnel *self);

gboolean zlt_tunnel_add_service (ZltTunnel *self, ZltService *service, GError **error);
gboolean zlt_tunnel_remove_service (ZltTunnel *self, ZltService *service);
ZltService *zlt_tunnel_lookup_service (ZltTunnel *self, const char *name);
ZltService *zlt_tunnel_lookup_service_by_id (ZltTunnel *self, const ZltUuid *id);
guint zlt_tunnel_get_n_services (ZltTunnel *self);
GPtrArray *zlt_tunnel_get_services (ZltTunnel *self);

G_END_DECLS
