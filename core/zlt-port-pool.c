/* zlt-port-pool.c: the public ports a server may hand out
 *
 * Four bitmaps over the span between the lowest and the highest configured port: which
 * ports belong to the pool, which are allocated, which the OS refused to bind, and
 * which were given up moments ago and are kept for their previous holder (so a port
 * one tenant lets go of is not at once someone else's: clients that still have the
 * old address would reach a stranger's service). The
 * lowest free port is found a 64-bit word at a time from a hint that only moves down
 * when a port comes back, so allocation stays cheap for pools of tens of thousands.
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "zlt-error.h"
#include "zlt-port-pool.h"

struct _ZltPortPool
{
  GObject parent_instance;

  guint base;    /* lowest port in the pool */
  guint span;    /* highest - lowest + 1 */
  guint n_words; /* words in each bitmap */
  guint64 *in_pool;
  guint64 *allocated;
  guint64 *unusable;
  guint64 *held;
  GHashTable *holds; /* port → Hold, for the ports in @held */
  guint hint;        /* no free port lives in a word below this one */
  guint n_total;
  guint n_free;
};

enum
{
  PROP_0,
  PROP_RANGES,
  PROP_N_TOTAL,
  PROP_N_FREE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/**
 * ZltPortPool:
 * The public ports a server may hand out, from one or more ranges ("20000-20999,
 * 8080"): which are allocated, which the OS refused to bind, and which were given up
 * moments ago and are kept for their previous holder, so a port one tenant lets go of
 * is not at once someone else's (clients that still have the old address would reach a
 * stranger's service). Allocation finds the lowest free port quickly, also in pools of
 * tens of thousands.
 */

G_DEFINE_FINAL_TYPE (ZltPortPool, zlt_port_pool, G_TYPE_OBJECT)

typedef struct
{
  char *owner;
  gint64 until; /* monotonic µs */
} Hold;

static void
hold_free (Hold *hold)
{
  g_free (hold->owner);
  g_free (hold);
}

typedef struct
{
  guint first;
  guint last;
} PortRange;

static inline gboolean
bit_get (const guint64 *map, guint i)
{
  return (map[i / 64] >> (i % 64)) & 1;
}

static inline void
bit_set (guint64 *map, guint i)
{
  map[i / 64] |= G_GUINT64_CONSTANT (1) << (i % 64);
}

static inline void
bit_clear (guint64 *map, guint i)
{
  map[i / 64] &= ~(G_GUINT64_CONSTANT (1) << (i % 64));
}

/* index of @port in the bitmaps, or -1 when it is outside the pool */
static gint
port_index (ZltPortPool *self, guint16 port)
{
  guint i;

  if (port < self->base || port >= self->base + self->span)
    return -1;
  i = port - self->base;
  return bit_get (self->in_pool, i) ? (gint) i : -1;
}

static void
set_n_free (ZltPortPool *self, guint n_free)
{
  if (self->n_free == n_free)
    return;
  self->n_free = n_free;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_FREE]);
}

static void
zlt_port_pool_load (ZltPortPool *self, const PortRange *ranges, guint n_ranges)
{
  guint lo = G_MAXUINT, hi = 0;

  for (guint r = 0; r < n_ranges; r++)
    {
      lo = MIN (lo, ranges[r].first);
      hi = MAX (hi, ranges[r].last);
    }
  g_clear_pointer (&self->in_pool, g_free);
  g_clear_pointer (&self->allocated, g_free);
  g_clear_pointer (&self->unusable, g_free);
  g_clear_pointer (&self->held, g_free);
  g_hash_table_remove_all (self->holds);

  self->base = lo;
  self->span = hi - lo + 1;
  self->n_words = (self->span + 63) / 64;
  self->in_pool = g_new0 (guint64, self->n_words);
  self->allocated = g_new0 (guint64, self->n_words);
  self->unusable = g_new0 (guint64, self->n_words);
  self->held = g_new0 (guint64, self->n_words);
  self->hint = 0;
  self->n_total = 0;
  for (guint r = 0; r < n_ranges; r++)
    for (guint p = ranges[r].first; p <= ranges[r].last; p++)
      {
        if (!bit_get (self->in_pool, p - lo))
          self->n_total++;
        bit_set (self->in_pool, p - lo);
      }
  self->n_free = self->n_total;
}

static gboolean
parse_port (const char *str, guint *out, GError **error)
{
  guint64 v;
  g_autoptr (GError) local_error = NULL;

  if (!g_ascii_string_to_unsigned (str, 10, 1, G_MAXUINT16, &v, &local_error))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("invalid port “%s”: %s"), str,
                   local_error->message);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static gboolean
parse_ranges (const char *str, GArray *out, GError **error)
{
  g_auto (GStrv) items = g_strsplit (str, ",", -1);

  if (items[0] == NULL)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("no port ranges given"));
      return FALSE;
    }
  for (guint i = 0; items[i] != NULL; i++)
    {
      PortRange range;
      char *item = g_strstrip (items[i]);
      char *dash = strchr (item, '-');

      if (*item == '\0')
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("empty item in port ranges “%s”"), str);
          return FALSE;
        }
      if (dash != NULL)
        {
          *dash = '\0';
          if (!parse_port (g_strstrip (item), &range.first, error)
              || !parse_port (g_strstrip (dash + 1), &range.last, error))
            {
              g_prefix_error (error, _ ("in port ranges “%s”: "), str);
              return FALSE;
            }
          if (range.first > range.last)
            {
              g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("port range %u-%u ends before it starts"), range.first, range.last);
              return FALSE;
            }
        }
      else
        {
          if (!parse_port (item, &range.first, error))
            {
              g_prefix_error (error, _ ("in port ranges “%s”: "), str);
              return FALSE;
            }
          range.last = range.first;
        }
      g_array_append_val (out, range);
    }
  return TRUE;
}

static void
zlt_port_pool_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltPortPool *self = ZLT_PORT_POOL (object);

  switch (prop_id)
    {
    case PROP_RANGES:
      g_value_take_string (value, zlt_port_pool_to_string (self));
      break;
    case PROP_N_TOTAL:
      g_value_set_uint (value, self->n_total);
      break;
    case PROP_N_FREE:
      g_value_set_uint (value, self->n_free);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_port_pool_finalize (GObject *object)
{
  ZltPortPool *self = ZLT_PORT_POOL (object);

  g_free (self->in_pool);
  g_free (self->allocated);
  g_free (self->unusable);
  g_free (self->held);
  g_hash_table_unref (self->holds);
  G_OBJECT_CLASS (zlt_port_pool_parent_class)->finalize (object);
}

static void
zlt_port_pool_class_init (ZltPortPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_port_pool_get_property;
  object_class->finalize = zlt_port_pool_finalize;

  /**
   * ZltPortPool:ranges:
   * The pool in canonical form, e.g. "30000-31000,40000".
   */
  properties[PROP_RANGES]
      = g_param_spec_string ("ranges", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_TOTAL] = g_param_spec_uint ("n-total", NULL, NULL, 0, G_MAXUINT16, 0,
                                                G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_FREE]
      = g_param_spec_uint ("n-free", NULL, NULL, 0, G_MAXUINT16, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
zlt_port_pool_init (ZltPortPool *self)
{
  static const PortRange def = { 30000, 31000 };

  self->holds = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) hold_free);
  zlt_port_pool_load (self, &def, 1);
}

/**
 * zlt_port_pool_new:
 *
 * Returns: (transfer full): a pool of %ZLT_PORT_POOL_DEFAULT_RANGES
 */
ZltPortPool *
zlt_port_pool_new (void)
{
  return g_object_new (ZLT_TYPE_PORT_POOL, NULL);
}

/**
 * zlt_port_pool_new_range:
 * @first: lowest port, at least 1
 * @last: highest port, at least @first
 *
 * Returns: (transfer full): a pool of the ports from @first to @last inclusive
 */
ZltPortPool *
zlt_port_pool_new_range (guint16 first, guint16 last)
{
  ZltPortPool *self;
  PortRange range = { first, last };

  g_return_val_if_fail (first > 0, NULL);
  g_return_val_if_fail (first <= last, NULL);

  self = g_object_new (ZLT_TYPE_PORT_POOL, NULL);
  zlt_port_pool_load (self, &range, 1);
  return self;
}

/**
 * zlt_port_pool_new_from_string:
 * @ranges: comma-separated ports and inclusive ranges, e.g. "30000-31000,40000"
 * @error: return location for a %ZLT_ERROR_INVALID_CONFIG error
 *
 * Overlapping ranges are merged.
 *
 * Returns: (transfer full): the pool, or %NULL if @ranges is malformed
 */
ZltPortPool *
zlt_port_pool_new_from_string (const char *ranges, GError **error)
{
  g_autoptr (GArray) parsed = g_array_new (FALSE, FALSE, sizeof (PortRange));
  ZltPortPool *self;

  g_return_val_if_fail (ranges != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!parse_ranges (ranges, parsed, error))
    return NULL;
  self = g_object_new (ZLT_TYPE_PORT_POOL, NULL);
  zlt_port_pool_load (self, (const PortRange *) (gpointer) parsed->data, parsed->len);
  return self;
}

/**
 * zlt_port_pool_allocate:
 * @requested: the port the caller asks for, or 0 for any
 * @error: return location for an error
 *
 * With @requested 0, takes the lowest free port (%ZLT_ERROR_PORTS_EXHAUSTED when there
 * is none). Otherwise takes exactly @requested: %ZLT_ERROR_PORT_OUT_OF_RANGE when it is
 * not in the pool, %ZLT_ERROR_PORT_IN_USE when it is allocated or marked unusable.
 *
 * Returns: the allocated port, or 0 on error
 */
guint16
zlt_port_pool_allocate (ZltPortPool *self, guint16 requested, GError **error)
{
  return zlt_port_pool_allocate_for (self, requested, NULL, error);
}

static void
unhold (ZltPortPool *self, guint i)
{
  bit_clear (self->held, i);
  g_hash_table_remove (self->holds, GUINT_TO_POINTER (i));
}

/* Holds whose time is up end here, lazily: nothing runs while nobody allocates. */
static void
prune_holds (ZltPortPool *self)
{
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->holds);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((Hold *) value)->until <= now)
      {
        bit_clear (self->held, GPOINTER_TO_UINT (key));
        g_hash_table_iter_remove (&iter);
      }
}

static guint16
take (ZltPortPool *self, guint i)
{
  if (bit_get (self->held, i))
    unhold (self, i);
  bit_set (self->allocated, i);
  set_n_free (self, self->n_free - 1);
  return (guint16) (self->base + i);
}

/**
 * zlt_port_pool_allocate_for:
 * @requested: the port the caller asks for, or 0 for any
 * @owner: (nullable): who asks (a token's name), for ports held after a release
 * @error: return location for an error
 *
 * As zlt_port_pool_allocate(), but a port that zlt_port_pool_release_for() kept for
 * its previous holder goes only to that holder until its hold ends: asked for by
 * someone else it is %ZLT_ERROR_PORT_IN_USE, and "any port" skips it (taking one of
 * @owner's own held ports only when nothing else is free).
 *
 * Returns: the allocated port, or 0 on error
 */
guint16
zlt_port_pool_allocate_for (ZltPortPool *self, guint16 requested, const char *owner, GError **error)
{
  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  if (g_hash_table_size (self->holds) > 0)
    prune_holds (self);
  if (requested != 0)
    {
      gint i = port_index (self, requested);
      Hold *hold;

      if (i < 0)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_OUT_OF_RANGE,
                       _ ("port %u is outside the server’s port ranges"), requested);
          return 0;
        }
      if (bit_get (self->allocated, (guint) i) || bit_get (self->unusable, (guint) i))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE, _ ("port %u is in use"), requested);
          return 0;
        }
      hold = g_hash_table_lookup (self->holds, GINT_TO_POINTER (i));
      if (hold != NULL && g_strcmp0 (hold->owner, owner) != 0)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE,
                       _ ("port %u was given up moments ago and is kept for its previous "
                          "holder for %u more seconds"),
                       requested,
                       (guint) ((hold->until - g_get_monotonic_time ()) / G_USEC_PER_SEC + 1));
          return 0;
        }
      return take (self, (guint) i);
    }

  for (guint w = self->hint; w < self->n_words && self->n_free > 0; w++)
    {
      guint64 avail = self->in_pool[w] & ~(self->allocated[w] | self->unusable[w] | self->held[w]);

      if (avail == 0)
        continue;
      self->hint = w;
      return take (self, w * 64 + (guint) __builtin_ctzll (avail));
    }
  /* only held ports left: one of our own will do */
  if (owner != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, self->holds);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (g_strcmp0 (((Hold *) value)->owner, owner) == 0)
          return take (self, GPOINTER_TO_UINT (key));
    }
  if (g_hash_table_size (self->holds) > 0)
    g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED,
                 _ ("no free port left (%u in the range, %u of them kept for their previous "
                    "holders for a while)"),
                 self->n_total, g_hash_table_size (self->holds));
  else
    g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED, _ ("no free port left (%u in use)"),
                 self->n_total);
  return 0;
}

/**
 * zlt_port_pool_release:
 * @port: a port returned by zlt_port_pool_allocate()
 *
 * Gives @port back so a later allocation may hand it out again.
 *
 * Returns: %TRUE if @port was allocated
 */
gboolean
zlt_port_pool_release (ZltPortPool *self, guint16 port)
{
  return zlt_port_pool_release_for (self, port, NULL, 0);
}

/**
 * zlt_port_pool_release_for:
 * @port: an allocated port
 * @owner: (nullable): who held it; NULL keeps nothing
 * @hold_ms: how long only @owner may take it again; 0 for not at all
 *
 * Returns: %TRUE if @port was allocated
 */
gboolean
zlt_port_pool_release_for (ZltPortPool *self, guint16 port, const char *owner, guint hold_ms)
{
  gint i;

  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), FALSE);

  i = port_index (self, port);
  if (i < 0 || !bit_get (self->allocated, (guint) i))
    return FALSE;
  bit_clear (self->allocated, (guint) i);
  if (!bit_get (self->unusable, (guint) i))
    {
      self->hint = MIN (self->hint, (guint) i / 64);
      set_n_free (self, self->n_free + 1);
    }
  if (owner != NULL && hold_ms > 0)
    {
      Hold *hold = g_new0 (Hold, 1);

      hold->owner = g_strdup (owner);
      hold->until = g_get_monotonic_time () + (gint64) hold_ms * 1000;
      bit_set (self->held, (guint) i);
      g_hash_table_replace (self->holds, GINT_TO_POINTER (i), hold);
    }
  return TRUE;
}

/**
 * zlt_port_pool_get_holder:
 * Returns: (nullable): whom @port is kept for after a release, while the hold lasts
 */
const char *
zlt_port_pool_get_holder (ZltPortPool *self, guint16 port)
{
  gint i;
  Hold *hold;

  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), NULL);

  i = port_index (self, port);
  hold = i >= 0 ? g_hash_table_lookup (self->holds, GINT_TO_POINTER (i)) : NULL;
  if (hold == NULL || hold->until <= g_get_monotonic_time ())
    return NULL;
  return hold->owner;
}

/**
 * zlt_port_pool_mark_unusable:
 * @port: a port of the pool, allocated or not
 *
 * Keeps @port out of every allocation, e.g. because binding it failed with EADDRINUSE.
 * An allocated port is released at the same time. zlt_port_pool_clear_unusable() gives
 * such ports another chance. Ports outside the pool are ignored.
 */
void
zlt_port_pool_mark_unusable (ZltPortPool *self, guint16 port)
{
  gint i;
  gboolean was_free;

  g_return_if_fail (ZLT_IS_PORT_POOL (self));

  i = port_index (self, port);
  if (i < 0 || bit_get (self->unusable, (guint) i))
    return;
  was_free = !bit_get (self->allocated, (guint) i);
  bit_clear (self->allocated, (guint) i);
  bit_set (self->unusable, (guint) i);
  if (was_free)
    set_n_free (self, self->n_free - 1);
}

/**
 * zlt_port_pool_clear_unusable:
 *
 * Makes every port marked unusable free again.
 *
 * Returns: how many ports came back
 */
guint
zlt_port_pool_clear_unusable (ZltPortPool *self)
{
  guint n = 0;

  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), 0);

  for (guint w = 0; w < self->n_words; w++)
    {
      if (self->unusable[w] == 0)
        continue;
      n += (guint) __builtin_popcountll (self->unusable[w]);
      self->unusable[w] = 0;
      self->hint = MIN (self->hint, w);
    }
  set_n_free (self, self->n_free + n);
  return n;
}

/**
 * zlt_port_pool_contains:
 * @self: a port pool
 * @port: a port
 *
 * Returns: whether @port is one of the pool's
 */
gboolean
zlt_port_pool_contains (ZltPortPool *self, guint16 port)
{
  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), FALSE);
  return port_index (self, port) >= 0;
}

/**
 * zlt_port_pool_is_allocated:
 * @self: a port pool
 * @port: a port
 *
 * Returns: whether @port is one of the pool's and allocated
 */
gboolean
zlt_port_pool_is_allocated (ZltPortPool *self, guint16 port)
{
  gint i;

  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), FALSE);
  i = port_index (self, port);
  return i >= 0 && bit_get (self->allocated, (guint) i);
}

/**
 * zlt_port_pool_is_unusable:
 * @self: a port pool
 * @port: a port
 *
 * Returns: whether @port is one of the pool's and marked unusable
 *   (zlt_port_pool_mark_unusable())
 */
gboolean
zlt_port_pool_is_unusable (ZltPortPool *self, guint16 port)
{
  gint i;

  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), FALSE);
  i = port_index (self, port);
  return i >= 0 && bit_get (self->unusable, (guint) i);
}

/**
 * zlt_port_pool_get_n_total:
 * @self: a port pool
 *
 * Returns: how many ports the pool holds
 */
guint
zlt_port_pool_get_n_total (ZltPortPool *self)
{
  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), 0);
  return self->n_total;
}

/**
 * zlt_port_pool_get_n_free:
 * @self: a port pool
 *
 * Returns: how many ports are free now
 */
guint
zlt_port_pool_get_n_free (ZltPortPool *self)
{
  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), 0);
  return self->n_free;
}

/**
 * zlt_port_pool_to_string:
 *
 * Returns: (transfer full): the pool in canonical form: sorted, merged, e.g.
 *   "30000-31000,40000"
 */
char *
zlt_port_pool_to_string (ZltPortPool *self)
{
  GString *out;
  guint i = 0;

  g_return_val_if_fail (ZLT_IS_PORT_POOL (self), NULL);

  out = g_string_new (NULL);
  while (i < self->span)
    {
      guint first;

      if (!bit_get (self->in_pool, i))
        {
          i++;
          continue;
        }
      first = i;
      while (i + 1 < self->span && bit_get (self->in_pool, i + 1))
        i++;
      if (out->len > 0)
        g_string_append_c (out, ',');
      if (first == i)
        g_string_append_printf (out, "%u", self->base + first);
      else
        g_string_append_printf (out, "%u-%u", self->base + first, self->base + i);
      i++;
    }
  return g_string_free (out, FALSE);
}
