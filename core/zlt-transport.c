/* zlt-transport.c: plugin base for how bytes of a service protocol are listened for and dialed */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-error.h"
#include "zlt-transport.h"

/**
 * ZltTransport:
 * The plugin base of how the bytes of a service protocol are listened for and dialed:
 * the server listens for public connections with its TCP (or UDP) transport, and an
 * agent dials its local services with it. A transport plugin subclasses #ZltTransport,
 * sets #ZltTransportClass.name and #ZltTransportClass.protocol, implements `listen`,
 * `dial_async` and `dial_finish`, and registers the type with
 * zlt_plugin_loader_add_transport_type().
 */

G_DEFINE_ABSTRACT_TYPE (ZltTransport, zlt_transport, G_TYPE_OBJECT)

static GIOStream *
zlt_transport_real_dial_finish (ZltTransport *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
zlt_transport_class_init (ZltTransportClass *klass)
{
  klass->protocol = ZLT_PROTOCOL_TCP;
  klass->dial_finish = zlt_transport_real_dial_finish;
}

static void
zlt_transport_init (ZltTransport *self)
{
}

/**
 * zlt_transport_get_name:
 * @self: a transport
 *
 * Returns: the class's name, e.g. "tcp"
 */
const char *
zlt_transport_get_name (ZltTransport *self)
{
  g_return_val_if_fail (ZLT_IS_TRANSPORT (self), NULL);

  return ZLT_TRANSPORT_GET_CLASS (self)->name;
}

/**
 * zlt_transport_get_protocol:
 * @self: a transport
 *
 * Returns: the service protocol the transport carries
 */
ZltProtocol
zlt_transport_get_protocol (ZltTransport *self)
{
  g_return_val_if_fail (ZLT_IS_TRANSPORT (self), ZLT_PROTOCOL_TCP);

  return ZLT_TRANSPORT_GET_CLASS (self)->protocol;
}

/**
 * zlt_transport_listen:
 * @self: a transport
 * @bind_address: an IP address literal ("0.0.0.0", "::", "127.0.0.1")
 * @port: the port, 0 for any (read the result from zlt_listener_get_port())
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a listener that is already accepting, or %NULL with @error set
 */
ZltListener *
zlt_transport_listen (ZltTransport *self, const char *bind_address, guint16 port, GError **error)
{
  ZltTransportClass *klass;
  g_autoptr (ZltListener) listener = NULL;
  g_autoptr (GError) error_local = NULL;

  g_return_val_if_fail (ZLT_IS_TRANSPORT (self), NULL);
  g_return_val_if_fail (bind_address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  klass = ZLT_TRANSPORT_GET_CLASS (self);
  if (klass->listen == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, _ ("transport %s cannot listen"),
                   klass->name);
      return NULL;
    }
  listener = klass->listen (self, bind_address, port, &error_local);
  if (listener == NULL)
    {
      if (error_local == NULL)
        g_set_error (&error_local, ZLT_ERROR, ZLT_ERROR_FAILED, _ ("unknown error"));
      g_propagate_prefixed_error (error, g_steal_pointer (&error_local),
                                  _ ("failed to listen on %s port %u: "), bind_address,
                                  (guint) port);
      return NULL;
    }
  return g_steal_pointer (&listener);
}

/**
 * zlt_transport_dial_async:
 * @self: a transport
 * @host: a host name or address
 * @port: a port
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when connected, or not
 * @user_data: data for @callback
 *
 * Connects to @host:@port; finish with zlt_transport_dial_finish().
 */
void
zlt_transport_dial_async (ZltTransport *self, const char *host, guint16 port,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  ZltTransportClass *klass;

  g_return_if_fail (ZLT_IS_TRANSPORT (self));
  g_return_if_fail (host != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  klass = ZLT_TRANSPORT_GET_CLASS (self);
  if (klass->dial_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, zlt_transport_dial_async, ZLT_ERROR,
                               ZLT_ERROR_FAILED, _ ("transport %s cannot dial"), klass->name);
      return;
    }
  klass->dial_async (self, host, port, cancellable, callback, user_data);
}

/**
 * zlt_transport_dial_finish:
 * @self: a transport
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the connected stream, or %NULL with @error set
 */
GIOStream *
zlt_transport_dial_finish (ZltTransport *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (ZLT_IS_TRANSPORT (self), NULL);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_async_result_is_tagged (result, zlt_transport_dial_async))
    return g_task_propagate_pointer (G_TASK (result), error);
  return ZLT_TRANSPORT_GET_CLASS (self)->dial_finish (self, result, error);
}
