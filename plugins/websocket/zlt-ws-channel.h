/* zlt-ws-channel.h: a ZltChannel over a libsoup WebSocket connection */
#pragma once

#include <libsoup/soup.h>

#include "zlt-plugin.h"

G_BEGIN_DECLS

#define ZLT_TYPE_WS_CHANNEL (zlt_ws_channel_get_type ())
G_DECLARE_FINAL_TYPE (ZltWsChannel, zlt_ws_channel, ZLT, WS_CHANNEL, ZltChannel)

/* Room for a few whole protocol frames in one message; more is a peer error (1009). */
#define ZLT_WS_MAX_INCOMING (4 * 65536)

ZltChannel *zlt_ws_channel_new (SoupWebsocketConnection *connection, const char *peer_address,
                                GBytes *nonce);

G_END_DECLS
