/* zlt-fuzz-control-transport.h: a control transport whose listener takes channels
 * from the fuzz target instead of the network */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_FUZZ_CONTROL_TRANSPORT (zlt_fuzz_control_transport_get_type ())
G_DECLARE_FINAL_TYPE (ZltFuzzControlTransport, zlt_fuzz_control_transport, ZLT,
                      FUZZ_CONTROL_TRANSPORT, ZltControlTransport)

ZltControlTransport *zlt_fuzz_control_transport_new (void);
/* The listener the last listen_control made, while it lives (unowned), or NULL. */
ZltControlListener *zlt_fuzz_control_transport_get_listener (ZltFuzzControlTransport *self);

G_END_DECLS
