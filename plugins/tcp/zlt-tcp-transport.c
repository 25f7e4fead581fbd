/* zlt-tcp-transport.c: the "tcp" transport: public TCP ports and local dialing
 *
 * A local service is usually named by an address (127.0.0.1): that is dialed with one
 * non-blocking connect and one wait for the socket to be writable, the shortest way
 * to a connected socket. A host name goes through GSocketClient (resolver, address
 * enumeration, its events), which costs several main-loop iterations more. */
#include "config.h"

#include "zlt-tcp-listener.h"

#define ZLT_TYPE_TCP_TRANSPORT (zlt_tcp_transport_get_type ())
G_DECLARE_FINAL_TYPE (ZltTcpTransport, zlt_tcp_transport, ZLT, TCP_TRANSPORT, ZltTransport)

struct _ZltTcpTransport
{
  ZltTransport parent_instance;

  GSocketClient *client;
};

G_DEFINE_FINAL_TYPE (ZltTcpTransport, zlt_tcp_transport, ZLT_TYPE_TRANSPORT)

static ZltListener *
zlt_tcp_transport_listen (ZltTransport *transport, const char *bind_address, guint16 port,
                          GError **error)
{
  return zlt_tcp_listener_new (bind_address, port, error);
}

/* a local service that does not answer within this is as good as down */
#define DIAL_TIMEOUT_S 10

/* ---- an address: zlt_net_dial_async() ---- */

static void
address_dialed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  GSocketConnection *connection = zlt_net_dial_finish (result, &error);

  if (connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
}

/* ---- a host name: GSocketClient ---- */

static void
dialed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (connection == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  zlt_net_set_nodelay (connection);
  /* the timeout was for the connect: GSocketClient leaves it on the socket, where it
   * would end any read or write that waits longer (an idle connection after 10 s) */
  g_socket_set_timeout (g_socket_connection_get_socket (connection), 0);
  g_task_return_pointer (task, connection, g_object_unref);
}

static void
zlt_tcp_transport_dial_async (ZltTransport *transport, const char *host, guint16 port,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  ZltTcpTransport *self = ZLT_TCP_TRANSPORT (transport);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);

  g_task_set_source_tag (task, zlt_tcp_transport_dial_async);
  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  if (inet != NULL)
    {
      g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);

      zlt_net_dial_async (address, DIAL_TIMEOUT_S, cancellable, address_dialed, task);
    }
  else
    g_socket_client_connect_to_host_async (self->client, host, port, cancellable, dialed, task);
}

static void
zlt_tcp_transport_dispose (GObject *object)
{
  g_clear_object (&ZLT_TCP_TRANSPORT (object)->client);
  G_OBJECT_CLASS (zlt_tcp_transport_parent_class)->dispose (object);
}

static void
zlt_tcp_transport_class_init (ZltTcpTransportClass *klass)
{
  ZltTransportClass *transport_class = ZLT_TRANSPORT_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = zlt_tcp_transport_dispose;
  transport_class->name = "tcp";
  transport_class->protocol = ZLT_PROTOCOL_TCP;
  transport_class->listen = zlt_tcp_transport_listen;
  transport_class->dial_async = zlt_tcp_transport_dial_async;
  /* dial_finish: the base class propagates the task's pointer */
}

static void
zlt_tcp_transport_init (ZltTcpTransport *self)
{
  self->client = g_socket_client_new ();
  g_socket_client_set_timeout (self->client, DIAL_TIMEOUT_S);
  /* local services are next door: no proxy lookup (libproxy costs a thread hop and
   * a file read per connection) */
  g_socket_client_set_enable_proxy (self->client, FALSE);
}

static gboolean
tcp_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_TCP_TRANSPORT, error);
}

ZLT_PLUGIN_DEFINE (tcp_plugin_register)
