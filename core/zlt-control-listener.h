/* zlt-control-listener.h: a listener that accepts control channels and data connections */
#pragma once

#include "zlt-version.h"
#include "zlt-channel.h"
#include "zlt-listener.h"
#include "zlt-types.h"

G_BEGIN_DECLS

#define ZLT_TYPE_CONTROL_LISTENER (zlt_control_listener_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ZltControlListener, zlt_control_listener, ZLT, CONTROL_LISTENER,
                          ZltListener)

struct _ZltControlListenerClass
{
  ZltListenerClass parent_class;

  gpointer padding[8];
};

/* Defaults of the caps on connections that have not upgraded yet (see
 * zlt-control-listener.c for the reasoning). */
#define ZLT_CONTROL_LISTENER_MAX_PENDING 4096
#define ZLT_CONTROL_LISTENER_MAX_PENDING_PER_SOURCE 256

ZLT_AVAILABLE_IN_ALL
guint zlt_control_listener_get_max_pending (ZltControlListener *self);
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_set_max_pending (ZltControlListener *self, guint max_pending);
ZLT_AVAILABLE_IN_ALL
guint zlt_control_listener_get_max_pending_per_source (ZltControlListener *self);
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_set_max_pending_per_source (ZltControlListener *self, guint max);
/* control upgrades ask for the raw token (X-Zlt-Auth: bearer, PROTOCOL-v2.md §2a) */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_control_listener_get_bearer_auth (ZltControlListener *self);
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_set_bearer_auth (ZltControlListener *self, gboolean bearer_auth);
/* connections accepted and not yet upgraded (nor closed) */
ZLT_AVAILABLE_IN_ALL
guint zlt_control_listener_get_n_pending (ZltControlListener *self);
/* connections closed at once because a cap was reached */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_control_listener_get_n_refused (ZltControlListener *self);

/* For implementations. */
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_emit_channel (ZltControlListener *self, ZltChannel *channel);
/* Asks the server whether to accept a data connection. @service names the service of
 * an access stream (PROTOCOL-v2.md §6), NULL on an agent's data connection; @probe asks
 * only whether an access stream would be accepted (nothing is set up). */
ZLT_AVAILABLE_IN_ALL
ZltDataVerdict zlt_control_listener_emit_data_request (ZltControlListener *self,
                                                       const char *tunnel_id,
                                                       const char *connection_id, const char *mac,
                                                       const char *service, gboolean probe);
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_emit_data_stream (ZltControlListener *self, const char *connection_id,
                                            GIOStream *stream);
/* Asks the server whether to park a standby data connection (PROTOCOL-v2.md §8) of
 * tunnel @tunnel_id with sequence number @standby_id, as the request gave them. */
ZLT_AVAILABLE_IN_ALL
ZltDataVerdict zlt_control_listener_emit_standby_request (ZltControlListener *self,
                                                          const char *tunnel_id,
                                                          const char *standby_id, const char *mac);
/* An accepted standby data connection, its 101 already sent and nothing read from
 * it since the request. */
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_emit_standby_stream (ZltControlListener *self, const char *tunnel_id,
                                               const char *standby_id, GIOStream *stream);

/* The share of the pending connections that one source holds: an IPv4 address, or
 * an IPv6 /64. */
typedef struct _ZltPendingSource ZltPendingSource;
/* Counts a new connection from @remote against the caps. Returns its source, to hand
 * to zlt_control_listener_release() once the connection upgraded or closed, or NULL
 * when a cap is reached: the connection is counted as refused; close it at once. */
ZLT_AVAILABLE_IN_ALL
ZltPendingSource *zlt_control_listener_admit (ZltControlListener *self, GSocketAddress *remote);
ZLT_AVAILABLE_IN_ALL
void zlt_control_listener_release (ZltControlListener *self, ZltPendingSource *source);

G_END_DECLS
