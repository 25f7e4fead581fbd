/* zlt-tunnel.h: one agent's control session, seen from the server or the agent */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-service.h"
#include "zlt-types.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_TYPE_TUNNEL (zlt_tunnel_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltTunnel, zlt_tunnel, ZLT, TUNNEL, GObject)

ZLT_AVAILABLE_IN_ALL
ZltTunnel *zlt_tunnel_new (ZltRole role);

ZLT_AVAILABLE_IN_ALL
const ZltUuid *zlt_tunnel_get_id (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
char *zlt_tunnel_dup_id_string (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_set_id (ZltTunnel *self, const ZltUuid *id);
ZLT_AVAILABLE_IN_ALL
ZltRole zlt_tunnel_get_role (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
ZltTunnelState zlt_tunnel_get_state (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_set_state (ZltTunnel *self, ZltTunnelState state);
ZLT_AVAILABLE_IN_ALL
const char *zlt_tunnel_get_peer_address (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_set_peer_address (ZltTunnel *self, const char *peer_address);
ZLT_AVAILABLE_IN_ALL
const char *zlt_tunnel_get_client_id (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_set_client_id (ZltTunnel *self, const char *client_id);
ZLT_AVAILABLE_IN_ALL
const char *zlt_tunnel_get_token_name (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_set_token_name (ZltTunnel *self, const char *token_name);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_set_rate_limits (ZltTunnel *self, guint64 rate_in, guint64 rate_out);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_tunnel_get_rate_limit_in (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_tunnel_get_rate_limit_out (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_tunnel_get_created (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_tunnel_get_last_activity (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_tunnel_get_bytes_in (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_tunnel_get_bytes_out (ZltTunnel *self);

ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_touch (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_restart (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_add_bytes (ZltTunnel *self, guint64 bytes_in, guint64 bytes_out);
ZLT_AVAILABLE_IN_ALL
void zlt_tunnel_flush_notify (ZltTunnel *self);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_tunnel_add_service (ZltTunnel *self, ZltService *service, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_tunnel_remove_service (ZltTunnel *self, ZltService *service);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_tunnel_lookup_service (ZltTunnel *self, const char *name);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_tunnel_lookup_service_by_id (ZltTunnel *self, const ZltUuid *id);
ZLT_AVAILABLE_IN_ALL
guint zlt_tunnel_get_n_services (ZltTunnel *self);
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_tunnel_get_services (ZltTunnel *self);

G_END_DECLS
