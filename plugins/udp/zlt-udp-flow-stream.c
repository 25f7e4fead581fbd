/* zlt-udp-flow-stream.c: one UDP flow as a byte stream of length-framed datagrams
 *
 * The UDP data plane reuses the TCP one: a flow is a GIOStream whose input yields
 * `u16 big-endian length · payload` for every datagram from the peer, and whose output
 * takes that same byte stream and sends one datagram per frame (PROTOCOL-v2.md §5). The
 * relay then carries a flow over a data connection unchanged, boundaries preserved.
 *
 * Two flavours:
 * - listener flows share the listener's socket: the listener hands them the datagrams
 *   from their peer (zlt_udp_flow_stream_deliver()) and they sendto() the peer;
 * - dialed flows own a socket connected to the peer and receive on it themselves.
 *
 * Inbound datagrams wait in a queue of at most ZLT_UDP_QUEUE_MAX_DATAGRAMS datagrams and
 * ZLT_UDP_QUEUE_MAX_BYTES payload bytes (and, for listener flows, within the listener's
 * budget for all its flows together); beyond that they are dropped and counted, as a
 * full socket buffer would. Outbound datagrams go straight to the socket; one the kernel
 * will not take now is dropped and counted too, so a write never blocks.
 *
 * A flow ends when no datagram passed either way for idle-timeout-ms (one timer whose
 * deadline is pushed back lazily: it fires, finds recent activity, and re-arms), when its
 * output is closed (the other side of the tunnel ended), when its input is closed, when
 * its listener closes, or when it is closed. An ended flow takes no more datagrams, its
 * input returns what is queued and then end-of-stream, and a listener flow is forgotten
 * by its listener (the peer's next datagram starts a new flow). Writes still go out
 * until the flow is closed.
 *
 * Everything happens on the main context that was thread-default when the flow was
 * made. */
#include "config.h"

#ifdef __linux__
#define _GNU_SOURCE /* sendmmsg */
#endif

#include <errno.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "zlt-udp-flow-input.h"
#include "zlt-udp-flow-output.h"
#include "zlt-udp-flow-stream.h"
#include "zlt-udp-listener.h"

/* One queued datagram, already framed: data = length (2 bytes) · payload. */
typedef struct _Datagram Datagram;
struct _Datagram
{
  Datagram *next;
  gsize size; /* 2 + payload */
  guint8 data[];
};

struct _ZltUdpFlowStream
{
  GIOStream parent_instance;

  GInputStream *input;
  GOutputStream *output;
  GMainContext *context;

  GSocket *socket;
  gboolean connected;       /* owns a connected socket (dialed) */
  ZltUdpListener *listener; /* unowned; NULL for dialed flows and once detached */
  ZltUdpPeerKey key;
  struct sockaddr_storage peer_native;
  socklen_t peer_native_len;
  GSocketAddress *peer;

  GSource *watch; /* dialed: the socket is readable */
  GSource *idle_source;
  guint idle_timeout_ms;
  gint64 last_activity; /* monotonic µs */

  gboolean ended;
  gboolean closed;

  /* inbound: head is read from head_off on */
  Datagram *head;
  Datagram *tail;
  gsize head_off;
  guint queued;
  gsize queued_bytes; /* payload bytes */

  /* outbound: the frame being assembled across writes */
  guint8 header[2];
  guint header_len;
  guint8 *frame; /* only while a frame spans writes */
  gsize frame_size;
  gsize frame_len;
  gboolean broken; /* a malformed frame was written: every later write fails */

  guint64 dropped;
  guint64 datagrams_in;
  guint64 datagrams_out;
  guint64 bytes_in;
  guint64 bytes_out;
};

G_DEFINE_FINAL_TYPE (ZltUdpFlowStream, zlt_udp_flow_stream, G_TYPE_IO_STREAM)

enum
{
  PROP_0,
  PROP_PEER_ADDRESS,
  PROP_IDLE_TIMEOUT_MS,
  PROP_ENDED,
  PROP_DROPPED,
  PROP_DATAGRAMS_IN,
  PROP_DATAGRAMS_OUT,
  PROP_BYTES_IN,
  PROP_BYTES_OUT,
  PROP_QUEUED_DATAGRAMS,
  PROP_QUEUED_BYTES,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

/* ---------------------------------------------------------------------------------
 * the end of a flow */

static void
flow_stop_sources (ZltUdpFlowStream *self)
{
  if (self->idle_source != NULL)
    {
      g_source_destroy (self->idle_source);
      g_clear_pointer (&self->idle_source, g_source_unref);
    }
  if (self->watch != NULL)
    {
      g_source_destroy (self->watch);
      g_clear_pointer (&self->watch, g_source_unref);
    }
}

/* Leaves the listener's queue budget and forgets the listener. */
static ZltUdpListener *
flow_leave_listener (ZltUdpFlowStream *self)
{
  ZltUdpListener *listener = self->listener;

  if (listener != NULL)
    zlt_udp_listener_release (listener, self->queued_bytes);
  self->listener = NULL;
  return listener;
}

static void
flow_clear_queue (ZltUdpFlowStream *self)
{
  if (self->listener != NULL)
    zlt_udp_listener_release (self->listener, self->queued_bytes);
  while (self->head != NULL)
    {
      Datagram *d = self->head;

      self->head = d->next;
      g_free (d);
    }
  self->tail = NULL;
  self->head_off = 0;
  self->queued = 0;
  self->queued_bytes = 0;
}

/* The input became readable: whoever waits on it runs. */
static void
flow_wake_readers (ZltUdpFlowStream *self)
{
  if (self->input != NULL)
    zlt_udp_flow_input_wake (ZLT_UDP_FLOW_INPUT (self->input));
}

/* No more datagrams in: what is queued is read, then end-of-stream. */
static void
flow_end (ZltUdpFlowStream *self)
{
  g_autoptr (ZltUdpFlowStream) keep G_GNUC_UNUSED = NULL;
  ZltUdpListener *listener;

  if (self->ended)
    return;
  self->ended = TRUE;
  listener = flow_leave_listener (self);
  flow_stop_sources (self);
  flow_wake_readers (self);
  if (listener != NULL)
    {
      /* the listener's table may hold the last reference */
      keep = g_object_ref (self);
      zlt_udp_listener_forget (listener, self);
    }
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_ENDED]);
}

/* ---------------------------------------------------------------------------------
 * idle timeout: one timer, its deadline pushed back only when it fires */

static gboolean
idle_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

static GSourceFuncs idle_source_funcs = {
  .dispatch = idle_source_dispatch,
};

static gint64
flow_idle_deadline (ZltUdpFlowStream *self)
{
  return self->last_activity + (gint64) self->idle_timeout_ms * 1000;
}

static gboolean
on_idle_deadline (gpointer user_data)
{
  ZltUdpFlowStream *self = user_data;
  gint64 deadline = flow_idle_deadline (self);

  if (g_get_monotonic_time () < deadline)
    {
      g_source_set_ready_time (self->idle_source, deadline);
      return G_SOURCE_CONTINUE;
    }
  g_debug ("udp flow idle for %u ms, ending it", self->idle_timeout_ms);
  {
    g_autoptr (ZltUdpFlowStream) keep G_GNUC_UNUSED = g_object_ref (self);

    flow_end (self);
  }
  return G_SOURCE_REMOVE;
}

static void
flow_arm_idle (ZltUdpFlowStream *self)
{
  if (self->ended || self->idle_timeout_ms == 0)
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
      self->idle_source = g_source_new (&idle_source_funcs, sizeof (GSource));
      g_source_set_static_name (self->idle_source, "zlt-udp-flow-idle");
      g_source_set_callback (self->idle_source, on_idle_deadline, self, NULL);
      g_source_attach (self->idle_source, self->context);
    }
  g_source_set_ready_time (self->idle_source, flow_idle_deadline (self));
}

/* ---------------------------------------------------------------------------------
 * inbound */

void
zlt_udp_flow_stream_deliver (ZltUdpFlowStream *self, const guint8 *data, gsize len, gint64 now)
{
  Datagram *d;

  g_return_if_fail (ZLT_IS_UDP_FLOW_STREAM (self));
  g_return_if_fail (len <= ZLT_UDP_MAX_DATAGRAM);

  if (self->ended)
    return;
  self->last_activity = now;
  if (self->queued >= ZLT_UDP_QUEUE_MAX_DATAGRAMS
      || self->queued_bytes + len > ZLT_UDP_QUEUE_MAX_BYTES
      || (self->listener != NULL && !zlt_udp_listener_reserve (self->listener, len)))
    {
      self->dropped++;
      return;
    }
  d = g_malloc (sizeof (Datagram) + 2 + len);
  d->next = NULL;
  d->size = 2 + len;
  d->data[0] = (guint8) (len >> 8);
  d->data[1] = (guint8) (len & 0xff);
  memcpy (d->data + 2, data, len);
  if (self->tail != NULL)
    {
      self->tail->next = d;
    }
  else
    {
      self->head = d;
      flow_wake_readers (self);
    }
  self->tail = d;
  self->queued++;
  self->queued_bytes += len;
  self->datagrams_in++;
  self->bytes_in += len;
}

/* Dialed flows: takes what the connected socket has, a bounded batch per dispatch:
 * ZLT_UDP_RECV_MMSG datagrams per recvmmsg() where there is one. */
static gboolean
on_socket_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  ZltUdpFlowStream *self = user_data;
  g_autoptr (ZltUdpFlowStream) keep G_GNUC_UNUSED = g_object_ref (self);
  guint8 *buf = zlt_udp_scratch_get ();
  gint64 now = g_get_monotonic_time ();
  int fd = g_socket_get_fd (socket);
#ifdef __linux__
  struct mmsghdr msgs[ZLT_UDP_RECV_MMSG];
  struct iovec iov[ZLT_UDP_RECV_MMSG];
#endif

  for (guint i = 0; i < ZLT_UDP_RECV_BATCH && !self->ended;)
    {
      guint want = 1;
      int got = 1;
      gssize n = 0;

#ifdef __linux__
      want = MIN (ZLT_UDP_RECV_MMSG, ZLT_UDP_RECV_BATCH - i);
      for (guint k = 0; k < want; k++)
        {
          iov[k].iov_base = buf + (gsize) k * ZLT_UDP_RECV_BUFFER;
          iov[k].iov_len = ZLT_UDP_RECV_BUFFER;
          memset (&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
        }
      got = recvmmsg (fd, msgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
      if (got < 0)
        n = -1;
#else
      n = recv (fd, buf, ZLT_UDP_RECV_BUFFER, MSG_DONTWAIT | MSG_TRUNC);
#endif
      if (n < 0)
        {
          int errsv = errno;

          if (errsv == EINTR)
            continue;
          if (errsv == EAGAIN || errsv == EWOULDBLOCK)
            break;
          i++;
          if (zlt_udp_errno_is_drop (errsv))
            {
              /* an ICMP error for an earlier datagram: the service is not there (yet) */
              g_debug ("udp flow: %s", g_strerror (errsv));
              continue;
            }
          g_debug ("udp flow: failed to receive: %s", g_strerror (errsv));
          flow_end (self);
          break;
        }
      for (int k = 0; k < got && !self->ended; k++)
        {
#ifdef __linux__
          n = (gssize) msgs[k].msg_len;
#endif
          if (n > ZLT_UDP_MAX_DATAGRAM)
            {
              self->last_activity = now;
              self->dropped++;
              continue;
            }
          zlt_udp_flow_stream_deliver (self, buf + (gsize) k * ZLT_UDP_RECV_BUFFER, (gsize) n, now);
        }
      i += (guint) got;
      /* fewer than asked for: the socket has no more now */
      if ((guint) got < want)
        break;
    }
  return self->ended ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

gboolean
zlt_udp_flow_stream_is_readable (ZltUdpFlowStream *self)
{
  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), TRUE);

  return self->head != NULL || self->ended || self->closed;
}

gssize
zlt_udp_flow_stream_read (ZltUdpFlowStream *self, guint8 *buffer, gsize count, GError **error)
{
  gsize copied = 0;

  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), -1);

  if (self->closed)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _ ("Stream is already closed"));
      return -1;
    }
  if (self->head == NULL)
    {
      if (self->ended)
        return 0;
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, _ ("No datagram is waiting"));
      return -1;
    }
  while (self->head != NULL && copied < count)
    {
      Datagram *d = self->head;
      gsize n = MIN (d->size - self->head_off, count - copied);

      memcpy (buffer + copied, d->data + self->head_off, n);
      copied += n;
      self->head_off += n;
      if (self->head_off == d->size)
        {
          self->head = d->next;
          if (self->head == NULL)
            self->tail = NULL;
          self->head_off = 0;
          self->queued--;
          self->queued_bytes -= d->size - 2;
          if (self->listener != NULL)
            zlt_udp_listener_release (self->listener, d->size - 2);
          g_free (d);
        }
    }
  return (gssize) copied;
}

/* ---------------------------------------------------------------------------------
 * outbound */

static gboolean
flow_send (ZltUdpFlowStream *self, const guint8 *data, gsize len, GError **error)
{
  gssize n;
  int fd;

  if (self->socket == NULL || g_socket_is_closed (self->socket))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _ ("The UDP socket is closed"));
      return FALSE;
    }
  fd = g_socket_get_fd (self->socket);
  do
    {
      if (self->connected)
        n = send (fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
      else
        n = sendto (fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                    (const struct sockaddr *) &self->peer_native, self->peer_native_len);
    }
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      int errsv = errno;

      if (zlt_udp_errno_is_drop (errsv))
        {
          self->dropped++;
          return TRUE;
        }
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _ ("Failed to send a datagram: %s"), g_strerror (errsv));
      return FALSE;
    }
  self->datagrams_out++;
  self->bytes_out += len;
  return TRUE;
}

/* The whole frames of one write, sent together: one sendmmsg() for up to
 * SEND_BATCH datagrams where there is one (the relay hands over every frame it read
 * at once, many when datagrams come faster than a main-loop iteration). */
#define SEND_BATCH 64

typedef struct
{
  guint n;
  struct iovec iov[SEND_BATCH];
#ifdef __linux__
  struct mmsghdr msgs[SEND_BATCH];
#endif
} SendBatch;

static gboolean
send_batch_flush (ZltUdpFlowStream *self, SendBatch *b, GError **error)
{
#ifdef __linux__
  guint i = 0;

  while (i < b->n)
    {
      int r;

      if (self->socket == NULL || g_socket_is_closed (self->socket))
        {
          b->n = 0;
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                               _ ("The UDP socket is closed"));
          return FALSE;
        }
      for (guint k = i; k < b->n; k++)
        {
          struct msghdr *h = &b->msgs[k].msg_hdr;

          memset (h, 0, sizeof *h);
          h->msg_iov = &b->iov[k];
          h->msg_iovlen = 1;
          if (!self->connected)
            {
              h->msg_name = &self->peer_native;
              h->msg_namelen = self->peer_native_len;
            }
        }
      r = sendmmsg (g_socket_get_fd (self->socket), b->msgs + i, b->n - i,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0)
        {
          for (guint k = i; k < i + (guint) r; k++)
            {
              self->datagrams_out++;
              self->bytes_out += b->iov[k].iov_len;
            }
          i += (guint) r;
          continue;
        }
      if (r < 0 && errno == EINTR)
        continue;
      if (r == 0 || zlt_udp_errno_is_drop (errno))
        {
          /* as flow_send(): the one the kernel would not take is dropped */
          self->dropped++;
          i++;
          continue;
        }
      {
        int errsv = errno;

        b->n = 0;
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                     _ ("Failed to send a datagram: %s"), g_strerror (errsv));
        return FALSE;
      }
    }
  b->n = 0;
  return TRUE;
#else
  for (guint k = 0; k < b->n; k++)
    if (!flow_send (self, b->iov[k].iov_base, b->iov[k].iov_len, error))
      {
        b->n = 0;
        return FALSE;
      }
  b->n = 0;
  return TRUE;
#endif
}

static gboolean
send_batch_add (ZltUdpFlowStream *self, SendBatch *b, const guint8 *data, gsize len, GError **error)
{
  b->iov[b->n].iov_base = (void *) data;
  b->iov[b->n].iov_len = len;
  b->n++;
  return b->n < SEND_BATCH || send_batch_flush (self, b, error);
}

static void
flow_frame_invalid (ZltUdpFlowStream *self, GError **error)
{
  self->broken = TRUE;
  g_clear_pointer (&self->frame, g_free);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               _ ("A datagram frame may hold at most %u bytes"), ZLT_UDP_MAX_DATAGRAM);
}

gssize
zlt_udp_flow_stream_write (ZltUdpFlowStream *self, const guint8 *buffer, gsize count,
                           GError **error)
{
  const guint8 *p = buffer;
  const guint8 *end = buffer + count;
  SendBatch batch;

  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), -1);

  batch.n = 0;
  if (self->closed)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _ ("Stream is already closed"));
      return -1;
    }
  if (self->broken)
    {
      flow_frame_invalid (self, error);
      return -1;
    }
  /* the idle timer reads this when it fires; a flow that ended still sends, but does
   * not come back to life */
  if (count > 0)
    self->last_activity = g_get_monotonic_time ();
  while (p < end)
    {
      gsize want;
      gsize n;

      if (self->header_len < 2)
        {
          self->header[self->header_len++] = *p++;
          if (self->header_len < 2)
            continue;
          self->frame_size = ((gsize) self->header[0] << 8) | self->header[1];
          self->frame_len = 0;
          if (self->frame_size > ZLT_UDP_MAX_DATAGRAM)
            {
              /* the frames before it go out, as they would have one by one */
              if (!send_batch_flush (self, &batch, error))
                return -1;
              flow_frame_invalid (self, error);
              return -1;
            }
        }
      want = self->frame_size - self->frame_len;
      if (self->frame == NULL && (gsize) (end - p) >= want)
        {
          /* the whole frame is here: send it from the caller's buffer */
          if (!send_batch_add (self, &batch, p, want, error))
            return -1;
          p += want;
          self->header_len = 0;
          continue;
        }
      /* a frame that spans writes: what is batched goes first */
      if (!send_batch_flush (self, &batch, error))
        return -1;
      if (self->frame == NULL)
        self->frame = g_malloc (MAX (self->frame_size, 1));
      n = MIN (want, (gsize) (end - p));
      memcpy (self->frame + self->frame_len, p, n);
      self->frame_len += n;
      p += n;
      if (self->frame_len == self->frame_size)
        {
          gboolean ok = flow_send (self, self->frame, self->frame_size, error);

          g_clear_pointer (&self->frame, g_free);
          self->header_len = 0;
          if (!ok)
            return -1;
        }
    }
  if (!send_batch_flush (self, &batch, error))
    return -1;
  return (gssize) count;
}

/* ---------------------------------------------------------------------------------
 * closing */

void
zlt_udp_flow_stream_input_closed (ZltUdpFlowStream *self)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_STREAM (self));

  /* nobody will read: keep nothing */
  flow_clear_queue (self);
  flow_end (self);
}

/* The other side of the tunnel ended: so does this flow. A frame cut short is dropped. */
void
zlt_udp_flow_stream_output_closed (ZltUdpFlowStream *self)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_STREAM (self));

  g_clear_pointer (&self->frame, g_free);
  self->header_len = 0;
  flow_end (self);
}

static gboolean
zlt_udp_flow_stream_close_fn (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  ZltUdpFlowStream *self = ZLT_UDP_FLOW_STREAM (stream);

  if (!self->closed)
    {
      g_autoptr (ZltUdpFlowStream) keep G_GNUC_UNUSED = g_object_ref (self);

      self->closed = TRUE;
      flow_wake_readers (self);
      flow_end (self);
      flow_clear_queue (self);
      g_clear_pointer (&self->frame, g_free);
      if (self->connected && self->socket != NULL)
        g_socket_close (self->socket, NULL);
    }
  /* closes the input and output streams */
  return G_IO_STREAM_CLASS (zlt_udp_flow_stream_parent_class)
      ->close_fn (stream, cancellable, error);
}

/* Closing never waits, so it is done at once rather than in a thread as GIOStream's
 * default would. */
static void
zlt_udp_flow_stream_close_async (GIOStream *stream, int io_priority, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, zlt_udp_flow_stream_close_async);
  if (zlt_udp_flow_stream_close_fn (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
zlt_udp_flow_stream_close_finish (GIOStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------------------
 * GObject */

static GInputStream *
zlt_udp_flow_stream_get_input_stream (GIOStream *stream)
{
  return ZLT_UDP_FLOW_STREAM (stream)->input;
}

static GOutputStream *
zlt_udp_flow_stream_get_output_stream (GIOStream *stream)
{
  return ZLT_UDP_FLOW_STREAM (stream)->output;
}

static void
zlt_udp_flow_stream_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltUdpFlowStream *self = ZLT_UDP_FLOW_STREAM (object);

  switch (prop_id)
    {
    case PROP_PEER_ADDRESS:
      g_value_set_object (value, self->peer);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_ENDED:
      g_value_set_boolean (value, self->ended);
      break;
    case PROP_DROPPED:
      g_value_set_uint64 (value, self->dropped);
      break;
    case PROP_DATAGRAMS_IN:
      g_value_set_uint64 (value, self->datagrams_in);
      break;
    case PROP_DATAGRAMS_OUT:
      g_value_set_uint64 (value, self->datagrams_out);
      break;
    case PROP_BYTES_IN:
      g_value_set_uint64 (value, self->bytes_in);
      break;
    case PROP_BYTES_OUT:
      g_value_set_uint64 (value, self->bytes_out);
      break;
    case PROP_QUEUED_DATAGRAMS:
      g_value_set_uint (value, self->queued);
      break;
    case PROP_QUEUED_BYTES:
      g_value_set_uint64 (value, self->queued_bytes);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_udp_flow_stream_set_property (GObject *object, guint prop_id, const GValue *value,
                                  GParamSpec *pspec)
{
  ZltUdpFlowStream *self = ZLT_UDP_FLOW_STREAM (object);

  switch (prop_id)
    {
    case PROP_IDLE_TIMEOUT_MS:
      zlt_udp_flow_stream_set_idle_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_udp_flow_stream_dispose (GObject *object)
{
  ZltUdpFlowStream *self = ZLT_UDP_FLOW_STREAM (object);

  if (!g_io_stream_is_closed (G_IO_STREAM (self)))
    g_io_stream_close (G_IO_STREAM (self), NULL, NULL);
  flow_stop_sources (self);
  flow_clear_queue (self);
  if (self->input != NULL)
    zlt_udp_flow_input_detach (ZLT_UDP_FLOW_INPUT (self->input));
  if (self->output != NULL)
    zlt_udp_flow_output_detach (ZLT_UDP_FLOW_OUTPUT (self->output));
  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_object (&self->socket);
  g_clear_object (&self->peer);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (zlt_udp_flow_stream_parent_class)->dispose (object);
}

static void
zlt_udp_flow_stream_finalize (GObject *object)
{
  ZltUdpFlowStream *self = ZLT_UDP_FLOW_STREAM (object);

  g_free (self->frame);

  G_OBJECT_CLASS (zlt_udp_flow_stream_parent_class)->finalize (object);
}

static void
zlt_udp_flow_stream_class_init (ZltUdpFlowStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->get_property = zlt_udp_flow_stream_get_property;
  object_class->set_property = zlt_udp_flow_stream_set_property;
  object_class->dispose = zlt_udp_flow_stream_dispose;
  object_class->finalize = zlt_udp_flow_stream_finalize;
  stream_class->get_input_stream = zlt_udp_flow_stream_get_input_stream;
  stream_class->get_output_stream = zlt_udp_flow_stream_get_output_stream;
  stream_class->close_fn = zlt_udp_flow_stream_close_fn;
  stream_class->close_async = zlt_udp_flow_stream_close_async;
  stream_class->close_finish = zlt_udp_flow_stream_close_finish;

  props[PROP_PEER_ADDRESS]
      = g_param_spec_object ("peer-address", NULL, NULL, G_TYPE_SOCKET_ADDRESS,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltUdpFlowStream:idle-timeout-ms:
   * The flow ends after this long without a datagram either way; 0 = never.
   */
  props[PROP_IDLE_TIMEOUT_MS] = g_param_spec_uint (
      "idle-timeout-ms", NULL, NULL, 0, G_MAXUINT, ZLT_UDP_DEFAULT_IDLE_TIMEOUT_MS,
      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltUdpFlowStream:ended:
   * No more datagrams come in: the input returns what is queued, then end-of-stream.
   */
  props[PROP_ENDED]
      = g_param_spec_boolean ("ended", NULL, NULL, FALSE,
                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltUdpFlowStream:dropped:
   * Datagrams lost here: inbound ones that found the queue full (or were too large),
   * outbound ones the kernel would not take. The counters below are read at any time
   * and never notified.
   */
  props[PROP_DROPPED]
      = g_param_spec_uint64 ("dropped", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* datagrams and payload bytes taken from the peer into the queue */
  props[PROP_DATAGRAMS_IN]
      = g_param_spec_uint64 ("datagrams-in", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_BYTES_IN]
      = g_param_spec_uint64 ("bytes-in", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* datagrams and payload bytes sent to the peer */
  props[PROP_DATAGRAMS_OUT]
      = g_param_spec_uint64 ("datagrams-out", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_BYTES_OUT]
      = g_param_spec_uint64 ("bytes-out", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* what waits in the inbound queue now */
  props[PROP_QUEUED_DATAGRAMS]
      = g_param_spec_uint ("queued-datagrams", NULL, NULL, 0, G_MAXUINT, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_QUEUED_BYTES]
      = g_param_spec_uint64 ("queued-bytes", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_udp_flow_stream_init (ZltUdpFlowStream *self)
{
  self->input = zlt_udp_flow_input_new (self);
  self->output = zlt_udp_flow_output_new (self);
  self->context = g_main_context_ref_thread_default ();
  self->idle_timeout_ms = ZLT_UDP_DEFAULT_IDLE_TIMEOUT_MS;
  self->last_activity = g_get_monotonic_time ();
}

/**
 * zlt_udp_flow_stream_new_connected:
 * @socket: a non-blocking UDP socket connected to @peer; the flow owns it from now on
 *
 * A dialed flow: receives on @socket itself and closes it when closed.
 */
ZltUdpFlowStream *
zlt_udp_flow_stream_new_connected (GSocket *socket, GSocketAddress *peer)
{
  ZltUdpFlowStream *self;

  g_return_val_if_fail (G_IS_SOCKET (socket), NULL);
  g_return_val_if_fail (G_IS_SOCKET_ADDRESS (peer), NULL);

  self = g_object_new (ZLT_TYPE_UDP_FLOW_STREAM, NULL);
  self->socket = g_object_ref (socket);
  self->connected = TRUE;
  self->peer = g_object_ref (peer);
  self->watch = g_socket_create_source (socket, G_IO_IN, NULL);
  g_source_set_static_name (self->watch, "zlt-udp-flow");
  /* as the listener's: no fd churn per dispatch, and nothing here nests a main loop */
  g_source_set_can_recurse (self->watch, TRUE);
  g_source_set_callback (self->watch, G_SOURCE_FUNC (on_socket_readable), self, NULL);
  g_source_attach (self->watch, self->context);
  flow_arm_idle (self);
  return self;
}

/**
 * zlt_udp_flow_stream_new_for_listener:
 * @socket: the listener's socket, shared
 * @peer: the peer's address, as recvfrom() gave it
 *
 * A listener flow: @listener delivers the peer's datagrams, the flow sends to @peer.
 */
ZltUdpFlowStream *
zlt_udp_flow_stream_new_for_listener (ZltUdpListener *listener, GSocket *socket,
                                      const struct sockaddr *peer, socklen_t peer_len,
                                      guint idle_timeout_ms)
{
  ZltUdpFlowStream *self;

  g_return_val_if_fail (G_IS_SOCKET (socket), NULL);
  g_return_val_if_fail (peer_len <= sizeof (struct sockaddr_storage), NULL);

  self = g_object_new (ZLT_TYPE_UDP_FLOW_STREAM, NULL);
  self->socket = g_object_ref (socket);
  self->listener = listener;
  memcpy (&self->peer_native, peer, peer_len);
  self->peer_native_len = peer_len;
  zlt_udp_peer_key_init (&self->key, peer, peer_len);
  self->peer = g_socket_address_new_from_native ((gpointer) peer, peer_len);
  self->idle_timeout_ms = idle_timeout_ms;
  flow_arm_idle (self);
  return self;
}

GSocketAddress *
zlt_udp_flow_stream_get_peer (ZltUdpFlowStream *self)
{
  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), NULL);
  return self->peer;
}

const ZltUdpPeerKey *
zlt_udp_flow_stream_get_key (ZltUdpFlowStream *self)
{
  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), NULL);
  return &self->key;
}

guint
zlt_udp_flow_stream_get_idle_timeout (ZltUdpFlowStream *self)
{
  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), 0);
  return self->idle_timeout_ms;
}

void
zlt_udp_flow_stream_set_idle_timeout (ZltUdpFlowStream *self, guint timeout_ms)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_STREAM (self));

  if (self->idle_timeout_ms == timeout_ms)
    return;
  self->idle_timeout_ms = timeout_ms;
  flow_arm_idle (self);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_IDLE_TIMEOUT_MS]);
}

gboolean
zlt_udp_flow_stream_is_ended (ZltUdpFlowStream *self)
{
  g_return_val_if_fail (ZLT_IS_UDP_FLOW_STREAM (self), TRUE);
  return self->ended;
}

/* The listener closed: the flow ends, its socket is no longer served. */
void
zlt_udp_flow_stream_detach (ZltUdpFlowStream *self)
{
  g_return_if_fail (ZLT_IS_UDP_FLOW_STREAM (self));

  flow_leave_listener (self);
  flow_end (self);
}
