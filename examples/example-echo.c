/* example-echo.c: a local echo service and client for the embedding examples */
#include <string.h>

#include "example-echo.h"

static void
echo_spliced_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  /* dropped once the echo is done */
  g_autoptr (GSocketConnection) connection G_GNUC_UNUSED = user_data;

  g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, NULL);
}

/* each connection: its input spliced into its own output until EOF */
static gboolean
echo_incoming_cb (GSocketService *service, GSocketConnection *connection, GObject *source,
                  gpointer user_data)
{
  GIOStream *stream = G_IO_STREAM (connection);

  g_output_stream_splice_async (g_io_stream_get_output_stream (stream),
                                g_io_stream_get_input_stream (stream),
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, G_PRIORITY_DEFAULT, NULL,
                                echo_spliced_cb, g_object_ref (connection));
  return TRUE;
}

guint16
example_echo_service_start (GSocketService **service)
{
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  *service = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (*service), address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error))
    {
      g_printerr ("echo service: %s\n", error->message);
      return 0;
    }
  g_signal_connect (*service, "incoming", G_CALLBACK (echo_incoming_cb), NULL);
  g_socket_service_start (*service);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

typedef struct
{
  guint16 port;
  char *text;
  gboolean *ok;
  GMainLoop *loop;
} EchoCheck;

static gboolean
echo_check_done_cb (gpointer user_data)
{
  EchoCheck *check = user_data;

  g_main_loop_quit (check->loop);
  g_main_loop_unref (check->loop);
  g_free (check->text);
  g_free (check);
  return G_SOURCE_REMOVE;
}

/* blocking I/O in a thread, with timeouts, while the main thread runs the tunnel */
static gpointer
echo_check_thread (gpointer user_data)
{
  EchoCheck *check = user_data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GError) error = NULL;
  gsize len = strlen (check->text);
  g_autofree char *back = g_malloc0 (len + 1);
  gsize n_read = 0;

  g_socket_client_set_timeout (client, 10);
  connection = g_socket_client_connect_to_host (client, "127.0.0.1", check->port, NULL, &error);
  if (connection != NULL
      && g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                    check->text, len, NULL, NULL, &error)
      && g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (connection)), back,
                                  len, &n_read, NULL, &error))
    *check->ok = n_read == len && memcmp (back, check->text, len) == 0;
  if (error != NULL)
    g_printerr ("echo client: %s\n", error->message);
  g_idle_add (echo_check_done_cb, check);
  return NULL;
}

void
example_echo_check_async (guint16 port, const char *text, gboolean *ok, GMainLoop *loop)
{
  EchoCheck *check = g_new0 (EchoCheck, 1);

  check->port = port;
  check->text = g_strdup (text);
  check->ok = ok;
  check->loop = g_main_loop_ref (loop);
  g_thread_unref (g_thread_new ("echo-check", echo_check_thread, check));
}

typedef struct
{
  GMainLoop *loop;
  gboolean *timed_out;
} Deadline;

static gboolean
deadline_cb (gpointer user_data)
{
  Deadline *deadline = user_data;

  *deadline->timed_out = TRUE;
  g_main_loop_quit (deadline->loop);
  return G_SOURCE_REMOVE;
}

guint
example_deadline_add (GMainLoop *loop, guint seconds, gboolean *timed_out)
{
  Deadline *deadline = g_new0 (Deadline, 1);

  deadline->loop = loop;
  deadline->timed_out = timed_out;
  return g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, seconds, deadline_cb, deadline, g_free);
}
