/* zlt-udp-flow-input.h: the input side of a UDP flow: received datagrams, framed */
#pragma once

#include "zlt-udp-flow-stream.h"

G_BEGIN_DECLS

#define ZLT_TYPE_UDP_FLOW_INPUT (zlt_udp_flow_input_get_type ())
G_DECLARE_FINAL_TYPE (ZltUdpFlowInput, zlt_udp_flow_input, ZLT, UDP_FLOW_INPUT, GInputStream)

GInputStream *zlt_udp_flow_input_new (ZltUdpFlowStream *flow);
void zlt_udp_flow_input_wake (ZltUdpFlowInput *self);
void zlt_udp_flow_input_detach (ZltUdpFlowInput *self);

G_END_DECLS
