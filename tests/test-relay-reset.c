/* test-relay-reset.c: a cut transfer must not look like a complete one.
 *
 * A relay that fails resets both peers (TCP RST), and a process killed mid-relay resets
 * its peers too (its relays' sockets carry SO_LINGER {on, 0} while they run), so the
 * far end's read fails with ECONNRESET instead of ending with a clean EOF.
 *
 * - tls: a relay between a plain socket and a TLS stream (the agent's layout with
 *   wss://). Cut, the TLS peer gets a reset and no close_notify; ended cleanly, it gets
 *   every byte, then close_notify. close-with-reset: why the socket under a cut TLS
 *   stream is closed first (closing the stream sends close_notify, a clean end to the
 *   peer, even over a socket set to reset).
 * - agent-killed: the real `zlayer-tunnel agent` process exposes a local service that
 *   streams 64 MiB; a public client downloads it through the in-process server; the
 *   agent is killed with SIGKILL mid-download: the client's read must fail with
 *   ECONNRESET. agent-complete: the same download, not cut, ends with EOF and the
 *   service's SHA-256.
 * - server-killed: the real `zlayer-tunnel server` process, an in-process agent; a
 *   public client uploads to the local service; the server is killed mid-upload: the
 *   service's read must fail with ECONNRESET.
 *
 * The sender stops at half the stream until a go that comes only after the kill, and
 * the receiver stops reading 1 MiB short of that, so the kill always lands mid-transfer
 * with bytes in flight, whatever the kernel buffers hold. Every wait is bounded. */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zlt-test-util.h"
#include "zlt-relay.h" /* private */

/* public ports for this program only; the CLI server's control port just above them */
#define PORT_RANGE "32600-32689"
#define CLI_SERVER_PORT 32690

#define TOTAL ((gsize) 64 * 1024 * 1024)
#define CHUNK (64 * 1024)
#define WAIT_MS 60000

/* ---------------------------------------------------------------------------------
 * the byte stream: deterministic, hashed on both sides */

static void
fill_chunk (guint8 *buf, gsize len, guint64 *state)
{
  for (gsize i = 0; i + 8 <= len; i += 8)
    {
      guint64 x = *state;

      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      *state = x;
      memcpy (buf + i, &x, 8);
    }
}

/* A side of the transfer in a thread, on raw blocking sockets: sends TOTAL bytes (the
 * second half only after go), or receives until the end. */
typedef struct
{
  gboolean sender;
  gsize pause_at; /* receiver: stop reading after this many bytes until go */
  GMutex lock;
  GCond cond;
  gboolean waiting; /* at the halfway mark (sender) or the pause (receiver) */
  gboolean go;

  /* results, once done */
  gsize moved;
  int end_errno; /* 0: all sent / clean EOF */
  char *sha256;
  gint done;
} Side;

static void
side_init (Side *s, gboolean sender)
{
  memset (s, 0, sizeof *s);
  s->sender = sender;
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
}

static void
side_clear (Side *s)
{
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s->sha256);
}

static gboolean
side_waiting (Side *s)
{
  gboolean waiting;

  g_mutex_lock (&s->lock);
  waiting = s->waiting;
  g_mutex_unlock (&s->lock);
  return waiting;
}

static gsize
side_moved (Side *s)
{
  gsize moved;

  g_mutex_lock (&s->lock);
  moved = s->moved;
  g_mutex_unlock (&s->lock);
  return moved;
}

static void
side_add (Side *s, gsize n)
{
  g_mutex_lock (&s->lock);
  s->moved += n;
  g_mutex_unlock (&s->lock);
}

/* The receiver pauses 1 MiB short of where the sender stops for go */
#define RECEIVER_PAUSE (TOTAL / 2 - 1024 * 1024)

/* Mid-transfer with bytes in flight: the receiver has paused, and the sender is at its
 * halfway stop or blocked with at least 256 KiB more sent than received (the relays'
 * pipes alone hold that much once a destination stalls). */
static gboolean
mid_transfer (Side *sender, Side *receiver)
{
  return side_waiting (receiver)
         && (side_waiting (sender) || side_moved (sender) >= side_moved (receiver) + 256 * 1024);
}

static void
side_go (Side *s)
{
  g_mutex_lock (&s->lock);
  s->go = TRUE;
  g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
}

/* In the thread: waits for go (bounded). */
static void
side_wait_go (Side *s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  g_mutex_lock (&s->lock);
  s->waiting = TRUE;
  while (!s->go)
    if (!g_cond_wait_until (&s->cond, &s->lock, deadline))
      break;
  s->waiting = FALSE;
  g_mutex_unlock (&s->lock);
}

/* Runs one side on @fd, which it closes. */
static void
side_run (Side *s, int fd)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buf = g_malloc (CHUNK);
  guint64 state = 0x9e3779b97f4a7c15ULL;

  if (s->sender)
    {
      while (s->moved < TOTAL)
        {
          gssize n;

          if (s->moved == TOTAL / 2)
            side_wait_go (s);
          fill_chunk (buf, CHUNK, &state);
          n = send (fd, buf, CHUNK, MSG_NOSIGNAL);
          if (n != CHUNK)
            {
              s->end_errno = n < 0 ? errno : EIO;
              break;
            }
          g_checksum_update (sum, buf, CHUNK);
          side_add (s, CHUNK);
        }
      if (s->end_errno == 0)
        {
          char c;

          /* all sent: FIN, then wait for the other side's end */
          shutdown (fd, SHUT_WR);
          while (recv (fd, &c, 1, 0) > 0)
            ;
        }
    }
  else
    {
      for (;;)
        {
          gsize want = CHUNK;
          gssize n;

          if (s->pause_at > 0 && s->moved >= s->pause_at)
            {
              side_wait_go (s);
              s->pause_at = 0;
            }
          else if (s->pause_at > 0)
            {
              want = MIN (want, s->pause_at - s->moved);
            }
          n = recv (fd, buf, want, 0);
          if (n <= 0)
            {
              s->end_errno = n < 0 ? errno : 0;
              break;
            }
          g_checksum_update (sum, buf, (gsize) n);
          side_add (s, (gsize) n);
        }
      /* a clean end: end our direction too, so the relay ends cleanly */
      if (s->end_errno == 0)
        shutdown (fd, SHUT_WR);
    }
  s->sha256 = g_strdup (g_checksum_get_string (sum));
  close (fd);
}

/* ---- the local service: listens on 127.0.0.1, serves one connection ---- */

typedef struct
{
  Side side;
  int listen_fd;
  guint16 port;
} Service;

static gpointer
service_thread (gpointer data)
{
  Service *svc = data;
  struct pollfd pfd = { .fd = svc->listen_fd, .events = POLLIN };
  int fd;

  if (poll (&pfd, 1, WAIT_MS) != 1 || (fd = accept (svc->listen_fd, NULL, NULL)) < 0)
    {
      svc->side.end_errno = ETIMEDOUT;
      g_atomic_int_set (&svc->side.done, 1);
      return NULL;
    }
  side_run (&svc->side, fd);
  g_atomic_int_set (&svc->side.done, 1);
  return NULL;
}

static GThread *
service_start (Service *svc, gboolean sender, gsize pause_at)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof addr;

  side_init (&svc->side, sender);
  svc->side.pause_at = pause_at;
  svc->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (svc->listen_fd, >=, 0);
  g_assert_cmpint (bind (svc->listen_fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (svc->listen_fd, 4), ==, 0);
  g_assert_cmpint (getsockname (svc->listen_fd, (struct sockaddr *) &addr, &len), ==, 0);
  svc->port = ntohs (addr.sin_port);
  return g_thread_new ("service", service_thread, svc);
}

/* ---- the public client: connects to the server's public port ---- */

typedef struct
{
  Side side;
  guint16 port;
} Client;

static gpointer
client_thread (gpointer data)
{
  Client *c = data;
  struct sockaddr_in addr = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                              .sin_port = htons (c->port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      c->side.end_errno = errno;
      if (fd >= 0)
        close (fd);
      g_atomic_int_set (&c->side.done, 1);
      return NULL;
    }
  side_run (&c->side, fd);
  g_atomic_int_set (&c->side.done, 1);
  return NULL;
}

static GThread *
client_start (Client *c, guint16 port, gboolean sender, gsize pause_at)
{
  side_init (&c->side, sender);
  c->side.pause_at = pause_at;
  c->port = port;
  return g_thread_new ("client", client_thread, c);
}

/* ---------------------------------------------------------------------------------
 * processes */

static GSubprocess *
spawn_cli (const char *mode, GKeyFile *config, const char *dir)
{
  return zlt_test_spawn_cli (mode, config, dir, FALSE, NULL);
}

static void
wait_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

/* kill -9 by its PID, and reap it */
static void
kill_hard (GSubprocess *process)
{
  gboolean done = FALSE;
  const char *pid = g_subprocess_get_identifier (process);

  g_assert_nonnull (pid);
  g_test_message ("killing pid %s with SIGKILL", pid);
  g_subprocess_force_exit (process);
  g_subprocess_wait_async (process, NULL, wait_done, &done);
  ZLT_TEST_WAIT_FOR (done, WAIT_MS);
  g_assert_true (g_subprocess_get_if_signaled (process));
  g_assert_cmpint (g_subprocess_get_term_sig (process), ==, SIGKILL);
}

static void
stop (GSubprocess *process)
{
  zlt_test_process_stop (process, WAIT_MS);
}

static void
join (GThread *thread, Side *side)
{
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&side->done), WAIT_MS);
  g_thread_join (thread);
}

/* ---------------------------------------------------------------------------------
 * the agent process dies mid-download */

static guint16
wait_server_registered (ZltServer *server, const char *name)
{
  ZltRegistry *registry = zlt_server_get_registry (server);
  ZltService *service = NULL;

  ZLT_TEST_WAIT_FOR ((service = zlt_registry_lookup_service_by_name (registry, name, NULL)) != NULL
                         && zlt_service_get_assigned_port (service) != 0,
                     WAIT_MS);
  return zlt_service_get_assigned_port (service);
}

static void
download (gboolean kill_agent)
{
  ZltTestHarness h;
  Service svc;
  Client client;
  GThread *svc_thread, *client_thread;
  g_autoptr (GSubprocess) agent = NULL;
  guint16 port;

  zlt_test_harness_init (&h, PORT_RANGE);
  zlt_test_harness_start_server (&h);
  svc_thread = service_start (&svc, TRUE, 0);
  zlt_test_harness_add_service (&h, "down", svc.port, 0);
  agent = spawn_cli ("agent", h.agent_keyfile, h.tmpdir);
  port = wait_server_registered (h.server, "down");

  if (!kill_agent)
    side_go (&svc.side); /* no halfway stop */
  client_thread = client_start (&client, port, FALSE, kill_agent ? RECEIVER_PAUSE : 0);
  if (kill_agent)
    {
      ZLT_TEST_WAIT_FOR (mid_transfer (&svc.side, &client.side), WAIT_MS);
      g_test_message ("killing the agent with %" G_GSIZE_FORMAT " bytes sent, %" G_GSIZE_FORMAT
                      " received",
                      side_moved (&svc.side), side_moved (&client.side));
      kill_hard (agent);
      side_go (&client.side);
    }
  join (client_thread, &client.side);
  g_test_message ("client read %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes, then %s",
                  client.side.moved, TOTAL,
                  client.side.end_errno ? g_strerror (client.side.end_errno) : "EOF");
  if (kill_agent)
    {
      /* a cut download: a reset, never a clean EOF */
      g_assert_cmpint (client.side.end_errno, ==, ECONNRESET);
      g_assert_cmpuint (client.side.moved, <, TOTAL);
      /* the service's connection from the dead agent is gone too */
      side_go (&svc.side);
      join (svc_thread, &svc.side);
      g_assert_cmpint (svc.side.end_errno, !=, 0);
      g_assert_cmpuint (svc.side.moved, <, TOTAL);
    }
  else
    {
      join (svc_thread, &svc.side);
      g_assert_cmpint (client.side.end_errno, ==, 0);
      g_assert_cmpint (svc.side.end_errno, ==, 0);
      g_assert_cmpuint (client.side.moved, ==, TOTAL);
      g_assert_cmpstr (client.side.sha256, ==, svc.side.sha256);
      stop (agent);
    }
  close (svc.listen_fd);
  side_clear (&svc.side);
  side_clear (&client.side);
  zlt_test_harness_clear (&h);
}

static void
test_agent_killed (void)
{
  download (TRUE);
}

static void
test_agent_complete (void)
{
  download (FALSE);
}

/* ---------------------------------------------------------------------------------
 * the server process dies mid-upload: the agent resets the local service's connection */

static void
test_server_killed (void)
{
  ZltTestHarness h;
  Service svc;
  Client client;
  GThread *svc_thread, *client_thread;
  g_autoptr (GSubprocess) server = NULL;
  g_autofree char *listen = g_strdup_printf ("127.0.0.1:%u", CLI_SERVER_PORT);
  g_autofree char *url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", CLI_SERVER_PORT);
  guint16 port;

  zlt_test_harness_init (&h, PORT_RANGE);
  g_key_file_set_string (h.server_keyfile, "server", "listen", listen);
  server = spawn_cli ("server", h.server_keyfile, h.tmpdir);
  svc_thread = service_start (&svc, FALSE, RECEIVER_PAUSE);
  zlt_test_harness_set_agent_url (&h, url);
  zlt_test_harness_add_service (&h, "up", svc.port, 0);
  zlt_test_harness_start_agent (&h); /* retries until the server listens */
  port = zlt_test_harness_wait_registered (&h, "up");

  client_thread = client_start (&client, port, TRUE, 0);
  ZLT_TEST_WAIT_FOR (mid_transfer (&client.side, &svc.side), WAIT_MS);
  g_test_message ("killing the server with %" G_GSIZE_FORMAT " bytes sent, %" G_GSIZE_FORMAT
                  " received",
                  side_moved (&client.side), side_moved (&svc.side));
  kill_hard (server);
  side_go (&svc.side);
  join (svc_thread, &svc.side);
  g_test_message ("service read %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes, then %s",
                  svc.side.moved, TOTAL,
                  svc.side.end_errno ? g_strerror (svc.side.end_errno) : "EOF");
  g_assert_cmpint (svc.side.end_errno, ==, ECONNRESET);
  g_assert_cmpuint (svc.side.moved, <, TOTAL);

  side_go (&client.side);
  join (client_thread, &client.side);
  g_assert_cmpint (client.side.end_errno, !=, 0);

  close (svc.listen_fd);
  side_clear (&svc.side);
  side_clear (&client.side);
  zlt_test_harness_clear (&h);
}

/* ---------------------------------------------------------------------------------
 * a relay between a plain socket and a TLS stream:
 *   local <-> local_r [ZltRelay] tls_r (TLS client) <-> far (TLS server) */

typedef struct
{
  GSocketConnection *local;
  GSocketConnection *local_r;
  GSocketConnection *tls_base;
  GSocketConnection *far_base;
  GIOStream *tls_r;
  GIOStream *far;
  ZltRelay *relay;
  gboolean finished;
  GError *error;
  char *dir;
} TlsFixture;

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error);
  g_assert_no_error (error);
  (*(guint *) user_data)++;
}

static void
pair (GSocketListener *listener, GSocketAddress *address, GSocketConnection **client,
      GSocketConnection **server)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GError) error = NULL;

  *client = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (address), NULL, &error);
  g_assert_no_error (error);
  *server = g_socket_listener_accept (listener, NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
on_tls_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  TlsFixture *f = user_data;

  f->finished = TRUE;
  f->error = error != NULL ? g_error_copy (error) : NULL;
}

/* With @relay, starts a relay between local_r and tls_r. */
static void
tls_fixture_init (TlsFixture *f, gboolean relay)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;
  g_autofree char *cert_file = NULL;
  g_autofree char *key_file = NULL;
  ZltTlsOptions options = { .insecure = TRUE };
  guint n_done = 0;

  memset (f, 0, sizeof *f);
  f->dir = g_dir_make_tmp ("zlt-test-XXXXXX", &error);
  g_assert_no_error (error);
  if (!zlt_test_make_certificate (f->dir, &cert_file, &key_file))
    g_error ("certtool (gnutls-bin) failed to make a test certificate");
  cert = zlt_tls_load_server_certificate (cert_file, key_file, &error);
  g_assert_no_error (error);

  g_socket_listener_add_address (listener, any, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                 &address, &error);
  g_assert_no_error (error);
  pair (listener, address, &f->local, &f->local_r);
  pair (listener, address, &f->tls_base, &f->far_base);
  g_socket_listener_close (listener);

  f->tls_r = zlt_tls_client_connection_new (G_IO_STREAM (f->tls_base), NULL, &options, &error);
  g_assert_no_error (error);
  f->far = zlt_tls_server_connection_new (G_IO_STREAM (f->far_base), cert, &error);
  g_assert_no_error (error);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (f->tls_r), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done, &n_done);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (f->far), G_PRIORITY_DEFAULT, NULL,
                                    handshake_done, &n_done);
  ZLT_TEST_WAIT_FOR (n_done == 2, WAIT_MS);
  if (!relay)
    return;

  f->relay = zlt_relay_new (G_IO_STREAM (f->local_r), f->tls_r);
  g_assert_false (zlt_relay_is_zero_copy (f->relay));
  g_signal_connect (f->relay, "finished", G_CALLBACK (on_tls_finished), f);
  zlt_relay_start (f->relay);
}

static void
tls_fixture_clear (TlsFixture *f)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  g_io_stream_close (f->far, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (f->local), NULL, NULL);
  if (f->relay == NULL)
    {
      g_io_stream_close (f->tls_r, NULL, NULL);
      g_io_stream_close (G_IO_STREAM (f->local_r), NULL, NULL);
    }
  g_clear_object (&f->relay);
  g_clear_object (&f->far);
  g_clear_object (&f->tls_r);
  g_clear_object (&f->local);
  g_clear_object (&f->local_r);
  g_clear_object (&f->tls_base);
  g_clear_object (&f->far_base);
  g_clear_error (&f->error);
  dir = g_dir_open (f->dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

typedef struct
{
  guint8 buf[4096];
  gssize n;
  GError *error;
  gboolean done;
} Read;

static void
read_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Read *r = user_data;

  r->n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &r->error);
  r->done = TRUE;
}

/* One read: bytes (> 0), 0 for close_notify, -1 with r->error. */
static gssize
tls_read (GIOStream *stream, Read *r)
{
  g_clear_error (&r->error);
  r->done = FALSE;
  g_input_stream_read_async (g_io_stream_get_input_stream (stream), r->buf, sizeof r->buf,
                             G_PRIORITY_DEFAULT, NULL, read_done, r);
  ZLT_TEST_WAIT_FOR (r->done, WAIT_MS);
  return r->n;
}

static gssize
far_read (TlsFixture *f, Read *r)
{
  return tls_read (f->far, r);
}

static void
far_write (TlsFixture *f, const char *data)
{
  g_autoptr (GError) error = NULL;

  /* small: the TLS write completes at once */
  g_output_stream_write_all (g_io_stream_get_output_stream (f->far), data, strlen (data), NULL,
                             NULL, &error);
  g_assert_no_error (error);
}

static gssize
local_read (TlsFixture *f, char *buf, gsize len, int *err)
{
  int fd = g_socket_get_fd (g_socket_connection_get_socket (f->local));
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  gssize n;

  ZLT_TEST_WAIT_FOR (poll (&pfd, 1, 0) > 0, WAIT_MS);
  n = recv (fd, buf, len, MSG_DONTWAIT);
  *err = n < 0 ? errno : 0;
  return n;
}

static void
local_write (TlsFixture *f, const char *data)
{
  int fd = g_socket_get_fd (g_socket_connection_get_socket (f->local));

  g_assert_cmpint (send (fd, data, strlen (data), MSG_NOSIGNAL), ==, (gssize) strlen (data));
}

static void
test_tls_cut (void)
{
  TlsFixture f;
  Read r = { 0 };
  char buf[16];
  int err = 0;

  tls_fixture_init (&f, TRUE);
  far_write (&f, "ping");
  g_assert_cmpint (local_read (&f, buf, sizeof buf, &err), ==, 4);
  local_write (&f, "pong");
  g_assert_cmpint (far_read (&f, &r), ==, 4);

  zlt_relay_close (f.relay);
  g_assert_true (f.finished);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* the TLS peer: a reset, not the close_notify that would say "complete" */
  g_assert_cmpint (far_read (&f, &r), ==, -1);
  g_test_message ("TLS peer: %s", r.error->message);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_assert_cmpint (local_read (&f, buf, sizeof buf, &err), ==, -1);
  g_assert_cmpint (err, ==, ECONNRESET);
  g_clear_error (&r.error);
  tls_fixture_clear (&f);
}

static void
test_tls_clean (void)
{
  TlsFixture f;
  Read r = { 0 };
  g_autoptr (GError) error = NULL;
  char buf[16];
  int err = 0;

  tls_fixture_init (&f, TRUE);
  far_write (&f, "request");
  /* close_notify: the TLS peer is done sending */
  g_output_stream_close (g_io_stream_get_output_stream (f.far), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (local_read (&f, buf, sizeof buf, &err), ==, 7);
  g_assert_cmpint (local_read (&f, buf, sizeof buf, &err), ==, 0);
  local_write (&f, "reply");
  shutdown (g_socket_get_fd (g_socket_connection_get_socket (f.local)), SHUT_WR);

  g_assert_cmpint (far_read (&f, &r), ==, 5);
  g_assert_cmpmem (r.buf, 5, "reply", 5);
  g_assert_cmpint (far_read (&f, &r), ==, 0);
  g_assert_no_error (r.error);
  ZLT_TEST_WAIT_FOR (f.finished, WAIT_MS);
  g_assert_no_error (f.error);
  tls_fixture_clear (&f);
}

/* Why a cut TLS stream's socket is closed before the stream: closing a TLS connection
 * sends close_notify, which its peer reads as a clean end, even when the socket under
 * it then resets. zlt_net_close_with_reset() closes the socket first. */
static void
test_tls_close_with_reset (void)
{
  for (guint with_reset = 0; with_reset < 2; with_reset++)
    {
      TlsFixture f;
      Read r = { 0 };

      tls_fixture_init (&f, FALSE);
      far_write (&f, "ping");
      g_assert_cmpint (tls_read (f.tls_r, &r), ==, 4);
      if (with_reset)
        {
          zlt_net_close_with_reset (f.tls_r);
          g_assert_cmpint (far_read (&f, &r), ==, -1);
          g_test_message ("TLS peer after a reset: %s", r.error->message);
          g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
        }
      else
        {
          int fd = zlt_net_stream_socket_fd (f.tls_r, NULL);

          g_assert_cmpint (fd, ==, g_socket_get_fd (g_socket_connection_get_socket (f.tls_base)));
          g_assert_true (zlt_net_set_reset_on_close (fd, TRUE));
          g_io_stream_close (f.tls_r, NULL, NULL);
          /* close_notify went out before the reset: to the peer, a clean end */
          g_assert_cmpint (far_read (&f, &r), ==, 0);
        }
      g_clear_error (&r.error);
      tls_fixture_clear (&f);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay-reset/tls/cut", test_tls_cut);
  g_test_add_func ("/relay-reset/tls/clean", test_tls_clean);
  g_test_add_func ("/relay-reset/tls/close-with-reset", test_tls_close_with_reset);
  g_test_add_func ("/relay-reset/agent-killed", test_agent_killed);
  g_test_add_func ("/relay-reset/agent-complete", test_agent_complete);
  g_test_add_func ("/relay-reset/server-killed", test_server_killed);
  return g_test_run ();
}
