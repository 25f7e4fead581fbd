/* zlt-ws-listener.h: the server's one port: control WebSockets and data upgrades */
#pragma once

#include <libsoup/soup.h>

#include "zlt-plugin.h"

G_BEGIN_DECLS

#define ZLT_TYPE_WS_LISTENER (zlt_ws_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsListener, zlt_ws_listener, ZLT, WS_LISTENER, ZltControlListener)

#define ZLT_WS_CONTROL_PATH "/tunnel/v1"
#define ZLT_WS_DATA_PATH "/tunnel/v1/data"
#define ZLT_WS_DATA_UPGRADE "zlt-data/2"

/* a request head (request line and header lines) larger than this is cut off; ours
 * are well under 1 KiB */
#define ZLT_WS_MAX_REQUEST_HEAD 16384
/* Defaults of the caps on TLS handshakes in progress, each of which holds a GLib
 * worker thread: in total, and from one source (IPv4 address or IPv6 /64). A
 * handshake holds its slot for a round trip and a few milliseconds of CPU; 32 slots
 * give hundreds of handshakes a second, and one source takes at most a quarter. */
#define ZLT_WS_MAX_HANDSHAKES 32
#define ZLT_WS_MAX_HANDSHAKES_PER_SOURCE 8

ZltControlListener *zlt_ws_listener_new (const char *bind_address, guint16 port,
                                         GTlsCertificate *certificate, guint handshake_timeout_ms,
                                         GError **error);

G_END_DECLS
