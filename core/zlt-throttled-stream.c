/* zlt-throttled-stream.c: a GIOStream whose reads and writes are held to token buckets
 *
 * Wraps one side of a rate-limited connection. A read takes at most what the read
 * bucket allows (a write what the write bucket allows) and is then passed to the base
 * stream; what the base did not move goes back to the bucket. An empty bucket makes a
 * nonblocking read or write fail with %G_IO_ERROR_WOULD_BLOCK, and the pollable source
 * is then a timer that fires when the bucket holds a quarter of its burst again, so a
 * relay's pollable path carries a throttled connection without knowing it. Connections
 * that share a bucket take turns: a nonblocking read or write takes at most an eighth
 * of the burst, and only once until the stream's next source is made (take_batch()). Blocking
 * reads and writes (a worker thread's) sleep until the bucket refills.
 *
 * The wrapper's streams are not file-descriptor based, so a relay never splices them:
 * only limited connections leave the zero-copy path. Closing the output stream shuts
 * the base socket for writing (half-close); closing the wrapper closes the base.
 *
 * The input and output streams are private classes of this file: they exist only as
 * the wrapper's halves. */

#include "config.h"

#include <gio/gio.h>

#include "zlt-throttled-stream.h"

/* Wait for this share of the burst before reading again: fewer, larger reads. */
#define WAKE_DIVISOR 4

/* ---- shared helpers ---- */

static gsize
wake_want (ZltRateBucket *bucket)
{
  return (gsize) (zlt_rate_bucket_get_burst (bucket) / WAKE_DIVISOR);
}

/* What a read or write of @count bytes may move now: nothing (0) until the bucket holds
 * a sixteenth of its burst (or @count, if less), and at most an eighth of it. Taking
 * whatever trickled in since the last call would let a relay spin on reads of a few
 * hundred bytes, each as long as the time it takes to refill, never waiting on the
 * refill timer. Taking all of it would starve the other connections of a shared bucket:
 * their timers fire together (when a quarter of the burst is back), and the first one
 * dispatched would take everything, every time; an eighth leaves the next one its share.
 * For the same reason a stream takes once per wake-up (once per source made): the
 * relay's pump, reading until it would block, would otherwise take every eighth. */
static gsize
take_batch (ZltRateBucket *bucket, gsize count)
{
  guint64 burst = zlt_rate_bucket_get_burst (bucket);

  if (zlt_rate_bucket_delay (bucket, (gsize) MIN ((guint64) count, burst / 16)) > 0)
    return 0;
  return zlt_rate_bucket_take (bucket, (gsize) MIN ((guint64) count, burst / 8));
}

static GSource *
refill_source (ZltRateBucket *bucket)
{
  gint64 delay;

  if (bucket == NULL)
    return NULL;
  delay = zlt_rate_bucket_delay (bucket, wake_want (bucket));
  if (delay <= 0)
    return NULL;
  return g_timeout_source_new ((guint) ((delay + 999) / 1000));
}

/* Blocks until @bucket gives something, then returns how much (at most @want). */
static gsize
take_blocking (ZltRateBucket *bucket, gsize want, GCancellable *cancellable, GError **error)
{
  for (;;)
    {
      gsize got = take_batch (bucket, want);
      gint64 delay;

      if (got > 0)
        return got;
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return 0;
      delay = zlt_rate_bucket_delay (bucket, MIN (want, wake_want (bucket)));
      g_usleep ((gulong) CLAMP (delay, 1000, 50000)); /* wakes to see a cancellation */
    }
}

static gboolean
child_ready (gpointer user_data)
{
  return G_SOURCE_CONTINUE; /* the parent's dispatch, which comes with it, does the work */
}

/* Makes @child (the refill timer or the base stream's own source) wake @source, as
 * g_pollable_source_new_full() would; but that gives the child a dummy closure, which a
 * source without GSourceFuncs.closure_callback (the udp plugin's flows) refuses. */
static GSource *
with_child (GSource *source, GSource *child)
{
  g_source_set_callback (child, child_ready, NULL, NULL);
  g_source_add_child_source (source, child);
  return source;
}

static void
set_would_block (GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                       "the rate limit holds the stream back");
}

/* ---- input ---- */

#define ZLT_TYPE_THROTTLED_INPUT (zlt_throttled_input_get_type ())
G_DECLARE_FINAL_TYPE (ZltThrottledInput, zlt_throttled_input, ZLT, THROTTLED_INPUT, GInputStream)

struct _ZltThrottledInput
{
  GInputStream parent_instance;
  GInputStream *base;    /* owned */
  ZltRateBucket *bucket; /* owned, nullable */
  gboolean spent;        /* took from the bucket since its last source was made */
};

static void zlt_throttled_input_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltThrottledInput, zlt_throttled_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      zlt_throttled_input_pollable_iface_init))

static gssize
zlt_throttled_input_read (GInputStream *stream, void *buffer, gsize count,
                          GCancellable *cancellable, GError **error)
{
  ZltThrottledInput *self = ZLT_THROTTLED_INPUT (stream);
  gsize allowed = count;
  gssize n;

  if (count == 0)
    return 0;
  if (self->bucket != NULL)
    {
      allowed = take_blocking (self->bucket, count, cancellable, error);
      if (allowed == 0)
        return -1;
    }
  n = g_input_stream_read (self->base, buffer, allowed, cancellable, error);
  if (self->bucket != NULL)
    zlt_rate_bucket_give_back (self->bucket, n > 0 ? allowed - (gsize) n : allowed);
  return n;
}

static gboolean
zlt_throttled_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* the wrapper closes the base */
}

static gboolean
zlt_throttled_input_can_poll (GPollableInputStream *stream)
{
  ZltThrottledInput *self = ZLT_THROTTLED_INPUT (stream);

  return G_IS_POLLABLE_INPUT_STREAM (self->base)
         && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (self->base));
}

static gboolean
zlt_throttled_input_is_readable (GPollableInputStream *stream)
{
  ZltThrottledInput *self = ZLT_THROTTLED_INPUT (stream);

  if (self->bucket != NULL
      && zlt_rate_bucket_delay (self->bucket, zlt_rate_bucket_get_burst (self->bucket) / 16) > 0)
    return FALSE;
  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

static GSource *
zlt_throttled_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  ZltThrottledInput *self = ZLT_THROTTLED_INPUT (stream);
  g_autoptr (GSource) child = NULL;
  g_autoptr (GSource) source = NULL;

  self->spent = FALSE; /* its turn comes again when the source fires */
  child = refill_source (self->bucket);

  if (child == NULL)
    child = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base), NULL);
  source = with_child (g_pollable_source_new_full (self, NULL, cancellable), child);
  g_source_set_static_name (source, "zlt-throttled-input");
  return g_steal_pointer (&source);
}

static gssize
zlt_throttled_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                                      GError **error)
{
  ZltThrottledInput *self = ZLT_THROTTLED_INPUT (stream);
  gsize allowed = count;
  gssize n;

  if (count == 0)
    return 0;
  if (self->bucket != NULL)
    {
      allowed = self->spent ? 0 : take_batch (self->bucket, count);
      if (allowed == 0)
        {
          set_would_block (error);
          return -1;
        }
    }
  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base), buffer,
                                                allowed, NULL, error);
  if (self->bucket != NULL)
    {
      zlt_rate_bucket_give_back (self->bucket, n > 0 ? allowed - (gsize) n : allowed);
      self->spent = n > 0;
    }
  return n;
}

static void
zlt_throttled_input_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = zlt_throttled_input_can_poll;
  iface->is_readable = zlt_throttled_input_is_readable;
  iface->create_source = zlt_throttled_input_create_source;
  iface->read_nonblocking = zlt_throttled_input_read_nonblocking;
}

static void
zlt_throttled_input_finalize (GObject *object)
{
  ZltThrottledInput *self = ZLT_THROTTLED_INPUT (object);

  g_clear_object (&self->base);
  g_clear_object (&self->bucket);
  G_OBJECT_CLASS (zlt_throttled_input_parent_class)->finalize (object);
}

static void
zlt_throttled_input_class_init (ZltThrottledInputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = zlt_throttled_input_finalize;
  stream_class->read_fn = zlt_throttled_input_read;
  stream_class->close_fn = zlt_throttled_input_close;
}

static void
zlt_throttled_input_init (ZltThrottledInput *self)
{
}

/* ---- output ---- */

#define ZLT_TYPE_THROTTLED_OUTPUT (zlt_throttled_output_get_type ())
G_DECLARE_FINAL_TYPE (ZltThrottledOutput, zlt_throttled_output, ZLT, THROTTLED_OUTPUT,
                      GOutputStream)

struct _ZltThrottledOutput
{
  GOutputStream parent_instance;
  GIOStream *base_stream; /* unowned: the wrapper holds it */
  GOutputStream *base;    /* owned */
  ZltRateBucket *bucket;  /* owned, nullable */
  gboolean spent;         /* took from the bucket since its last source was made */
};

static void zlt_throttled_output_pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ZltThrottledOutput, zlt_throttled_output, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      zlt_throttled_output_pollable_iface_init))

static gssize
zlt_throttled_output_write (GOutputStream *stream, const void *buffer, gsize count,
                            GCancellable *cancellable, GError **error)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);
  gsize allowed = count;
  gssize n;

  if (count == 0)
    return 0;
  if (self->bucket != NULL)
    {
      allowed = take_blocking (self->bucket, count, cancellable, error);
      if (allowed == 0)
        return -1;
    }
  n = g_output_stream_write (self->base, buffer, allowed, cancellable, error);
  if (self->bucket != NULL)
    zlt_rate_bucket_give_back (self->bucket, n > 0 ? allowed - (gsize) n : allowed);
  return n;
}

static gboolean
zlt_throttled_output_flush (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);

  return g_output_stream_flush (self->base, cancellable, error);
}

/* Half-close: a socket is shut for writing (closing its stream would send nothing);
 * any other base gets its output stream closed (a TLS close_notify). */
static gboolean
zlt_throttled_output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);

  if (G_IS_SOCKET_CONNECTION (self->base_stream))
    {
      GSocket *sock = g_socket_connection_get_socket (G_SOCKET_CONNECTION (self->base_stream));

      if (g_socket_is_closed (sock))
        return TRUE;
      return g_socket_shutdown (sock, FALSE, TRUE, error);
    }
  return g_output_stream_close (self->base, cancellable, error);
}

static gboolean
zlt_throttled_output_can_poll (GPollableOutputStream *stream)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);

  return G_IS_POLLABLE_OUTPUT_STREAM (self->base)
         && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (self->base));
}

static gboolean
zlt_throttled_output_is_writable (GPollableOutputStream *stream)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);

  if (self->bucket != NULL
      && zlt_rate_bucket_delay (self->bucket, zlt_rate_bucket_get_burst (self->bucket) / 16) > 0)
    return FALSE;
  return g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (self->base));
}

static GSource *
zlt_throttled_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);
  g_autoptr (GSource) child = NULL;
  g_autoptr (GSource) source = NULL;

  self->spent = FALSE; /* its turn comes again when the source fires */
  child = refill_source (self->bucket);

  if (child == NULL)
    child = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (self->base), NULL);
  source = with_child (g_pollable_source_new_full (self, NULL, cancellable), child);
  g_source_set_static_name (source, "zlt-throttled-output");
  return g_steal_pointer (&source);
}

static gssize
zlt_throttled_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer,
                                        gsize count, GError **error)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (stream);
  gsize allowed = count;
  gssize n;

  if (count == 0)
    return 0;
  if (self->bucket != NULL)
    {
      allowed = self->spent ? 0 : take_batch (self->bucket, count);
      if (allowed == 0)
        {
          set_would_block (error);
          return -1;
        }
    }
  n = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (self->base), buffer,
                                                  allowed, NULL, error);
  if (self->bucket != NULL)
    {
      zlt_rate_bucket_give_back (self->bucket, n > 0 ? allowed - (gsize) n : allowed);
      self->spent = n > 0;
    }
  return n;
}

static void
zlt_throttled_output_pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = zlt_throttled_output_can_poll;
  iface->is_writable = zlt_throttled_output_is_writable;
  iface->create_source = zlt_throttled_output_create_source;
  iface->write_nonblocking = zlt_throttled_output_write_nonblocking;
}

static void
zlt_throttled_output_finalize (GObject *object)
{
  ZltThrottledOutput *self = ZLT_THROTTLED_OUTPUT (object);

  g_clear_object (&self->base);
  g_clear_object (&self->bucket);
  G_OBJECT_CLASS (zlt_throttled_output_parent_class)->finalize (object);
}

static void
zlt_throttled_output_class_init (ZltThrottledOutputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = zlt_throttled_output_finalize;
  stream_class->write_fn = zlt_throttled_output_write;
  stream_class->flush = zlt_throttled_output_flush;
  stream_class->close_fn = zlt_throttled_output_close;
}

static void
zlt_throttled_output_init (ZltThrottledOutput *self)
{
}

/* ---- the wrapper ---- */

struct _ZltThrottledStream
{
  GIOStream parent_instance;
  GIOStream *base;
  ZltRateBucket *read_bucket;  /* nullable */
  ZltRateBucket *write_bucket; /* nullable */
  ZltThrottledInput *input;
  ZltThrottledOutput *output;
};

enum
{
  PROP_0,
  PROP_BASE_IO_STREAM,
  PROP_READ_BUCKET,
  PROP_WRITE_BUCKET,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (ZltThrottledStream, zlt_throttled_stream, G_TYPE_IO_STREAM)

static GInputStream *
zlt_throttled_stream_get_input_stream (GIOStream *stream)
{
  return G_INPUT_STREAM (ZLT_THROTTLED_STREAM (stream)->input);
}

static GOutputStream *
zlt_throttled_stream_get_output_stream (GIOStream *stream)
{
  return G_OUTPUT_STREAM (ZLT_THROTTLED_STREAM (stream)->output);
}

static gboolean
zlt_throttled_stream_close (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  ZltThrottledStream *self = ZLT_THROTTLED_STREAM (stream);

  return g_io_stream_close (self->base, cancellable, error);
}

static void
zlt_throttled_stream_constructed (GObject *object)
{
  ZltThrottledStream *self = ZLT_THROTTLED_STREAM (object);

  G_OBJECT_CLASS (zlt_throttled_stream_parent_class)->constructed (object);

  self->input = g_object_new (ZLT_TYPE_THROTTLED_INPUT, NULL);
  self->input->base = g_object_ref (g_io_stream_get_input_stream (self->base));
  self->input->bucket = self->read_bucket != NULL ? g_object_ref (self->read_bucket) : NULL;
  self->output = g_object_new (ZLT_TYPE_THROTTLED_OUTPUT, NULL);
  self->output->base_stream = self->base;
  self->output->base = g_object_ref (g_io_stream_get_output_stream (self->base));
  self->output->bucket = self->write_bucket != NULL ? g_object_ref (self->write_bucket) : NULL;
}

static void
zlt_throttled_stream_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltThrottledStream *self = ZLT_THROTTLED_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE_IO_STREAM:
      g_value_set_object (value, self->base);
      break;
    case PROP_READ_BUCKET:
      g_value_set_object (value, self->read_bucket);
      break;
    case PROP_WRITE_BUCKET:
      g_value_set_object (value, self->write_bucket);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_throttled_stream_set_property (GObject *object, guint prop_id, const GValue *value,
                                   GParamSpec *pspec)
{
  ZltThrottledStream *self = ZLT_THROTTLED_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE_IO_STREAM:
      self->base = g_value_dup_object (value);
      break;
    case PROP_READ_BUCKET:
      self->read_bucket = g_value_dup_object (value);
      break;
    case PROP_WRITE_BUCKET:
      self->write_bucket = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_throttled_stream_finalize (GObject *object)
{
  ZltThrottledStream *self = ZLT_THROTTLED_STREAM (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_object (&self->read_bucket);
  g_clear_object (&self->write_bucket);
  g_clear_object (&self->base);
  G_OBJECT_CLASS (zlt_throttled_stream_parent_class)->finalize (object);
}

static void
zlt_throttled_stream_class_init (ZltThrottledStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->constructed = zlt_throttled_stream_constructed;
  object_class->get_property = zlt_throttled_stream_get_property;
  object_class->set_property = zlt_throttled_stream_set_property;
  object_class->finalize = zlt_throttled_stream_finalize;
  stream_class->get_input_stream = zlt_throttled_stream_get_input_stream;
  stream_class->get_output_stream = zlt_throttled_stream_get_output_stream;
  stream_class->close_fn = zlt_throttled_stream_close;

  /**
   * ZltThrottledStream:base-io-stream:
   *
   * The stream wrapped; closed with the wrapper.
   */
  props[PROP_BASE_IO_STREAM]
      = g_param_spec_object ("base-io-stream", NULL, NULL, G_TYPE_IO_STREAM,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS
                                 | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ZltThrottledStream:read-bucket:
   *
   * The bucket reads take from, %NULL for unlimited reads.
   */
  props[PROP_READ_BUCKET]
      = g_param_spec_object ("read-bucket", NULL, NULL, ZLT_TYPE_RATE_BUCKET,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS
                                 | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ZltThrottledStream:write-bucket:
   *
   * The bucket writes take from, %NULL for unlimited writes.
   */
  props[PROP_WRITE_BUCKET]
      = g_param_spec_object ("write-bucket", NULL, NULL, ZLT_TYPE_RATE_BUCKET,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS
                                 | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_throttled_stream_init (ZltThrottledStream *self)
{
}

/**
 * zlt_throttled_stream_new:
 * @base: the stream to wrap (its input and output streams should be pollable for the
 *   relay's pollable path)
 * @read_bucket: (nullable): the bucket reads from @base take from
 * @write_bucket: (nullable): the bucket writes to @base take from
 *
 * Returns: (transfer full): the wrapper
 */
GIOStream *
zlt_throttled_stream_new (GIOStream *base, ZltRateBucket *read_bucket, ZltRateBucket *write_bucket)
{
  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);
  g_return_val_if_fail (read_bucket == NULL || ZLT_IS_RATE_BUCKET (read_bucket), NULL);
  g_return_val_if_fail (write_bucket == NULL || ZLT_IS_RATE_BUCKET (write_bucket), NULL);

  return g_object_new (ZLT_TYPE_THROTTLED_STREAM, "base-io-stream", base, "read-bucket",
                       read_bucket, "write-bucket", write_bucket, NULL);
}

/**
 * zlt_throttled_stream_get_base_stream:
 *
 * Returns: (transfer none): the wrapped stream
 */
GIOStream *
zlt_throttled_stream_get_base_stream (ZltThrottledStream *self)
{
  g_return_val_if_fail (ZLT_IS_THROTTLED_STREAM (self), NULL);
  return self->base;
}

ZltRateBucket *
zlt_throttled_stream_get_read_bucket (ZltThrottledStream *self)
{
  g_return_val_if_fail (ZLT_IS_THROTTLED_STREAM (self), NULL);
  return self->read_bucket;
}

ZltRateBucket *
zlt_throttled_stream_get_write_bucket (ZltThrottledStream *self)
{
  g_return_val_if_fail (ZLT_IS_THROTTLED_STREAM (self), NULL);
  return self->write_bucket;
}
