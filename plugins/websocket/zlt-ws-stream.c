/* zlt-ws-stream.c: the stream the listener hands to libsoup, and after the upgrade to
 * the WebSocket connection: a ZltWsRequestInput (one request head, nothing more until
 * answered) over the base's input and a ZltWsCountingOutput over its output. Closing
 * it closes the base, unless detached (a data connection's base goes on to the relay)
 * and emits ::closed first, so the listener learns when libsoup is done with it. */
#include "config.h"

#include "zlt-ws-counting-output.h"
#include "zlt-ws-request-input.h"
#include "zlt-ws-stream.h"

struct _ZltWsStream
{
  GIOStream parent_instance;

  GIOStream *base;
  GInputStream *input;
  GOutputStream *output;
  gboolean detached;
};

G_DEFINE_FINAL_TYPE (ZltWsStream, zlt_ws_stream, G_TYPE_IO_STREAM)

enum
{
  SIGNAL_CLOSED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static GInputStream *
zlt_ws_stream_get_input_stream (GIOStream *stream)
{
  return ZLT_WS_STREAM (stream)->input;
}

static GOutputStream *
zlt_ws_stream_get_output_stream (GIOStream *stream)
{
  return ZLT_WS_STREAM (stream)->output;
}

/* Closes our two filters (never blocks: they do not close the base) and says so. */
static void
close_filters (ZltWsStream *self)
{
  g_output_stream_close (self->output, NULL, NULL);
  g_input_stream_close (self->input, NULL, NULL);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
}

static gboolean
zlt_ws_stream_close (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  ZltWsStream *self = ZLT_WS_STREAM (stream);

  close_filters (self);
  if (self->detached)
    return TRUE;
  return g_io_stream_close (self->base, cancellable, error);
}

static void
base_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  if (!g_io_stream_close_finish (G_IO_STREAM (source), result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* Not GIO's default, which would run zlt_ws_stream_close() in a worker thread: the
 * base closes asynchronously in its own way. */
static void
zlt_ws_stream_close_async (GIOStream *stream, int io_priority, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  ZltWsStream *self = ZLT_WS_STREAM (stream);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, zlt_ws_stream_close_async);
  close_filters (self);
  if (self->detached)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  g_io_stream_close_async (self->base, io_priority, cancellable, base_closed, task);
}

static gboolean
zlt_ws_stream_close_finish (GIOStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

GIOStream *
zlt_ws_stream_get_base (ZltWsStream *self)
{
  g_return_val_if_fail (ZLT_IS_WS_STREAM (self), NULL);
  return self->base;
}

void
zlt_ws_stream_open (ZltWsStream *self)
{
  g_return_if_fail (ZLT_IS_WS_STREAM (self));
  zlt_ws_request_input_open (ZLT_WS_REQUEST_INPUT (self->input));
}

gsize
zlt_ws_stream_get_n_buffered (ZltWsStream *self)
{
  g_return_val_if_fail (ZLT_IS_WS_STREAM (self), 0);
  return zlt_ws_request_input_get_n_buffered (ZLT_WS_REQUEST_INPUT (self->input));
}

guint64
zlt_ws_stream_get_n_written (ZltWsStream *self)
{
  g_return_val_if_fail (ZLT_IS_WS_STREAM (self), 0);
  return zlt_ws_counting_output_get_n_written (ZLT_WS_COUNTING_OUTPUT (self->output));
}

void
zlt_ws_stream_detach (ZltWsStream *self)
{
  g_return_if_fail (ZLT_IS_WS_STREAM (self));
  self->detached = TRUE;
}

static void
zlt_ws_stream_finalize (GObject *object)
{
  ZltWsStream *self = ZLT_WS_STREAM (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_object (&self->base);
  G_OBJECT_CLASS (zlt_ws_stream_parent_class)->finalize (object);
}

static void
zlt_ws_stream_class_init (ZltWsStreamClass *klass)
{
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = zlt_ws_stream_finalize;
  stream_class->get_input_stream = zlt_ws_stream_get_input_stream;
  stream_class->get_output_stream = zlt_ws_stream_get_output_stream;
  stream_class->close_fn = zlt_ws_stream_close;
  stream_class->close_async = zlt_ws_stream_close_async;
  stream_class->close_finish = zlt_ws_stream_close_finish;

  /**
   * ZltWsStream::closed:
   * The stream is being closed (by anyone); emitted once.
   */
  signals[SIGNAL_CLOSED] = g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
zlt_ws_stream_init (ZltWsStream *self)
{
}

ZltWsStream *
zlt_ws_stream_new (GIOStream *base, gsize max_request_head, GBytes *read_ahead)
{
  ZltWsStream *self;

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);

  self = g_object_new (ZLT_TYPE_WS_STREAM, NULL);
  self->base = g_object_ref (base);
  self->input = zlt_ws_request_input_new (g_io_stream_get_input_stream (base), max_request_head,
                                          read_ahead);
  if (G_IS_SOCKET_CONNECTION (base))
    zlt_ws_request_input_set_socket (ZLT_WS_REQUEST_INPUT (self->input),
                                     g_socket_connection_get_socket (G_SOCKET_CONNECTION (base)));
  self->output = zlt_ws_counting_output_new (g_io_stream_get_output_stream (base));
  return self;
}
