/* zlt-quota.c: what each token (principal) may hold of the server's shared pools
 *
 * The server's global limits (max-tunnels, the port range, pending connections) are
 * shared by every tenant; without a share each, one token could take them all. A
 * principal is a grant's name: tokens of one name (a token being rotated) share one
 * account. Usage is counted only while it is above zero, so the table holds the
 * principals that hold something, not every one ever seen. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-error.h"
#include "zlt-quota.h"

struct _ZltQuota
{
  GObject parent_instance;

  guint limits[ZLT_QUOTA_N_KINDS]; /* 0 = no limit */
  GHashTable *usage;               /* principal → Usage* */
};

typedef struct
{
  guint held[ZLT_QUOTA_N_KINDS];
  guint total; /* of held[], so an empty account is dropped */
} Usage;

/**
 * ZltQuota:
 * What each principal (a grant's name: tokens of one name share one account) may hold
 * of the server's shared pools, per #ZltQuotaKind. The server's global limits are
 * shared by every tenant; without a share each, one token could take them all. Only
 * principals that hold something are kept.
 */

G_DEFINE_FINAL_TYPE (ZltQuota, zlt_quota, G_TYPE_OBJECT)

static const char *
kind_to_key (ZltQuotaKind kind)
{
  switch (kind)
    {
    case ZLT_QUOTA_TUNNELS:
      return "token-max-tunnels";
    case ZLT_QUOTA_SERVICES:
      return "token-max-services";
    case ZLT_QUOTA_PENDING:
      return "token-max-pending";
    case ZLT_QUOTA_CONNECTIONS:
      return "token-max-connections";
    case ZLT_QUOTA_ACCESS_STREAMS:
      return "token-max-access-streams";
    case ZLT_QUOTA_STANDBY:
      return "token-max-standby";
    case ZLT_QUOTA_N_KINDS:
    default:
      return "?";
    }
}

static const char *
kind_to_noun (ZltQuotaKind kind)
{
  switch (kind)
    {
    case ZLT_QUOTA_TUNNELS:
      return _ ("tunnels");
    case ZLT_QUOTA_SERVICES:
      return _ ("services");
    case ZLT_QUOTA_PENDING:
      return _ ("waiting connections");
    case ZLT_QUOTA_CONNECTIONS:
      return _ ("connections");
    case ZLT_QUOTA_ACCESS_STREAMS:
      return _ ("access streams");
    case ZLT_QUOTA_STANDBY:
      return _ ("standby connections");
    case ZLT_QUOTA_N_KINDS:
    default:
      return "?";
    }
}

static void
zlt_quota_finalize (GObject *object)
{
  ZltQuota *self = ZLT_QUOTA (object);

  g_hash_table_unref (self->usage);
  G_OBJECT_CLASS (zlt_quota_parent_class)->finalize (object);
}

static void
zlt_quota_class_init (ZltQuotaClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = zlt_quota_finalize;
}

static void
zlt_quota_init (ZltQuota *self)
{
  self->usage = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

/**
 * zlt_quota_new:
 *
 * Returns: (transfer full): a quota without limits
 */
ZltQuota *
zlt_quota_new (void)
{
  return g_object_new (ZLT_TYPE_QUOTA, NULL);
}

/**
 * zlt_quota_set_limit:
 * @limit: the most any one principal may hold at once; 0 = no limit
 *
 * A lower limit applies to what is acquired next; nothing held is taken back.
 */
void
zlt_quota_set_limit (ZltQuota *self, ZltQuotaKind kind, guint limit)
{
  g_return_if_fail (ZLT_IS_QUOTA (self));
  g_return_if_fail (kind < ZLT_QUOTA_N_KINDS);

  self->limits[kind] = limit;
}

/**
 * zlt_quota_get_limit:
 * @self: a quota
 * @kind: what is counted
 *
 * Returns: each principal's share of @kind; 0 for no limit
 */
guint
zlt_quota_get_limit (ZltQuota *self, ZltQuotaKind kind)
{
  g_return_val_if_fail (ZLT_IS_QUOTA (self), 0);
  g_return_val_if_fail (kind < ZLT_QUOTA_N_KINDS, 0);

  return self->limits[kind];
}

/**
 * zlt_quota_check:
 * @principal: (nullable): who would take one more; NULL (no principal, as on an agent)
 *   is never limited
 *
 * Returns: %TRUE when @principal may hold one more of @kind; else %ZLT_ERROR_LIMIT
 *   naming the limit's config key
 */
gboolean
zlt_quota_check (ZltQuota *self, const char *principal, ZltQuotaKind kind, GError **error)
{
  Usage *usage;

  g_return_val_if_fail (ZLT_IS_QUOTA (self), FALSE);
  g_return_val_if_fail (kind < ZLT_QUOTA_N_KINDS, FALSE);

  if (principal == NULL || self->limits[kind] == 0)
    return TRUE;
  usage = g_hash_table_lookup (self->usage, principal);
  if (usage != NULL && usage->held[kind] >= self->limits[kind])
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_LIMIT,
                   _ ("token %s already holds its share of %u %s (%s)"), principal,
                   self->limits[kind], kind_to_noun (kind), kind_to_key (kind));
      return FALSE;
    }
  return TRUE;
}

/**
 * zlt_quota_take:
 *
 * Counts one more of @kind for @principal without checking: for what was checked
 * earlier (zlt_quota_check()) and arrives now. NULL is not counted.
 */
void
zlt_quota_take (ZltQuota *self, const char *principal, ZltQuotaKind kind)
{
  Usage *usage;

  g_return_if_fail (ZLT_IS_QUOTA (self));
  g_return_if_fail (kind < ZLT_QUOTA_N_KINDS);

  if (principal == NULL)
    return;
  usage = g_hash_table_lookup (self->usage, principal);
  if (usage == NULL)
    {
      usage = g_new0 (Usage, 1);
      g_hash_table_insert (self->usage, g_strdup (principal), usage);
    }
  usage->held[kind]++;
  usage->total++;
}

/**
 * zlt_quota_acquire:
 *
 * zlt_quota_check() and, when it passes, zlt_quota_take().
 */
gboolean
zlt_quota_acquire (ZltQuota *self, const char *principal, ZltQuotaKind kind, GError **error)
{
  if (!zlt_quota_check (self, principal, kind, error))
    return FALSE;
  zlt_quota_take (self, principal, kind);
  return TRUE;
}

/**
 * zlt_quota_release:
 * @self: a quota
 * @principal: a grant's name
 * @kind: what is counted
 *
 * Gives back one @kind that @principal acquired.
 */
void
zlt_quota_release (ZltQuota *self, const char *principal, ZltQuotaKind kind)
{
  Usage *usage;

  g_return_if_fail (ZLT_IS_QUOTA (self));
  g_return_if_fail (kind < ZLT_QUOTA_N_KINDS);

  if (principal == NULL)
    return;
  usage = g_hash_table_lookup (self->usage, principal);
  /* a release without its acquire is a bug in the caller's bookkeeping */
  g_return_if_fail (usage != NULL && usage->held[kind] > 0);
  usage->held[kind]--;
  if (--usage->total == 0)
    g_hash_table_remove (self->usage, principal);
}

/**
 * zlt_quota_get_usage:
 * @self: a quota
 * @principal: a grant's name
 * @kind: what is counted
 *
 * Returns: how much of @kind @principal holds now
 */
guint
zlt_quota_get_usage (ZltQuota *self, const char *principal, ZltQuotaKind kind)
{
  Usage *usage;

  g_return_val_if_fail (ZLT_IS_QUOTA (self), 0);
  g_return_val_if_fail (kind < ZLT_QUOTA_N_KINDS, 0);

  usage = principal != NULL ? g_hash_table_lookup (self->usage, principal) : NULL;
  return usage != NULL ? usage->held[kind] : 0;
}

/**
 * zlt_quota_get_n_principals:
 * @self: a quota
 *
 * Returns: how many principals hold something now: 0 once every account is settled
 */
guint
zlt_quota_get_n_principals (ZltQuota *self)
{
  g_return_val_if_fail (ZLT_IS_QUOTA (self), 0);

  return g_hash_table_size (self->usage);
}
