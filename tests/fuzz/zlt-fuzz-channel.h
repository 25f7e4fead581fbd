/* zlt-fuzz-channel.h: a control channel without a wire, for fuzzing the server peer */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

#define ZLT_TYPE_FUZZ_CHANNEL (zlt_fuzz_channel_get_type ())
G_DECLARE_FINAL_TYPE (ZltFuzzChannel, zlt_fuzz_channel, ZLT, FUZZ_CHANNEL, ZltChannel)

ZltFuzzChannel *zlt_fuzz_channel_new (const char *peer_address, GBytes *nonce);

/* The agent's side: one binary message in, or the agent hanging up. */
void zlt_fuzz_channel_deliver (ZltFuzzChannel *self, const guint8 *data, gsize len);
void zlt_fuzz_channel_hang_up (ZltFuzzChannel *self);

/* The server's side: every frame it sent, decoded (ZltMessage), in order. */
GPtrArray *zlt_fuzz_channel_get_received (ZltFuzzChannel *self);
/* The last frame it sent, or NULL. */
const ZltMessage *zlt_fuzz_channel_get_last (ZltFuzzChannel *self);
/* Whether the server asked to close (the close completes from the main context). */
gboolean zlt_fuzz_channel_get_close_requested (ZltFuzzChannel *self);

G_END_DECLS
