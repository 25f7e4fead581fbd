/* zlt-tcp-listener.c: accepts on one address and port, announces each connection */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-tcp-listener.h"

struct _ZltTcpListener
{
  ZltListener parent_instance;

  GSocketService *service;
};

G_DEFINE_FINAL_TYPE (ZltTcpListener, zlt_tcp_listener, ZLT_TYPE_LISTENER)

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
             gpointer user_data)
{
  ZltTcpListener *self = user_data;
  g_autoptr (GSocketAddress) peer = g_socket_connection_get_remote_address (connection, NULL);

  zlt_net_set_nodelay (connection);
  zlt_listener_emit_incoming (ZLT_LISTENER (self), G_IO_STREAM (connection), peer);
  return TRUE;
}

static void
zlt_tcp_listener_close (ZltListener *listener)
{
  ZltTcpListener *self = ZLT_TCP_LISTENER (listener);

  if (self->service == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->service, self);
  g_socket_service_stop (self->service);
  g_socket_listener_close (G_SOCKET_LISTENER (self->service));
}

static void
zlt_tcp_listener_dispose (GObject *object)
{
  ZltTcpListener *self = ZLT_TCP_LISTENER (object);

  zlt_listener_close (ZLT_LISTENER (self));
  g_clear_object (&self->service);
  G_OBJECT_CLASS (zlt_tcp_listener_parent_class)->dispose (object);
}

static void
zlt_tcp_listener_class_init (ZltTcpListenerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = zlt_tcp_listener_dispose;
  ZLT_LISTENER_CLASS (klass)->close = zlt_tcp_listener_close;
}

static void
zlt_tcp_listener_init (ZltTcpListener *self)
{
}

ZltListener *
zlt_tcp_listener_new (const char *bind_address, guint16 port, GError **error)
{
  g_autoptr (ZltTcpListener) self = NULL;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (bind_address);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocketAddress) effective = NULL;

  if (inet == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("“%s” is not an IP address to listen on"), bind_address);
      return NULL;
    }
  self = g_object_new (ZLT_TYPE_TCP_LISTENER, NULL);
  self->service = g_socket_service_new ();
  /* bursts of connects must not overflow the kernel's default backlog of 10 */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (self->service), 1024);
  address = g_inet_socket_address_new (inet, port);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (self->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective,
                                      error))
    {
      if (error != NULL && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        {
          g_clear_error (error);
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE,
                       _ ("port %u is already in use on %s"), port, bind_address);
        }
      else
        g_prefix_error (error, _ ("failed to listen on %s:%u: "), bind_address, port);
      return NULL;
    }
  zlt_listener_set_port (ZLT_LISTENER (self),
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
  g_signal_connect (self->service, "incoming", G_CALLBACK (on_incoming), self);
  g_socket_service_start (self->service);
  return ZLT_LISTENER (g_steal_pointer (&self));
}
