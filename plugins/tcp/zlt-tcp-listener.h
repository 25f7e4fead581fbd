/* zlt-tcp-listener.h: a public TCP port */
#pragma once

#include "zlt-plugin.h"

G_BEGIN_DECLS

#define ZLT_TYPE_TCP_LISTENER (zlt_tcp_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltTcpListener, zlt_tcp_listener, ZLT, TCP_LISTENER, ZltListener)

ZltListener *zlt_tcp_listener_new (const char *bind_address, guint16 port, GError **error);

G_END_DECLS
