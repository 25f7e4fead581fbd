/* zlt-standby-pool.c: parked standby data connections, per session (PROTOCOL-v2.md §8)
 *
 * Each session with standby connections has a place: the connections parked (newest
 * last: a join takes the freshest, the likeliest to be alive; the oldest reach their
 * lifetime), the reservations of requests answered 101 whose stream has not arrived,
 * and the replay window of the session's standby ids. A place lives from the first
 * request of a session to its end, so a resumed tunnel starts a new window under its
 * new session key, and no window is ever forgotten while its key is in use. */
#include "config.h"

#include <string.h>

#include "zlt-net.h"
#include "zlt-server-config.h"
#include "zlt-source.h"
#include "zlt-standby-pool.h"

/* Standby ids of a session are accepted once each: the last REPLAY_WINDOW ids up to
 * the highest seen are remembered, anything older is refused. An agent has no more
 * requests on their way at once than its tunnel's bound. */
#define REPLAY_WINDOW 1024
G_STATIC_ASSERT (REPLAY_WINDOW >= ZLT_SERVER_MAX_STANDBY);
G_STATIC_ASSERT (REPLAY_WINDOW % 64 == 0);

typedef struct _Place Place;

typedef struct
{
  Place *place;
  GIOStream *stream;
  GSource *watch;    /* the agent closed it, or sent what it must not */
  GSource *lifetime; /* its time is up */
  GList link;        /* in place->parked */
} Parked;

typedef struct
{
  Place *place;
  guint64 id;
  GSource *timeout;
  GList link; /* in place->reserved */
} Reservation;

struct _Place
{
  ZltStandbyPool *pool;
  char *principal;
  GQueue parked;
  GQueue reserved;
  guint64 highest; /* the highest id seen; 0 = none (ids start at 1) */
  guint64 window[REPLAY_WINDOW / 64];
};

struct _ZltStandbyPool
{
  GObject parent_instance;

  ZltQuota *quota;
  guint reserve_ms;
  guint lifetime_ms;
  GHashTable *places; /* session → Place* */
  guint n_parked;
  guint64 n_retired;
};

G_DEFINE_FINAL_TYPE (ZltStandbyPool, zlt_standby_pool, G_TYPE_OBJECT)

/* ---- the replay window ---- */

static gboolean
window_get (Place *p, guint64 id)
{
  guint bit = (guint) (id % REPLAY_WINDOW);

  return (p->window[bit / 64] >> (bit % 64)) & 1;
}

static void
window_put (Place *p, guint64 id, gboolean value)
{
  guint bit = (guint) (id % REPLAY_WINDOW);

  if (value)
    p->window[bit / 64] |= G_GUINT64_CONSTANT (1) << (bit % 64);
  else
    p->window[bit / 64] &= ~(G_GUINT64_CONSTANT (1) << (bit % 64));
}

/* Whether @id is new in this session; it is not afterwards. */
static gboolean
window_accept (Place *p, guint64 id)
{
  if (id > p->highest)
    {
      /* the ids between the old highest and @id enter the window unseen */
      if (id - p->highest >= REPLAY_WINDOW)
        memset (p->window, 0, sizeof p->window);
      else
        for (guint64 skipped = p->highest + 1; skipped < id; skipped++)
          window_put (p, skipped, FALSE);
      p->highest = id;
      window_put (p, id, TRUE);
      return TRUE;
    }
  if (p->highest - id >= REPLAY_WINDOW || window_get (p, id))
    return FALSE;
  window_put (p, id, TRUE);
  return TRUE;
}

/* ---- places ---- */

static void
parked_free (Parked *parked, gboolean reset)
{
  Place *p = parked->place;

  g_queue_unlink (&p->parked, &parked->link);
  p->pool->n_parked--;
  zlt_quota_release (p->pool->quota, p->principal, ZLT_QUOTA_STANDBY);
  zlt_source_clear (&parked->watch);
  zlt_source_clear (&parked->lifetime);
  if (parked->stream != NULL)
    {
      if (reset)
        zlt_net_close_with_reset (parked->stream);
      else
        g_io_stream_close (parked->stream, NULL, NULL);
      g_object_unref (parked->stream);
    }
  g_free (parked);
}

static void
reservation_free (Reservation *r)
{
  Place *p = r->place;

  g_queue_unlink (&p->reserved, &r->link);
  zlt_quota_release (p->pool->quota, p->principal, ZLT_QUOTA_STANDBY);
  zlt_source_clear (&r->timeout);
  g_free (r);
}

static gboolean
on_reservation_timeout (gpointer user_data)
{
  /* the 101 was never written, or the stream was lost on its way */
  reservation_free (user_data);
  return G_SOURCE_REMOVE;
}

static void
place_free (Place *p)
{
  while (p->parked.head != NULL)
    parked_free (p->parked.head->data, TRUE);
  while (p->reserved.head != NULL)
    reservation_free (p->reserved.head->data);
  g_free (p->principal);
  g_free (p);
}

static Place *
place_get (ZltStandbyPool *self, gconstpointer session, const char *principal)
{
  Place *p = g_hash_table_lookup (self->places, session);

  if (p == NULL)
    {
      p = g_new0 (Place, 1);
      p->pool = self;
      p->principal = g_strdup (principal);
      g_hash_table_insert (self->places, (gpointer) session, p);
    }
  return p;
}

/* ---- parked connections ---- */

static gboolean
on_parked_readable (GObject *stream, gpointer user_data)
{
  Parked *parked = user_data;
  g_autoptr (GError) error = NULL;
  guint8 byte;
  gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), &byte, 1,
                                                       NULL, &error);

  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE; /* a TLS record that carried no data */
  /* the agent closed it (0), it broke, or it spoke before its binding */
  if (n > 0)
    g_debug ("closing a standby connection whose agent sent bytes before its binding");
  zlt_source_clear (&parked->watch);
  parked_free (parked, n != 0);
  return G_SOURCE_REMOVE;
}

static gboolean
on_parked_lifetime (gpointer user_data)
{
  Parked *parked = user_data;

  /* the agent opens another at once; an orderly end tells it the server retired this
   * one (rather than lost it) */
  zlt_source_clear (&parked->lifetime);
  parked->place->pool->n_retired++;
  parked_free (parked, FALSE);
  return G_SOURCE_REMOVE;
}

/* between 3/4 of the lifetime and all of it, so a pool does not end all at once */
static guint
random_lifetime (ZltStandbyPool *self)
{
  guint lifetime
      = self->lifetime_ms - (guint) g_random_int_range (0, (gint32) (self->lifetime_ms / 4 + 1));

  return MAX (lifetime, 1);
}

ZltDataVerdict
zlt_standby_pool_request (ZltStandbyPool *self, gconstpointer session, const char *principal,
                          guint max, guint64 standby_id)
{
  g_autoptr (GError) error = NULL;
  Reservation *r;
  Place *p;

  g_return_val_if_fail (ZLT_IS_STANDBY_POOL (self), ZLT_DATA_FORBIDDEN);
  g_return_val_if_fail (session != NULL, ZLT_DATA_FORBIDDEN);

  p = place_get (self, session, principal);
  if (!window_accept (p, standby_id))
    {
      g_debug ("standby id %" G_GUINT64_FORMAT " refused: seen before, or too old", standby_id);
      return ZLT_DATA_FORBIDDEN;
    }
  if (p->parked.length + p->reserved.length >= max)
    return ZLT_DATA_UNAVAILABLE;
  if (!zlt_quota_acquire (self->quota, principal, ZLT_QUOTA_STANDBY, &error))
    {
      g_debug ("standby connection refused: %s", error->message);
      return ZLT_DATA_UNAVAILABLE;
    }
  r = g_new0 (Reservation, 1);
  r->place = p;
  r->id = standby_id;
  r->link.data = r;
  r->timeout = zlt_timeout_source_attach (self->reserve_ms, on_reservation_timeout, r);
  g_queue_push_tail_link (&p->reserved, &r->link);
  return ZLT_DATA_ACCEPT;
}

void
zlt_standby_pool_park (ZltStandbyPool *self, gconstpointer session, guint64 standby_id,
                       GIOStream *stream)
{
  Place *p;
  Reservation *r = NULL;
  Parked *parked;

  g_return_if_fail (ZLT_IS_STANDBY_POOL (self));
  g_return_if_fail (G_IS_IO_STREAM (stream));

  p = session != NULL ? g_hash_table_lookup (self->places, session) : NULL;
  for (GList *l = p != NULL ? p->reserved.head : NULL; l != NULL && r == NULL; l = l->next)
    if (((Reservation *) l->data)->id == standby_id)
      r = l->data;
  if (r == NULL || !G_IS_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream)))
    {
      zlt_net_close_with_reset (stream);
      return;
    }
  /* the reservation's share of the quota passes to the parked connection */
  g_queue_unlink (&p->reserved, &r->link);
  zlt_source_clear (&r->timeout);
  g_free (r);

  parked = g_new0 (Parked, 1);
  parked->place = p;
  parked->stream = g_object_ref (stream);
  parked->link.data = parked;
  /* no block and unblock (see zlt-accept-loop.c), of a child source either */
  parked->watch = zlt_net_input_source_new (stream, NULL);
  g_source_set_callback (parked->watch, G_SOURCE_FUNC (on_parked_readable), parked, NULL);
  g_source_attach (parked->watch, g_main_context_get_thread_default ());
  parked->lifetime = zlt_timeout_source_attach (random_lifetime (self), on_parked_lifetime, parked);
  g_queue_push_tail_link (&p->parked, &parked->link);
  self->n_parked++;
}

GIOStream *
zlt_standby_pool_take (ZltStandbyPool *self, gconstpointer session)
{
  Place *p;
  Parked *parked;
  GIOStream *stream;

  g_return_val_if_fail (ZLT_IS_STANDBY_POOL (self), NULL);

  p = session != NULL ? g_hash_table_lookup (self->places, session) : NULL;
  if (p == NULL || p->parked.tail == NULL)
    return NULL;
  parked = p->parked.tail->data;
  stream = g_steal_pointer (&parked->stream);
  parked_free (parked, FALSE);
  return stream;
}

void
zlt_standby_pool_close_session (ZltStandbyPool *self, gconstpointer session)
{
  g_return_if_fail (ZLT_IS_STANDBY_POOL (self));

  if (session != NULL)
    g_hash_table_remove (self->places, session);
}

void
zlt_standby_pool_clear (ZltStandbyPool *self)
{
  g_return_if_fail (ZLT_IS_STANDBY_POOL (self));

  g_hash_table_remove_all (self->places);
}

guint
zlt_standby_pool_get_n_parked (ZltStandbyPool *self, gconstpointer session)
{
  Place *p;

  g_return_val_if_fail (ZLT_IS_STANDBY_POOL (self), 0);

  if (session == NULL)
    return self->n_parked;
  p = g_hash_table_lookup (self->places, session);
  return p != NULL ? p->parked.length : 0;
}

guint64
zlt_standby_pool_get_n_retired (ZltStandbyPool *self)
{
  g_return_val_if_fail (ZLT_IS_STANDBY_POOL (self), 0);
  return self->n_retired;
}

void
zlt_standby_pool_set_lifetime (ZltStandbyPool *self, guint lifetime_ms)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (ZLT_IS_STANDBY_POOL (self));
  g_return_if_fail (lifetime_ms > 0);

  self->lifetime_ms = lifetime_ms;
  /* the connections parked now live by the new rule too */
  g_hash_table_iter_init (&iter, self->places);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    for (GList *l = ((Place *) value)->parked.head; l != NULL; l = l->next)
      {
        Parked *parked = l->data;

        zlt_source_clear (&parked->lifetime);
        parked->lifetime
            = zlt_timeout_source_attach (random_lifetime (self), on_parked_lifetime, parked);
      }
}

static void
zlt_standby_pool_dispose (GObject *object)
{
  ZltStandbyPool *self = ZLT_STANDBY_POOL (object);

  if (self->places != NULL)
    g_hash_table_remove_all (self->places);
  G_OBJECT_CLASS (zlt_standby_pool_parent_class)->dispose (object);
}

static void
zlt_standby_pool_finalize (GObject *object)
{
  ZltStandbyPool *self = ZLT_STANDBY_POOL (object);

  g_hash_table_unref (self->places);
  g_clear_object (&self->quota);
  G_OBJECT_CLASS (zlt_standby_pool_parent_class)->finalize (object);
}

static void
zlt_standby_pool_class_init (ZltStandbyPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_standby_pool_dispose;
  object_class->finalize = zlt_standby_pool_finalize;
}

static void
zlt_standby_pool_init (ZltStandbyPool *self)
{
  self->lifetime_ms = ZLT_STANDBY_LIFETIME_MS;
  self->places = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) (GCallback) place_free);
}

ZltStandbyPool *
zlt_standby_pool_new (ZltQuota *quota, guint reserve_ms)
{
  ZltStandbyPool *self;

  g_return_val_if_fail (ZLT_IS_QUOTA (quota), NULL);

  self = g_object_new (ZLT_TYPE_STANDBY_POOL, NULL);
  self->quota = g_object_ref (quota);
  self->reserve_ms = MAX (reserve_ms, 1);
  return self;
}
