/* zlt-fuzz-channel.c: a control channel without a wire.
 *
 * It behaves as the websocket channel does where the server can tell: send refuses
 * once a close was asked for; the close completes later, from the main context, with
 * ::closed; a hang-up from the agent's side emits ::closed at once. Every message the
 * server sends must be well-formed frames: they are decoded here and kept. */
#include "config.h"

#include "zlt-fuzz-channel.h"
#include "zlt-fuzz.h"

struct _ZltFuzzChannel
{
  ZltChannel parent_instance;

  GPtrArray *received; /* ZltMessage */
  gboolean close_requested;
  GSource *close_source;
};

G_DEFINE_FINAL_TYPE (ZltFuzzChannel, zlt_fuzz_channel, ZLT_TYPE_CHANNEL)

static gboolean
zlt_fuzz_channel_send (ZltChannel *channel, GBytes *message, GError **error)
{
  ZltFuzzChannel *self = ZLT_FUZZ_CHANNEL (channel);
  g_autoptr (GError) decode_error = NULL;
  g_autoptr (GPtrArray) frames = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);

  if (self->close_requested)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "connection is closing");
      return FALSE;
    }
  frames = zlt_message_decode_all (data, len, &decode_error);
  ZLT_FUZZ_CHECK (frames != NULL,
                  "the server sent %" G_GSIZE_FORMAT " bytes that do not decode: %s", len,
                  decode_error->message);
  for (guint i = 0; i < frames->len; i++)
    {
      ZltMessage *msg = g_steal_pointer (&g_ptr_array_index (frames, i));
      g_autofree char *text = zlt_message_to_string (msg);

      g_debug ("server sent %s", text); /* ZLT_FUZZ_VERBOSE=1 G_MESSAGES_DEBUG=zlt-fuzz */
      g_ptr_array_add (self->received, msg);
    }
  return TRUE;
}

static gboolean
on_close (gpointer user_data)
{
  ZltFuzzChannel *self = user_data;

  g_clear_pointer (&self->close_source, g_source_unref);
  zlt_channel_emit_closed (ZLT_CHANNEL (self), NULL);
  return G_SOURCE_REMOVE;
}

static void
zlt_fuzz_channel_close (ZltChannel *channel, guint16 code, const char *reason)
{
  ZltFuzzChannel *self = ZLT_FUZZ_CHANNEL (channel);

  if (self->close_requested)
    return;
  self->close_requested = TRUE;
  self->close_source = g_idle_source_new ();
  g_source_set_callback (self->close_source, on_close, g_object_ref (self), g_object_unref);
  g_source_attach (self->close_source, g_main_context_get_thread_default ());
}

void
zlt_fuzz_channel_deliver (ZltFuzzChannel *self, const guint8 *data, gsize len)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, len);

  g_return_if_fail (ZLT_IS_FUZZ_CHANNEL (self));
  zlt_channel_emit_message (ZLT_CHANNEL (self), bytes);
}

void
zlt_fuzz_channel_hang_up (ZltFuzzChannel *self)
{
  g_return_if_fail (ZLT_IS_FUZZ_CHANNEL (self));
  if (self->close_source != NULL)
    {
      g_source_destroy (self->close_source);
      g_clear_pointer (&self->close_source, g_source_unref);
    }
  self->close_requested = TRUE;
  zlt_channel_emit_closed (ZLT_CHANNEL (self), NULL);
}

GPtrArray *
zlt_fuzz_channel_get_received (ZltFuzzChannel *self)
{
  g_return_val_if_fail (ZLT_IS_FUZZ_CHANNEL (self), NULL);
  return self->received;
}

const ZltMessage *
zlt_fuzz_channel_get_last (ZltFuzzChannel *self)
{
  g_return_val_if_fail (ZLT_IS_FUZZ_CHANNEL (self), NULL);
  if (self->received->len == 0)
    return NULL;
  return g_ptr_array_index (self->received, self->received->len - 1);
}

gboolean
zlt_fuzz_channel_get_close_requested (ZltFuzzChannel *self)
{
  g_return_val_if_fail (ZLT_IS_FUZZ_CHANNEL (self), FALSE);
  return self->close_requested;
}

static void
zlt_fuzz_channel_dispose (GObject *object)
{
  ZltFuzzChannel *self = ZLT_FUZZ_CHANNEL (object);

  if (self->close_source != NULL)
    {
      g_source_destroy (self->close_source);
      g_clear_pointer (&self->close_source, g_source_unref);
    }
  G_OBJECT_CLASS (zlt_fuzz_channel_parent_class)->dispose (object);
}

static void
zlt_fuzz_channel_finalize (GObject *object)
{
  ZltFuzzChannel *self = ZLT_FUZZ_CHANNEL (object);

  g_ptr_array_unref (self->received);
  G_OBJECT_CLASS (zlt_fuzz_channel_parent_class)->finalize (object);
}

static void
zlt_fuzz_channel_class_init (ZltFuzzChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltChannelClass *channel_class = ZLT_CHANNEL_CLASS (klass);

  object_class->dispose = zlt_fuzz_channel_dispose;
  object_class->finalize = zlt_fuzz_channel_finalize;
  channel_class->send = zlt_fuzz_channel_send;
  channel_class->close = zlt_fuzz_channel_close;
}

static void
zlt_fuzz_channel_init (ZltFuzzChannel *self)
{
  self->received = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_message_free);
}

ZltFuzzChannel *
zlt_fuzz_channel_new (const char *peer_address, GBytes *nonce)
{
  ZltFuzzChannel *self = g_object_new (ZLT_TYPE_FUZZ_CHANNEL, "peer-address", peer_address, NULL);

  zlt_channel_set_nonce (ZLT_CHANNEL (self), nonce);
  return self;
}
