/* zlt-udp-listener.h: a public UDP port, one flow per peer address */
#pragma once

#include "zlt-udp-flow-stream.h"

G_BEGIN_DECLS

#define ZLT_TYPE_UDP_LISTENER (zlt_udp_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltUdpListener, zlt_udp_listener, ZLT, UDP_LISTENER, ZltListener)

ZltListener *zlt_udp_listener_new (const char *bind_address, guint16 port, GError **error);

/* For flows: the flow ended, datagrams from its peer start a new one. */
void zlt_udp_listener_forget (ZltUdpListener *self, ZltUdpFlowStream *flow);
/* For flows: queued bytes count against the budget of all the listener's flows. */
gboolean zlt_udp_listener_reserve (ZltUdpListener *self, gsize len);
void zlt_udp_listener_release (ZltUdpListener *self, gsize len);

G_END_DECLS
