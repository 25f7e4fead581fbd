/* zlt-ws-listener.h: the server's one port: control WebSockets and data upgrades */
#pragma once

#include <libsoup/soup.h>

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_WS_LISTENER (zlt_ws_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsListener, zlt_ws_listener, ZLT, WS_LISTENER, ZltControlListener)

#define ZLT_WS_CONTROL_PATH "/tunnel/v1"
#define ZLT_WS_DATA_PATH "/tunnel/v1/data"
#define ZLT_WS_DATA_UPGRADE "zlt-data/2"

ZltControlListener *zlt_ws_listener_new (const char *bind_address, guint16 port,
                                         GTlsCertificate *certificate, guint handshake_timeout_ms,
                                         GError **error);

G_END_DECLS
