/* zlt-service.h: one exposed TCP or UDP service */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-types.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

/* Byte counters change on every relayed chunk; their notify signals are coalesced and
 * emitted at most once per this many milliseconds (or at once by a flush). */
#define ZLT_NOTIFY_INTERVAL_MS 250

/* declared by zlt-tunnel.h; repeated here so both headers stand alone */
typedef struct _ZltTunnel ZltTunnel;

#define ZLT_TYPE_SERVICE (zlt_service_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltService, zlt_service, ZLT, SERVICE, GObject)

ZLT_AVAILABLE_IN_ALL
gboolean zlt_service_name_is_valid (const char *name);

ZLT_AVAILABLE_IN_ALL
ZltService *zlt_service_new (const char *name, ZltProtocol protocol, guint16 local_port,
                             ZltExpose expose);

ZLT_AVAILABLE_IN_ALL
const ZltUuid *zlt_service_get_id (ZltService *self);
ZLT_AVAILABLE_IN_ALL
char *zlt_service_dup_id_string (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_id (ZltService *self, const ZltUuid *id);
ZLT_AVAILABLE_IN_ALL
const char *zlt_service_get_name (ZltService *self);
ZLT_AVAILABLE_IN_ALL
ZltProtocol zlt_service_get_protocol (ZltService *self);
ZLT_AVAILABLE_IN_ALL
ZltExpose zlt_service_get_expose (ZltService *self);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_service_get_local_port (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_local_port (ZltService *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_service_get_requested_port (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_requested_port (ZltService *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
guint16 zlt_service_get_assigned_port (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_assigned_port (ZltService *self, guint16 port);
ZLT_AVAILABLE_IN_ALL
ZltServiceState zlt_service_get_state (ZltService *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_service_get_last_error (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_state (ZltService *self, ZltServiceState state, const char *error);
ZLT_AVAILABLE_IN_ALL
const char *zlt_service_get_hostname (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_hostname (ZltService *self, const char *hostname);
ZLT_AVAILABLE_IN_ALL
ZltTunnel *zlt_service_get_tunnel (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_set_tunnel (ZltService *self, ZltTunnel *tunnel);

ZLT_AVAILABLE_IN_ALL
guint zlt_service_get_active_connections (ZltService *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_service_get_total_connections (ZltService *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_service_get_bytes_in (ZltService *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_service_get_bytes_out (ZltService *self);

ZLT_AVAILABLE_IN_ALL
void zlt_service_connection_opened (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_connection_closed (ZltService *self);
ZLT_AVAILABLE_IN_ALL
void zlt_service_add_bytes (ZltService *self, guint64 bytes_in, guint64 bytes_out);
ZLT_AVAILABLE_IN_ALL
void zlt_service_flush_notify (ZltService *self);

G_END_DECLS
