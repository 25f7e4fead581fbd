/* zlt-tcp-transport.c: the "tcp" transport: public TCP ports and local dialing
 *
 * A local service is usually named by an address (127.0.0.1): that is dialed with one
 * non-blocking connect and one wait for the socket to be writable, the shortest way
 * to a connected socket. A host name goes through GSocketClient (resolver, address
 * enumeration, its events), which costs several main-loop iterations more. */
#include "config.h"

#include <glib/gi18n-lib.h>

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

/* ---- an address: connect() ---- */

/* While connecting, three sources hold the task: the socket turning writable, the
 * timeout and the cancellable; whichever fires first ends the dial and the others. */
typedef struct
{
  GSocket *socket;
  char *where; /* host:port, for errors */
  GSource *sources[3];
} Dial;

static void
dial_stop_sources (Dial *d)
{
  for (guint i = 0; i < G_N_ELEMENTS (d->sources); i++)
    if (d->sources[i] != NULL)
      {
        g_source_destroy (d->sources[i]);
        g_clear_pointer (&d->sources[i], g_source_unref);
      }
}

static void
dial_free (Dial *d)
{
  dial_stop_sources (d);
  g_clear_object (&d->socket);
  g_free (d->where);
  g_free (d);
}

/* Ends the dial of @task: connected, or the socket's error (or @error). */
static void
dial_done (GTask *task, GError *error)
{
  Dial *d = g_task_get_task_data (task);
  GSocketConnection *connection;

  g_object_ref (task);
  dial_stop_sources (d);
  if (error == NULL && !g_socket_check_connect_result (d->socket, &error))
    g_prefix_error (&error, _ ("cannot connect to %s: "), d->where);
  if (error != NULL)
    {
      g_socket_close (d->socket, NULL);
      g_task_return_error (task, error);
    }
  else
    {
      /* as g_socket_connection_connect_async() leaves it */
      g_socket_set_blocking (d->socket, TRUE);
      connection = g_socket_connection_factory_create_connection (d->socket);
      zlt_net_set_nodelay (connection);
      g_task_return_pointer (task, connection, g_object_unref);
    }
  g_object_unref (task);
}

static gboolean
on_dial_writable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  dial_done (user_data, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
on_dial_timeout (gpointer user_data)
{
  dial_done (user_data, g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, _ ("connection timed out")));
  return G_SOURCE_REMOVE;
}

static gboolean
on_dial_cancelled (GCancellable *cancellable, gpointer user_data)
{
  GError *error = NULL;

  g_cancellable_set_error_if_cancelled (cancellable, &error);
  dial_done (user_data, error);
  return G_SOURCE_REMOVE;
}

static void
dial_watch (Dial *d, guint i, GSource *source, GSourceFunc func, GTask *task)
{
  d->sources[i] = source;
  g_source_set_callback (source, func, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
}

static void
dial_address (ZltTcpTransport *self, GInetAddress *inet, guint16 port, GTask *task)
{
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  g_autoptr (GError) error = NULL;
  GCancellable *cancellable = g_task_get_cancellable (task);
  Dial *d = g_new0 (Dial, 1);

  g_task_set_task_data (task, d, (GDestroyNotify) dial_free);
  d->where = zlt_net_format_address (address);
  d->socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_TCP, &error);
  if (d->socket == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  g_socket_set_blocking (d->socket, FALSE);
  if (g_socket_connect (d->socket, address, NULL, &error))
    {
      dial_done (task, NULL);
      g_object_unref (task);
      return;
    }
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    {
      g_prefix_error (&error, _ ("cannot connect to %s: "), d->where);
      g_socket_close (d->socket, NULL);
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  dial_watch (d, 0, g_socket_create_source (d->socket, G_IO_OUT, NULL),
              G_SOURCE_FUNC (on_dial_writable), task);
  dial_watch (d, 1, g_timeout_source_new_seconds (DIAL_TIMEOUT_S), on_dial_timeout, task);
  if (cancellable != NULL)
    dial_watch (d, 2, g_cancellable_source_new (cancellable), G_SOURCE_FUNC (on_dial_cancelled),
                task);
  g_object_unref (task);
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
    dial_address (self, inet, port, task);
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
