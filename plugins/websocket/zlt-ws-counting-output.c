/* zlt-ws-counting-output.c: a pass-through output stream that counts the bytes its base
 * accepted, so a writer above (libsoup's WebSocket connection, which has no API for
 * its queue) can tell how much of what it was given is still queued. Every write path
 * (blocking, non-blocking, vectored) goes to the base's own and counts what the base
 * took; polling is the base's. */
#include "config.h"

#include "zlt-ws-counting-output.h"

struct _ZltWsCountingOutput
{
  GFilterOutputStream parent_instance;

  guint64 n_written;
};

static void zlt_ws_counting_output_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltWsCountingOutput, zlt_ws_counting_output,
                               G_TYPE_FILTER_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      zlt_ws_counting_output_pollable_init))

static GOutputStream *
base_of (gpointer self)
{
  return g_filter_output_stream_get_base_stream (G_FILTER_OUTPUT_STREAM (self));
}

static gssize
zlt_ws_counting_output_write (GOutputStream *stream, const void *buffer, gsize count,
                              GCancellable *cancellable, GError **error)
{
  ZltWsCountingOutput *self = ZLT_WS_COUNTING_OUTPUT (stream);
  gssize n = g_output_stream_write (base_of (self), buffer, count, cancellable, error);

  if (n > 0)
    self->n_written += n;
  return n;
}

static gboolean
zlt_ws_counting_output_writev (GOutputStream *stream, const GOutputVector *vectors, gsize n_vectors,
                               gsize *bytes_written, GCancellable *cancellable, GError **error)
{
  ZltWsCountingOutput *self = ZLT_WS_COUNTING_OUTPUT (stream);
  gsize n = 0;
  gboolean ok;

  ok = g_output_stream_writev (base_of (self), vectors, n_vectors, &n, cancellable, error);
  self->n_written += n;
  if (bytes_written != NULL)
    *bytes_written = n;
  return ok;
}

static gssize
zlt_ws_counting_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer,
                                          gsize count, GError **error)
{
  ZltWsCountingOutput *self = ZLT_WS_COUNTING_OUTPUT (stream);
  gssize n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (base_of (self)),
                                                         buffer, count, NULL, error);

  if (n > 0)
    self->n_written += n;
  return n;
}

static GPollableReturn
zlt_ws_counting_output_writev_nonblocking (GPollableOutputStream *stream,
                                           const GOutputVector *vectors, gsize n_vectors,
                                           gsize *bytes_written, GError **error)
{
  ZltWsCountingOutput *self = ZLT_WS_COUNTING_OUTPUT (stream);
  gsize n = 0;
  GPollableReturn ret;

  ret = g_pollable_output_stream_writev_nonblocking (G_POLLABLE_OUTPUT_STREAM (base_of (self)),
                                                     vectors, n_vectors, &n, NULL, error);
  if (ret == G_POLLABLE_RETURN_OK)
    self->n_written += n;
  if (bytes_written != NULL)
    *bytes_written = ret == G_POLLABLE_RETURN_OK ? n : 0;
  return ret;
}

static gboolean
zlt_ws_counting_output_can_poll (GPollableOutputStream *stream)
{
  GOutputStream *base = base_of (stream);

  return G_IS_POLLABLE_OUTPUT_STREAM (base)
         && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (base));
}

static gboolean
zlt_ws_counting_output_is_writable (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (base_of (stream)));
}

static GSource *
zlt_ws_counting_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  g_autoptr (GSource) base_source
      = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (base_of (stream)), NULL);

  /* the callback gets this stream, not the base */
  return g_pollable_source_new_full (stream, base_source, cancellable);
}

guint64
zlt_ws_counting_output_get_n_written (ZltWsCountingOutput *self)
{
  g_return_val_if_fail (ZLT_IS_WS_COUNTING_OUTPUT (self), 0);
  return self->n_written;
}

static void
zlt_ws_counting_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = zlt_ws_counting_output_can_poll;
  iface->is_writable = zlt_ws_counting_output_is_writable;
  iface->create_source = zlt_ws_counting_output_create_source;
  iface->write_nonblocking = zlt_ws_counting_output_write_nonblocking;
  iface->writev_nonblocking = zlt_ws_counting_output_writev_nonblocking;
}

static void
zlt_ws_counting_output_class_init (ZltWsCountingOutputClass *klass)
{
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  output_class->write_fn = zlt_ws_counting_output_write;
  output_class->writev_fn = zlt_ws_counting_output_writev;
}

static void
zlt_ws_counting_output_init (ZltWsCountingOutput *self)
{
}

GOutputStream *
zlt_ws_counting_output_new (GOutputStream *base)
{
  g_return_val_if_fail (G_IS_POLLABLE_OUTPUT_STREAM (base), NULL);

  return g_object_new (ZLT_TYPE_WS_COUNTING_OUTPUT, "base-stream", base, "close-base-stream", FALSE,
                       NULL);
}
