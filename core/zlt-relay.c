/* zlt-relay.c: joins two GIOStreams and copies bytes both ways
 *
 * Each direction runs in one of three modes, chosen when the relay is made:
 *
 * - zero copy (Linux, both streams plain GSocketConnections): splice(2) from the source
 *   socket into a pipe and from the pipe into the destination socket. One GSource per
 *   relay watches both fds; the events it asks for follow the state, so a full pipe
 *   stops reading (back-pressure) and an idle direction asks only for G_IO_IN. A pipe
 *   is taken from a small per-thread pool when data arrives and given back once it is
 *   empty and the source has nothing more, so an idle relay holds no pipe. A pipe that
 *   fills up is enlarged once to ZLT_RELAY_PIPE_SIZE (if the kernel lets us).
 * - pollable (both ends pollable, e.g. TLS or a GSimpleIOStream over sockets):
 *   nonblocking reads into a per-thread scratch buffer of ZLT_RELAY_CHUNK_SIZE, written
 *   straight on; only bytes the destination would not take are copied into a buffer of
 *   the direction's own, which is freed once the direction is idle again. Nothing is
 *   read while such bytes wait.
 * - async (anything else): read_async / write_all_async, one chunk at a time, into a
 *   buffer of 4 KiB that grows to ZLT_RELAY_CHUNK_SIZE while reads fill it and shrinks
 *   again when they don't.
 *
 * Half-close: when one source ends, the destination is shut for writing and the other
 * direction goes on. Sockets get shutdown(SHUT_WR) (also when the output stream is any
 * socket-backed stream, whose close alone would send nothing); any other stream,
 * GTlsConnection included, gets its output stream closed, which for TLS sends
 * close_notify (TCP FIN follows when the connection itself is closed at the end).
 *
 * When both directions have ended, or on the first error, or at zlt_relay_close(), the
 * relay closes both streams and emits ::finished once. SIGPIPE needs no handling here:
 * GSocket's class init ignores it process-wide, and splice to a socket raises it.
 *
 * Ends: a relay ends cleanly when both sources reached EOF and every byte was handed to
 * the destinations; each peer has then had its FIN (or close_notify), and the sockets
 * are closed in order. Any other end (a read or write error on either side, the idle
 * timeout, zlt_relay_close() on a live relay) is a failure, and both peers get a TCP
 * reset, so neither can take a cut transfer for a complete one: the sockets under both
 * streams (a TLS connection's base socket) get SO_LINGER {on, 0} and are closed before
 * the streams, so no FIN and no close_notify goes out.
 *
 * While the relay runs, its sockets carry SO_LINGER {on, 0} already: if the process
 * dies (SIGKILL, a crash), the kernel closes them with a reset instead of the FIN an
 * orderly close would send, and the far end sees the failure (ECONNRESET) rather than
 * a clean, truncated end. shutdown(SHUT_WR) ignores linger and still sends its FIN, so
 * half-close works as before; the relay turns linger back to what it was just before
 * an orderly close, so bytes still queued in the kernel are delivered, then FIN.
 * (Checked on Linux: a child holding a socket with linger {on, 0} killed with SIGKILL
 * mid-transfer leaves its peer reading the queued bytes then ECONNRESET; without linger
 * the peer reads EOF.)
 *
 * Idle timeout: each transfer notes the time; one timer per relay (the splice source's
 * own ready time in zero-copy mode, a small source otherwise) fires at last activity +
 * timeout and, if bytes moved meanwhile, is re-armed for the remainder. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#define HAVE_EPOLL 1
#endif

#include <gio/gfiledescriptorbased.h>

#include "zlt-net.h"
#include "zlt-relay.h"
#include "zlt-tls-stream.h"

/* bytes one direction moves per main-loop dispatch before letting others run */
#define RELAY_BUDGET (4 * 1024 * 1024)
#define ASYNC_MIN_CHUNK 4096
#define PIPE_POOL_MAX 32

G_DEFINE_ENUM_TYPE (ZltRelayDirection, zlt_relay_direction,
                    G_DEFINE_ENUM_VALUE (ZLT_RELAY_A_TO_B, "a-to-b"),
                    G_DEFINE_ENUM_VALUE (ZLT_RELAY_B_TO_A, "b-to-a"))

typedef enum
{
  DIR_SPLICE,
  DIR_POLL,
  DIR_ASYNC,
} DirMode;

typedef struct
{
  int r;
  int w;
  gsize size;
  gboolean grow_tried;
} RelayPipe;

typedef struct
{
  ZltRelay *relay; /* unowned back pointer; the direction lives inside it */
  GIOStream *dst_stream;
  GInputStream *in;
  GOutputStream *out;
  DirMode mode;

  GBytes *prefix;
  gsize prefix_off;

  gboolean eof;     /* the source ended */
  gboolean closing; /* the destination's output stream is being closed */
  gboolean done;    /* all delivered, destination shut for writing */
  guint64 total;
  guint64 delta; /* not yet reported to the counter func */

  /* watched by the relay's io source (zero copy, and pollable streams over fds): the
   * source's fd, and the destination's where dst_fd_ready (else the destination's own
   * pollable source, made for each wait: a UDP flow's, say) */
  gboolean use_fds;
  gboolean out_by_fd;
  gboolean want_in;  /* wait for the source's fd to be readable */
  gboolean want_out; /* wait for the destination's fd to be writable */
  gboolean again;    /* pump at the next iteration, whatever the fds say */

  /* zero copy */
  int src_fd;
  int dst_fd;
  RelayPipe pipe;
  gsize pipe_fill;

  /* pollable: the source yields one TLS record per read, so reads go on until the
   * buffer is full or the source would block */
  gboolean batch_reads;
  ZltTlsStream *src_tls; /* the source when it is our data TLS (it reads ahead), unowned */

  /* userspace: bytes buf[buf_off, buf_len) are waiting for the destination */
  guint8 *buf;
  gsize buf_size;
  gsize buf_off;
  gsize buf_len;
  gsize next_size;
  GSource *wait;
} RelayDir;

/* the socket under one of the relay's streams; a stream that does not own its socket
 * (a socket's streams in a GSimpleIOStream) gives only the fd, which its owner must
 * keep open while the relay runs */
typedef struct
{
  int fd;          /* -1: none, or not looked at yet */
  GSocket *socket; /* unowned; set when the stream owns (and closes) the socket */
  struct linger saved;
  gboolean lingering; /* saved holds what to give back */
} RelaySock;

typedef struct
{
  GSource source;
  ZltRelay *relay; /* unowned; the relay destroys the source before it goes */
} IdleSource;

typedef struct _ZltRelay ZltRelay;

/* one of the two fds a relay's engine watches for it */
typedef struct
{
  int fd;           /* -1: none */
  ZltRelay *relay;  /* unowned back pointer; the fd lives inside it */
  guint index;      /* 0: a's, 1: b's */
  gboolean watched; /* in the engine's set */
  gpointer tag;     /* without epoll: the engine source's tag */
  GIOCondition events;
  gboolean hung_up; /* poll said HUP or ERR once: it will say so on every wakeup */
} IoFd;

struct _ZltRelay
{
  GObject parent_instance;

  GIOStream *a;
  GIOStream *b;
  RelayDir dirs[2];
  gboolean zero_copy;

  gboolean started;
  gboolean running; /* holds a reference on itself while TRUE */
  gboolean finished;
  gboolean streams_closed;
  gboolean failed;   /* ended by a failure: reset both peers */
  guint ops_pending; /* async operations holding a reference */
  RelaySock socks[2];

  gint64 idle_timeout; /* µs, 0: none */
  gint64 last_activity;
  GSource *idle_source;     /* for a relay without an engine (no fds to watch) */
  GSequenceIter *idle_iter; /* in the engine's deadlines */
  gint64 idle_deadline;

  GMainContext *context;
  GCancellable *cancellable;
  struct _Engine *engine; /* the fds of zero-copy and pollable directions */
  IoFd iofds[2];          /* a's and b's */
  gboolean again_queued;  /* in the engine's list for the next iteration */
  gboolean in_batch;      /* in the engine's dispatch batch, with revents */
  GIOCondition revents[2];
  int io_fds[2]; /* a's and b's, -1: none */

  ZltRelayCounterFunc counter_func;
  gpointer counter_data;
  GDestroyNotify counter_destroy;
};

G_DEFINE_FINAL_TYPE (ZltRelay, zlt_relay, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_A,
  PROP_B,
  PROP_BYTES_A_TO_B,
  PROP_BYTES_B_TO_A,
  PROP_ZERO_COPY,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_FINISHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void relay_after_io (ZltRelay *self);
static void relay_finish (ZltRelay *self, const GError *error);
static void relay_maybe_close_streams (ZltRelay *self);
static void relay_idle_expired (ZltRelay *self, gint64 now);

static gboolean
set_errno_error (GError **error, int errsv, const char *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s: %s", what,
               g_strerror (errsv));
  return FALSE;
}

/* ---------------------------------------------------------------------------------
 * per-thread resources: the userspace scratch buffer and the pool of empty pipes */

static GPrivate scratch_key = G_PRIVATE_INIT (g_free);

static guint8 *
scratch_get (void)
{
  guint8 *scratch = g_private_get (&scratch_key);

  if (scratch == NULL)
    {
      scratch = g_malloc (ZLT_RELAY_CHUNK_SIZE);
      g_private_set (&scratch_key, scratch);
    }
  return scratch;
}

#ifdef HAVE_SPLICE
typedef struct
{
  guint n;
  RelayPipe pipes[PIPE_POOL_MAX];
} PipePool;

static void
pipe_pool_free (gpointer data)
{
  PipePool *pool = data;

  for (guint i = 0; i < pool->n; i++)
    {
      close (pool->pipes[i].r);
      close (pool->pipes[i].w);
    }
  g_free (pool);
}

static GPrivate pipe_pool_key = G_PRIVATE_INIT (pipe_pool_free);

static gboolean
pipe_acquire (RelayPipe *pipe, GError **error)
{
  PipePool *pool = g_private_get (&pipe_pool_key);
  int fds[2];
  int size;

  if (pool != NULL && pool->n > 0)
    {
      *pipe = pool->pipes[--pool->n];
      return TRUE;
    }
  if (pipe2 (fds, O_CLOEXEC | O_NONBLOCK) < 0)
    return set_errno_error (error, errno, "failed to create pipe");
  size = fcntl (fds[1], F_GETPIPE_SZ);
  pipe->r = fds[0];
  pipe->w = fds[1];
  pipe->size = size > 0 ? (gsize) size : 4096;
  pipe->grow_tried = FALSE;
  return TRUE;
}

/* Only for empty pipes: a pipe holding bytes would pass them to someone else. */
static void
pipe_release (RelayPipe *pipe)
{
  PipePool *pool = g_private_get (&pipe_pool_key);

  if (pipe->r < 0)
    return;
  if (pool == NULL)
    {
      pool = g_new0 (PipePool, 1);
      g_private_set (&pipe_pool_key, pool);
    }
  if (pool->n < PIPE_POOL_MAX)
    {
      pool->pipes[pool->n++] = *pipe;
    }
  else
    {
      close (pipe->r);
      close (pipe->w);
    }
  pipe->r = pipe->w = -1;
}

static void
pipe_discard (RelayPipe *pipe)
{
  if (pipe->r < 0)
    return;
  close (pipe->r);
  close (pipe->w);
  pipe->r = pipe->w = -1;
}

static void
pipe_grow (RelayPipe *pipe)
{
  int size;

  if (pipe->grow_tried || pipe->size >= ZLT_RELAY_PIPE_SIZE)
    return;
  pipe->grow_tried = TRUE;
  /* EPERM past /proc/sys/fs/pipe-user-pages-soft or pipe-max-size: keep what we have */
  size = fcntl (pipe->w, F_SETPIPE_SZ, ZLT_RELAY_PIPE_SIZE);
  if (size > 0)
    pipe->size = (gsize) size;
}
#endif

/* ---------------------------------------------------------------------------------
 * shared by all modes */

static void
dir_count (RelayDir *d, gsize n)
{
  d->total += n;
  d->delta += n;
}

/* The next bytes waiting for the destination: the prefix first, then the buffer. */
static gboolean
dir_pending (RelayDir *d, const guint8 **data, gsize *len)
{
  if (d->prefix != NULL)
    {
      gsize size;
      const guint8 *p = g_bytes_get_data (d->prefix, &size);

      *data = p + d->prefix_off;
      *len = size - d->prefix_off;
      return TRUE;
    }
  if (d->buf_off < d->buf_len)
    {
      *data = d->buf + d->buf_off;
      *len = d->buf_len - d->buf_off;
      return TRUE;
    }
  return FALSE;
}

static void
dir_consume (RelayDir *d, gsize n)
{
  dir_count (d, n);
  if (d->prefix != NULL)
    {
      d->prefix_off += n;
      if (d->prefix_off >= g_bytes_get_size (d->prefix))
        g_clear_pointer (&d->prefix, g_bytes_unref);
      return;
    }
  d->buf_off += n;
  if (d->buf_off >= d->buf_len)
    d->buf_off = d->buf_len = 0;
}

static gsize
dir_buffered (RelayDir *d)
{
  gsize n = d->pipe_fill + (d->buf_len - d->buf_off);

  if (d->prefix != NULL)
    n += g_bytes_get_size (d->prefix) - d->prefix_off;
  return n;
}

/* The source read 0: a FIN, or a reset whose ECONNRESET another call on the socket took
 * first (Linux reports it once, and reads return 0 after it: the async mode's write to
 * the same socket may take it). A FIN leaves the socket in CLOSE_WAIT while our side
 * still sends; a reset leaves it CLOSED. Once our side has sent its FIN too, a clean
 * end also ends in CLOSED, and the two cannot be told apart (nor does it matter much:
 * all we send has been handed over). Checked on Linux: reset, send fails, recv returns
 * 0 in state CLOSE; FIN, recv returns 0 in CLOSE_WAIT. */
static gboolean
dir_eof_check (RelayDir *d, GError **error)
{
#ifdef TCP_INFO
  ZltRelay *self = d->relay;
  guint i = d == &self->dirs[0] ? 0 : 1;
  RelayDir *back = &self->dirs[1 - i];
  int fd = self->socks[i].fd;
  struct tcp_info info;
  socklen_t len = sizeof info;

  if (fd < 0 || back->done || back->closing)
    return TRUE;
  if (getsockopt (fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0 || info.tcpi_state != TCP_CLOSE)
    return TRUE;
  return set_errno_error (error, ECONNRESET, "failed to read");
#else
  return TRUE;
#endif
}

static void
dir_close_out_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (ZltRelay) self = user_data; /* the reference the operation held */
  g_autoptr (GError) error = NULL;
  RelayDir *d = self->dirs[0].out == G_OUTPUT_STREAM (source) ? &self->dirs[0] : &self->dirs[1];
  gboolean ok = g_output_stream_close_finish (G_OUTPUT_STREAM (source), res, &error);

  self->ops_pending--;
  d->closing = FALSE;
  if (self->finished)
    {
      relay_maybe_close_streams (self);
      return;
    }
  if (!ok)
    {
      g_prefix_error (&error, "failed to close the write side: ");
      relay_finish (self, error);
      return;
    }
  d->done = TRUE;
  relay_after_io (self);
}

/* The source ended and everything has been delivered: shut the destination for writing.
 * Sets done at once, or closing until the output stream's close completes. A FIN that
 * cannot go out (the destination was reset: ENOTCONN) is a failure: the bytes handed to
 * that socket may never have reached its peer. */
static gboolean
dir_shutdown (RelayDir *d, GError **error)
{
  ZltRelay *self = d->relay;
  GSocket *sock = NULL;

  if (G_IS_SOCKET_CONNECTION (d->dst_stream) && !G_IS_TCP_WRAPPER_CONNECTION (d->dst_stream))
    sock = g_socket_connection_get_socket (G_SOCKET_CONNECTION (d->dst_stream));
  if (sock != NULL)
    {
      if (!g_socket_shutdown (sock, FALSE, TRUE, error))
        {
          g_prefix_error (error, "failed to shut the write side: ");
          return FALSE;
        }
      d->done = TRUE;
      return TRUE;
    }
  /* a socket's output stream: closing it would send nothing to the peer */
  if (G_IS_FILE_DESCRIPTOR_BASED (d->out))
    {
      int fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (d->out));

      if (shutdown (fd, SHUT_WR) == 0)
        {
          d->done = TRUE;
          return TRUE;
        }
      if (errno != ENOTSOCK && errno != EBADF)
        return set_errno_error (error, errno, "failed to shut the write side");
    }
  d->closing = TRUE;
  self->ops_pending++;
  g_output_stream_close_async (d->out, G_PRIORITY_DEFAULT, self->cancellable, dir_close_out_done,
                               g_object_ref (self));
  return TRUE;
}

/* ---------------------------------------------------------------------------------
 * zero copy */

#ifdef HAVE_SPLICE
static gboolean
dir_splice_pump (RelayDir *d, GError **error)
{
  gsize budget = RELAY_BUDGET;
  gboolean in_blocked = FALSE;
  gboolean in_drained = FALSE; /* a read came short: see dir_poll_read */

  d->want_in = d->want_out = FALSE;
  if (d->done || d->closing)
    return TRUE;

  while (d->prefix != NULL)
    {
      const guint8 *data;
      gsize len;
      gssize n;

      dir_pending (d, &data, &len);
      n = send (d->dst_fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
              d->want_out = TRUE;
              return TRUE;
            }
          return set_errno_error (error, errno, "failed to write");
        }
      dir_consume (d, (gsize) n);
    }

  for (;;)
    {
      gboolean progress = FALSE;
      gssize n;

      if (!d->eof && !in_drained && budget > 0 && (d->pipe.r < 0 || d->pipe_fill < d->pipe.size))
        {
          gsize room;

          if (d->pipe.r < 0 && !pipe_acquire (&d->pipe, error))
            return FALSE;
          room = d->pipe.size - d->pipe_fill;
          n = splice (d->src_fd, NULL, d->pipe.w, NULL, room, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
          if (n > 0)
            {
              /* the socket had no more, or the pipe no free slot: a read now would most
               * likely say EAGAIN; the fd's readiness tells when there is more */
              in_drained = (gsize) n < room;
              d->pipe_fill += (gsize) n;
              budget -= MIN (budget, (gsize) n);
              in_blocked = FALSE;
              progress = TRUE;
              if (d->pipe_fill >= d->pipe.size)
                pipe_grow (&d->pipe);
            }
          else if (n == 0)
            {
              if (!dir_eof_check (d, error))
                return FALSE;
              d->eof = TRUE;
              progress = TRUE;
            }
          else if (errno == EINTR)
            progress = TRUE;
          /* EAGAIN: the socket has nothing, or the pipe has no free slot */
          else if (errno == EAGAIN)
            in_blocked = TRUE;
          else
            return set_errno_error (error, errno, "failed to read");
        }
      if (d->pipe_fill > 0)
        {
          n = splice (d->pipe.r, NULL, d->dst_fd, NULL, d->pipe_fill,
                      SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
          if (n > 0)
            {
              d->pipe_fill -= (gsize) n;
              dir_count (d, (gsize) n);
              progress = TRUE;
            }
          else if (n < 0 && errno == EINTR)
            progress = TRUE;
          else if (n < 0 && errno != EAGAIN)
            return set_errno_error (error, errno, "failed to write");
        }
      if (!progress)
        break;
    }

  if (d->pipe_fill == 0 && (d->eof || in_blocked || in_drained))
    pipe_release (&d->pipe);
  if (d->eof && d->pipe_fill == 0)
    return dir_shutdown (d, error);
  /* bytes left in the pipe mean the destination said EAGAIN */
  d->want_out = d->pipe_fill > 0;
  /* a read that would block with bytes in the pipe may be a full pipe: wait for the
   * destination instead of spinning on a readable source */
  d->want_in = !d->eof && (d->pipe_fill == 0 || (!in_blocked && d->pipe_fill < d->pipe.size));
  return TRUE;
}

#endif

/* ---------------------------------------------------------------------------------
 * the io engine: one per GMainContext, shared by all its relays. It watches the fds
 * under each relay's two streams for every direction that moves bytes by fd readiness
 * (zero copy, and pollable streams over sockets: plain, or under TLS), and keeps the
 * idle deadlines of those relays.
 *
 * On Linux the fds sit in one epoll set, and the engine is one GSource whose only fd
 * is the epoll fd: the main loop polls one descriptor however many relays run, a
 * wakeup costs what the ready relays cost (not every idle relay's fds: with poll(2)
 * over 1000 idle relays a round trip on another was 17 times slower), and a relay
 * that starts, stalls, resumes or ends changes the set with epoll_ctl() instead of
 * the context's poll records (each change of those is an eventfd wakeup and one more
 * loop iteration). Elsewhere the engine source carries the fds itself (GLib's poll).
 * The events asked for follow the directions' wants, so they change only when a
 * direction stalls or resumes.
 *
 * A relay's fds leave the set when it stops, before its streams are closed; a relay
 * owns its streams, so nobody else closes a descriptor that is in the set.
 *
 * The engine may recurse: GLib blocks a non-recursive source for its dispatch, which
 * takes its fd out of the poll set and puts it back (an eventfd wakeup each). A relay
 * calls out (the counter func, ::finished) only when its state is consistent, so a
 * nested dispatch from there is harmless; every relay of a batch is held by a
 * reference until the batch is done. */

#define ENGINE_BATCH 64

typedef struct _Engine
{
  GSource source;
  GMainContext *context; /* unowned: the context owns the source */
  int epfd;              /* -1 without epoll */
  GPtrArray *relays;     /* without epoll: every relay with a watched fd */
  GQueue again;          /* relays to pump at the next iteration, unowned */
  GSequence *deadlines;  /* relays with an idle deadline, soonest first, unowned */
} Engine;

static GMutex engines_lock;
static GHashTable *engines; /* GMainContext → Engine, while the context lives */

static gboolean dir_poll_pump (RelayDir *d, GError **error);
static void relay_io_dispatch (ZltRelay *self, const GIOCondition revents[2]);

static gboolean
dir_pump (RelayDir *d, GError **error)
{
#ifdef HAVE_SPLICE
  if (d->mode == DIR_SPLICE)
    return dir_splice_pump (d, error);
#endif
  return dir_poll_pump (d, error);
}

#ifdef HAVE_EPOLL
static GIOCondition
engine_to_condition (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) | ((events & EPOLLOUT) ? G_IO_OUT : 0)
         | ((events & EPOLLERR) ? G_IO_ERR : 0) | ((events & EPOLLHUP) ? G_IO_HUP : 0);
}

static guint32
engine_from_condition (GIOCondition condition)
{
  return ((condition & G_IO_IN) ? EPOLLIN : 0) | ((condition & G_IO_OUT) ? EPOLLOUT : 0);
}
#endif

/* Adds @self to @batch (a reference, once per batch) and what @fd's poll said. */
static void
engine_batch_add (GPtrArray *batch, ZltRelay *self, guint fd_index, GIOCondition revents)
{
  if (!self->in_batch)
    {
      self->in_batch = TRUE;
      self->revents[0] = self->revents[1] = 0;
      g_ptr_array_add (batch, g_object_ref (self));
    }
  if (fd_index < 2)
    self->revents[fd_index] |= revents;
}

static gboolean
engine_prepare (GSource *source, gint *timeout)
{
  Engine *e = (Engine *) source;

  *timeout = -1;
  return !g_queue_is_empty (&e->again);
}

static void engine_arm_deadlines (Engine *e);

static gboolean
engine_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  Engine *e = (Engine *) source;
  g_autoptr (GPtrArray) batch = g_ptr_array_new ();
  gint64 now = g_source_get_time (source);
  gint64 ready_time = g_source_get_ready_time (source);
  ZltRelay *self;

  /* relays that asked to be pumped whatever their fds say */
  while ((self = g_queue_pop_head (&e->again)) != NULL)
    {
      self->again_queued = FALSE;
      engine_batch_add (batch, self, 2, 0);
    }
#ifdef HAVE_EPOLL
  if (e->epfd >= 0)
    {
      struct epoll_event events[ENGINE_BATCH];
      int n = epoll_wait (e->epfd, events, ENGINE_BATCH, 0);

      for (int i = 0; i < n; i++)
        {
          IoFd *f = events[i].data.ptr;

          engine_batch_add (batch, f->relay, f->index, engine_to_condition (events[i].events));
        }
    }
#endif
  if (e->relays != NULL)
    for (guint i = 0; i < e->relays->len; i++)
      {
        ZltRelay *r = g_ptr_array_index (e->relays, i);

        for (guint k = 0; k < 2; k++)
          {
            GIOCondition revents
                = r->iofds[k].tag != NULL ? g_source_query_unix_fd (source, r->iofds[k].tag) : 0;

            if (revents != 0)
              engine_batch_add (batch, r, k, revents);
          }
      }
  for (guint i = 0; i < batch->len; i++)
    {
      GIOCondition revents[2];

      self = g_ptr_array_index (batch, i);
      self->in_batch = FALSE;
      revents[0] = self->revents[0];
      revents[1] = self->revents[1];
      if (!self->finished)
        relay_io_dispatch (self, revents);
      g_object_unref (self);
    }

  /* idle deadlines */
  if (ready_time >= 0 && now >= ready_time)
    {
      GSequenceIter *first;

      while (!g_sequence_is_empty (e->deadlines)
             && (first = g_sequence_get_begin_iter (e->deadlines),
                 ((ZltRelay *) g_sequence_get (first))->idle_deadline <= now))
        {
          g_autoptr (ZltRelay) r = g_object_ref (g_sequence_get (first));

          g_sequence_remove (first);
          r->idle_iter = NULL;
          relay_idle_expired (r, now);
        }
      engine_arm_deadlines (e);
    }
  return G_SOURCE_CONTINUE;
}

static void
engine_finalize (GSource *source)
{
  Engine *e = (Engine *) source;

  g_mutex_lock (&engines_lock);
  if (engines != NULL && g_hash_table_lookup (engines, e->context) == e)
    g_hash_table_remove (engines, e->context);
  g_mutex_unlock (&engines_lock);
  if (e->epfd >= 0)
    close (e->epfd);
  g_clear_pointer (&e->relays, g_ptr_array_unref);
  g_clear_pointer (&e->deadlines, g_sequence_free);
}

static GSourceFuncs engine_funcs = {
  .prepare = engine_prepare,
  .dispatch = engine_dispatch,
  .finalize = engine_finalize,
};

/* The engine of @context, made the first time; a new reference. */
static Engine *
engine_get (GMainContext *context)
{
  Engine *e;

  g_mutex_lock (&engines_lock);
  if (engines == NULL)
    engines = g_hash_table_new (NULL, NULL);
  e = g_hash_table_lookup (engines, context);
  if (e != NULL)
    {
      g_source_ref (&e->source);
      g_mutex_unlock (&engines_lock);
      return e;
    }
  e = (Engine *) g_source_new (&engine_funcs, sizeof (Engine));
  g_source_set_static_name (&e->source, "zlt-relay-engine");
  g_source_set_can_recurse (&e->source, TRUE);
  e->context = context;
  e->epfd = -1;
  g_queue_init (&e->again);
  e->deadlines = g_sequence_new (NULL);
#ifdef HAVE_EPOLL
  e->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (e->epfd >= 0)
    g_source_add_unix_fd (&e->source, e->epfd, G_IO_IN);
  else
    g_debug ("relay: no epoll (%s): the main loop polls every relay", g_strerror (errno));
#endif
  if (e->epfd < 0)
    e->relays = g_ptr_array_new ();
  g_hash_table_insert (engines, context, e);
  g_source_attach (&e->source, context); /* the context's reference; ours is returned */
  g_mutex_unlock (&engines_lock);
  return e;
}

/* poll(2) and epoll report HUP and ERR whatever events are asked for, so an fd that
 * has hung up is watched only while we want something from it; otherwise a direction
 * stalled on a slow destination, with its source at EOF (its peer's FIN after ours)
 * would wake the relay on every iteration for nothing. */
static gboolean
io_fd_update (ZltRelay *self, IoFd *f, GIOCondition events, GError **error)
{
  Engine *e = self->engine;
  gboolean watch = !(f->hung_up && events == 0);

  if (f->fd < 0 || (watch == f->watched && events == f->events))
    return TRUE;
#ifdef HAVE_EPOLL
  if (e->epfd >= 0)
    {
      struct epoll_event ev = { .events = engine_from_condition (events), .data.ptr = f };
      int op = !watch ? EPOLL_CTL_DEL : f->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

      if (epoll_ctl (e->epfd, op, f->fd, &ev) < 0)
        return set_errno_error (error, errno, "failed to watch a socket");
      f->watched = watch;
      f->events = events;
      return TRUE;
    }
#endif
  if (!watch)
    {
      g_source_remove_unix_fd (&e->source, f->tag);
      f->tag = NULL;
    }
  else if (f->tag == NULL)
    {
      f->tag = g_source_add_unix_fd (&e->source, f->fd, events);
    }
  else
    {
      g_source_modify_unix_fd (&e->source, f->tag, events);
    }
  f->watched = watch;
  f->events = events;
  return TRUE;
}

static void
relay_queue_again (ZltRelay *self)
{
  if (self->again_queued)
    return;
  self->again_queued = TRUE;
  g_queue_push_tail (&self->engine->again, self);
}

/* The fds' events follow the directions' wants. */
static gboolean
relay_io_update (ZltRelay *self, GError **error)
{
  RelayDir *ab = &self->dirs[0];
  RelayDir *ba = &self->dirs[1];
  GIOCondition ea = (ab->use_fds && ab->want_in ? G_IO_IN : 0)
                    | (ba->use_fds && ba->out_by_fd && ba->want_out ? G_IO_OUT : 0);
  GIOCondition eb = (ba->use_fds && ba->want_in ? G_IO_IN : 0)
                    | (ab->use_fds && ab->out_by_fd && ab->want_out ? G_IO_OUT : 0);

  if (ab->again || ba->again)
    relay_queue_again (self);
  return io_fd_update (self, &self->iofds[0], ea, error)
         && io_fd_update (self, &self->iofds[1], eb, error);
}

/* What poll said about one fd; a pending socket error (a reset) fails the relay now,
 * even when no direction would read or write that socket soon. */
static void
io_fd_check (IoFd *f, GIOCondition revents, GError **error)
{
  if (revents & (G_IO_HUP | G_IO_ERR | G_IO_NVAL))
    f->hung_up = TRUE;
  if (revents & G_IO_ERR)
    {
      int err = 0;
      socklen_t len = sizeof err;

      if (getsockopt (f->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
        set_errno_error (error, err, "connection failed");
    }
}

/* One relay's turn in the engine's dispatch: @revents for a's fd and b's. */
static void
relay_io_dispatch (ZltRelay *self, const GIOCondition revents[2])
{
  g_autoptr (GError) error = NULL;
  gboolean bad;

  io_fd_check (&self->iofds[0], revents[0], &error);
  io_fd_check (&self->iofds[1], revents[1], error == NULL ? &error : NULL);
  bad = ((revents[0] | revents[1]) & (G_IO_ERR | G_IO_HUP | G_IO_NVAL)) != 0;
  if (error != NULL)
    {
      relay_finish (self, error);
      return;
    }
  /* direction i reads stream i and writes the other */
  for (guint i = 0; i < 2; i++)
    {
      RelayDir *d = &self->dirs[i];

      if (!d->use_fds || self->finished)
        continue;
      if (!bad && !d->again && !(revents[i] & G_IO_IN) && !(revents[1 - i] & G_IO_OUT))
        continue;
      d->again = FALSE;
      if (!dir_pump (d, &error))
        {
          relay_finish (self, error);
          return;
        }
    }
  relay_after_io (self);
  if (self->finished)
    return;
  if (!relay_io_update (self, &error))
    relay_finish (self, error);
}

/* Writes a zero-copy direction's prefix now, as far as the socket takes it at once: a
 * peer waits for these first bytes (the public client's, behind a standby binding), and
 * the first pump comes an iteration later. Only writes: a failure, like the rest, is
 * the first pump's to find, so nothing ends inside zlt_relay_start(). */
static void
dir_prefix_now (RelayDir *d)
{
#ifdef HAVE_SPLICE
  while (d->mode == DIR_SPLICE && d->dst_fd >= 0 && d->prefix != NULL)
    {
      const guint8 *data;
      gsize len;
      gssize n;

      dir_pending (d, &data, &len);
      n = send (d->dst_fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0)
        return;
      dir_consume (d, (gsize) n);
    }
#endif
}

/* Directions that use fds start at the next iteration: a read or a write at once,
 * whatever the fds say (a prefix waits, a source may have bytes already: a TLS
 * connection may hold application data from its handshake). */
static void
relay_start_io (ZltRelay *self, int fd_a, int fd_b)
{
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < 2; i++)
    self->dirs[i].again = self->dirs[i].use_fds;
  self->engine = engine_get (self->context);
  self->iofds[0].fd = fd_a;
  self->iofds[1].fd = fd_b;
  if (self->engine->relays != NULL)
    g_ptr_array_add (self->engine->relays, self);
  /* nothing is wanted yet: the first pumps say what to wait for */
  if (!relay_io_update (self, &error))
    relay_finish (self, error);
}

/* Takes the relay out of its engine: its fds, its turn, its deadline. */
static void
relay_stop_engine (ZltRelay *self)
{
  Engine *e = self->engine;

  if (e == NULL)
    return;
  for (guint i = 0; i < 2; i++)
    {
      IoFd *f = &self->iofds[i];

      if (!f->watched)
        continue;
#ifdef HAVE_EPOLL
      if (e->epfd >= 0)
        epoll_ctl (e->epfd, EPOLL_CTL_DEL, f->fd, NULL);
#endif
      if (f->tag != NULL)
        g_source_remove_unix_fd (&e->source, f->tag);
      f->tag = NULL;
      f->watched = FALSE;
    }
  if (self->again_queued)
    g_queue_remove (&e->again, self);
  self->again_queued = FALSE;
  if (self->idle_iter != NULL)
    g_sequence_remove (self->idle_iter);
  self->idle_iter = NULL;
  if (e->relays != NULL)
    g_ptr_array_remove_fast (e->relays, self);
  self->engine = NULL;
  g_source_unref (&e->source);
}

/* The engine's ready time: the soonest deadline, or none. */
static void
engine_arm_deadlines (Engine *e)
{
  gint64 ready_time = -1;

  if (!g_sequence_is_empty (e->deadlines))
    ready_time
        = ((ZltRelay *) g_sequence_get (g_sequence_get_begin_iter (e->deadlines)))->idle_deadline;
  if (g_source_get_ready_time (&e->source) != ready_time)
    g_source_set_ready_time (&e->source, ready_time);
}

static gint
deadline_cmp (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const ZltRelay *ra = a;
  const ZltRelay *rb = b;

  return ra->idle_deadline < rb->idle_deadline ? -1 : ra->idle_deadline > rb->idle_deadline;
}

/* Sets (or with -1 takes away) @self's idle deadline in its engine. The engine wakes
 * early only when the new deadline is the soonest; a later one needs no change. */
static void
engine_set_deadline (ZltRelay *self, gint64 deadline)
{
  Engine *e = self->engine;
  gint64 ready_time = g_source_get_ready_time (&e->source);

  if (self->idle_iter != NULL)
    {
      g_sequence_remove (self->idle_iter);
      self->idle_iter = NULL;
    }
  if (deadline < 0)
    return;
  self->idle_deadline = deadline;
  self->idle_iter = g_sequence_insert_sorted (e->deadlines, self, deadline_cmp, NULL);
  if (ready_time < 0 || deadline < ready_time)
    g_source_set_ready_time (&e->source, deadline);
}

/* ---------------------------------------------------------------------------------
 * pollable userspace
 *
 * A direction whose source and destination sit over fds (a socket, or the socket under
 * a TLS connection) waits on the relay's io source; any other pollable stream on a
 * source of its own, made for each wait. A direction whose source is over an fd but
 * whose destination is not (a UDP flow's output) waits on the io source for input and
 * on the destination's own source for output. Waiting on the fd is enough for TLS: the
 * relay reads until the TLS connection says it would block, which means GnuTLS has no
 * whole record left (only part of one, whose rest the socket brings), and always
 * with room for a whole record, so no decrypted bytes stay behind in GnuTLS; our data
 * TLS reads ahead, so after a short record it is asked whether whole records wait in
 * it (zlt_tls_stream_has_buffered()). */

/* Largest plaintext of one TLS record (RFC 8446 5.1; TLS 1.2 the same). */
#define TLS_RECORD_MAX 16384

static gboolean dir_poll_ready (GObject *stream, gpointer user_data);

/* The fd whose readiness is @stream's, both ways: the one fd under its input and
 * output streams (a socket connection's socket), or for a TLS connection that of its
 * base stream. -1 when there is no such fd. */
static int
stream_poll_fd (GIOStream *stream)
{
  GInputStream *in = g_io_stream_get_input_stream (stream);
  GOutputStream *out = g_io_stream_get_output_stream (stream);
  int fd;

  if (G_IS_TLS_CONNECTION (stream))
    {
      g_autoptr (GIOStream) base = NULL;

      /* the TLS connection holds its base stream for as long as it lives */
      g_object_get (stream, "base-io-stream", &base, NULL);
      if (base == NULL || G_IS_TLS_CONNECTION (base))
        return -1;
      return stream_poll_fd (base);
    }
  if (!G_IS_FILE_DESCRIPTOR_BASED (in) || !G_IS_FILE_DESCRIPTOR_BASED (out))
    return -1;
  fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (in));
  if (fd < 0 || fd != g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (out)))
    return -1;
  return fd;
}

/* Waits for the source (or the destination, @for_output) to be ready. */
static void
dir_poll_wait (RelayDir *d, gboolean for_output)
{
  GSource *source;

  if (d->use_fds && !for_output)
    {
      d->want_in = TRUE;
      return;
    }
  if (d->use_fds && d->out_by_fd)
    {
      d->want_out = TRUE;
      return;
    }
  if (d->wait != NULL) /* a direction over fds pumped for a hang-up while it waited */
    {
      g_source_destroy (d->wait);
      g_clear_pointer (&d->wait, g_source_unref);
    }
  if (for_output)
    source = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (d->out), NULL);
  else
    source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (d->in), NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (dir_poll_ready), d, NULL);
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, d->relay->context);
  d->wait = source;
}

/* Pumps again at the next iteration (the budget ran out). */
static void
dir_poll_yield (RelayDir *d)
{
  if (d->use_fds)
    d->again = TRUE;
  else
    dir_poll_wait (d, FALSE); /* ready at once if the source still has bytes */
}

static void
dir_free_buf (RelayDir *d)
{
  g_clear_pointer (&d->buf, g_free);
  d->buf_size = d->buf_off = d->buf_len = 0;
}

/* Writes @data until the destination has taken all of it or would block; @n_written
 * says how much it took. A TLS destination takes a record per call: the loop does not
 * go back to the main loop between records. */
static gboolean
dir_poll_write (RelayDir *d, const guint8 *data, gsize len, gsize *n_written, GError **error)
{
  gsize done = 0;

  while (done < len)
    {
      GError *local = NULL;
      gssize n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (d->out),
                                                             data + done, len - done,
                                                             d->relay->cancellable, &local);

      if (n < 0)
        {
          *n_written = done;
          if (!g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_propagate_error (error, local);
              return FALSE;
            }
          g_error_free (local);
          return TRUE;
        }
      done += (gsize) n;
    }
  *n_written = done;
  return TRUE;
}

/* Reads into @buf (ZLT_RELAY_CHUNK_SIZE bytes): once, or for a TLS source record after
 * record while whole records come and another fits. @n_read gets the bytes read; EOF
 * sets d->eof. @drained says the source has nothing more for now: it would block, or,
 * for a direction that waits on fds, its last read came short (less than asked, or a
 * TLS record short of the largest): the sender had no more when it sent, so the relay
 * waits for the fd instead of reading once more for a "would block" (request and
 * response traffic saves one read per message). That wait is safe: a short record was
 * a whole record (the room asked for holds the largest), so GnuTLS keeps nothing back,
 * and the fd polls readable when more has come meanwhile; our data TLS may hold whole
 * records it read ahead with that one, which are read on (batched into the buffer)
 * before the direction waits. */
static gboolean
dir_poll_read (RelayDir *d, guint8 *buf, gsize *n_read, gboolean *drained, GError **error)
{
  gsize len = 0;

  *drained = FALSE;
  for (;;)
    {
      GError *local = NULL;
      gsize room = ZLT_RELAY_CHUNK_SIZE - len;
      gssize n = g_pollable_input_stream_read_nonblocking (
          G_POLLABLE_INPUT_STREAM (d->in), buf + len, room, d->relay->cancellable, &local);

      if (n < 0)
        {
          if (!g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_propagate_error (error, local);
              return FALSE;
            }
          g_error_free (local);
          *drained = TRUE;
          break;
        }
      if (n == 0)
        {
          if (!dir_eof_check (d, error))
            return FALSE;
          d->eof = TRUE;
          break;
        }
      len += (gsize) n;
      if (!d->batch_reads)
        {
          *drained = d->use_fds && (gsize) n < room;
          break;
        }
      if ((gsize) n < TLS_RECORD_MAX)
        {
          /* our TLS reads ahead: more whole records may wait in it, not on the socket */
          if (d->src_tls != NULL && zlt_tls_stream_has_buffered (d->src_tls))
            {
              if (ZLT_RELAY_CHUNK_SIZE - len >= TLS_RECORD_MAX)
                continue;
              break;
            }
          *drained = d->use_fds;
          break;
        }
      if (ZLT_RELAY_CHUNK_SIZE - len < TLS_RECORD_MAX)
        break;
    }
  *n_read = len;
  return TRUE;
}

static gboolean
dir_poll_pump (RelayDir *d, GError **error)
{
  gsize budget = RELAY_BUDGET;
  gboolean src_drained = FALSE;

  d->want_in = d->want_out = FALSE;
  if (d->done || d->closing)
    return TRUE;
  for (;;)
    {
      const guint8 *data;
      guint8 *buf;
      gsize len;
      gsize written;

      if (dir_pending (d, &data, &len))
        {
          if (!dir_poll_write (d, data, len, &written, error))
            return FALSE;
          dir_consume (d, written);
          if (written < len)
            {
              dir_poll_wait (d, TRUE);
              return TRUE;
            }
          continue;
        }
      if (d->eof)
        {
          dir_free_buf (d);
          return dir_shutdown (d, error);
        }
      if (src_drained)
        {
          dir_free_buf (d); /* idle: hold no memory */
          dir_poll_wait (d, FALSE);
          return TRUE;
        }
      if (budget == 0)
        {
          dir_poll_yield (d);
          return TRUE;
        }

      buf = d->buf != NULL ? d->buf : scratch_get ();
      if (!dir_poll_read (d, buf, &len, &src_drained, error))
        return FALSE;
      if (len == 0)
        continue;
      budget -= MIN (budget, len);
      if (buf == d->buf)
        {
          d->buf_off = 0;
          d->buf_len = len;
          continue;
        }

      /* straight from the scratch buffer; keep only what the destination refused */
      if (!dir_poll_write (d, buf, len, &written, error))
        return FALSE;
      dir_count (d, written);
      if (written < len)
        {
          if (d->buf == NULL)
            {
              d->buf = g_malloc (ZLT_RELAY_CHUNK_SIZE);
              d->buf_size = ZLT_RELAY_CHUNK_SIZE;
            }
          memcpy (d->buf, buf + written, len - written);
          d->buf_off = 0;
          d->buf_len = len - written;
          dir_poll_wait (d, TRUE);
          return TRUE;
        }
    }
}

/* A direction without fds: its own source said ready. */
static gboolean
dir_poll_ready (GObject *stream, gpointer user_data)
{
  RelayDir *d = user_data;
  g_autoptr (ZltRelay) self = g_object_ref (d->relay);
  g_autoptr (GError) error = NULL;

  /* the dispatch holds its own reference on the source until we return */
  g_clear_pointer (&d->wait, g_source_unref);
  if (!dir_poll_pump (d, &error))
    relay_finish (self, error);
  else
    relay_after_io (self);
  /* a direction over fds that waited on its destination's source: the engine's events
   * follow what it wants now */
  if (d->use_fds && !self->finished && !relay_io_update (self, &error))
    relay_finish (self, error);
  return G_SOURCE_REMOVE;
}

/* ---------------------------------------------------------------------------------
 * async userspace */

static void dir_async_next (RelayDir *d);

static RelayDir *
dir_for_stream (ZltRelay *self, GObject *stream)
{
  if (self->dirs[0].in == (GInputStream *) stream || self->dirs[0].out == (GOutputStream *) stream)
    return &self->dirs[0];
  return &self->dirs[1];
}

static void
dir_async_write_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (ZltRelay) self = user_data; /* the reference the operation held */
  g_autoptr (GError) error = NULL;
  RelayDir *d = dir_for_stream (self, source);
  gsize written = 0;
  gboolean ok = g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, &written, &error);

  self->ops_pending--;
  if (self->finished)
    {
      relay_maybe_close_streams (self);
      return;
    }
  if (!ok)
    {
      relay_finish (self, error);
      return;
    }
  dir_consume (d, written);
  dir_async_next (d);
  relay_after_io (self);
}

static void
dir_async_read_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (ZltRelay) self = user_data; /* the reference the operation held */
  g_autoptr (GError) error = NULL;
  RelayDir *d = dir_for_stream (self, source);
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), res, &error);

  self->ops_pending--;
  if (self->finished)
    {
      relay_maybe_close_streams (self);
      return;
    }
  if (n < 0)
    {
      relay_finish (self, error);
      return;
    }
  if (n == 0)
    {
      if (!dir_eof_check (d, &error))
        {
          relay_finish (self, error);
          return;
        }
      d->eof = TRUE;
    }
  else
    {
      /* grow while reads fill the buffer, drop back to the minimum when they are small */
      if ((gsize) n == d->buf_size)
        d->next_size = MIN (d->buf_size * 4, ZLT_RELAY_CHUNK_SIZE);
      else if ((gsize) n <= ASYNC_MIN_CHUNK)
        d->next_size = ASYNC_MIN_CHUNK;
      d->buf_off = 0;
      d->buf_len = (gsize) n;
    }
  dir_async_next (d);
  relay_after_io (self);
}

static void
dir_async_next (RelayDir *d)
{
  ZltRelay *self = d->relay;
  const guint8 *data;
  gsize len;

  if (d->done || d->closing || self->finished)
    return;
  if (dir_pending (d, &data, &len))
    {
      self->ops_pending++;
      g_output_stream_write_all_async (d->out, data, len, G_PRIORITY_DEFAULT, self->cancellable,
                                       dir_async_write_done, g_object_ref (self));
      return;
    }
  if (d->eof)
    {
      g_autoptr (GError) error = NULL;

      if (!dir_shutdown (d, &error))
        relay_finish (self, error);
      return;
    }
  if (d->buf == NULL || d->buf_size != d->next_size)
    {
      g_free (d->buf);
      d->buf = g_malloc (d->next_size);
      d->buf_size = d->next_size;
    }
  self->ops_pending++;
  g_input_stream_read_async (d->in, d->buf, d->buf_size, G_PRIORITY_DEFAULT, self->cancellable,
                             dir_async_read_done, g_object_ref (self));
}

/* ---------------------------------------------------------------------------------
 * life cycle */

static void
relay_flush_counters (ZltRelay *self)
{
  guint64 ab = self->dirs[0].delta;
  guint64 ba = self->dirs[1].delta;

  if (ab == 0 && ba == 0)
    return;
  self->dirs[0].delta = self->dirs[1].delta = 0;
  if (self->idle_timeout > 0)
    self->last_activity = g_get_monotonic_time ();
  if (self->counter_func != NULL)
    self->counter_func (ab, ba, self->counter_data);
}

/* After bytes moved or a direction ended: report, and finish once both have ended. */
static void
relay_after_io (ZltRelay *self)
{
  relay_flush_counters (self);
  if (!self->finished && self->dirs[0].done && self->dirs[1].done)
    relay_finish (self, NULL);
}

/* ---------------------------------------------------------------------------------
 * idle timeout */

static gboolean
idle_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  IdleSource *is = (IdleSource *) source;
  g_autoptr (ZltRelay) self = g_object_ref (is->relay);

  relay_idle_expired (self, g_source_get_time (source));
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs idle_source_funcs = {
  .dispatch = idle_source_dispatch,
};

/* Arms (or disarms) the timer for the current timeout, from the last activity; only
 * while running. A relay in an engine has its deadline there, any other a small source
 * of its own whose ready time it is. */
static void
relay_idle_arm (ZltRelay *self)
{
  gint64 deadline = self->idle_timeout > 0 ? self->last_activity + self->idle_timeout : -1;

  if (self->engine != NULL)
    {
      engine_set_deadline (self, deadline);
      return;
    }
  if (deadline < 0)
    {
      if (self->idle_source != NULL)
        {
          g_source_destroy (self->idle_source);
          g_clear_pointer (&self->idle_source, g_source_unref);
        }
      return;
    }
  if (self->idle_source == NULL)
    {
      self->idle_source = g_source_new (&idle_source_funcs, sizeof (IdleSource));
      g_source_set_static_name (self->idle_source, "zlt-relay-idle");
      ((IdleSource *) self->idle_source)->relay = self;
      g_source_attach (self->idle_source, self->context);
    }
  g_source_set_ready_time (self->idle_source, deadline);
}

/* The deadline passed: end the relay if nothing moved since, or wait for the rest. */
static void
relay_idle_expired (ZltRelay *self, gint64 now)
{
  g_autoptr (GError) error = NULL;

  if (self->finished)
    return;
  if (self->idle_timeout == 0 || now - self->last_activity < self->idle_timeout)
    {
      relay_idle_arm (self);
      return;
    }
  error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "no bytes moved for %u ms",
                       (guint) (self->idle_timeout / 1000));
  relay_finish (self, error);
}

/* ---------------------------------------------------------------------------------
 * the sockets under the streams: reset on a failure, in order otherwise */

static void
relay_find_sockets (ZltRelay *self)
{
  GIOStream *streams[2] = { self->a, self->b };

  for (guint i = 0; i < 2; i++)
    {
      RelaySock *rs = &self->socks[i];

      if (rs->fd < 0 && !g_io_stream_is_closed (streams[i]))
        rs->fd = zlt_net_stream_socket_fd (streams[i], &rs->socket);
    }
}

/* While running: a process that dies resets its peers (see the top of the file). */
static void
relay_sockets_arm (ZltRelay *self)
{
  /* the relay keeps its own time (idle timeout): a socket timeout left by whoever made a
   * stream would end a relay that is merely quiet */
  zlt_net_clear_socket_timeout (self->a);
  zlt_net_clear_socket_timeout (self->b);
  relay_find_sockets (self);
  for (guint i = 0; i < 2; i++)
    {
      RelaySock *rs = &self->socks[i];
      socklen_t len = sizeof rs->saved;

      if (rs->fd < 0 || getsockopt (rs->fd, SOL_SOCKET, SO_LINGER, &rs->saved, &len) < 0)
        continue;
      if (rs->saved.l_onoff && rs->saved.l_linger == 0)
        continue; /* resets on close already */
      rs->lingering = zlt_net_set_reset_on_close (rs->fd, TRUE);
    }
}

/* At the end: a clean end gives linger back before the orderly close; a failure makes
 * sure both sockets reset, even when the relay never started. */
static void
relay_sockets_end (ZltRelay *self)
{
  relay_find_sockets (self);
  for (guint i = 0; i < 2; i++)
    {
      RelaySock *rs = &self->socks[i];

      if (rs->fd < 0 || (rs->socket != NULL && g_socket_is_closed (rs->socket)))
        continue;
      if (self->failed)
        {
          if (!rs->lingering)
            zlt_net_set_reset_on_close (rs->fd, TRUE);
        }
      else if (rs->lingering)
        {
          setsockopt (rs->fd, SOL_SOCKET, SO_LINGER, &rs->saved, sizeof rs->saved);
        }
      rs->lingering = FALSE;
    }
}

static void
relay_stop_io (ZltRelay *self)
{
  relay_stop_engine (self);
  if (self->idle_source != NULL)
    {
      g_source_destroy (self->idle_source);
      g_clear_pointer (&self->idle_source, g_source_unref);
    }
  for (guint i = 0; i < 2; i++)
    {
      RelayDir *d = &self->dirs[i];

      if (d->wait != NULL)
        {
          g_source_destroy (d->wait);
          g_clear_pointer (&d->wait, g_source_unref);
        }
#ifdef HAVE_SPLICE
      if (d->pipe_fill == 0)
        pipe_release (&d->pipe);
      else
        pipe_discard (&d->pipe);
#endif
      d->pipe_fill = 0;
      /* an async read may still be writing into its buffer: that one goes in finalize */
      if (d->mode != DIR_ASYNC)
        dir_free_buf (d);
    }
}

/* Close both streams once no operation of ours is left on them. */
static void
relay_maybe_close_streams (ZltRelay *self)
{
  if (!self->finished || self->streams_closed || self->ops_pending > 0)
    return;
  self->streams_closed = TRUE;
  /* a failure: close the sockets first, with linger {on, 0}, so that they reset and a TLS
   * connection's close_notify (which would say "complete") fails instead of going out */
  if (self->failed)
    for (guint i = 0; i < 2; i++)
      if (self->socks[i].socket != NULL)
        g_socket_close (self->socks[i].socket, NULL);
  g_io_stream_close_async (self->a, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_io_stream_close_async (self->b, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
}

static void
relay_finish (ZltRelay *self, const GError *error)
{
  gboolean held = self->running;

  if (self->finished)
    return;
  self->finished = TRUE;
  self->running = FALSE;
  self->failed = error != NULL;
  if (error != NULL)
    g_debug ("relay: finished: %s", error->message);
  relay_flush_counters (self);
  g_cancellable_cancel (self->cancellable);
  relay_stop_io (self);
  relay_sockets_end (self);
  relay_maybe_close_streams (self);
  if (self->dirs[0].total > 0)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_BYTES_A_TO_B]);
  if (self->dirs[1].total > 0)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_BYTES_B_TO_A]);
  g_signal_emit (self, signals[SIGNAL_FINISHED], 0, error);
  if (held)
    g_object_unref (self); /* the reference taken at the start; may be the last */
}

static gboolean
relay_fail_closed_cb (gpointer user_data)
{
  ZltRelay *self = user_data;
  g_autoptr (GError) error = NULL;

  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED, "stream is already closed");
  relay_finish (self, error);
  return G_SOURCE_REMOVE;
}

static void
dir_init (ZltRelay *self, guint index, GIOStream *src, GIOStream *dst)
{
  RelayDir *d = &self->dirs[index];

  d->relay = self;
  d->dst_stream = dst;
  d->in = g_io_stream_get_input_stream (src);
  d->out = g_io_stream_get_output_stream (dst);
  d->src_fd = d->dst_fd = -1;
  d->pipe.r = d->pipe.w = -1;
  d->next_size = ASYNC_MIN_CHUNK;
}

/* A plain socket connection whose streams read and write the socket directly. */
static GSocket *
plain_socket (GIOStream *stream)
{
#ifdef HAVE_SPLICE
  GType type = G_OBJECT_TYPE (stream);
  GSocket *sock;

  if (type != G_TYPE_SOCKET_CONNECTION && type != G_TYPE_TCP_CONNECTION
      && type != G_TYPE_UNIX_CONNECTION)
    return NULL;
  sock = g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream));
  if (sock == NULL || g_socket_is_closed (sock)
      || g_socket_get_socket_type (sock) != G_SOCKET_TYPE_STREAM || g_socket_get_fd (sock) < 0)
    return NULL;
  return sock;
#else
  return NULL;
#endif
}

static DirMode
userspace_mode (RelayDir *d)
{
  if (G_IS_POLLABLE_INPUT_STREAM (d->in)
      && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (d->in))
      && G_IS_POLLABLE_OUTPUT_STREAM (d->out)
      && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (d->out)))
    return DIR_POLL;
  return DIR_ASYNC;
}

static void
zlt_relay_constructed (GObject *object)
{
  ZltRelay *self = ZLT_RELAY (object);
  GSocket *sa = plain_socket (self->a);
  GSocket *sb = plain_socket (self->b);

  G_OBJECT_CLASS (zlt_relay_parent_class)->constructed (object);

  dir_init (self, ZLT_RELAY_A_TO_B, self->a, self->b);
  dir_init (self, ZLT_RELAY_B_TO_A, self->b, self->a);
  self->zero_copy = sa != NULL && sb != NULL;
  if (self->zero_copy)
    {
      self->dirs[0].mode = self->dirs[1].mode = DIR_SPLICE;
      self->dirs[0].use_fds = self->dirs[1].use_fds = TRUE;
      self->dirs[0].out_by_fd = self->dirs[1].out_by_fd = TRUE;
      self->io_fds[0] = self->dirs[0].src_fd = self->dirs[1].dst_fd = g_socket_get_fd (sa);
      self->io_fds[1] = self->dirs[1].src_fd = self->dirs[0].dst_fd = g_socket_get_fd (sb);
      return;
    }
  self->dirs[0].mode = userspace_mode (&self->dirs[0]);
  self->dirs[1].mode = userspace_mode (&self->dirs[1]);
  if (self->dirs[0].mode != DIR_POLL && self->dirs[1].mode != DIR_POLL)
    return;
  self->io_fds[0] = stream_poll_fd (self->a);
  self->io_fds[1] = stream_poll_fd (self->b);
  for (guint i = 0; i < 2; i++)
    {
      RelayDir *d = &self->dirs[i];

      if (d->mode != DIR_POLL)
        continue;
      /* the source's fd is enough: a destination without one (a UDP flow's output) is
       * waited for on its own pollable source */
      d->use_fds = self->io_fds[i] >= 0;
      d->out_by_fd = self->io_fds[1 - i] >= 0;
      d->batch_reads = G_IS_TLS_CONNECTION (i == 0 ? self->a : self->b);
      if (ZLT_IS_TLS_STREAM (i == 0 ? self->a : self->b))
        d->src_tls = ZLT_TLS_STREAM (i == 0 ? self->a : self->b);
    }
}

static void
zlt_relay_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltRelay *self = ZLT_RELAY (object);

  switch (prop_id)
    {
    case PROP_A:
      g_value_set_object (value, self->a);
      break;
    case PROP_B:
      g_value_set_object (value, self->b);
      break;
    case PROP_BYTES_A_TO_B:
      g_value_set_uint64 (value, self->dirs[0].total);
      break;
    case PROP_BYTES_B_TO_A:
      g_value_set_uint64 (value, self->dirs[1].total);
      break;
    case PROP_ZERO_COPY:
      g_value_set_boolean (value, self->zero_copy);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_relay_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ZltRelay *self = ZLT_RELAY (object);

  switch (prop_id)
    {
    case PROP_A:
      self->a = g_value_dup_object (value);
      break;
    case PROP_B:
      self->b = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_relay_dispose (GObject *object)
{
  ZltRelay *self = ZLT_RELAY (object);

  /* a running relay holds a reference on itself, so this is after the end or before
   * the start, and no operation of ours is pending */
  g_cancellable_cancel (self->cancellable);
  relay_stop_io (self);
  if (self->counter_destroy != NULL)
    self->counter_destroy (self->counter_data);
  self->counter_func = NULL;
  self->counter_data = NULL;
  self->counter_destroy = NULL;
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (zlt_relay_parent_class)->dispose (object);
}

static void
zlt_relay_finalize (GObject *object)
{
  ZltRelay *self = ZLT_RELAY (object);

  for (guint i = 0; i < 2; i++)
    {
      g_clear_pointer (&self->dirs[i].prefix, g_bytes_unref);
      dir_free_buf (&self->dirs[i]);
    }
  g_clear_object (&self->a);
  g_clear_object (&self->b);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (zlt_relay_parent_class)->finalize (object);
}

static void
zlt_relay_class_init (ZltRelayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = zlt_relay_constructed;
  object_class->get_property = zlt_relay_get_property;
  object_class->set_property = zlt_relay_set_property;
  object_class->dispose = zlt_relay_dispose;
  object_class->finalize = zlt_relay_finalize;

  props[PROP_A]
      = g_param_spec_object ("a", NULL, NULL, G_TYPE_IO_STREAM,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  props[PROP_B]
      = g_param_spec_object ("b", NULL, NULL, G_TYPE_IO_STREAM,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltRelay:bytes-a-to-b:
   * Bytes delivered from a to b so far. Read it at any time; it is notified only when
   * the relay finishes (use zlt_relay_set_counter_func() to follow it).
   */
  props[PROP_BYTES_A_TO_B]
      = g_param_spec_uint64 ("bytes-a-to-b", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_BYTES_B_TO_A]
      = g_param_spec_uint64 ("bytes-b-to-a", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_ZERO_COPY]
      = g_param_spec_boolean ("zero-copy", NULL, NULL, FALSE,
                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltRelay::finished:
   * @self: the relay
   * @error: (nullable): %NULL for a clean end, otherwise why it failed
   *
   * Emitted exactly once, after both streams have been asked to close. See
   * #ZltRelay in zlt-relay.h for what a clean end and a failure mean to the peers.
   */
  signals[SIGNAL_FINISHED]
      = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                      G_TYPE_NONE, 1, G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
zlt_relay_init (ZltRelay *self)
{
  self->cancellable = g_cancellable_new ();
  self->socks[0].fd = self->socks[1].fd = -1;
  self->io_fds[0] = self->io_fds[1] = -1;
  for (guint i = 0; i < 2; i++)
    {
      self->iofds[i].fd = -1;
      self->iofds[i].relay = self;
      self->iofds[i].index = i;
    }
}

/* ---------------------------------------------------------------------------------
 * public API */

/**
 * zlt_relay_new:
 * @a: one stream
 * @b: the other stream
 *
 * Makes a relay that, once started, copies @a's input to @b's output and @b's input to
 * @a's output. From zlt_relay_start() on the relay owns both streams: it closes them
 * when it finishes. Bytes a caller has already read from either stream go in with
 * zlt_relay_set_prefix().
 */
ZltRelay *
zlt_relay_new (GIOStream *a, GIOStream *b)
{
  g_return_val_if_fail (G_IS_IO_STREAM (a), NULL);
  g_return_val_if_fail (G_IS_IO_STREAM (b), NULL);
  g_return_val_if_fail (a != b, NULL);

  return g_object_new (ZLT_TYPE_RELAY, "a", a, "b", b, NULL);
}

/**
 * zlt_relay_set_prefix:
 * @direction: which destination gets the bytes
 * @bytes: (nullable): bytes to write to the destination before anything relayed
 *
 * For bytes already taken from the source stream (read-ahead while parsing a request,
 * a buffered input stream's contents). Only before zlt_relay_start().
 */
void
zlt_relay_set_prefix (ZltRelay *self, ZltRelayDirection direction, GBytes *bytes)
{
  RelayDir *d;

  g_return_if_fail (ZLT_IS_RELAY (self));
  g_return_if_fail (direction == ZLT_RELAY_A_TO_B || direction == ZLT_RELAY_B_TO_A);
  g_return_if_fail (!self->started);

  d = &self->dirs[direction];
  g_clear_pointer (&d->prefix, g_bytes_unref);
  d->prefix_off = 0;
  if (bytes != NULL && g_bytes_get_size (bytes) > 0)
    d->prefix = g_bytes_ref (bytes);
}

/**
 * zlt_relay_set_counter_func:
 * @func: (nullable): called with the bytes moved since its last call
 *
 * Replaces the counter function; @destroy is called for @user_data when it is replaced
 * or the relay goes away.
 */
void
zlt_relay_set_counter_func (ZltRelay *self, ZltRelayCounterFunc func, gpointer user_data,
                            GDestroyNotify destroy)
{
  GDestroyNotify old_destroy;
  gpointer old_data;

  g_return_if_fail (ZLT_IS_RELAY (self));

  old_destroy = self->counter_destroy;
  old_data = self->counter_data;
  self->counter_func = func;
  self->counter_data = user_data;
  self->counter_destroy = destroy;
  if (old_destroy != NULL)
    old_destroy (old_data);
}

/**
 * zlt_relay_start:
 *
 * Starts relaying on the thread-default main context. The relay keeps itself alive
 * until ::finished, so the caller may drop its reference at once.
 */
void
zlt_relay_start (ZltRelay *self)
{
  g_return_if_fail (ZLT_IS_RELAY (self));
  g_return_if_fail (!self->started);

  self->started = TRUE;
  if (self->finished) /* closed before it started */
    return;
  self->context = g_main_context_ref_thread_default ();
  self->running = TRUE;
  self->last_activity = g_get_monotonic_time ();
  g_object_ref (self);

  if (g_io_stream_is_closed (self->a) || g_io_stream_is_closed (self->b)
      || (self->zero_copy && (plain_socket (self->a) == NULL || plain_socket (self->b) == NULL)))
    {
      GSource *idle = g_idle_source_new ();

      g_source_set_callback (idle, relay_fail_closed_cb, g_object_ref (self), g_object_unref);
      g_source_attach (idle, self->context);
      g_source_unref (idle);
      return;
    }

  relay_sockets_arm (self);
  if (self->dirs[0].use_fds || self->dirs[1].use_fds)
    {
      relay_start_io (self, self->io_fds[0], self->io_fds[1]);
      if (self->finished)
        return;
      for (guint i = 0; i < 2; i++)
        dir_prefix_now (&self->dirs[i]);
    }
  relay_idle_arm (self);
  for (guint i = 0; i < 2; i++)
    {
      RelayDir *d = &self->dirs[i];

      if (d->use_fds)
        continue;
      if (d->mode == DIR_POLL)
        dir_poll_wait (d, d->prefix != NULL);
      else
        dir_async_next (d);
    }
}

/**
 * zlt_relay_set_idle_timeout:
 * @timeout_ms: how long no byte may move in either direction, or 0 for no limit
 *
 * Once no byte has moved either way for @timeout_ms, the relay ends with
 * %G_IO_ERROR_TIMED_OUT and resets both peers. Before or after zlt_relay_start(); while
 * it runs, the new limit counts from the last byte moved (or the start).
 */
void
zlt_relay_set_idle_timeout (ZltRelay *self, guint timeout_ms)
{
  g_return_if_fail (ZLT_IS_RELAY (self));

  self->idle_timeout = (gint64) timeout_ms * 1000;
  if (self->running)
    relay_idle_arm (self);
}

guint
zlt_relay_get_idle_timeout (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), 0);
  return (guint) (self->idle_timeout / 1000);
}

/**
 * zlt_relay_close:
 *
 * Tears the relay down now, as a failure (an administrative cut): stops relaying, resets
 * both peers, closes both streams and emits ::finished with %G_IO_ERROR_CANCELLED,
 * unless it has finished already.
 */
void
zlt_relay_close (ZltRelay *self)
{
  g_autoptr (GError) error = NULL;

  g_return_if_fail (ZLT_IS_RELAY (self));

  if (self->finished)
    return;
  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "relay closed");
  relay_finish (self, error);
}

/**
 * zlt_relay_get_stream_b:
 * @self: a relay
 *
 * Returns: (transfer none): the second stream
 */
GIOStream *
zlt_relay_get_stream_b (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), NULL);
  return self->b;
}

/**
 * zlt_relay_is_zero_copy:
 *
 * Whether bytes move with splice(2) and never enter userspace: both streams are plain
 * socket connections and the platform has splice.
 */
gboolean
zlt_relay_is_zero_copy (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), FALSE);
  return self->zero_copy;
}

/* Started and not finished yet. */
gboolean
zlt_relay_is_running (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), FALSE);
  return self->running;
}

guint64
zlt_relay_get_bytes_a_to_b (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), 0);
  return self->dirs[0].total;
}

guint64
zlt_relay_get_bytes_b_to_a (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), 0);
  return self->dirs[1].total;
}

/**
 * zlt_relay_get_buffered_bytes:
 *
 * Bytes the relay has taken from a source and not yet delivered (in pipes, buffers and
 * prefixes). Bounded by back-pressure: at most a pipe or a chunk per direction plus
 * the prefixes.
 */
gsize
zlt_relay_get_buffered_bytes (ZltRelay *self)
{
  g_return_val_if_fail (ZLT_IS_RELAY (self), 0);
  return dir_buffered (&self->dirs[0]) + dir_buffered (&self->dirs[1]);
}
