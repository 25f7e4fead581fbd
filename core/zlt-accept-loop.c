/* zlt-accept-loop.c: accepts on a listening socket, pausing instead of spinning.
 *
 * GSocketService retries accept() as long as the socket is readable: once the process
 * is out of file descriptors, every main-loop iteration fails with EMFILE and logs a
 * warning, one core busy doing nothing useful. Here such an error takes the socket out
 * of the poll set for a while (ZLT_ACCEPT_LOOP_PAUSE_MIN_MS, doubling to
 * ZLT_ACCEPT_LOOP_PAUSE_MAX_MS while it lasts), and the condition is logged once per
 * ZLT_ACCEPT_LOOP_LOG_INTERVAL_S with what it cost. Errors that concern only the one
 * connection being accepted (ECONNABORTED and the network errors accept(2) passes on)
 * are skipped quietly. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zlt-accept-loop.h"
#include "zlt-net.h"
#include "zlt-source.h"

/* connections accepted per wakeup before other sources get their turn */
#define ACCEPT_BATCH 64

struct _ZltAcceptLoop
{
  GObject parent_instance;

  GSocket *socket;
  guint16 port;
  GMainContext *context;
  ZltAcceptFunc func;
  gpointer user_data;
  GSource *watch; /* readiness of the listening socket, while accepting */
  GSource *pause; /* end of a pause, while paused */
  guint pause_ms;
  gboolean closed;

  guint64 n_wakeups;
  guint64 n_accepted;
  guint64 n_failed;
  /* the last report of the condition, and failures since */
  gint64 reported_at;
  guint64 n_failed_unreported;
};

G_DEFINE_FINAL_TYPE (ZltAcceptLoop, zlt_accept_loop, G_TYPE_OBJECT)

static gboolean on_ready (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
watch_socket (ZltAcceptLoop *self)
{
  self->watch = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->watch, G_SOURCE_FUNC (on_ready), self, NULL);
  /* GLib blocks a source that cannot recurse while it dispatches: its fd leaves the
   * poll set and comes back, each a write to the context's wakeup fd */
  g_source_set_can_recurse (self->watch, TRUE);
  g_source_attach (self->watch, self->context);
}

static gboolean
on_pause_over (gpointer user_data)
{
  ZltAcceptLoop *self = user_data;

  self->n_wakeups++;
  g_clear_pointer (&self->pause, g_source_unref);
  /* readable at once if connections are still waiting: on_ready retries */
  watch_socket (self);
  return G_SOURCE_REMOVE;
}

/* Connections waiting in the listen queue (Linux reports it for listening sockets in
 * tcpi_unacked), or -1 when unknown. */
static gint
backlog_length (ZltAcceptLoop *self)
{
#ifdef TCP_INFO
  struct tcp_info info;
  socklen_t len = sizeof info;

  memset (&info, 0, sizeof info);
  if (getsockopt (g_socket_get_fd (self->socket), IPPROTO_TCP, TCP_INFO, &info, &len) == 0)
    return (gint) info.tcpi_unacked;
#endif
  return -1;
}

static void
pause_accepting (ZltAcceptLoop *self, int errsv)
{
  gint64 now = g_get_monotonic_time ();

  self->n_failed++;
  self->n_failed_unreported++;
  if (self->reported_at == 0
      || now - self->reported_at >= (gint64) ZLT_ACCEPT_LOOP_LOG_INTERVAL_S * G_USEC_PER_SEC)
    {
      g_warning ("cannot accept connections on port %u: %s (%" G_GUINT64_FORMAT
                 " failed accepts since the last report, %d connections waiting); pausing "
                 "accepts for %u ms",
                 self->port, g_strerror (errsv), self->n_failed_unreported, backlog_length (self),
                 self->pause_ms);
      self->reported_at = now;
      self->n_failed_unreported = 0;
    }
  zlt_source_clear (&self->watch);
  self->pause = g_timeout_source_new (self->pause_ms);
  g_source_set_callback (self->pause, on_pause_over, self, NULL);
  g_source_attach (self->pause, self->context);
  self->pause_ms = MIN (self->pause_ms * 2, ZLT_ACCEPT_LOOP_PAUSE_MAX_MS);
}

/* Errors of the one connection being accepted: the next one may well succeed. */
static gboolean
error_is_transient (int errsv)
{
  switch (errsv)
    {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall rule */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ETIMEDOUT:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Returns FALSE when the loop should stop for this wakeup. */
static gboolean
accept_one (ZltAcceptLoop *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketConnection) connection = NULL;
  int fd;

  fd = accept4 (g_socket_get_fd (self->socket), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    {
      int errsv = errno;

      if (errsv == EAGAIN || errsv == EWOULDBLOCK)
        return FALSE;
      if (error_is_transient (errsv))
        {
          g_debug ("accept on port %u: %s", self->port, g_strerror (errsv));
          return TRUE;
        }
      /* EMFILE, ENFILE, ENOBUFS, ENOMEM, and anything unforeseen: retrying at once
       * would fail the same way */
      pause_accepting (self, errsv);
      return FALSE;
    }
  self->pause_ms = ZLT_ACCEPT_LOOP_PAUSE_MIN_MS;
  socket = g_socket_new_from_fd (fd, &error);
  if (socket == NULL)
    {
      g_debug ("accepted socket on port %u unusable: %s", self->port, error->message);
      close (fd);
      return TRUE;
    }
  self->n_accepted++;
  connection = g_socket_connection_factory_create_connection (socket);
  zlt_net_set_nodelay (connection);
  self->func (self, connection, self->user_data);
  return TRUE;
}

static gboolean
on_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  g_autoptr (ZltAcceptLoop) self = g_object_ref (ZLT_ACCEPT_LOOP (user_data));

  self->n_wakeups++;
  for (guint i = 0; i < ACCEPT_BATCH && !self->closed && self->pause == NULL; i++)
    if (!accept_one (self))
      break;
  /* paused or closed: the watch is gone already, and so may be its source */
  return self->closed || self->pause != NULL ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/**
 * zlt_accept_loop_start:
 * @self: an accept loop
 * @func: (scope forever): called for each connection
 * @user_data: (closure func): data for @func
 *
 * Starts accepting in the thread-default main context; @func is called for each
 * connection until zlt_accept_loop_close().
 */
void
zlt_accept_loop_start (ZltAcceptLoop *self, ZltAcceptFunc func, gpointer user_data)
{
  g_return_if_fail (ZLT_IS_ACCEPT_LOOP (self));
  g_return_if_fail (func != NULL);
  g_return_if_fail (self->func == NULL && !self->closed);

  self->func = func;
  self->user_data = user_data;
  self->context = g_main_context_ref_thread_default ();
  watch_socket (self);
}

void
zlt_accept_loop_close (ZltAcceptLoop *self)
{
  g_return_if_fail (ZLT_IS_ACCEPT_LOOP (self));

  if (self->closed)
    return;
  self->closed = TRUE;
  zlt_source_clear (&self->watch);
  zlt_source_clear (&self->pause);
  if (self->socket != NULL)
    g_socket_close (self->socket, NULL);
}

guint16
zlt_accept_loop_get_port (ZltAcceptLoop *self)
{
  g_return_val_if_fail (ZLT_IS_ACCEPT_LOOP (self), 0);
  return self->port;
}

gboolean
zlt_accept_loop_is_paused (ZltAcceptLoop *self)
{
  g_return_val_if_fail (ZLT_IS_ACCEPT_LOOP (self), FALSE);
  return self->pause != NULL;
}

guint64
zlt_accept_loop_get_n_wakeups (ZltAcceptLoop *self)
{
  g_return_val_if_fail (ZLT_IS_ACCEPT_LOOP (self), 0);
  return self->n_wakeups;
}

guint64
zlt_accept_loop_get_n_accepted (ZltAcceptLoop *self)
{
  g_return_val_if_fail (ZLT_IS_ACCEPT_LOOP (self), 0);
  return self->n_accepted;
}

guint64
zlt_accept_loop_get_n_failed (ZltAcceptLoop *self)
{
  g_return_val_if_fail (ZLT_IS_ACCEPT_LOOP (self), 0);
  return self->n_failed;
}

static void
zlt_accept_loop_dispose (GObject *object)
{
  ZltAcceptLoop *self = ZLT_ACCEPT_LOOP (object);

  zlt_accept_loop_close (self);
  g_clear_object (&self->socket);
  g_clear_pointer (&self->context, g_main_context_unref);
  G_OBJECT_CLASS (zlt_accept_loop_parent_class)->dispose (object);
}

static void
zlt_accept_loop_class_init (ZltAcceptLoopClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = zlt_accept_loop_dispose;
}

static void
zlt_accept_loop_init (ZltAcceptLoop *self)
{
  self->pause_ms = ZLT_ACCEPT_LOOP_PAUSE_MIN_MS;
}

/**
 * zlt_accept_loop_new:
 * @address: where to listen (an inet address, IPv4 or IPv6; port 0 for any)
 *
 * Binds and listens with a backlog of 1024, so bursts of connects do not overflow
 * the kernel's default backlog.
 *
 * Returns: (transfer full): the loop, not yet accepting, or %NULL with @error set
 *   (%G_IO_ERROR_ADDRESS_IN_USE when the port is taken)
 */
ZltAcceptLoop *
zlt_accept_loop_new (GSocketAddress *address, GError **error)
{
  g_autoptr (ZltAcceptLoop) self = NULL;
  g_autoptr (GSocketAddress) effective = NULL;

  g_return_val_if_fail (G_IS_INET_SOCKET_ADDRESS (address), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (ZLT_TYPE_ACCEPT_LOOP, NULL);
  self->socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_TCP, error);
  if (self->socket == NULL)
    return NULL;
  g_socket_set_listen_backlog (self->socket, 1024);
  if (!g_socket_bind (self->socket, address, TRUE, error) || !g_socket_listen (self->socket, error))
    return NULL;
  effective = g_socket_get_local_address (self->socket, error);
  if (effective == NULL)
    return NULL;
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  return g_steal_pointer (&self);
}

guint64
zlt_raise_fd_limit (void)
{
  struct rlimit limit;
  rlim_t before;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    {
      g_debug ("cannot read the file descriptor limit: %s", g_strerror (errno));
      return 0;
    }
  before = limit.rlim_cur;
  if (limit.rlim_cur == limit.rlim_max)
    {
      g_debug ("file descriptor limit already at its maximum %" G_GUINT64_FORMAT,
               (guint64) limit.rlim_cur);
      return limit.rlim_cur;
    }
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
    {
      g_debug ("cannot raise the file descriptor limit from %" G_GUINT64_FORMAT
               " to %" G_GUINT64_FORMAT ": %s",
               (guint64) before, (guint64) limit.rlim_max, g_strerror (errno));
      return before;
    }
  g_debug ("raised the file descriptor limit from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
           (guint64) before, (guint64) limit.rlim_cur);
  return limit.rlim_cur;
}
