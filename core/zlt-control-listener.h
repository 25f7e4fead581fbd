/* zlt-control-listener.h: a listener that accepts control channels and data connections */
#pragma once

#include "zlt-channel.h"
#include "zlt-listener.h"

G_BEGIN_DECLS

#define ZLT_TYPE_CONTROL_LISTENER (zlt_control_listener_get_type ())
G_DECLARE_DERIVABLE_TYPE (ZltControlListener, zlt_control_listener, ZLT, CONTROL_LISTENER,
                          ZltListener)

struct _ZltControlListenerClass
{
  ZltListenerClass parent_class;

  gpointer padding[8];
};

/* For implementations. */
void zlt_control_listener_emit_channel (ZltControlListener *self, ZltChannel *channel);
/* Asks the server whether to accept a data connection: returns an HTTP status,
 * 101 to accept. @service is the X-Zlt-Service header of an access stream
 * (PROTOCOL-v2.md §6), NULL on an agent's data connection. */
guint zlt_control_listener_emit_data_request (ZltControlListener *self, const char *tunnel_id,
                                              const char *connection_id, const char *mac,
                                              const char *service);
void zlt_control_listener_emit_data_stream (ZltControlListener *self, const char *connection_id,
                                            GIOStream *stream);

G_END_DECLS
