/* zlt-registry.h: the server's state: tunnels, services, port pools, leases */
#pragma once

#include <gio/gio.h>

#include "zlt-port-pool.h"
#include "zlt-service.h"
#include "zlt-tunnel.h"
#include "zlt-types.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_TYPE_REGISTRY (zlt_registry_get_type ())
G_DECLARE_FINAL_TYPE (ZltRegistry, zlt_registry, ZLT, REGISTRY, GObject)

ZltRegistry *zlt_registry_new (ZltPortPool *tcp_pool, ZltPortPool *udp_pool);
ZltRegistry *zlt_registry_new_from_ranges (const char *ranges, GError **error);

ZltPortPool *zlt_registry_get_port_pool (ZltRegistry *self, ZltProtocol protocol);
guint zlt_registry_get_max_tunnels (ZltRegistry *self);
void zlt_registry_set_max_tunnels (ZltRegistry *self, guint max_tunnels);
guint zlt_registry_get_max_services_per_tunnel (ZltRegistry *self);
void zlt_registry_set_max_services_per_tunnel (ZltRegistry *self, guint max_services);
guint zlt_registry_get_n_tunnels (ZltRegistry *self);

gboolean zlt_registry_add_tunnel (ZltRegistry *self, ZltTunnel *tunnel, GError **error);
gboolean zlt_registry_remove_tunnel (ZltRegistry *self, ZltTunnel *tunnel);
ZltTunnel *zlt_registry_lookup_tunnel (ZltRegistry *self, const ZltUuid *id);
GPtrArray *zlt_registry_get_tunnels (ZltRegistry *self);

ZltService *zlt_registry_register_service (ZltRegistry *self, ZltTunnel *tunnel, const char *name,
                                           ZltProtocol protocol, guint16 local_port,
                                           guint16 requested_port, ZltExpose expose,
                                           GError **error);
gboolean zlt_registry_unregister_service (ZltRegistry *self, ZltService *service, GError **error);
guint16 zlt_registry_reassign_port (ZltRegistry *self, ZltService *service, GError **error);
ZltService *zlt_registry_lookup_service (ZltRegistry *self, const ZltUuid *id);
ZltService *zlt_registry_lookup_service_by_name (ZltRegistry *self, const char *name,
                                                 GError **error);
ZltService *zlt_registry_lookup_service_by_port (ZltRegistry *self, ZltProtocol protocol,
                                                 guint16 port);

gboolean zlt_registry_hold_tunnel (ZltRegistry *self, ZltTunnel *tunnel, guint grace_ms);
gboolean zlt_registry_is_held (ZltRegistry *self, ZltTunnel *tunnel);
ZltTunnel *zlt_registry_resume_tunnel (ZltRegistry *self, const ZltUuid *id, GError **error);
guint zlt_registry_drop_unclaimed (ZltRegistry *self, ZltTunnel *tunnel);
void zlt_registry_set_hold_times (ZltRegistry *self, guint name_hold_ms, guint port_hold_ms);
const char *zlt_registry_get_name_owner (ZltRegistry *self, const char *name);

G_END_DECLS
