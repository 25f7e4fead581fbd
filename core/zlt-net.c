/* zlt-net.c */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <gio/gfiledescriptorbased.h>

#include "zlt-error.h"
#include "zlt-net.h"
#include "zlt-throttled-stream.h"

/**
 * zlt_net_join_host_port:
 * @host: a host name or address
 * @port: a port
 *
 * Returns: (transfer full): "1.2.3.4:5" or "[::1]:5": @host (an IPv6 address gets its
 *   brackets) and @port
 */
char *
zlt_net_join_host_port (const char *host, guint port)
{
  /* an IPv6 address (any host with a colon) needs brackets to tell it from the port */
  if (strchr (host, ':') != NULL && host[0] != '[')
    return g_strdup_printf ("[%s]:%u", host, port);
  return g_strdup_printf ("%s:%u", host, port);
}

/**
 * zlt_net_format_address:
 * @address: (nullable): a socket address
 *
 * Returns: (transfer full) (nullable): "1.2.3.4:5" or "[::1]:5"; %NULL for anything that
 *   is not an inet address
 */
char *
zlt_net_format_address (GSocketAddress *address)
{
  GInetAddress *inet;
  g_autofree char *host = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return NULL;
  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  host = g_inet_address_to_string (inet);
  return zlt_net_join_host_port (host,
                                 g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));
}

/**
 * zlt_net_set_nodelay:
 * @connection: a TCP connection
 *
 * Sets TCP_NODELAY: small control writes must not wait for Nagle or delayed ACKs.
 */
void
zlt_net_set_nodelay (GSocketConnection *connection)
{
  GSocket *socket;

  g_return_if_fail (G_IS_SOCKET_CONNECTION (connection));
  socket = g_socket_connection_get_socket (connection);
  /* GSocketClient makes its sockets with the default protocol, which for an inet
   * stream socket is TCP too */
  if (g_socket_get_socket_type (socket) == G_SOCKET_TYPE_STREAM
      && (g_socket_get_family (socket) == G_SOCKET_FAMILY_IPV4
          || g_socket_get_family (socket) == G_SOCKET_FAMILY_IPV6)
      && (g_socket_get_protocol (socket) == G_SOCKET_PROTOCOL_TCP
          || g_socket_get_protocol (socket) == G_SOCKET_PROTOCOL_DEFAULT))
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
}

/**
 * zlt_net_host_is_loopback:
 * @host: (nullable): a host name or address, brackets allowed
 *
 * Returns: whether @host is "localhost", in 127.0.0.0/8 or ::1: traffic that never
 *   leaves the host
 */
gboolean
zlt_net_host_is_loopback (const char *host)
{
  g_autofree char *bare = NULL;
  g_autoptr (GInetAddress) address = NULL;
  gsize len;

  if (host == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  len = strlen (host);
  bare = len >= 2 && host[0] == '[' && host[len - 1] == ']' ? g_strndup (host + 1, len - 2)
                                                            : g_strdup (host);
  address = g_inet_address_new_from_string (bare);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

/**
 * zlt_net_parse_host_port:
 * @str: "host:port", "[v6]:port", ":port" or "port"
 * @default_host: (nullable): the host when @str has none
 * @host: (out) (transfer full): the host
 * @port: (out): the port
 * @error: return location for a #GError
 *
 * Returns: %TRUE when @str parsed
 */
gboolean
zlt_net_parse_host_port (const char *str, const char *default_host, char **host, guint16 *port,
                         GError **error)
{
  const char *colon;
  const char *port_str;
  g_autofree char *h = NULL;
  guint64 value;

  g_return_val_if_fail (str != NULL, FALSE);

  if (str[0] == '[')
    {
      const char *end = strchr (str, ']');
      if (end == NULL || end[1] != ':')
        goto bad;
      h = g_strndup (str + 1, end - str - 1);
      port_str = end + 2;
    }
  else if ((colon = strrchr (str, ':')) != NULL)
    {
      if (strchr (str, ':') != colon)
        goto bad; /* bare IPv6 needs brackets */
      h = colon == str ? g_strdup (default_host) : g_strndup (str, colon - str);
      port_str = colon + 1;
    }
  else
    {
      h = g_strdup (default_host);
      port_str = str;
    }
  if (h == NULL || *h == '\0' || !g_ascii_string_to_unsigned (port_str, 10, 0, 65535, &value, NULL))
    goto bad;
  if (host != NULL)
    *host = g_steal_pointer (&h);
  if (port != NULL)
    *port = (guint16) value;
  return TRUE;

bad:
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
               _ ("“%s” is not an address of the form host:port"), str);
  return FALSE;
}

/* the GSocket a socket's own stream reads or writes (GSocketInputStream and
 * GSocketOutputStream say so in their "socket" property), under any filter streams */
static GSocket *
socket_under (GObject *stream)
{
  GParamSpec *pspec;
  GSocket *socket = NULL;

  while (G_IS_FILTER_INPUT_STREAM (stream))
    stream = G_OBJECT (g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream)));
  while (G_IS_FILTER_OUTPUT_STREAM (stream))
    stream = G_OBJECT (g_filter_output_stream_get_base_stream (G_FILTER_OUTPUT_STREAM (stream)));
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (stream), "socket");
  if (pspec == NULL || pspec->value_type != G_TYPE_SOCKET || !(pspec->flags & G_PARAM_READABLE))
    return NULL;
  g_object_get (stream, "socket", &socket, NULL);
  return socket;
}

/**
 * zlt_net_clear_socket_timeout:
 * @stream: a stream
 *
 * Takes off any #GSocket timeout on the sockets under @stream (a socket connection, a
 * TLS connection's base, a socket's own streams inside a #GSimpleIOStream, under filter
 * streams): whoever keeps time on the stream now (a relay's idle timeout) does so alone.
 * #GSocketClient leaves its connect timeout on every socket it dials.
 */
void
zlt_net_clear_socket_timeout (GIOStream *stream)
{
  g_return_if_fail (G_IS_IO_STREAM (stream));

  if (G_IS_SOCKET_CONNECTION (stream))
    {
      g_socket_set_timeout (g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream)), 0);
      return;
    }
  if (G_IS_TLS_CONNECTION (stream))
    {
      g_autoptr (GIOStream) base = NULL;

      g_object_get (stream, "base-io-stream", &base, NULL);
      if (base != NULL)
        zlt_net_clear_socket_timeout (base);
      return;
    }
  for (guint i = 0; i < 2; i++)
    {
      GObject *half = i == 0 ? G_OBJECT (g_io_stream_get_input_stream (stream))
                             : G_OBJECT (g_io_stream_get_output_stream (stream));
      g_autoptr (GSocket) socket = half != NULL ? socket_under (half) : NULL;

      if (socket != NULL)
        g_socket_set_timeout (socket, 0);
    }
}

/**
 * zlt_net_stream_socket_fd:
 * @stream: a stream
 * @socket: (out) (optional) (transfer none) (nullable): the #GSocket, unowned, when the
 *   stream owns one (it closes the socket when it is closed), %NULL otherwise
 *
 * Returns: the descriptor of the socket under @stream: a socket connection's own, a TLS
 *   connection's base connection's (a rate-limited stream's base's), or that of an output
 *   stream which writes a socket directly (a socket's stream inside a #GSimpleIOStream); -1 when there is none
 */
int
zlt_net_stream_socket_fd (GIOStream *stream, GSocket **socket)
{
  GOutputStream *out;

  g_return_val_if_fail (G_IS_IO_STREAM (stream), -1);

  if (socket != NULL)
    *socket = NULL;
  if (G_IS_SOCKET_CONNECTION (stream))
    {
      GSocket *sock = g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream));

      if (sock == NULL || g_socket_is_closed (sock))
        return -1;
      if (socket != NULL)
        *socket = sock;
      return g_socket_get_fd (sock);
    }
  if (G_IS_TLS_CONNECTION (stream))
    {
      g_autoptr (GIOStream) base = NULL;

      /* the TLS connection holds its base stream for as long as it lives */
      g_object_get (stream, "base-io-stream", &base, NULL);
      return base != NULL ? zlt_net_stream_socket_fd (base, socket) : -1;
    }
  if (ZLT_IS_THROTTLED_STREAM (stream)) /* a rate-limited stream: the socket under it */
    return zlt_net_stream_socket_fd (
        zlt_throttled_stream_get_base_stream (ZLT_THROTTLED_STREAM (stream)), socket);
  out = g_io_stream_get_output_stream (stream);
  if (G_IS_FILE_DESCRIPTOR_BASED (out))
    {
      int fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (out));
      int type;
      socklen_t len = sizeof type;

      if (fd >= 0 && getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
        return fd;
    }
  return -1;
}

/**
 * zlt_net_set_reset_on_close:
 * @fd: a socket descriptor
 * @reset: whether closing sends a reset
 *
 * SO_LINGER {on, 0} when @reset (closing the socket sends a TCP reset and drops unsent
 * bytes), or linger off (close ends the connection with FIN after unsent bytes).
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_net_set_reset_on_close (int fd, gboolean reset)
{
  struct linger lg = { .l_onoff = reset ? 1 : 0, .l_linger = 0 };

  g_return_val_if_fail (fd >= 0, FALSE);
  return setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0;
}

/**
 * zlt_net_close_with_reset:
 * @stream: a stream
 *
 * Gives up on @stream with a TCP reset instead of an orderly end: the socket under it is
 * set to reset on close and, when the stream owns it, closed at once (so no TLS
 * close_notify goes out), then @stream is closed. For a connection that is cut (a
 * failure, an administrative end) and whose peer must not take it for complete.
 */
void
zlt_net_close_with_reset (GIOStream *stream)
{
  GSocket *socket = NULL;
  int fd;

  g_return_if_fail (G_IS_IO_STREAM (stream));

  fd = zlt_net_stream_socket_fd (stream, &socket);
  if (fd >= 0)
    zlt_net_set_reset_on_close (fd, TRUE);
  if (socket != NULL)
    g_socket_close (socket, NULL);
  /* a TLS connection's close_notify now fails on the closed socket, as it should */
  g_io_stream_close_async (stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
}

/* ---- dialing an address ---- */

/* While connecting, up to three sources hold the task: the socket turning writable, the
 * timeout and the cancellable; whichever fires first ends the dial and the others. */
typedef struct
{
  GSocket *socket;
  GSocketAddress *address; /* formatted only for an error */
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
  g_clear_object (&d->address);
  g_free (d);
}

static void
dial_prefix_error (Dial *d, GError **error)
{
  g_autofree char *where = zlt_net_format_address (d->address);

  g_prefix_error (error, _ ("cannot connect to %s: "), where);
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
    dial_prefix_error (d, &error);
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

static gboolean
dial_is_loopback (GSocketAddress *address)
{
  return g_inet_address_get_is_loopback (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
}

/* Whether a pending connect has completed (or failed) already. */
static gboolean
dial_connected_now (GSocket *socket)
{
  struct pollfd pfd = { .fd = g_socket_get_fd (socket), .events = POLLOUT };

  return poll (&pfd, 1, 0) == 1 && (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) != 0;
}

/**
 * zlt_net_dial_async:
 * @address: an inet socket address
 * @timeout_s: seconds to give up after, 0 for never
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when connected, or not
 * @user_data: data for @callback
 *
 * Connects to @address with one non-blocking connect() and one wait for the socket to
 * become writable (none on loopback, where connect() completes at once): the shortest
 * way to a connected socket, for peers given by address
 * (no resolver, no proxy, no #GSocketClient events). Fails with %G_IO_ERROR_TIMED_OUT
 * after @timeout_s seconds; honours @cancellable. Finish with zlt_net_dial_finish().
 */
void
zlt_net_dial_async (GSocketAddress *address, guint timeout_s, GCancellable *cancellable,
                    GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;
  g_autoptr (GError) error = NULL;
  Dial *d;

  g_return_if_fail (G_IS_INET_SOCKET_ADDRESS (address));

  task = g_task_new (NULL, cancellable, callback, user_data);
  d = g_new0 (Dial, 1);
  g_task_set_source_tag (task, zlt_net_dial_async);
  /* a dial that ends inside this call (loopback, a refusal) still calls back from the
   * main loop, through an idle; at high priority that idle runs in the very next
   * iteration, before anything else that is ready and without a poll(2) */
  g_task_set_priority (task, G_PRIORITY_HIGH);
  g_task_set_task_data (task, d, (GDestroyNotify) dial_free);
  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  d->address = g_object_ref (address);
  d->socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
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
      dial_prefix_error (d, &error);
      g_socket_close (d->socket, NULL);
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  /* on loopback the handshake completes inside connect(): no need to wait for a
   * main-loop iteration (and three sources) to learn it */
  if (dial_is_loopback (address) && dial_connected_now (d->socket))
    {
      dial_done (task, NULL);
      g_object_unref (task);
      return;
    }
  dial_watch (d, 0, g_socket_create_source (d->socket, G_IO_OUT, NULL),
              G_SOURCE_FUNC (on_dial_writable), task);
  if (timeout_s > 0)
    dial_watch (d, 1, g_timeout_source_new_seconds (timeout_s), on_dial_timeout, task);
  if (cancellable != NULL)
    dial_watch (d, 2, g_cancellable_source_new (cancellable), G_SOURCE_FUNC (on_dial_cancelled),
                task);
  g_object_unref (task);
}

/**
 * zlt_net_dial_finish:
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the connection, or %NULL with @error set
 */
GSocketConnection *
zlt_net_dial_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, zlt_net_dial_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- watching a stream's input ---- */

typedef struct
{
  GSource source;
  GInputStream *input;
} InputSource;

static gboolean
input_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  GPollableSourceFunc func = (GPollableSourceFunc) (void (*) (void)) callback;

  g_return_val_if_fail (func != NULL, G_SOURCE_REMOVE);
  return func (G_OBJECT (((InputSource *) source)->input), user_data);
}

static void
input_source_finalize (GSource *source)
{
  g_clear_object (&((InputSource *) source)->input);
}

static GSourceFuncs input_source_funcs = {
  .dispatch = input_source_dispatch,
  .finalize = input_source_finalize,
};

/**
 * zlt_net_input_source_new:
 * @stream: a stream whose input stream is pollable
 * @cancellable: (nullable): a #GCancellable that also makes the source fire
 *
 * A source that fires when the input stream of @stream is readable or @cancellable is
 * cancelled, as g_pollable_input_stream_create_source() makes one: set its callback, a
 * #GPollableSourceFunc called with the input stream, with g_source_set_callback(). It
 * can recurse (see g_source_set_can_recurse()). On a #GSocketConnection it watches the
 * socket's descriptor itself rather than through a child source: GLib takes the
 * descriptors of a dispatching source that cannot recurse out of the poll set and puts
 * them back (a wakeup of the context each), and the socket source under a pollable
 * stream's source is such a child.
 *
 * Returns: (transfer full): a new source, not attached
 */
GSource *
zlt_net_input_source_new (GIOStream *stream, GCancellable *cancellable)
{
  GInputStream *input;
  GSocket *socket;
  InputSource *watch;
  GSource *source;

  g_return_val_if_fail (G_IS_IO_STREAM (stream), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);

  input = g_io_stream_get_input_stream (stream);
  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (input), NULL);
  socket = G_IS_SOCKET_CONNECTION (stream)
               ? g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream))
               : NULL;
  if (socket == NULL || g_socket_is_closed (socket) || g_input_stream_is_closed (input))
    {
      source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (input), cancellable);
      g_source_set_can_recurse (source, TRUE);
      return source;
    }
  source = g_source_new (&input_source_funcs, sizeof (InputSource));
  watch = (InputSource *) source;
  watch->input = g_object_ref (input);
  g_source_set_static_name (source, "zlt-input-source");
  g_source_add_unix_fd (source, g_socket_get_fd (socket), G_IO_IN | G_IO_HUP | G_IO_ERR);
  if (cancellable != NULL)
    {
      g_autoptr (GSource) cancelled = g_cancellable_source_new (cancellable);

      g_source_set_dummy_callback (cancelled);
      g_source_add_child_source (source, cancelled);
    }
  g_source_set_can_recurse (source, TRUE);
  return source;
}
