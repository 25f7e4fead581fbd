/* zlt-ws-transport.h: the "websocket" transport: control channel and data plane */
#pragma once

#include "zlt-plugin.h"

G_BEGIN_DECLS

#define ZLT_TYPE_WS_TRANSPORT (zlt_ws_transport_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsTransport, zlt_ws_transport, ZLT, WS_TRANSPORT, ZltControlTransport)

G_END_DECLS
