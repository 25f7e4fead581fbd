/* zlt-ws-request-input.c: what libsoup reads from a connection before its upgrade.
 *
 * libsoup 3.2 reads a request's body whatever status a got-headers handler sets (only
 * "Expect: 100-continue" stops it), accepts 64 KiB of header lines, and buffers
 * whatever arrives after the head. This stream passes exactly one request head (up to
 * and including its empty line: "\n\n" or "\n\r\n", as libsoup ends it) and at most
 * max_head bytes of it; past the head it reads nothing more (not readable, its sources
 * do not fire) until zlt_ws_request_input_open(). Bytes the base delivered past the head
 * in the same read are kept and passed on first after the opening, so nothing a peer
 * sent before our 101 is lost. Bytes the listener read itself before handing the connection
 * over (its own look at the head) come first, through the same gate as the base's. */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "zlt-ws-request-input.h"

typedef enum
{
  STATE_HEAD, /* passing the request head */
  STATE_HELD, /* the head is through; nothing more until opened */
  STATE_OPEN, /* everything passes */
} State;

struct _ZltWsRequestInput
{
  GFilterInputStream parent_instance;

  State state;
  guint line_state; /* 0 in a line, 1 after "\n", 2 after "\n\r" */
  gsize max_head;
  gsize n_head;
  GBytes *held; /* read past the head, passed on after the opening */
  gsize held_offset;
  GBytes *ahead; /* read from the base before us: passed first, as if read now */
  gsize ahead_offset;
  /* cancelled (and replaced) on opening and on close: wakes our sources so whoever
   * waits on them reads again */
  GCancellable *wake;
  GSocket *socket; /* the one base reads directly, if known */
};

static void zlt_ws_request_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltWsRequestInput, zlt_ws_request_input, G_TYPE_FILTER_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      zlt_ws_request_input_pollable_init))

static GInputStream *
base_of (ZltWsRequestInput *self)
{
  return g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (self));
}

static void
wake_sources (ZltWsRequestInput *self)
{
  g_cancellable_cancel (self->wake);
  g_object_unref (self->wake);
  self->wake = g_cancellable_new ();
}

/* Serves held bytes; returns how many were copied (0 when none are held). */
static gsize
read_held (ZltWsRequestInput *self, void *buffer, gsize count)
{
  gsize size;
  const guint8 *data;
  gsize n;

  if (self->held == NULL)
    return 0;
  data = g_bytes_get_data (self->held, &size);
  n = MIN (count, size - self->held_offset);
  memcpy (buffer, data + self->held_offset, n);
  self->held_offset += n;
  if (self->held_offset == size)
    {
      g_clear_pointer (&self->held, g_bytes_unref);
      self->held_offset = 0;
    }
  return n;
}

/* How much of @n bytes just read belong to the head; the rest is held back. */
static gsize
scan_head (ZltWsRequestInput *self, const guint8 *data, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      guint8 c = data[i];

      if (self->line_state == 0)
        self->line_state = c == '\n' ? 1 : 0;
      else if (self->line_state == 1 && c == '\r')
        self->line_state = 2;
      else if (c == '\n')
        {
          /* an empty line: the head ends here */
          self->state = STATE_HELD;
          if (i + 1 < n)
            self->held = g_bytes_new (data + i + 1, n - i - 1);
          return i + 1;
        }
      else
        self->line_state = 0;
    }
  return n;
}

/* Passes read-ahead bytes as head bytes; once the head ends in them, the rest of them is
 * held like bytes read past the head. */
static gssize
read_ahead (ZltWsRequestInput *self, void *buffer, gsize count)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (self->ahead, &size);
  gsize n = MIN (count, size - self->ahead_offset);
  gsize offset = self->ahead_offset;

  memcpy (buffer, data + offset, n);
  n = scan_head (self, buffer, n);
  self->n_head += n;
  self->ahead_offset += n;
  if (self->state == STATE_HELD)
    {
      /* scan_head() kept what followed in this chunk; hold all that followed instead */
      g_clear_pointer (&self->held, g_bytes_unref);
      if (self->ahead_offset < size)
        self->held
            = g_bytes_new_from_bytes (self->ahead, self->ahead_offset, size - self->ahead_offset);
      self->ahead_offset = size;
    }
  if (self->ahead_offset == size)
    {
      g_clear_pointer (&self->ahead, g_bytes_unref);
      self->ahead_offset = 0;
    }
  return n;
}

/* The shared part of blocking and non-blocking reads. */
static gssize
read_internal (ZltWsRequestInput *self, void *buffer, gsize count, gboolean blocking,
               GCancellable *cancellable, GError **error)
{
  gsize held;
  gssize n;

  if (count == 0)
    return 0;
  if (self->state == STATE_OPEN)
    {
      held = read_held (self, buffer, count);
      if (held > 0)
        return held;
      return g_pollable_stream_read (base_of (self), buffer, count, blocking, cancellable, error);
    }
  if (self->state == STATE_HELD)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           _ ("nothing more is read before the request is answered"));
      return -1;
    }
  if (self->n_head >= self->max_head)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                   _ ("request head larger than %lu bytes"), (gulong) self->max_head);
      return -1;
    }
  if (self->ahead != NULL)
    return read_ahead (self, buffer, MIN (count, self->max_head - self->n_head));
  n = g_pollable_stream_read (base_of (self), buffer, MIN (count, self->max_head - self->n_head),
                              blocking, cancellable, error);
  if (n <= 0)
    return n;
  n = scan_head (self, buffer, n);
  self->n_head += n;
  return n;
}

static gssize
zlt_ws_request_input_read (GInputStream *stream, void *buffer, gsize count,
                           GCancellable *cancellable, GError **error)
{
  return read_internal (ZLT_WS_REQUEST_INPUT (stream), buffer, count, TRUE, cancellable, error);
}

static gssize
zlt_ws_request_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                                       GError **error)
{
  return read_internal (ZLT_WS_REQUEST_INPUT (stream), buffer, count, FALSE, NULL, error);
}

static gssize
zlt_ws_request_input_skip (GInputStream *stream, gsize count, GCancellable *cancellable,
                           GError **error)
{
  guint8 scratch[4096];

  /* through the same gate as reads */
  return read_internal (ZLT_WS_REQUEST_INPUT (stream), scratch, MIN (count, sizeof scratch), TRUE,
                        cancellable, error);
}

static gboolean
zlt_ws_request_input_can_poll (GPollableInputStream *stream)
{
  GInputStream *base = base_of (ZLT_WS_REQUEST_INPUT (stream));

  return G_IS_POLLABLE_INPUT_STREAM (base)
         && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (base));
}

static gboolean
zlt_ws_request_input_is_readable (GPollableInputStream *stream)
{
  ZltWsRequestInput *self = ZLT_WS_REQUEST_INPUT (stream);

  if (g_input_stream_is_closed (G_INPUT_STREAM (self)))
    return TRUE; /* a read fails at once */
  if (self->state == STATE_HELD)
    return FALSE;
  if (self->held != NULL || self->ahead != NULL)
    return TRUE;
  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (base_of (self)));
}

static GSource *
zlt_ws_request_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  ZltWsRequestInput *self = ZLT_WS_REQUEST_INPUT (stream);
  g_autoptr (GSource) base_source = NULL;
  GSource *source;
  int fd = -1;

  if (self->state != STATE_HELD && self->held == NULL && self->ahead == NULL
      && !g_input_stream_is_closed (G_INPUT_STREAM (self)))
    {
      /* on a socket, its descriptor on this source itself: libsoup makes a source for
       * every read of a WebSocket (every control message), and GLib takes the fds of
       * a dispatching source's children (a pollable stream's own source, its socket
       * source) out of the poll set and puts them back, a wakeup-fd write each time */
      if (self->socket != NULL && !g_socket_is_closed (self->socket))
        fd = g_socket_get_fd (self->socket);
      else
        base_source = g_pollable_input_stream_create_source (
            G_POLLABLE_INPUT_STREAM (base_of (self)), NULL);
    }
  /* held: only a wake (opening, closing) or the caller's cancellable fires it */
  source = g_pollable_source_new_full (self, base_source, self->wake);
  if (fd >= 0)
    g_source_add_unix_fd (source, fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  if (cancellable != NULL)
    {
      g_autoptr (GSource) cancelled = g_cancellable_source_new (cancellable);

      g_source_set_dummy_callback (cancelled);
      g_source_add_child_source (source, cancelled);
    }
  /* what the base's socket has is the descriptor's to report (no poll(2) here) */
  if (fd >= 0 ? g_input_stream_is_closed (G_INPUT_STREAM (self))
              : zlt_ws_request_input_is_readable (stream))
    g_source_set_ready_time (source, 0);
  return source;
}

static gboolean
zlt_ws_request_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  ZltWsRequestInput *self = ZLT_WS_REQUEST_INPUT (stream);

  /* the base is closed with the GIOStream it belongs to */
  g_clear_pointer (&self->held, g_bytes_unref);
  g_clear_pointer (&self->ahead, g_bytes_unref);
  wake_sources (self);
  return TRUE;
}

void
zlt_ws_request_input_open (ZltWsRequestInput *self)
{
  g_return_if_fail (ZLT_IS_WS_REQUEST_INPUT (self));

  if (self->state == STATE_OPEN)
    return;
  self->state = STATE_OPEN;
  wake_sources (self);
}

void
zlt_ws_request_input_set_socket (ZltWsRequestInput *self, GSocket *socket)
{
  g_return_if_fail (ZLT_IS_WS_REQUEST_INPUT (self));
  g_return_if_fail (socket == NULL || G_IS_SOCKET (socket));

  g_set_object (&self->socket, socket);
}

gsize
zlt_ws_request_input_get_n_buffered (ZltWsRequestInput *self)
{
  g_return_val_if_fail (ZLT_IS_WS_REQUEST_INPUT (self), 0);

  if (self->held == NULL)
    return 0;
  return g_bytes_get_size (self->held) - self->held_offset;
}

static void
zlt_ws_request_input_finalize (GObject *object)
{
  ZltWsRequestInput *self = ZLT_WS_REQUEST_INPUT (object);

  g_clear_pointer (&self->held, g_bytes_unref);
  g_clear_pointer (&self->ahead, g_bytes_unref);
  g_clear_object (&self->wake);
  g_clear_object (&self->socket);
  G_OBJECT_CLASS (zlt_ws_request_input_parent_class)->finalize (object);
}

static void
zlt_ws_request_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = zlt_ws_request_input_can_poll;
  iface->is_readable = zlt_ws_request_input_is_readable;
  iface->create_source = zlt_ws_request_input_create_source;
  iface->read_nonblocking = zlt_ws_request_input_read_nonblocking;
}

static void
zlt_ws_request_input_class_init (ZltWsRequestInputClass *klass)
{
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = zlt_ws_request_input_finalize;
  input_class->read_fn = zlt_ws_request_input_read;
  input_class->skip = zlt_ws_request_input_skip;
  input_class->close_fn = zlt_ws_request_input_close;
}

static void
zlt_ws_request_input_init (ZltWsRequestInput *self)
{
  self->wake = g_cancellable_new ();
}

GInputStream *
zlt_ws_request_input_new (GInputStream *base, gsize max_head, GBytes *read_ahead)
{
  ZltWsRequestInput *self;

  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (base), NULL);

  self = g_object_new (ZLT_TYPE_WS_REQUEST_INPUT, "base-stream", base, "close-base-stream", FALSE,
                       NULL);
  self->max_head = max_head;
  if (read_ahead != NULL && g_bytes_get_size (read_ahead) > 0)
    self->ahead = g_bytes_ref (read_ahead);
  return G_INPUT_STREAM (self);
}
