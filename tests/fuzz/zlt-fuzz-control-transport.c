/* zlt-fuzz-control-transport.c: the server's control port without WebSocket: the
 * listener it makes is a ZltFuzzControlListener, so frames reach the server peer
 * straight from the fuzz target. It cannot dial: only the server side is fuzzed. */
#include "config.h"

#include "zlt-fuzz-control-listener.h"
#include "zlt-fuzz-control-transport.h"

#define FAKE_PORT 9 /* what the listener reports; nothing is bound */

struct _ZltFuzzControlTransport
{
  ZltControlTransport parent_instance;

  ZltControlListener *listener; /* weak */
};

G_DEFINE_FINAL_TYPE (ZltFuzzControlTransport, zlt_fuzz_control_transport,
                     ZLT_TYPE_CONTROL_TRANSPORT)

static ZltControlListener *
zlt_fuzz_control_transport_listen_control (ZltControlTransport *transport, const char *bind_address,
                                           guint16 port, GTlsCertificate *certificate,
                                           guint handshake_timeout_ms, GError **error)
{
  ZltFuzzControlTransport *self = ZLT_FUZZ_CONTROL_TRANSPORT (transport);
  ZltControlListener *listener = zlt_fuzz_control_listener_new (port != 0 ? port : FAKE_PORT);

  if (self->listener != NULL)
    g_object_remove_weak_pointer (G_OBJECT (self->listener), (gpointer *) &self->listener);
  self->listener = listener;
  g_object_add_weak_pointer (G_OBJECT (listener), (gpointer *) &self->listener);
  return listener;
}

static void
zlt_fuzz_control_transport_connect_control_async (ZltControlTransport *self, GUri *url,
                                                  const ZltTlsOptions *tls, guint timeout_ms,
                                                  GCancellable *cancellable,
                                                  GAsyncReadyCallback callback, gpointer user_data)
{
  g_task_report_new_error (self, callback, user_data,
                           zlt_fuzz_control_transport_connect_control_async, G_IO_ERROR,
                           G_IO_ERROR_NOT_SUPPORTED, "the fuzz transport cannot dial");
}

static ZltChannel *
zlt_fuzz_control_transport_connect_control_finish (ZltControlTransport *self, GAsyncResult *result,
                                                   GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
zlt_fuzz_control_transport_open_data_async (ZltControlTransport *self, GUri *url,
                                            const ZltTlsOptions *tls, const char *tunnel_id,
                                            const char *connection_id, const char *mac,
                                            guint timeout_ms, GCancellable *cancellable,
                                            GAsyncReadyCallback callback, gpointer user_data)
{
  g_task_report_new_error (self, callback, user_data, zlt_fuzz_control_transport_open_data_async,
                           G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "the fuzz transport cannot dial");
}

static GIOStream *
zlt_fuzz_control_transport_open_data_finish (ZltControlTransport *self, GAsyncResult *result,
                                             GBytes **prefix, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

ZltControlListener *
zlt_fuzz_control_transport_get_listener (ZltFuzzControlTransport *self)
{
  g_return_val_if_fail (ZLT_IS_FUZZ_CONTROL_TRANSPORT (self), NULL);
  return self->listener;
}

static void
zlt_fuzz_control_transport_dispose (GObject *object)
{
  ZltFuzzControlTransport *self = ZLT_FUZZ_CONTROL_TRANSPORT (object);

  if (self->listener != NULL)
    g_object_remove_weak_pointer (G_OBJECT (self->listener), (gpointer *) &self->listener);
  self->listener = NULL;
  G_OBJECT_CLASS (zlt_fuzz_control_transport_parent_class)->dispose (object);
}

static void
zlt_fuzz_control_transport_class_init (ZltFuzzControlTransportClass *klass)
{
  ZltTransportClass *transport_class = ZLT_TRANSPORT_CLASS (klass);
  ZltControlTransportClass *control_class = ZLT_CONTROL_TRANSPORT_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = zlt_fuzz_control_transport_dispose;
  transport_class->name = "fuzz-control";
  transport_class->protocol = ZLT_PROTOCOL_TCP;
  control_class->listen_control = zlt_fuzz_control_transport_listen_control;
  control_class->connect_control_async = zlt_fuzz_control_transport_connect_control_async;
  control_class->connect_control_finish = zlt_fuzz_control_transport_connect_control_finish;
  control_class->open_data_async = zlt_fuzz_control_transport_open_data_async;
  control_class->open_data_finish = zlt_fuzz_control_transport_open_data_finish;
}

static void
zlt_fuzz_control_transport_init (ZltFuzzControlTransport *self)
{
}

ZltControlTransport *
zlt_fuzz_control_transport_new (void)
{
  return g_object_new (ZLT_TYPE_FUZZ_CONTROL_TRANSPORT, NULL);
}
