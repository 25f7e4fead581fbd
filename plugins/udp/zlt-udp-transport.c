/* zlt-udp-transport.c: the "udp" transport: public UDP ports and local UDP services
 *
 * Both ends speak the framed flow format (zlt-udp-flow-stream.c), so the relay carries
 * UDP flows over data connections like TCP connections. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-udp-flow-stream.h"
#include "zlt-udp-listener.h"

#define ZLT_TYPE_UDP_TRANSPORT (zlt_udp_transport_get_type ())
G_DECLARE_FINAL_TYPE (ZltUdpTransport, zlt_udp_transport, ZLT, UDP_TRANSPORT, ZltTransport)

struct _ZltUdpTransport
{
  ZltTransport parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltUdpTransport, zlt_udp_transport, ZLT_TYPE_TRANSPORT)

typedef struct
{
  char *host;
  guint16 port;
} DialData;

static void
dial_data_free (DialData *data)
{
  g_free (data->host);
  g_free (data);
}

static ZltListener *
zlt_udp_transport_listen (ZltTransport *transport, const char *bind_address, guint16 port,
                          GError **error)
{
  return zlt_udp_listener_new (bind_address, port, error);
}

/* "Connecting" a UDP socket only sets its default peer: nothing is sent. */
static GIOStream *
dial_address (GInetAddress *inet, guint16 port, GError **error)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);

  socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_DATAGRAM,
                         G_SOCKET_PROTOCOL_UDP, error);
  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  zlt_udp_socket_set_buffers (socket);
  if (!g_socket_connect (socket, address, NULL, error))
    return NULL;
  return G_IO_STREAM (zlt_udp_flow_stream_new_connected (socket, address));
}

static void
resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  DialData *data = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);

  if (addresses == NULL)
    {
      g_prefix_error (&error, _ ("failed to resolve %s: "), data->host);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* the first address that takes a socket; UDP cannot tell whether anyone listens */
  for (GList *l = addresses; l != NULL; l = l->next)
    {
      g_autoptr (GError) error_local = NULL;
      GIOStream *flow = dial_address (l->data, data->port, &error_local);

      if (flow != NULL)
        {
          g_resolver_free_addresses (addresses);
          g_task_return_pointer (task, flow, g_object_unref);
          return;
        }
      if (error == NULL)
        error = g_steal_pointer (&error_local);
    }
  g_resolver_free_addresses (addresses);
  {
    g_autofree char *where = zlt_net_join_host_port (data->host, data->port);
    g_prefix_error (&error, _ ("failed to dial UDP %s: "), where);
  }
  g_task_return_error (task, g_steal_pointer (&error));
}

static void
zlt_udp_transport_dial_async (ZltTransport *transport, const char *host, guint16 port,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (transport, cancellable, callback, user_data);
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autoptr (GError) error = NULL;
  g_autoptr (GResolver) resolver = NULL;
  DialData *data;
  GIOStream *flow;

  g_task_set_source_tag (task, zlt_udp_transport_dial_async);
  if (inet != NULL)
    {
      flow = dial_address (inet, port, &error);
      if (flow == NULL)
        {
          g_autofree char *where = zlt_net_join_host_port (host, port);
          g_prefix_error (&error, _ ("failed to dial UDP %s: "), where);
          g_task_return_error (task, g_steal_pointer (&error));
        }
      else
        {
          g_task_return_pointer (task, flow, g_object_unref);
        }
      return;
    }
  data = g_new0 (DialData, 1);
  data->host = g_strdup (host);
  data->port = port;
  g_task_set_task_data (task, data, (GDestroyNotify) dial_data_free);
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, host, cancellable, resolved, g_steal_pointer (&task));
}

static void
zlt_udp_transport_class_init (ZltUdpTransportClass *klass)
{
  ZltTransportClass *transport_class = ZLT_TRANSPORT_CLASS (klass);

  transport_class->name = "udp";
  transport_class->protocol = ZLT_PROTOCOL_UDP;
  transport_class->listen = zlt_udp_transport_listen;
  transport_class->dial_async = zlt_udp_transport_dial_async;
  /* dial_finish: the base class propagates the task's pointer */
}

static void
zlt_udp_transport_init (ZltUdpTransport *self)
{
}

static gboolean
udp_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_UDP_TRANSPORT, error);
}

ZLT_PLUGIN_DEFINE (udp_plugin_register)
