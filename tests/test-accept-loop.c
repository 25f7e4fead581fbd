/* test-accept-loop.c: ZltAcceptLoop accepts on IPv4 and IPv6, sets TCP_NODELAY, stops
 * on close, and, once the process is out of file descriptors, pauses instead of
 * spinning, says so once, and serves the waiting connections when descriptors return. */
#include "config.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zlt-test-util.h"

typedef struct
{
  GPtrArray *accepted; /* GSocketConnection */
  gboolean close_in_callback;
} Accepted;

static void
on_accepted (ZltAcceptLoop *loop, GSocketConnection *connection, gpointer user_data)
{
  Accepted *a = user_data;

  g_ptr_array_add (a->accepted, g_object_ref (connection));
  if (a->close_in_callback)
    zlt_accept_loop_close (loop);
}

static ZltAcceptLoop *
new_loop (const char *host, guint16 port, GError **error)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);

  return zlt_accept_loop_new (address, error);
}

/* A blocking connect: completes through the kernel's backlog, accepted or not. */
static GSocket *
connect_to (const char *host, guint16 port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  GSocket *socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, &error);

  g_assert_no_error (error);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  return socket;
}

static void
check_accepts (const char *host)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltAcceptLoop) loop = new_loop (host, 0, &error);
  g_autoptr (ZltAcceptLoop) taken = NULL;
  g_autoptr (GSocket) client = NULL;
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  Accepted a = { g_ptr_array_new_with_free_func (g_object_unref), FALSE };
  GSocketConnection *connection;
  gint nodelay = 0;
  guint16 port;

  if (loop == NULL && g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    {
      g_test_skip ("no IPv6 loopback here");
      g_ptr_array_unref (a.accepted);
      return;
    }
  g_assert_no_error (error);
  port = zlt_accept_loop_get_port (loop);
  g_assert_cmpuint (port, !=, 0);
  /* the port is taken now */
  taken = new_loop (host, port, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (taken);
  g_clear_error (&error);

  zlt_accept_loop_start (loop, on_accepted, &a);
  client = connect_to (host, port);
  ZLT_TEST_WAIT_FOR (a.accepted->len == 1, 5000);
  connection = g_ptr_array_index (a.accepted, 0);
  g_assert_true (g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP,
                                      TCP_NODELAY, &nodelay, NULL));
  g_assert_cmpint (nodelay, !=, 0);
  g_assert_cmpuint (zlt_accept_loop_get_n_accepted (loop), ==, 1);
  g_assert_cmpuint (zlt_accept_loop_get_n_failed (loop), ==, 0);
  g_assert_false (zlt_accept_loop_is_paused (loop));

  /* closed: nothing listens there any more */
  zlt_accept_loop_close (loop);
  zlt_accept_loop_close (loop);
  address = g_inet_socket_address_new (inet, port);
  g_clear_object (&client);
  client = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_false (g_socket_connect (client, address, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_ptr_array_unref (a.accepted);
}

static void
test_ipv4 (void)
{
  check_accepts ("127.0.0.1");
}

static void
test_ipv6 (void)
{
  check_accepts ("::1");
}

static void
test_close_in_callback (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltAcceptLoop) loop = new_loop ("127.0.0.1", 0, &error);
  Accepted a = { g_ptr_array_new_with_free_func (g_object_unref), TRUE };
  g_autoptr (GPtrArray) clients = g_ptr_array_new_with_free_func (g_object_unref);

  g_assert_no_error (error);
  zlt_accept_loop_start (loop, on_accepted, &a);
  /* three wait in the backlog: the first accept closes the loop, no more follow */
  for (guint i = 0; i < 3; i++)
    g_ptr_array_add (clients, connect_to ("127.0.0.1", zlt_accept_loop_get_port (loop)));
  ZLT_TEST_WAIT_FOR (a.accepted->len == 1, 5000);
  for (guint i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (a.accepted->len, ==, 1);
  g_ptr_array_unref (a.accepted);
}

static guint
count_fds (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  guint n = 0;

  g_assert_nonnull (dir);
  while (readdir (dir) != NULL)
    n++;
  closedir (dir);
  return n - 3; /* ".", ".." and the directory's own */
}

static gint64
cpu_time_us (void)
{
  struct rusage usage;

  g_assert_cmpint (getrusage (RUSAGE_SELF, &usage), ==, 0);
  return (gint64) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * G_USEC_PER_SEC
         + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

#define N_CLIENTS 60
#define FD_ROOM 20
#define WINDOW_MS 2000

static void
test_out_of_fds (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltAcceptLoop) loop = new_loop ("127.0.0.1", 0, &error);
  Accepted a = { g_ptr_array_new_with_free_func (g_object_unref), FALSE };
  g_autoptr (GPtrArray) clients = g_ptr_array_new_with_free_func (g_object_unref);
  struct rlimit saved, lowered;
  guint64 wakeups, failed;
  gint64 cpu, started;

  g_assert_no_error (error);
  if (g_getenv ("ZLT_UNDER_VALGRIND") != NULL)
    {
      /* valgrind emulates RLIMIT_NOFILE and does not let it rise again */
      g_test_skip ("under valgrind");
      g_ptr_array_unref (a.accepted);
      return;
    }
  for (guint i = 0; i < N_CLIENTS; i++)
    g_ptr_array_add (clients, connect_to ("127.0.0.1", zlt_accept_loop_get_port (loop)));

  /* room for FD_ROOM more descriptors: fewer than the clients waiting */
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  lowered = saved;
  lowered.rlim_cur = count_fds () + FD_ROOM;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &lowered), ==, 0);
  g_test_message ("soft fd limit lowered to %" G_GUINT64_FORMAT, (guint64) lowered.rlim_cur);

  g_test_expect_message (
      "zlt", G_LOG_LEVEL_WARNING,
      "cannot accept connections on port *: Too many open files (1 failed accepts since the last "
      "report, * connections waiting); pausing accepts for 250 ms");
  zlt_accept_loop_start (loop, on_accepted, &a);
  ZLT_TEST_WAIT_FOR (zlt_accept_loop_get_n_failed (loop) > 0, 5000);
  g_assert_true (zlt_accept_loop_is_paused (loop));
  /* about FD_ROOM (more when lower descriptor numbers were free) */
  g_assert_cmpuint (a.accepted->len, <, N_CLIENTS - FD_ROOM);

  /* a window out of descriptors: the loop must not spin */
  wakeups = zlt_accept_loop_get_n_wakeups (loop);
  failed = zlt_accept_loop_get_n_failed (loop);
  cpu = cpu_time_us ();
  started = g_get_monotonic_time ();
  while (g_get_monotonic_time () - started < WINDOW_MS * 1000)
    g_main_context_iteration (NULL, TRUE);
  wakeups = zlt_accept_loop_get_n_wakeups (loop) - wakeups;
  failed = zlt_accept_loop_get_n_failed (loop) - failed;
  cpu = cpu_time_us () - cpu;
  g_test_message ("out of descriptors for %d ms: %" G_GUINT64_FORMAT " wakeups, %" G_GUINT64_FORMAT
                  " failed accepts, %.1f ms of CPU, %u of %u connections accepted",
                  WINDOW_MS, wakeups, failed, cpu / 1000.0, a.accepted->len, N_CLIENTS);
  /* pauses of 250, 500 and then 1000 ms: a handful of retries, where a spinning loop
   * makes hundreds of thousands */
  g_assert_cmpuint (wakeups, <=, 10);
  g_assert_cmpuint (failed, <=, 10);
  g_assert_cmpint (cpu, <, 200 * 1000);
  /* said once (a second warning would be fatal here) */
  g_test_assert_expected_messages ();

  /* descriptors are back: the waiting connections are accepted, and served */
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  ZLT_TEST_WAIT_FOR (a.accepted->len == N_CLIENTS, 5000);
  g_assert_false (zlt_accept_loop_is_paused (loop));
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      GSocketConnection *connection = g_ptr_array_index (a.accepted, i);
      GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));

      g_output_stream_write_all (out, "x", 1, NULL, NULL, &error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      char byte = 0;

      g_socket_set_timeout (g_ptr_array_index (clients, i), 5);
      g_assert_cmpint (g_socket_receive (g_ptr_array_index (clients, i), &byte, 1, NULL, &error),
                       ==, 1);
      g_assert_no_error (error);
      g_assert_cmpint (byte, ==, 'x');
    }
  g_ptr_array_unref (a.accepted);
}

static void
test_raise_fd_limit (void)
{
  struct rlimit saved, lowered, now;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  if (saved.rlim_max < 512)
    {
      g_test_skip ("hard fd limit too low to lower the soft one");
      return;
    }
  lowered = saved;
  lowered.rlim_cur = 256;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &lowered), ==, 0);
  g_assert_cmpuint (zlt_raise_fd_limit (), ==, saved.rlim_max);
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &now), ==, 0);
  g_assert_cmpuint (now.rlim_cur, ==, saved.rlim_max);
  /* already there: nothing to do */
  g_assert_cmpuint (zlt_raise_fd_limit (), ==, saved.rlim_max);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add_func ("/accept-loop/ipv4", test_ipv4);
  g_test_add_func ("/accept-loop/ipv6", test_ipv6);
  g_test_add_func ("/accept-loop/close-in-callback", test_close_in_callback);
  g_test_add_func ("/accept-loop/out-of-fds", test_out_of_fds);
  g_test_add_func ("/accept-loop/raise-fd-limit", test_raise_fd_limit);
  return g_test_run ();
}
