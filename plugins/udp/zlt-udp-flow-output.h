/* zlt-udp-flow-output.h: the output side of a UDP flow: framed bytes in, datagrams out */
#pragma once

#include "zlt-udp-flow-stream.h"

G_BEGIN_DECLS

#define ZLT_TYPE_UDP_FLOW_OUTPUT (zlt_udp_flow_output_get_type ())
G_DECLARE_FINAL_TYPE (ZltUdpFlowOutput, zlt_udp_flow_output, ZLT, UDP_FLOW_OUTPUT, GOutputStream)

GOutputStream *zlt_udp_flow_output_new (ZltUdpFlowStream *flow);
void zlt_udp_flow_output_detach (ZltUdpFlowOutput *self);

G_END_DECLS
