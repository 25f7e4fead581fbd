/* test-net.c: socket helpers */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>

#include "zlayer-tunnel.h"

/* GSocketClient's sockets report the "default" protocol: Nagle must still go off */
static void
test_nodelay_client_socket (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  guint16 port;
  gint value = 0;

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_client_set_enable_proxy (client, FALSE);
  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       &value, &error);
  g_assert_no_error (error);
  g_assert_cmpint (value, ==, 0);
  zlt_net_set_nodelay (connection);
  g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       &value, &error);
  g_assert_no_error (error);
  g_assert_cmpint (value, !=, 0);
}

static void
test_parse_host_port (void)
{
  g_autofree char *host = NULL;
  guint16 port = 0;
  g_autoptr (GError) error = NULL;

  g_assert_true (zlt_net_parse_host_port ("[::1]:3679", "0.0.0.0", &host, &port, NULL));
  g_assert_cmpstr (host, ==, "::1");
  g_assert_cmpuint (port, ==, 3679);
  g_clear_pointer (&host, g_free);
  g_assert_true (zlt_net_parse_host_port (":80", "0.0.0.0", &host, &port, NULL));
  g_assert_cmpstr (host, ==, "0.0.0.0");
  g_assert_false (zlt_net_parse_host_port ("::1:80", "0.0.0.0", NULL, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
}

static void
on_dialed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Dials @address (waiting up to 10 s) and returns the result. */
static GSocketConnection *
dial (GSocketAddress *address, GCancellable *cancellable, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  zlt_net_dial_async (address, 5, cancellable, on_dialed, &result);
  while (result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (result);
  return zlt_net_dial_finish (result, error);
}

/* An address is dialed with one connect(): connected (Nagle off, a blocking socket as
 * GSocketClient leaves it), refused with the address in the message, or cancelled. */
static void
test_dial (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) open = NULL;
  g_autoptr (GSocketAddress) closed = NULL;
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GSocket) probe = NULL;
  g_autoptr (GSocketAddress) bound = NULL;
  guint16 port;
  gint value = 0;

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  open = g_inet_socket_address_new (lo, port);
  connection = dial (open, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connection_is_connected (connection));
  g_assert_true (g_socket_get_blocking (g_socket_connection_get_socket (connection)));
  g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       &value, &error);
  g_assert_no_error (error);
  g_assert_cmpint (value, !=, 0);

  /* a port nothing listens on: bound, then closed */
  probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  closed = g_inet_socket_address_new (lo, 0);
  g_socket_bind (probe, closed, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (probe, &error);
  g_assert_no_error (error);
  g_socket_close (probe, NULL);
  g_assert_null (dial (bound, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_nonnull (strstr (error->message, "127.0.0.1:"));
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  g_assert_null (dial (open, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static guint
next_source_id (void)
{
  GSource *source = g_idle_source_new ();
  guint id = g_source_attach (source, NULL);

  g_source_destroy (source);
  g_source_unref (source);
  return id;
}

/* On loopback the handshake is done when connect() returns: the dial completes at
 * the next iteration, never inside the call, and attaches no watch of its own (only
 * its task's completion). */
static void
test_dial_loopback_at_once (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) open = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GSocketConnection) connection = NULL;
  guint16 port;
  guint first;
  guint made;

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  open = g_inet_socket_address_new (lo, port);
  first = next_source_id ();
  zlt_net_dial_async (open, 5, NULL, on_dialed, &result);
  made = next_source_id () - first - 1;
  g_assert_null (result);
  g_assert_cmpuint (made, <=, 1);
  g_main_context_iteration (NULL, FALSE);
  g_assert_nonnull (result);
  connection = zlt_net_dial_finish (result, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connection_is_connected (connection));
}

/* A connect that stays pending (the listener's queue is full, so its SYNs are
 * dropped) is waited for, and gives up after the timeout. */
static void
test_dial_timeout (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocket) listener = NULL;
  g_autoptr (GPtrArray) fillers = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 start;

  listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (listener, any, FALSE, &error);
  g_assert_no_error (error);
  g_socket_set_listen_backlog (listener, 0);
  g_socket_listen (listener, &error);
  g_assert_no_error (error);
  address = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);
  /* fill the accept queue (never accepted) until a connect stays pending */
  for (guint i = 0; i < 8; i++)
    {
      g_autoptr (GSocket) filler = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                 G_SOCKET_PROTOCOL_TCP, &error);
      struct pollfd pfd;

      g_assert_no_error (error);
      g_socket_set_blocking (filler, FALSE);
      if (!g_socket_connect (filler, address, NULL, &error))
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
          g_clear_error (&error);
        }
      pfd = (struct pollfd){ .fd = g_socket_get_fd (filler), .events = POLLOUT };
      g_ptr_array_add (fillers, g_steal_pointer (&filler));
      if (poll (&pfd, 1, 0) == 0)
        break;
    }
  start = g_get_monotonic_time ();
  {
    g_autoptr (GAsyncResult) result = NULL;
    gint64 deadline = start + 10 * G_USEC_PER_SEC;

    zlt_net_dial_async (address, 1, NULL, on_dialed, &result);
    while (result == NULL && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
    g_assert_nonnull (result);
    g_assert_null (zlt_net_dial_finish (result, &error));
  }
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC / 2);
}

typedef struct
{
  guint fired;
  GObject *stream;
  gchar got;
  gboolean cancelled;
} InputWatch;

static gboolean
on_input (GObject *stream, gpointer user_data)
{
  InputWatch *w = user_data;
  g_autoptr (GError) error = NULL;
  gssize n;

  w->fired++;
  w->stream = stream;
  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), &w->got, 1, NULL,
                                                &error);
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    w->cancelled = TRUE; /* fired without a byte: only the cancellable can do that */
  else
    g_assert_cmpint (n, ==, 1);
  return G_SOURCE_CONTINUE;
}

/* Whether any descriptor @context polls is ready now (its wakeup fd included). */
static gboolean
context_fds_ready (GMainContext *context)
{
  GPollFD fds[16];
  gint timeout;
  gint n;

  g_assert_true (g_main_context_acquire (context));
  n = g_main_context_query (context, G_MAXINT, &timeout, fds, G_N_ELEMENTS (fds));
  g_main_context_release (context);
  g_assert_cmpint (n, <=, (gint) G_N_ELEMENTS (fds));
  for (gint i = 0; i < n; i++)
    fds[i].revents = 0;
  return g_poll (fds, (guint) n, 0) > 0;
}

/* zlt_net_input_source_new() fires for a readable socket connection with its input
 * stream, and for a cancelled cancellable; it can recurse, and dispatching it leaves
 * the context quiet: no descriptor taken out of the poll set and put back (which GLib
 * does for a source that cannot recurse, a pollable stream's child socket source among
 * them, with a write to the context's wakeup fd each time). A stream that is not a
 * socket connection gets a pollable stream's source, which works the same. */
static void
test_input_source (void)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) near = NULL;
  g_autoptr (GSocketConnection) far = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GSource) source = NULL;
  g_autoptr (GIOStream) wrapped = NULL;
  InputWatch w = { 0 };
  guint16 port;

  g_main_context_push_thread_default (context);
  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_client_set_enable_proxy (client, FALSE);
  near = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  far = g_socket_listener_accept (listener, NULL, NULL, &error);
  g_assert_no_error (error);

  source = zlt_net_input_source_new (G_IO_STREAM (near), cancellable);
  g_assert_true (g_source_get_can_recurse (source));
  g_source_set_callback (source, G_SOURCE_FUNC (on_input), &w, NULL);
  g_source_attach (source, context);
  /* the attach changed the poll set: one iteration takes that wakeup */
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_iteration (context, FALSE);
  g_assert_false (context_fds_ready (context));
  g_assert_cmpuint (w.fired, ==, 0);

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (far)), "x", 1, NULL, NULL,
                             &error);
  g_assert_no_error (error);
  while (w.fired == 0)
    g_main_context_iteration (context, TRUE);
  g_assert_cmpuint (w.fired, ==, 1);
  g_assert_true (w.stream == G_OBJECT (g_io_stream_get_input_stream (G_IO_STREAM (near))));
  g_assert_cmpint (w.got, ==, 'x');
  g_assert_false (w.cancelled);
  g_assert_false (context_fds_ready (context));

  g_cancellable_cancel (cancellable);
  while (!w.cancelled)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (source);
  g_clear_pointer (&source, g_source_unref);

  /* not a socket connection: a pollable stream's source */
  wrapped = g_simple_io_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (near)),
                                    g_io_stream_get_output_stream (G_IO_STREAM (near)));
  w = (InputWatch){ 0 };
  source = zlt_net_input_source_new (wrapped, NULL);
  g_assert_true (g_source_get_can_recurse (source));
  g_source_set_callback (source, G_SOURCE_FUNC (on_input), &w, NULL);
  g_source_attach (source, context);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (far)), "y", 1, NULL, NULL,
                             &error);
  g_assert_no_error (error);
  while (w.fired == 0)
    g_main_context_iteration (context, TRUE);
  g_assert_cmpint (w.got, ==, 'y');
  g_source_destroy (source);
  g_main_context_pop_thread_default (context);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/net/nodelay-client-socket", test_nodelay_client_socket);
  g_test_add_func ("/net/parse-host-port", test_parse_host_port);
  g_test_add_func ("/net/dial", test_dial);
  g_test_add_func ("/net/dial-loopback-at-once", test_dial_loopback_at_once);
  g_test_add_func ("/net/dial-timeout", test_dial_timeout);
  g_test_add_func ("/net/input-source", test_input_source);
  return g_test_run ();
}
