/* zlt-fuzz-control-listener.h: a control listener without a socket */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_FUZZ_CONTROL_LISTENER (zlt_fuzz_control_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltFuzzControlListener, zlt_fuzz_control_listener, ZLT, FUZZ_CONTROL_LISTENER,
                      ZltControlListener)

/* @port is only what it reports. Channels come in with
 * zlt_control_listener_emit_channel(). */
ZltControlListener *zlt_fuzz_control_listener_new (guint16 port);

G_END_DECLS
