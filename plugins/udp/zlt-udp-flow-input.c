/* zlt-udp-flow-input.c: the input side of a UDP flow
 *
 * Yields `u16 big-endian length · payload` for every datagram the flow received, in
 * order, in whatever chunks the reader asks for. Pollable: a read that finds nothing
 * queued fails with G_IO_ERROR_WOULD_BLOCK, and the source from create_source() is
 * ready while something is queued or the flow has ended (then a read returns 0). The
 * blocking read_fn behaves the same: datagrams arrive through the main context, so a
 * read that waited for them could only deadlock. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-udp-flow-input.h"

struct _ZltUdpFlowInput
{
  GInputStream parent_instance;

  ZltUdpFlowStream *flow; /* unowned: the flow owns us and detaches us before it goes */
  GSList *sources;        /* ReadySource waiting on us, unowned: each removes itself */
};

static void zlt_udp_flow_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltUdpFlowInput, zlt_udp_flow_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      zlt_udp_flow_input_pollable_init))

/* The pollable source. It is ready while the input is readable, without polling for it
 * on every main-loop iteration: the flow wakes the sources waiting on its input
 * (zlt_udp_flow_input_wake()) when it becomes readable, which sets their flag, and a
 * dispatch that leaves the input readable sets it again. prepare() reads the flag: no
 * ready time, because GLib 2.74's g_source_set_ready_time() writes the context's
 * eventfd on every change, two writes per datagram; the context is woken only when the
 * wake comes from a thread that is not running it. Its callback is a
 * GPollableSourceFunc. */
typedef struct
{
  GSource source;
  ZltUdpFlowInput *input;
  gboolean ready;
} ReadySource;

static gboolean
ready_source_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return ((ReadySource *) source)->ready;
}

static gboolean
ready_source_check (GSource *source)
{
  return ((ReadySource *) source)->ready;
}

static gboolean
ready_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  ReadySource *rs = (ReadySource *) source;
  GPollableSourceFunc func = (GPollableSourceFunc) (void (*) (void)) callback;
  gboolean again;

  rs->ready = FALSE;
  if (func == NULL)
    return G_SOURCE_REMOVE;
  again = func (G_OBJECT (rs->input), user_data);
  if (again && !g_source_is_destroyed (source)
      && g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (rs->input)))
    rs->ready = TRUE;
  return again;
}

static void
ready_source_wake (ReadySource *rs)
{
  GMainContext *context;

  rs->ready = TRUE;
  context = g_source_get_context (&rs->source);
  if (context != NULL && !g_main_context_is_owner (context))
    g_main_context_wakeup (context);
}

static void
ready_source_finalize (GSource *source)
{
  ReadySource *rs = (ReadySource *) source;

  rs->input->sources = g_slist_remove (rs->input->sources, rs);
  g_clear_object (&rs->input);
}

static GSourceFuncs ready_source_funcs = {
  .prepare = ready_source_prepare,
  .check = ready_source_check,
  .dispatch = ready_source_dispatch,
  .finalize = ready_source_finalize,
};

static gssize
zlt_udp_flow_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                                     GError **error)
{
  ZltUdpFlowInput *self = ZLT_UDP_FLOW_INPUT (stream);

  if (self->flow == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _ ("Stream is already closed"));
      return -1;
    }
  return zlt_udp_flow_stream_read (self->flow, buffer, count, error);
}

static gboolean
zlt_udp_flow_input_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
zlt_udp_flow_input_is_readable (GPollableInputStream *stream)
{
  ZltUdpFlowInput *self = ZLT_UDP_FLOW_INPUT (stream);

  /* a gone flow is "readable": the read reports that it is closed */
  return self->flow == NULL || zlt_udp_flow_stream_is_readable (self->flow);
}

static GSource *
zlt_udp_flow_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  ZltUdpFlowInput *self = ZLT_UDP_FLOW_INPUT (stream);
  GSource *source = g_source_new (&ready_source_funcs, sizeof (ReadySource));

  g_source_set_static_name (source, "zlt-udp-flow-readable");
  ((ReadySource *) source)->input = g_object_ref (self);
  self->sources = g_slist_prepend (self->sources, source);
  ((ReadySource *) source)->ready = zlt_udp_flow_input_is_readable (stream);
  /* as g_pollable_source_new_full() does: a cancelled cancellable makes it ready */
  if (cancellable != NULL)
    {
      g_autoptr (GSource) cancelled = g_cancellable_source_new (cancellable);

      g_source_set_dummy_callback (cancelled);
      g_source_add_child_source (source, cancelled);
    }
  return source;
}

static void
zlt_udp_flow_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = zlt_udp_flow_input_can_poll;
  iface->is_readable = zlt_udp_flow_input_is_readable;
  iface->create_source = zlt_udp_flow_input_create_source;
  iface->read_nonblocking = zlt_udp_flow_input_read_nonblocking;
}

static gssize
zlt_udp_flow_input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                         GError **error)
{
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  return zlt_udp_flow_input_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), buffer, count,
                                              error);
}

static gboolean
zlt_udp_flow_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  ZltUdpFlowInput *self = ZLT_UDP_FLOW_INPUT (stream);

  if (self->flow != NULL)
    zlt_udp_flow_stream_input_closed (self->flow);
  return TRUE;
}

/* Closing never waits, so it is done at once rather than in a thread as GInputStream's
 * default would. */
static void
zlt_udp_flow_input_close_async (GInputStream *stream, int io_priority, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, zlt_udp_flow_input_close_async);
  if (zlt_udp_flow_input_close (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
zlt_udp_flow_input_close_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
zlt_udp_flow_input_class_init (ZltUdpFlowInputClass *klass)
{
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  input_class->read_fn = zlt_udp_flow_input_read;
  input_class->close_fn = zlt_udp_flow_input_close;
  input_class->close_async = zlt_udp_flow_input_close_async;
  input_class->close_finish = zlt_udp_flow_input_close_finish;
}

static void
zlt_udp_flow_input_init (ZltUdpFlowInput *self)
{
}

GInputStream *
zlt_udp_flow_input_new (ZltUdpFlowStream *flow)
{
  ZltUdpFlowInput *self = g_object_new (ZLT_TYPE_UDP_FLOW_INPUT, NULL);

  self->flow = flow;
  return G_INPUT_STREAM (self);
}

/* For the flow: the input became readable (a datagram arrived in an empty queue, or the
 * flow ended or closed); whoever waits on it runs. */
void
zlt_udp_flow_input_wake (ZltUdpFlowInput *self)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_INPUT (self));

  for (GSList *l = self->sources; l != NULL; l = l->next)
    ready_source_wake (l->data);
}

/* The flow is going away: from now on reads report a closed stream. */
void
zlt_udp_flow_input_detach (ZltUdpFlowInput *self)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_INPUT (self));

  self->flow = NULL;
  zlt_udp_flow_input_wake (self);
}
