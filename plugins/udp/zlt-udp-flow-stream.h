/* zlt-udp-flow-stream.h: one UDP flow as a byte stream of length-framed datagrams */
#pragma once

#include "zlt-udp-util.h"

G_BEGIN_DECLS

struct _ZltUdpListener;

#define ZLT_TYPE_UDP_FLOW_STREAM (zlt_udp_flow_stream_get_type ())
G_DECLARE_FINAL_TYPE (ZltUdpFlowStream, zlt_udp_flow_stream, ZLT, UDP_FLOW_STREAM, GIOStream)

ZltUdpFlowStream *zlt_udp_flow_stream_new_connected (GSocket *socket, GSocketAddress *peer);
ZltUdpFlowStream *zlt_udp_flow_stream_new_for_listener (struct _ZltUdpListener *listener,
                                                        GSocket *socket,
                                                        const struct sockaddr *peer,
                                                        socklen_t peer_len, guint idle_timeout_ms);

GSocketAddress *zlt_udp_flow_stream_get_peer (ZltUdpFlowStream *self);
guint zlt_udp_flow_stream_get_idle_timeout (ZltUdpFlowStream *self);
void zlt_udp_flow_stream_set_idle_timeout (ZltUdpFlowStream *self, guint timeout_ms);
gboolean zlt_udp_flow_stream_is_ended (ZltUdpFlowStream *self);

/* For the listener. */
const ZltUdpPeerKey *zlt_udp_flow_stream_get_key (ZltUdpFlowStream *self);
void zlt_udp_flow_stream_deliver (ZltUdpFlowStream *self, const guint8 *data, gsize len,
                                  gint64 now);
void zlt_udp_flow_stream_detach (ZltUdpFlowStream *self);

/* For the flow's own input and output streams. */
gssize zlt_udp_flow_stream_read (ZltUdpFlowStream *self, guint8 *buffer, gsize count,
                                 GError **error);
gboolean zlt_udp_flow_stream_is_readable (ZltUdpFlowStream *self);
gssize zlt_udp_flow_stream_write (ZltUdpFlowStream *self, const guint8 *buffer, gsize count,
                                  GError **error);
void zlt_udp_flow_stream_input_closed (ZltUdpFlowStream *self);
void zlt_udp_flow_stream_output_closed (ZltUdpFlowStream *self);

G_END_DECLS
