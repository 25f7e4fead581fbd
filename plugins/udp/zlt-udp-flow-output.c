/* zlt-udp-flow-output.c: the output side of a UDP flow
 *
 * Takes the framed byte stream (`u16 big-endian length · payload`, in any chunking) and
 * sends one datagram per complete frame. A write never blocks and never fails for a full
 * socket buffer (that datagram is dropped and counted, as UDP would), so the stream is
 * always writable. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-udp-flow-output.h"

struct _ZltUdpFlowOutput
{
  GOutputStream parent_instance;

  ZltUdpFlowStream *flow; /* unowned: the flow owns us and detaches us before it goes */
};

static void zlt_udp_flow_output_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltUdpFlowOutput, zlt_udp_flow_output, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      zlt_udp_flow_output_pollable_init))

static gssize
zlt_udp_flow_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer,
                                       gsize count, GError **error)
{
  ZltUdpFlowOutput *self = ZLT_UDP_FLOW_OUTPUT (stream);

  if (self->flow == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _ ("Stream is already closed"));
      return -1;
    }
  return zlt_udp_flow_stream_write (self->flow, buffer, count, error);
}

static gboolean
zlt_udp_flow_output_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
zlt_udp_flow_output_is_writable (GPollableOutputStream *stream)
{
  return TRUE;
}

static GSource *
zlt_udp_flow_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  /* always writable: ready at once, like GMemoryOutputStream */
  g_autoptr (GSource) ready = g_timeout_source_new (0);

  return g_pollable_source_new_full (stream, ready, cancellable);
}

static void
zlt_udp_flow_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = zlt_udp_flow_output_can_poll;
  iface->is_writable = zlt_udp_flow_output_is_writable;
  iface->create_source = zlt_udp_flow_output_create_source;
  iface->write_nonblocking = zlt_udp_flow_output_write_nonblocking;
}

static gssize
zlt_udp_flow_output_write (GOutputStream *stream, const void *buffer, gsize count,
                           GCancellable *cancellable, GError **error)
{
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  return zlt_udp_flow_output_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (stream), buffer, count,
                                                error);
}

static gboolean
zlt_udp_flow_output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  ZltUdpFlowOutput *self = ZLT_UDP_FLOW_OUTPUT (stream);

  if (self->flow != NULL)
    zlt_udp_flow_stream_output_closed (self->flow);
  return TRUE;
}

/* Closing never waits, so it is done at once rather than in a thread as GOutputStream's
 * default would. */
static void
zlt_udp_flow_output_close_async (GOutputStream *stream, int io_priority, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, zlt_udp_flow_output_close_async);
  if (zlt_udp_flow_output_close (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
zlt_udp_flow_output_close_finish (GOutputStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
zlt_udp_flow_output_class_init (ZltUdpFlowOutputClass *klass)
{
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  output_class->write_fn = zlt_udp_flow_output_write;
  output_class->close_fn = zlt_udp_flow_output_close;
  output_class->close_async = zlt_udp_flow_output_close_async;
  output_class->close_finish = zlt_udp_flow_output_close_finish;
}

static void
zlt_udp_flow_output_init (ZltUdpFlowOutput *self)
{
}

GOutputStream *
zlt_udp_flow_output_new (ZltUdpFlowStream *flow)
{
  ZltUdpFlowOutput *self = g_object_new (ZLT_TYPE_UDP_FLOW_OUTPUT, NULL);

  self->flow = flow;
  return G_OUTPUT_STREAM (self);
}

/* The flow is going away: from now on writes report a closed stream. */
void
zlt_udp_flow_output_detach (ZltUdpFlowOutput *self)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_OUTPUT (self));

  self->flow = NULL;
}
