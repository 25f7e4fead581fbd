/* zlt-resume-book.c: the server side of resuming a v2 agent's session, in one place */
#include "config.h"

#include <string.h>

#include "zlt-resume-book.h"
#include "zlt-tunnel.h"
#include "zlt-uuid.h"

typedef struct
{
  guint8 secret[ZLT_HASH_SIZE];
  guint8 token_hash[ZLT_HASH_SIZE];
  ZltCredential *credential; /* to check a held tunnel again when the tokens change */
  gint64 access_deadline;
} Entry;

struct _ZltResumeBook
{
  GObject parent_instance;

  ZltRegistry *registry;
  GHashTable *entries; /* ZltUuid* tunnel id → Entry* */
};

G_DEFINE_FINAL_TYPE (ZltResumeBook, zlt_resume_book, G_TYPE_OBJECT)

enum
{
  SIGNAL_DISPLACE,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
entry_free (Entry *entry)
{
  explicit_bzero (entry->secret, sizeof entry->secret);
  g_clear_pointer (&entry->credential, zlt_credential_free);
  g_free (entry);
}

/* a tunnel that is gone, however it went, can no longer be resumed */
static void
on_tunnel_removed (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  ZltResumeBook *self = user_data;

  g_hash_table_remove (self->entries, zlt_tunnel_get_id (tunnel));
}

static void
zlt_resume_book_dispose (GObject *object)
{
  ZltResumeBook *self = ZLT_RESUME_BOOK (object);

  if (self->registry != NULL)
    g_signal_handlers_disconnect_by_data (self->registry, self);
  g_clear_object (&self->registry);
  G_OBJECT_CLASS (zlt_resume_book_parent_class)->dispose (object);
}

static void
zlt_resume_book_finalize (GObject *object)
{
  ZltResumeBook *self = ZLT_RESUME_BOOK (object);

  g_hash_table_unref (self->entries);
  G_OBJECT_CLASS (zlt_resume_book_parent_class)->finalize (object);
}

static void
zlt_resume_book_class_init (ZltResumeBookClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_resume_book_dispose;
  object_class->finalize = zlt_resume_book_finalize;

  /**
   * ZltResumeBook::displace:
   * @tunnel: a tunnel whose channel still looks alive
   *
   * A proven resume takes @tunnel over from its channel (the agent noticed a dead
   * connection before the server did, as when a NAT drops it silently). The handler
   * ends that channel without holding or removing the tunnel.
   */
  signals[SIGNAL_DISPLACE] = g_signal_new ("displace", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 1, ZLT_TYPE_TUNNEL);
}

static void
zlt_resume_book_init (ZltResumeBook *self)
{
  self->entries = g_hash_table_new_full (zlt_uuid_hash, zlt_uuid_equal_func, g_free,
                                         (GDestroyNotify) entry_free);
}

ZltResumeBook *
zlt_resume_book_new (ZltRegistry *registry)
{
  ZltResumeBook *self;

  g_return_val_if_fail (ZLT_IS_REGISTRY (registry), NULL);

  self = g_object_new (ZLT_TYPE_RESUME_BOOK, NULL);
  self->registry = g_object_ref (registry);
  g_signal_connect (registry, "tunnel-removed", G_CALLBACK (on_tunnel_removed), self);
  return self;
}

void
zlt_resume_book_issue (ZltResumeBook *self, ZltTunnel *tunnel,
                       const guint8 token_hash[ZLT_HASH_SIZE], const ZltCredential *credential,
                       gint64 access_deadline, guint8 secret[ZLT_HASH_SIZE])
{
  Entry *entry;

  g_return_if_fail (ZLT_IS_RESUME_BOOK (self));
  g_return_if_fail (ZLT_IS_TUNNEL (tunnel));
  g_return_if_fail (token_hash != NULL && secret != NULL);

  entry = g_new0 (Entry, 1);
  zlt_random_bytes (entry->secret, sizeof entry->secret);
  memcpy (entry->token_hash, token_hash, ZLT_HASH_SIZE);
  entry->credential = credential != NULL ? zlt_credential_copy (credential) : NULL;
  entry->access_deadline = access_deadline;
  memcpy (secret, entry->secret, ZLT_HASH_SIZE);
  /* a resumed session gets a new secret: the old one is spent */
  g_hash_table_replace (self->entries, g_memdup2 (zlt_tunnel_get_id (tunnel), sizeof (ZltUuid)),
                        entry);
}

void
zlt_resume_book_hold (ZltResumeBook *self, ZltTunnel *tunnel, guint grace_ms, gint64 token_expiry)
{
  char id[ZLT_UUID_STRING_LEN + 1];

  g_return_if_fail (ZLT_IS_RESUME_BOOK (self));
  g_return_if_fail (ZLT_IS_TUNNEL (tunnel));

  /* a hold never outlives the token it was granted to */
  if (token_expiry != 0)
    grace_ms = (guint) CLAMP ((token_expiry - g_get_real_time () / G_USEC_PER_SEC) * 1000, 0,
                              (gint64) grace_ms);
  /* nobody could resume it: no secret was issued (a v1 agent, or no resume asked) */
  if (!g_hash_table_contains (self->entries, zlt_tunnel_get_id (tunnel)))
    grace_ms = 0;
  if (grace_ms == 0)
    {
      zlt_registry_remove_tunnel (self->registry, tunnel);
      return;
    }
  zlt_uuid_format (zlt_tunnel_get_id (tunnel), id);
  g_message ("tunnel %s: holding its services and ports %.0f s for a resume", id,
             grace_ms / 1000.0);
  zlt_registry_hold_tunnel (self->registry, tunnel, grace_ms);
}

ZltTunnel *
zlt_resume_book_redeem (ZltResumeBook *self, const ZltUuid *tunnel_id,
                        const guint8 nonce[ZLT_NONCE_SIZE], const guint8 mac[ZLT_HASH_SIZE],
                        const guint8 token_hash[ZLT_HASH_SIZE], gint64 *access_deadline)
{
  Entry *entry;
  guint8 expected[ZLT_HASH_SIZE];
  ZltTunnel *tunnel;

  g_return_val_if_fail (ZLT_IS_RESUME_BOOK (self), NULL);
  g_return_val_if_fail (tunnel_id != NULL && nonce != NULL && mac != NULL, NULL);
  g_return_val_if_fail (token_hash != NULL && access_deadline != NULL, NULL);

  entry = g_hash_table_lookup (self->entries, tunnel_id);
  if (entry == NULL)
    return NULL;
  zlt_resume_mac (entry->secret, nonce, expected);
  /* the same token, and proof of the secret only the previous session saw */
  if (!zlt_secure_equal (expected, sizeof expected, mac, ZLT_HASH_SIZE)
      || !zlt_secure_equal (entry->token_hash, ZLT_HASH_SIZE, token_hash, ZLT_HASH_SIZE))
    return NULL;
  tunnel = zlt_registry_lookup_tunnel (self->registry, tunnel_id);
  if (tunnel == NULL)
    return NULL;
  *access_deadline = entry->access_deadline;
  if (!zlt_registry_is_held (self->registry, tunnel))
    {
      /* its channel still looks alive: the proven new session takes over, through the
       * registry's own hold and resume, so the agent's registrations reclaim its services
       * exactly as after an ordinary resume */
      g_signal_emit (self, signals[SIGNAL_DISPLACE], 0, tunnel);
      zlt_registry_hold_tunnel (self->registry, tunnel, 1000);
    }
  if (zlt_registry_resume_tunnel (self->registry, tunnel_id, NULL) == NULL)
    return NULL;
  return tunnel;
}

typedef struct
{
  ZltResumeBook *book;
  ZltUuid tunnel_id;
} Recheck;

static void
rechecked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Recheck *check = user_data;
  ZltResumeBook *self = check->book;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant
      = zlt_validator_validate_finish (ZLT_VALIDATOR (source), result, &error);
  ZltTunnel *tunnel = zlt_registry_lookup_tunnel (self->registry, &check->tunnel_id);

  /* still held, and its token gone: the services it holds for a resume go now */
  if (grant == NULL && tunnel != NULL && zlt_registry_is_held (self->registry, tunnel))
    {
      g_message ("held tunnel of token %s: token no longer valid, removing it",
                 zlt_tunnel_get_token_name (tunnel));
      zlt_registry_remove_tunnel (self->registry, tunnel);
    }
  g_object_unref (self);
  g_free (check);
}

void
zlt_resume_book_recheck (ZltResumeBook *self, ZltValidator *validator)
{
  GHashTableIter iter;
  gpointer key, value;

  g_return_if_fail (ZLT_IS_RESUME_BOOK (self));
  g_return_if_fail (ZLT_IS_VALIDATOR (validator));

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      ZltTunnel *tunnel = zlt_registry_lookup_tunnel (self->registry, key);
      Entry *entry = value;
      Recheck *check;

      if (tunnel == NULL || entry->credential == NULL
          || !zlt_registry_is_held (self->registry, tunnel))
        continue;
      check = g_new0 (Recheck, 1);
      check->book = g_object_ref (self);
      check->tunnel_id = *(ZltUuid *) key;
      zlt_validator_validate_async (validator, entry->credential, NULL, rechecked, check);
    }
}

void
zlt_resume_book_clear (ZltResumeBook *self)
{
  g_return_if_fail (ZLT_IS_RESUME_BOOK (self));

  g_hash_table_remove_all (self->entries);
}
