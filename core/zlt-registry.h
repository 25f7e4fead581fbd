/* zlt-registry.h: the server's state: tunnels, services, port pools, leases */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-port-pool.h"
#include "zlt-service.h"
#include "zlt-tunnel.h"
#include "zlt-types.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_TYPE_REGISTRY (zlt_registry_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltRegistry, zlt_registry, ZLT, REGISTRY, GObject)

ZLT_AVAILABLE_IN_ALL
ZltRegistry *zlt_registry_new (ZltPortPool *tcp_pool, ZltPortPool *udp_pool);
ZLT_AVAILABLE_IN_ALL
ZltRegistry *zlt_registry_new_from_ranges (const char *ranges, GError **error);

ZLT_AVAILABLE_IN_ALL
ZltPortPool *zlt_registry_get_port_pool (ZltRegistry *self, ZltProtocol protocol);
ZLT_AVAILABLE_IN_ALL
guint zlt_registry_get_max_tunnels (ZltRegistry *self);
ZLT_AVAILABLE_IN_ALL
void zlt_registry_set_max_tunnels (ZltRegistry *self, guint max_tunnels);
ZLT_AVAILABLE_IN_ALL
guint zlt_registry_get_max_services_per_tunnel (ZltRegistry *self);
ZLT_AVAILABLE_IN_ALL
void zlt_registry_set_max_services_per_tunnel (ZltRegistry *self, guint max_services);
ZLT_AVAILABLE_IN_ALL
guint zlt_registry_get_n_tunnels (ZltRegistry *self);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_registry_add_tunnel (ZltRegistry *self, ZltTunnel *tunnel, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_registry_remove_tunnel (ZltRegistry *self, ZltTunnel *tunnel);
ZLT_AVAILABLE_IN_ALL
ZltTunnel *zlt_registry_lookup_tunnel (ZltRegistry *self, const ZltUuid *id);
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_registry_get_tunnels (ZltRegistry *self);

ZLT_AVAILABLE_IN_ALL
ZltService *zlt_registry_register_service (ZltRegistry *self, ZltTunnel *tunnel, const char *name,
                                           ZltProtocol protocol, guint16 local_port,
                                           guint16 requested_port, ZltExpose expose,
                                           GError **error);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_registry_register_replica (ZltRegistry *self, ZltTunnel *tunnel, const char *name,
                                           ZltProtocol protocol, guint16 local_port,
                                           guint16 requested_port, ZltExpose expose,
                                           GError **error);
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_registry_get_replicas (ZltRegistry *self, ZltService *service);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_registry_unregister_service (ZltRegistry *self, ZltService *service, GError **error);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_registry_reassign_port (ZltRegistry *self, ZltService *service, GError **error);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_registry_lookup_service (ZltRegistry *self, const ZltUuid *id);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_registry_lookup_service_by_name (ZltRegistry *self, const char *name,
                                                 GError **error);
ZLT_AVAILABLE_IN_ALL
ZltService *zlt_registry_lookup_service_by_port (ZltRegistry *self, ZltProtocol protocol,
                                                 guint16 port);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_registry_hold_tunnel (ZltRegistry *self, ZltTunnel *tunnel, guint grace_ms);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_registry_is_held (ZltRegistry *self, ZltTunnel *tunnel);
ZLT_AVAILABLE_IN_ALL
ZltTunnel *zlt_registry_resume_tunnel (ZltRegistry *self, const ZltUuid *id, GError **error);
ZLT_AVAILABLE_IN_ALL
guint zlt_registry_drop_unclaimed (ZltRegistry *self, ZltTunnel *tunnel);
ZLT_AVAILABLE_IN_ALL
void zlt_registry_set_hold_times (ZltRegistry *self, guint name_hold_ms, guint port_hold_ms);
ZLT_AVAILABLE_IN_ALL
const char *zlt_registry_get_name_owner (ZltRegistry *self, const char *name);

G_END_DECLS
