/* zlt-tcp-listener.c: accepts on one address and port (ZltAcceptLoop), announces each
 * connection */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-tcp-listener.h"

struct _ZltTcpListener
{
  ZltListener parent_instance;

  ZltAcceptLoop *loop;
};

G_DEFINE_FINAL_TYPE (ZltTcpListener, zlt_tcp_listener, ZLT_TYPE_LISTENER)

static void
on_accepted (ZltAcceptLoop *loop, GSocketConnection *connection, gpointer user_data)
{
  ZltTcpListener *self = user_data;
  g_autoptr (GSocketAddress) peer = g_socket_connection_get_remote_address (connection, NULL);

  zlt_listener_emit_incoming (ZLT_LISTENER (self), G_IO_STREAM (connection), peer);
}

static void
zlt_tcp_listener_close (ZltListener *listener)
{
  ZltTcpListener *self = ZLT_TCP_LISTENER (listener);

  if (self->loop != NULL)
    zlt_accept_loop_close (self->loop);
}

static void
zlt_tcp_listener_dispose (GObject *object)
{
  ZltTcpListener *self = ZLT_TCP_LISTENER (object);

  zlt_listener_close (ZLT_LISTENER (self));
  g_clear_object (&self->loop);
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

  if (inet == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("“%s” is not an IP address to listen on"), bind_address);
      return NULL;
    }
  self = g_object_new (ZLT_TYPE_TCP_LISTENER, NULL);
  address = g_inet_socket_address_new (inet, port);
  self->loop = zlt_accept_loop_new (address, error);
  if (self->loop == NULL)
    {
      if (error != NULL && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        {
          g_clear_error (error);
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE,
                       _ ("port %u is already in use on %s"), port, bind_address);
        }
      else
        {
          g_autofree char *where = zlt_net_join_host_port (bind_address, port);
          g_prefix_error (error, _ ("failed to listen on %s: "), where);
        }
      return NULL;
    }
  zlt_listener_set_port (ZLT_LISTENER (self), zlt_accept_loop_get_port (self->loop));
  zlt_accept_loop_start (self->loop, on_accepted, self);
  return ZLT_LISTENER (g_steal_pointer (&self));
}
