/* zlt-channel.h: a message channel carrying control frames (WebSocket in practice) */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"

G_BEGIN_DECLS

#define ZLT_TYPE_CHANNEL (zlt_channel_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ZltChannel, zlt_channel, ZLT, CHANNEL, GObject)

/**
 * ZltChannelClass:
 * @send: queue one binary message; never blocks
 * @close: start an orderly close; #ZltChannel::closed follows
 *
 * Transport plugins subclass this; the server and agent only see messages in and out.
 */
struct _ZltChannelClass
{
  GObjectClass parent_class;

  gboolean (*send) (ZltChannel *self, GBytes *message, GError **error);
  void (*close) (ZltChannel *self, guint16 code, const char *reason);
  /* bytes queued but not yet handed to the kernel, for back-pressure */
  gsize (*get_pending) (ZltChannel *self);

  gpointer padding[8];
};

ZLT_AVAILABLE_IN_ALL
gboolean zlt_channel_send (ZltChannel *self, GBytes *message, GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_channel_close (ZltChannel *self, guint16 code, const char *reason);
ZLT_AVAILABLE_IN_ALL
gsize zlt_channel_get_pending (ZltChannel *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_channel_is_closed (ZltChannel *self);
ZLT_AVAILABLE_IN_ALL
const char *zlt_channel_get_peer_address (ZltChannel *self);
/* the challenge nonce of the handshake (ZLT_NONCE_SIZE bytes), or NULL if the
 * peer sent none (a v1 server) */
ZLT_AVAILABLE_IN_ALL
GBytes *zlt_channel_get_nonce (ZltChannel *self);
/* the server asked for a bearer credential in the handshake (PROTOCOL-v2.md §2a) */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_channel_get_bearer_wanted (ZltChannel *self);
/* the channel runs over TLS whose certificate the transport verified (CA or pin);
 * FALSE unless the transport said so */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_channel_get_peer_verified (ZltChannel *self);

/* the peer authenticated: it leaves the listener's count of connections waiting to */
ZLT_AVAILABLE_IN_ALL
void zlt_channel_end_admission (ZltChannel *self);

/* for implementations */
ZLT_AVAILABLE_IN_ALL
void zlt_channel_set_admission (ZltChannel *self, GDestroyNotify end, gpointer data);
ZLT_AVAILABLE_IN_ALL
void zlt_channel_set_nonce (ZltChannel *self, GBytes *nonce);
ZLT_AVAILABLE_IN_ALL
void zlt_channel_set_bearer_wanted (ZltChannel *self, gboolean wanted);
ZLT_AVAILABLE_IN_ALL
void zlt_channel_set_peer_verified (ZltChannel *self, gboolean verified);
ZLT_AVAILABLE_IN_ALL
void zlt_channel_emit_message (ZltChannel *self, GBytes *message);
ZLT_AVAILABLE_IN_ALL
void zlt_channel_emit_closed (ZltChannel *self, const GError *error);

G_END_DECLS
