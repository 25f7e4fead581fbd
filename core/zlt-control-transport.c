/* zlt-control-transport.c: thin checked wrappers over the class vfuncs */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-control-transport.h"

G_DEFINE_ABSTRACT_TYPE (ZltControlTransport, zlt_control_transport, ZLT_TYPE_TRANSPORT)

ZltControlListener *
zlt_control_transport_listen_control (ZltControlTransport *self, const char *bind_address,
                                      guint16 port, GTlsCertificate *certificate,
                                      guint handshake_timeout_ms, GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), NULL);
  g_return_val_if_fail (bind_address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->listen_control (
      self, bind_address, port, certificate, handshake_timeout_ms, error);
}

void
zlt_control_transport_connect_control_async (ZltControlTransport *self, GUri *url,
                                             const ZltTlsOptions *tls, guint timeout_ms,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL);
  ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->connect_control_async (self, url, tls, timeout_ms,
                                                                 cancellable, callback, user_data);
}

ZltChannel *
zlt_control_transport_connect_control_finish (ZltControlTransport *self, GAsyncResult *result,
                                              GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), NULL);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->connect_control_finish (self, result, error);
}

void
zlt_control_transport_open_data_async (ZltControlTransport *self, GUri *url,
                                       const ZltTlsOptions *tls, const char *tunnel_id,
                                       const char *connection_id, const char *mac, guint timeout_ms,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && connection_id != NULL && mac != NULL);
  ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->open_data_async (
      self, url, tls, tunnel_id, connection_id, mac, timeout_ms, cancellable, callback, user_data);
}

GIOStream *
zlt_control_transport_open_data_finish (ZltControlTransport *self, GAsyncResult *result,
                                        GBytes **prefix, GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), NULL);
  /* the refusals of a transport that lacks a kind of data connection are our own */
  if (g_async_result_is_tagged (result, zlt_control_transport_open_access_async)
      || g_async_result_is_tagged (result, zlt_control_transport_open_standby_async))
    return g_task_propagate_pointer (G_TASK (result), error);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->open_data_finish (self, result, prefix, error);
}

void
zlt_control_transport_open_access_async (ZltControlTransport *self, GUri *url,
                                         const ZltTlsOptions *tls, const char *tunnel_id,
                                         const char *connection_id, const char *mac,
                                         const char *service, guint timeout_ms,
                                         GCancellable *cancellable, GAsyncReadyCallback callback,
                                         gpointer user_data)
{
  ZltControlTransportClass *klass;

  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && connection_id != NULL && mac != NULL);
  g_return_if_fail (service != NULL);
  klass = ZLT_CONTROL_TRANSPORT_GET_CLASS (self);
  if (klass->open_access_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_control_transport_open_access_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _ ("transport “%s” cannot open access streams"),
                               zlt_transport_get_name (ZLT_TRANSPORT (self)));
      return;
    }
  klass->open_access_async (self, url, tls, tunnel_id, connection_id, mac, service, timeout_ms,
                            cancellable, callback, user_data);
}

void
zlt_control_transport_probe_access_async (ZltControlTransport *self, GUri *url,
                                          const ZltTlsOptions *tls, const char *tunnel_id,
                                          const char *connection_id, const char *mac,
                                          const char *service, guint timeout_ms,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  ZltControlTransportClass *klass;

  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && connection_id != NULL && mac != NULL);
  g_return_if_fail (service != NULL);
  klass = ZLT_CONTROL_TRANSPORT_GET_CLASS (self);
  if (klass->probe_access_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_control_transport_probe_access_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _ ("transport “%s” cannot probe access streams"),
                               zlt_transport_get_name (ZLT_TRANSPORT (self)));
      return;
    }
  klass->probe_access_async (self, url, tls, tunnel_id, connection_id, mac, service, timeout_ms,
                             cancellable, callback, user_data);
}

gboolean
zlt_control_transport_probe_access_finish (ZltControlTransport *self, GAsyncResult *result,
                                           GError **error)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), FALSE);

  if (g_async_result_is_tagged (result, zlt_control_transport_probe_access_async))
    return g_task_propagate_boolean (G_TASK (result), error);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->probe_access_finish (self, result, error);
}

gboolean
zlt_control_transport_can_open_standby (ZltControlTransport *self)
{
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (self), FALSE);
  return ZLT_CONTROL_TRANSPORT_GET_CLASS (self)->open_standby_async != NULL;
}

void
zlt_control_transport_open_standby_async (ZltControlTransport *self, GUri *url,
                                          const ZltTlsOptions *tls, const char *tunnel_id,
                                          const char *standby_id, const char *mac, guint timeout_ms,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  ZltControlTransportClass *klass;

  g_return_if_fail (ZLT_IS_CONTROL_TRANSPORT (self));
  g_return_if_fail (url != NULL && tunnel_id != NULL && standby_id != NULL && mac != NULL);
  klass = ZLT_CONTROL_TRANSPORT_GET_CLASS (self);
  if (klass->open_standby_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_control_transport_open_standby_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _ ("transport “%s” cannot open standby connections"),
                               zlt_transport_get_name (ZLT_TRANSPORT (self)));
      return;
    }
  klass->open_standby_async (self, url, tls, tunnel_id, standby_id, mac, timeout_ms, cancellable,
                             callback, user_data);
}

static void
zlt_control_transport_class_init (ZltControlTransportClass *klass)
{
}

static void
zlt_control_transport_init (ZltControlTransport *self)
{
}
