/* zlt-daemon-metrics.c: the daemon's numbers for Prometheus, on a loopback HTTP port.
 *
 * What frp's and cloudflared's operators scrape: tunnels, services, connections, bytes,
 * waiting connections, relays, heartbeat latency, node tunnels' states. Gauges are read
 * from the running roles at each scrape; the counters (connections, bytes) add what
 * removed services carried, so they only grow. Off by default ([daemon]
 * metrics-listen); it tells what runs, not who connects, and answers nothing else. */
#include "config.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>

#include "zlt-accept-loop.h"
#include "zlt-daemon-metrics.h"
#include "zlt-util.h"

/* connections and bytes of services that are gone, per role */
typedef struct
{
  guint64 connections;
  guint64 bytes_in;
  guint64 bytes_out;
} Gone;

struct _ZltDaemonMetrics
{
  GObject parent_instance;

  ZltDaemon *daemon; /* owned */
  SoupServer *soup;
  ZltAcceptLoop *accept; /* ours, not soup_server_listen(): see on_accept */
  char *address;
  Gone gone[2]; /* [0] server, [1] agent */
};

G_DEFINE_FINAL_TYPE (ZltDaemonMetrics, zlt_daemon_metrics, G_TYPE_OBJECT)

static void
add_gone (Gone *gone, ZltService *service)
{
  gone->connections += zlt_service_get_total_connections (service);
  gone->bytes_in += zlt_service_get_bytes_in (service);
  gone->bytes_out += zlt_service_get_bytes_out (service);
}

static void
on_server_service_removed (ZltRegistry *registry, ZltService *service, gpointer user_data)
{
  add_gone (&ZLT_DAEMON_METRICS (user_data)->gone[0], service);
}

static void
on_agent_service_removed (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  add_gone (&ZLT_DAEMON_METRICS (user_data)->gone[1], service);
}

/* ---- the exposition ---- */

static void
metric_head (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* label values: backslash, quote and newline escaped, as the format asks */
static void
append_label_value (GString *out, const char *value)
{
  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (out, '\\');
      if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

typedef struct
{
  guint n_services[2]; /* [0] tcp, [1] udp */
  guint active;
  guint64 total;
  guint64 bytes_in;
  guint64 bytes_out;
} Sums;

static void
sum_service (Sums *sums, ZltService *service)
{
  sums->n_services[zlt_service_get_protocol (service) == ZLT_PROTOCOL_UDP]++;
  sums->active += zlt_service_get_active_connections (service);
  sums->total += zlt_service_get_total_connections (service);
  sums->bytes_in += zlt_service_get_bytes_in (service);
  sums->bytes_out += zlt_service_get_bytes_out (service);
}

/* the per-role families, each family's samples together as the format asks; roles
 * the daemon does not run are left out */
static void
render_roles (GString *out, const Sums sums[2], const Gone gone[2], const gboolean runs[2])
{
  static const char *const roles[2] = { "server", "agent" };

  metric_head (out, "zlt_services", "gauge", "Registered services, by role and protocol.");
  for (guint r = 0; r < 2; r++)
    if (runs[r])
      g_string_append_printf (out,
                              "zlt_services{role=\"%s\",protocol=\"tcp\"} %u\n"
                              "zlt_services{role=\"%s\",protocol=\"udp\"} %u\n",
                              roles[r], sums[r].n_services[0], roles[r], sums[r].n_services[1]);
  metric_head (out, "zlt_connections_active", "gauge", "Connections being relayed, by role.");
  for (guint r = 0; r < 2; r++)
    if (runs[r])
      g_string_append_printf (out, "zlt_connections_active{role=\"%s\"} %u\n", roles[r],
                              sums[r].active);
  metric_head (out, "zlt_connections_total", "counter", "Connections relayed since the start.");
  for (guint r = 0; r < 2; r++)
    if (runs[r])
      g_string_append_printf (out, "zlt_connections_total{role=\"%s\"} %" G_GUINT64_FORMAT "\n",
                              roles[r], sums[r].total + gone[r].connections);
  metric_head (out, "zlt_bytes_total", "counter",
               "Bytes relayed since the start; in: toward the services.");
  for (guint r = 0; r < 2; r++)
    if (runs[r])
      g_string_append_printf (
          out,
          "zlt_bytes_total{role=\"%s\",direction=\"in\"} %" G_GUINT64_FORMAT "\n"
          "zlt_bytes_total{role=\"%s\",direction=\"out\"} %" G_GUINT64_FORMAT "\n",
          roles[r], sums[r].bytes_in + gone[r].bytes_in, roles[r],
          sums[r].bytes_out + gone[r].bytes_out);
}

char *
zlt_daemon_metrics_render (ZltDaemonMetrics *self)
{
  ZltServer *server;
  ZltAgent *agent;
  ZltAccessManager *access;
  g_autoptr (GPtrArray) nodes = NULL;
  GString *out = g_string_new (NULL);
  Sums sums[2] = { { { 0 } } };
  guint n_tunnels = 0, n_held = 0;

  g_return_val_if_fail (ZLT_IS_DAEMON_METRICS (self), NULL);

  server = zlt_daemon_get_server (self->daemon);
  agent = zlt_daemon_get_agent (self->daemon);
  access = zlt_daemon_get_access_manager (self->daemon);

  if (server != NULL)
    {
      ZltRegistry *registry = zlt_server_get_registry (server);
      g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (registry);

      for (guint i = 0; i < tunnels->len; i++)
        {
          ZltTunnel *tunnel = g_ptr_array_index (tunnels, i);
          g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);

          n_tunnels++;
          n_held += zlt_registry_is_held (registry, tunnel);
          for (guint j = 0; j < services->len; j++)
            sum_service (&sums[0], g_ptr_array_index (services, j));
        }
    }
  if (agent != NULL)
    {
      g_autoptr (GPtrArray) services = zlt_tunnel_get_services (zlt_agent_get_tunnel (agent));

      for (guint j = 0; j < services->len; j++)
        sum_service (&sums[1], g_ptr_array_index (services, j));
    }

  metric_head (out, "zlt_up", "gauge", "1 while the daemon answers.");
  g_string_append (out, "zlt_up 1\n");

  metric_head (out, "zlt_tunnels", "gauge",
               "Tunnels of the server role: agents connected, and those held for a resume.");
  if (server != NULL)
    {
      g_string_append_printf (out, "zlt_tunnels{state=\"connected\"} %u\n", n_tunnels - n_held);
      g_string_append_printf (out, "zlt_tunnels{state=\"held\"} %u\n", n_held);
    }
  metric_head (out, "zlt_peers", "gauge",
               "Control channels of the server role, authenticated or not yet.");
  if (server != NULL)
    g_string_append_printf (out, "zlt_peers %u\n", zlt_server_get_n_peers (server));
  metric_head (out, "zlt_auth_failures_total", "counter",
               "Logins the server role refused, by reason (bad_token, expired_token, "
               "legacy_refused, ...).");
  if (server != NULL)
    for (guint code = ZLT_REASON_NONE + 1; code <= ZLT_REASON_MAX; code++)
      {
        g_autofree char *reason = g_ascii_strdown (zlt_reason_code_to_string (code), -1);

        g_string_append_printf (out,
                                "zlt_auth_failures_total{reason=\"%s\"} %" G_GUINT64_FORMAT "\n",
                                reason, zlt_server_get_auth_failures (server, code));
      }
  metric_head (out, "zlt_pending_connections", "gauge",
               "Public connections waiting for their agent's data connection.");
  if (server != NULL)
    g_string_append_printf (out, "zlt_pending_connections %u\n", zlt_server_get_n_pending (server));

  {
    const gboolean runs[2] = { server != NULL, agent != NULL };

    render_roles (out, sums, self->gone, runs);
  }

  metric_head (out, "zlt_relays", "gauge", "Relays running, by role.");
  if (server != NULL)
    g_string_append_printf (out, "zlt_relays{role=\"server\"} %u\n",
                            zlt_server_get_n_relays (server));
  if (agent != NULL)
    g_string_append_printf (out, "zlt_relays{role=\"agent\"} %u\n", zlt_agent_get_n_relays (agent));

  metric_head (out, "zlt_relay_errors_total", "counter",
               "Relayed connections that ended with a failure (a reset, an I/O error, an idle "
               "timeout), by role.");
  if (server != NULL)
    g_string_append_printf (out, "zlt_relay_errors_total{role=\"server\"} %" G_GUINT64_FORMAT "\n",
                            zlt_server_get_n_relay_errors (server));
  if (agent != NULL)
    g_string_append_printf (out, "zlt_relay_errors_total{role=\"agent\"} %" G_GUINT64_FORMAT "\n",
                            zlt_agent_get_n_relay_errors (agent));
  metric_head (out, "zlt_agent_connected", "gauge", "1 while the agent role's tunnel is up.");
  if (agent != NULL)
    g_string_append_printf (out, "zlt_agent_connected %d\n",
                            zlt_agent_get_state (agent) == ZLT_TUNNEL_STATE_CONNECTED);

  metric_head (out, "zlt_access_sessions", "gauge", "Access sessions run by the daemon.");
  if (access != NULL)
    {
      g_autoptr (GPtrArray) sessions = zlt_access_manager_get_sessions (access);

      g_string_append_printf (out, "zlt_access_sessions %u\n", sessions->len);
    }

  metric_head (out, "zlt_node_connected", "gauge", "1 while a node tunnel is connected.");
  nodes = zlt_node_manager_get_tunnels (zlt_daemon_get_node_manager (self->daemon));
  for (guint i = 0; i < nodes->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (nodes, i);

      g_string_append (out, "zlt_node_connected{node=\"");
      append_label_value (out, zlt_node_tunnel_get_name (node));
      g_string_append_printf (out, "\"} %d\n",
                              zlt_node_tunnel_get_state (node) == ZLT_TUNNEL_STATE_CONNECTED);
    }

  metric_head (out, "zlt_heartbeat_latency_seconds", "gauge",
               "Round trip of the last heartbeat, of the agent and of outbound node tunnels.");
  if (agent != NULL && zlt_agent_get_latency_us (agent) >= 0)
    g_string_append_printf (out, "zlt_heartbeat_latency_seconds{tunnel=\"agent\"} %.6f\n",
                            zlt_agent_get_latency_us (agent) / (double) G_USEC_PER_SEC);
  for (guint i = 0; i < nodes->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (nodes, i);
      gint64 latency = zlt_node_tunnel_get_latency_us (node);

      if (latency < 0)
        continue;
      g_string_append (out, "zlt_heartbeat_latency_seconds{tunnel=\"node\",node=\"");
      append_label_value (out, zlt_node_tunnel_get_name (node));
      g_string_append_printf (out, "\"} %.6f\n", latency / (double) G_USEC_PER_SEC);
    }
  return g_string_free (out, FALSE);
}

static void
handle_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
  ZltDaemonMetrics *self = user_data;
  char *text;

  /* a scrape is one request: each connection ends with its answer */
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                "close");
  if (g_strcmp0 (path, "/metrics") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      return;
    }
  text = zlt_daemon_metrics_render (self);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain; version=0.0.4; charset=utf-8",
                                    SOUP_MEMORY_TAKE, text, strlen (text));
}

/* Connections are accepted here and handed to libsoup: soup_server_listen()'s own
 * listener in libsoup 3.2 leaks every connection it accepted (fixed in 3.3) */
static void
on_accept (ZltAcceptLoop *loop, GSocketConnection *connection, gpointer user_data)
{
  ZltDaemonMetrics *self = user_data;
  g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (connection, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  g_autoptr (GError) error = NULL;

  if (local == NULL || remote == NULL
      || !soup_server_accept_iostream (self->soup, G_IO_STREAM (connection), local, remote, &error))
    {
      g_debug ("metrics: connection not taken: %s", error != NULL ? error->message : "no address");
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
    }
}

/* ---- GObject ---- */

static void
zlt_daemon_metrics_dispose (GObject *object)
{
  ZltDaemonMetrics *self = ZLT_DAEMON_METRICS (object);

  if (self->daemon != NULL)
    {
      ZltServer *server = zlt_daemon_get_server (self->daemon);
      ZltAgent *agent = zlt_daemon_get_agent (self->daemon);

      if (server != NULL)
        g_signal_handlers_disconnect_by_data (zlt_server_get_registry (server), self);
      if (agent != NULL)
        g_signal_handlers_disconnect_by_data (zlt_agent_get_tunnel (agent), self);
    }
  if (self->accept != NULL)
    zlt_accept_loop_close (self->accept);
  g_clear_object (&self->accept);
  if (self->soup != NULL)
    soup_server_disconnect (self->soup);
  g_clear_object (&self->soup);
  g_clear_object (&self->daemon);
  G_OBJECT_CLASS (zlt_daemon_metrics_parent_class)->dispose (object);
}

static void
zlt_daemon_metrics_finalize (GObject *object)
{
  g_free (ZLT_DAEMON_METRICS (object)->address);
  G_OBJECT_CLASS (zlt_daemon_metrics_parent_class)->finalize (object);
}

static void
zlt_daemon_metrics_class_init (ZltDaemonMetricsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_daemon_metrics_dispose;
  object_class->finalize = zlt_daemon_metrics_finalize;
}

static void
zlt_daemon_metrics_init (ZltDaemonMetrics *self)
{
}

ZltDaemonMetrics *
zlt_daemon_metrics_new (ZltDaemon *daemon, const char *listen, GError **error)
{
  g_autoptr (ZltDaemonMetrics) self = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) address = NULL;
  g_autofree char *host = NULL;
  guint16 port;

  g_return_val_if_fail (ZLT_IS_DAEMON (daemon), NULL);
  g_return_val_if_fail (listen != NULL, NULL);

  if (!zlt_net_parse_host_port (listen, "127.0.0.1", &host, &port, error))
    return NULL;
  inet = g_inet_address_new_from_string (host);
  if (inet == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("metrics-listen: “%s” is not an IP address"), host);
      return NULL;
    }
  self = g_object_new (ZLT_TYPE_DAEMON_METRICS, NULL);
  self->daemon = g_object_ref (daemon);
  self->soup = soup_server_new ("server-header", NULL, NULL);
  soup_server_add_handler (self->soup, NULL, handle_request, self, NULL);
  address = g_inet_socket_address_new (inet, port);
  self->accept = zlt_accept_loop_new (address, error);
  if (self->accept == NULL)
    {
      g_prefix_error (error, _ ("cannot serve metrics on %s: "), listen);
      return NULL;
    }
  self->address = zlt_net_join_host_port (host, zlt_accept_loop_get_port (self->accept));
  zlt_accept_loop_start (self->accept, on_accept, self);

  if (zlt_daemon_get_server (daemon) != NULL)
    g_signal_connect (zlt_server_get_registry (zlt_daemon_get_server (daemon)), "service-removed",
                      G_CALLBACK (on_server_service_removed), self);
  if (zlt_daemon_get_agent (daemon) != NULL)
    g_signal_connect (zlt_agent_get_tunnel (zlt_daemon_get_agent (daemon)), "service-removed",
                      G_CALLBACK (on_agent_service_removed), self);
  return g_steal_pointer (&self);
}

const char *
zlt_daemon_metrics_get_address (ZltDaemonMetrics *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON_METRICS (self), NULL);
  return self->address;
}
