/* zlt-standby-keeper.c: the agent's standby data connections (PROTOCOL-v2.md §8)
 *
 * Each connection goes: opening (the upgrade with X-Zlt-Standby), parked (a read is
 * waiting for the binding), then bound (handed to the agent) or gone (the server
 * retired it, it broke, or it sent something that is not a binding). Whatever leaves
 * the pool is replaced, from a low-priority idle so a bound connection's relay starts
 * first, at most MAX_OPENING at a time.
 *
 * The pool's size follows demand between the floor (the agent's wish) and the server's
 * STANDBY_MAX: every public connection that came by Connect (the pool was empty) adds
 * one, once the pool has been full (before that, an empty pool was only still
 * filling); every connection the server retires unused (its lifetime) while above the
 * floor is not replaced. A burst therefore finds the pool sized for it next time, and
 * an idle minute brings it back to the floor.
 *
 * Failures to open back off (1 s doubling to 30 s) so a server that refuses is not
 * hammered; a connection opened fine resets that. */
#include "config.h"

#include <string.h>

#include "zlt-net.h"
#include "zlt-source.h"
#include "zlt-standby-keeper.h"

#define MAX_OPENING 8
#define OPEN_TIMEOUT_MS (10 * 1000)
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS (30 * 1000)

typedef struct
{
  ZltStandbyKeeper *keeper; /* unowned: each pending operation holds a reference */
  guint64 id;
  gboolean parked;
  gboolean expired; /* held too long: the server's end is surely gone */
  GCancellable *cancellable;
  GIOStream *stream;
  guint8 head[ZLT_BINDING_MAX_SIZE]; /* the binding, and what followed it in the read */
  gsize head_len;
  GBytes *extra; /* what came with the 101 beyond head */
  GSource *limit;
  GSource *watch; /* parked: waits for the binding (and holds a reference to the keeper) */
  GList link;     /* in keeper->standbys */
} Standby;

struct _ZltStandbyKeeper
{
  GObject parent_instance;

  ZltControlTransport *control;
  GUri *url;
  ZltTlsOptions *tls;
  ZltUuid tunnel_id;
  char tunnel_id_str[ZLT_UUID_STRING_LEN + 1];
  guint8 session_key[ZLT_HASH_SIZE];
  guint floor;
  guint max;
  guint target;
  ZltStandbyBoundFunc func;
  gpointer user_data;

  gboolean running;
  guint64 next_id;
  GQueue standbys; /* Standby*, opening and parked */
  guint n_opening;
  GSource *fill;  /* idle: open what is missing */
  GSource *retry; /* after a failure, wait before opening more */
  guint retry_ms;
  gboolean filled; /* the pool was full once: until then misses say nothing of its size */
};

G_DEFINE_FINAL_TYPE (ZltStandbyKeeper, zlt_standby_keeper, G_TYPE_OBJECT)

static void schedule_fill (ZltStandbyKeeper *self);
static void read_binding (Standby *s);

static void
standby_free (Standby *s, gboolean reset)
{
  ZltStandbyKeeper *self = s->keeper;

  g_queue_unlink (&self->standbys, &s->link);
  if (!s->parked)
    self->n_opening--;
  zlt_source_clear (&s->limit);
  if (s->stream != NULL)
    {
      if (reset)
        zlt_net_close_with_reset (s->stream);
      else
        g_io_stream_close (s->stream, NULL, NULL);
      g_clear_object (&s->stream);
    }
  g_clear_pointer (&s->extra, g_bytes_unref);
  g_clear_object (&s->cancellable);
  g_free (s);
}

/* A connection left the pool: open its replacement, unless the pool shrinks. */
static void
standby_gone (Standby *s, gboolean reset)
{
  ZltStandbyKeeper *self = s->keeper;

  standby_free (s, reset);
  schedule_fill (self);
}

static gboolean
on_retry (gpointer user_data)
{
  ZltStandbyKeeper *self = user_data;

  zlt_source_clear (&self->retry);
  schedule_fill (self);
  return G_SOURCE_REMOVE;
}

static void
open_failed (ZltStandbyKeeper *self, const GError *error)
{
  if (self->retry != NULL || !self->running)
    return;
  self->retry_ms = self->retry_ms == 0 ? RETRY_MIN_MS : MIN (self->retry_ms * 2, RETRY_MAX_MS);
  g_debug ("cannot open a standby connection: %s; trying again in %u ms", error->message,
           self->retry_ms);
  self->retry = zlt_timeout_source_attach (self->retry_ms, on_retry, self);
}

/* Acts on the bytes the server sent so far: waits for more, hands the connection
 * over with its binding, or resets it. */
static void
take_bytes (Standby *s)
{
  ZltStandbyKeeper *self = s->keeper;
  ZltBinding binding;
  gsize consumed = 0;
  g_autoptr (GBytes) rest = NULL;
  GIOStream *stream;

  switch (zlt_binding_decode (s->head, s->head_len, &binding, &consumed))
    {
    case ZLT_BINDING_INCOMPLETE:
      read_binding (s);
      return;
    case ZLT_BINDING_INVALID:
      g_debug ("a standby connection got something that is not a binding: resetting it");
      standby_gone (s, TRUE);
      return;
    case ZLT_BINDING_COMPLETE:
    default:
      break;
    }
  /* the public client's first bytes, behind the binding */
  if (s->extra == NULL)
    rest = g_bytes_new (s->head + consumed, s->head_len - consumed);
  else
    {
      GByteArray *all = g_byte_array_new ();

      g_byte_array_append (all, s->head + consumed, (guint) (s->head_len - consumed));
      g_byte_array_append (all, g_bytes_get_data (s->extra, NULL),
                           (guint) g_bytes_get_size (s->extra));
      rest = g_byte_array_free_to_bytes (all);
    }
  stream = g_steal_pointer (&s->stream);
  standby_gone (s, FALSE);
  self->func (stream, rest, &binding, self->user_data);
}

/* The end of a read of what the server sent: @n bytes, or @error. */
static void
binding_read (Standby *s, gssize n, const GError *error)
{
  ZltStandbyKeeper *self = s->keeper;

  if (!self->running)
    standby_free (s, TRUE);
  else if (n < 0 && s->expired)
    standby_gone (s, TRUE);
  else if (n < 0)
    {
      g_debug ("a standby connection broke: %s", error->message);
      standby_gone (s, TRUE);
    }
  else if (n == 0)
    {
      /* the server retired it unused: above the floor, the pool shrinks by one */
      if (self->target > self->floor)
        self->target--;
      standby_gone (s, FALSE);
    }
  else
    {
      s->head_len += (gsize) n;
      take_bytes (s);
    }
}

static gboolean
on_binding_readable (GObject *stream, gpointer user_data)
{
  Standby *s = user_data;
  ZltStandbyKeeper *self = s->keeper;
  g_autoptr (GError) error = NULL;
  gssize n = -1;

  if (!g_cancellable_set_error_if_cancelled (s->cancellable, &error))
    {
      n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream),
                                                    s->head + s->head_len,
                                                    sizeof s->head - s->head_len, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
    }
  zlt_source_clear (&s->watch);
  binding_read (s, n, error);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static void
binding_read_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Standby *s = user_data;
  ZltStandbyKeeper *self = s->keeper;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  binding_read (s, n, error);
  g_object_unref (self);
}

/* Waits for what the server sends first, and reads never more than a binding can be,
 * so little of the public client's data passes through here. On a pollable stream (a
 * socket, TLS) with a source of our own rather than g_input_stream_read_async(): no
 * task per read, and a source that can recurse, on a socket without a child source
 * (GLib blocks and unblocks any other while it dispatches, each time two writes to the
 * context's wakeup fd: zlt_net_input_source_new()). */
static void
read_binding (Standby *s)
{
  GInputStream *input = g_io_stream_get_input_stream (s->stream);

  g_object_ref (s->keeper);
  if (!G_IS_POLLABLE_INPUT_STREAM (input)
      || !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (input)))
    {
      g_input_stream_read_async (input, s->head + s->head_len, sizeof s->head - s->head_len,
                                 G_PRIORITY_DEFAULT, s->cancellable, binding_read_done, s);
      return;
    }
  s->watch = zlt_net_input_source_new (s->stream, s->cancellable);
  g_source_set_callback (s->watch, G_SOURCE_FUNC (on_binding_readable), s, NULL);
  g_source_attach (s->watch, g_main_context_get_thread_default ());
}

static gboolean
on_limit (gpointer user_data)
{
  Standby *s = user_data;

  g_debug ("giving up on a standby connection held for %u s", ZLT_STANDBY_AGENT_LIMIT_MS / 1000);
  zlt_source_clear (&s->limit);
  if (s->keeper->target > s->keeper->floor)
    s->keeper->target--;
  /* the read ends cancelled, and its callback replaces the connection */
  s->expired = TRUE;
  g_cancellable_cancel (s->cancellable);
  return G_SOURCE_REMOVE;
}

static void
opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Standby *s = user_data;
  ZltStandbyKeeper *self = s->keeper;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) prefix = NULL;
  gsize len;

  s->stream = zlt_control_transport_open_data_finish (self->control, result, &prefix, &error);
  if (s->stream == NULL || !self->running)
    {
      if (s->stream == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        open_failed (self, error);
      standby_gone (s, TRUE);
      g_object_unref (self);
      return;
    }
  self->n_opening--;
  s->parked = TRUE;
  self->retry_ms = 0;
  if (zlt_standby_keeper_get_n_parked (self) >= self->target)
    self->filled = TRUE;
  /* at most MAX_OPENING at a time: the next ones now */
  schedule_fill (self);
  s->limit = zlt_timeout_source_attach (ZLT_STANDBY_AGENT_LIMIT_MS, on_limit, s);
  /* the binding, or its start, may have come with the 101 */
  len = prefix != NULL ? g_bytes_get_size (prefix) : 0;
  s->head_len = MIN (len, sizeof s->head);
  if (s->head_len > 0)
    memcpy (s->head, g_bytes_get_data (prefix, NULL), s->head_len);
  if (len > s->head_len)
    s->extra = g_bytes_new_from_bytes (prefix, s->head_len, len - s->head_len);
  take_bytes (s);
  g_object_unref (self);
}

static void
open_one (ZltStandbyKeeper *self)
{
  Standby *s = g_new0 (Standby, 1);
  char id_str[G_ASCII_DTOSTR_BUF_SIZE];
  guint8 mac[ZLT_HASH_SIZE];
  g_autofree char *mac_hex = NULL;

  s->keeper = self;
  s->id = ++self->next_id;
  s->cancellable = g_cancellable_new ();
  s->link.data = s;
  g_queue_push_tail_link (&self->standbys, &s->link);
  self->n_opening++;
  g_snprintf (id_str, sizeof id_str, "%" G_GUINT64_FORMAT, s->id);
  zlt_standby_mac (self->session_key, &self->tunnel_id, s->id, mac);
  mac_hex = zlt_hex_encode (mac, sizeof mac);
  g_object_ref (self);
  zlt_control_transport_open_standby_async (self->control, self->url, self->tls,
                                            self->tunnel_id_str, id_str, mac_hex, OPEN_TIMEOUT_MS,
                                            s->cancellable, opened, s);
}

static gboolean
on_fill (gpointer user_data)
{
  ZltStandbyKeeper *self = user_data;

  zlt_source_clear (&self->fill);
  if (!self->running || self->retry != NULL)
    return G_SOURCE_REMOVE;
  while (self->standbys.length < self->target && self->n_opening < MAX_OPENING)
    open_one (self);
  return G_SOURCE_REMOVE;
}

/* After what a public connection needs now: the pool refills at low priority. */
static void
schedule_fill (ZltStandbyKeeper *self)
{
  if (self->fill != NULL || !self->running)
    return;
  self->fill = zlt_low_idle_source_attach (on_fill, self, "zlt-standby-fill");
}

void
zlt_standby_keeper_start (ZltStandbyKeeper *self)
{
  g_return_if_fail (ZLT_IS_STANDBY_KEEPER (self));

  if (self->running)
    return;
  self->running = TRUE;
  schedule_fill (self);
}

void
zlt_standby_keeper_stop (ZltStandbyKeeper *self)
{
  g_return_if_fail (ZLT_IS_STANDBY_KEEPER (self));

  self->running = FALSE;
  zlt_source_clear (&self->fill);
  zlt_source_clear (&self->retry);
  /* every connection has an operation pending: cancelled, its callback frees it */
  for (GList *l = self->standbys.head; l != NULL; l = l->next)
    g_cancellable_cancel (((Standby *) l->data)->cancellable);
}

void
zlt_standby_keeper_missed (ZltStandbyKeeper *self)
{
  g_return_if_fail (ZLT_IS_STANDBY_KEEPER (self));

  /* a connection that came while the pool was still filling for the first time says
   * nothing about the size it needs */
  if (self->filled && self->target < self->max)
    {
      self->target++;
      g_debug ("a connection found no standby connection: the pool grows to %u", self->target);
    }
  schedule_fill (self);
}

guint
zlt_standby_keeper_get_n_parked (ZltStandbyKeeper *self)
{
  g_return_val_if_fail (ZLT_IS_STANDBY_KEEPER (self), 0);
  return self->standbys.length - self->n_opening;
}

guint
zlt_standby_keeper_get_n_opening (ZltStandbyKeeper *self)
{
  g_return_val_if_fail (ZLT_IS_STANDBY_KEEPER (self), 0);
  return self->n_opening;
}

guint
zlt_standby_keeper_get_target (ZltStandbyKeeper *self)
{
  g_return_val_if_fail (ZLT_IS_STANDBY_KEEPER (self), 0);
  return self->target;
}

static void
zlt_standby_keeper_dispose (GObject *object)
{
  ZltStandbyKeeper *self = ZLT_STANDBY_KEEPER (object);

  /* every connection's callback holds a reference: none is left by now */
  g_warn_if_fail (self->standbys.length == 0);
  zlt_source_clear (&self->fill);
  zlt_source_clear (&self->retry);
  G_OBJECT_CLASS (zlt_standby_keeper_parent_class)->dispose (object);
}

static void
zlt_standby_keeper_finalize (GObject *object)
{
  ZltStandbyKeeper *self = ZLT_STANDBY_KEEPER (object);

  g_clear_object (&self->control);
  g_clear_pointer (&self->url, g_uri_unref);
  zlt_tls_options_free (self->tls);
  explicit_bzero (self->session_key, sizeof self->session_key);
  G_OBJECT_CLASS (zlt_standby_keeper_parent_class)->finalize (object);
}

static void
zlt_standby_keeper_class_init (ZltStandbyKeeperClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_standby_keeper_dispose;
  object_class->finalize = zlt_standby_keeper_finalize;
}

static void
zlt_standby_keeper_init (ZltStandbyKeeper *self)
{
}

ZltStandbyKeeper *
zlt_standby_keeper_new (ZltControlTransport *control, GUri *url, const ZltTlsOptions *tls,
                        const ZltUuid *tunnel_id, const guint8 session_key[ZLT_HASH_SIZE],
                        guint floor, guint max, ZltStandbyBoundFunc func, gpointer user_data)
{
  ZltStandbyKeeper *self;

  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (control), NULL);
  g_return_val_if_fail (url != NULL && tunnel_id != NULL && session_key != NULL, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  self = g_object_new (ZLT_TYPE_STANDBY_KEEPER, NULL);
  self->control = g_object_ref (control);
  self->url = g_uri_ref (url);
  self->tls = zlt_tls_options_copy (tls);
  self->tunnel_id = *tunnel_id;
  zlt_uuid_format (tunnel_id, self->tunnel_id_str);
  memcpy (self->session_key, session_key, ZLT_HASH_SIZE);
  self->max = max;
  self->floor = MIN (floor, max);
  self->target = self->floor;
  self->func = func;
  self->user_data = user_data;
  return self;
}
