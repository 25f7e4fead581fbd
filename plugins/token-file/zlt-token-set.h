/* zlt-token-set.h: the tokens a token-file validator knows, indexed by key id */
#pragma once

#include "zlt-plugin.h"

G_BEGIN_DECLS

/* One accepted token: never the token itself, only its SHA-256. */
typedef struct
{
  char *name;
  char key_id[ZLT_KEY_ID_LEN + 1]; /* the first 16 hex digits of the hash */
  guint8 hash[ZLT_HASH_SIZE];
  GStrv services;         /* may register: service patterns, NULL = every service */
  GStrv reach;            /* may reach through access sessions: patterns, NULL = none */
  GStrv owns;             /* reserved to this name: patterns, NULL = none */
  GStrv hostnames;        /* hostname patterns its services may claim, NULL = none */
  gint64 expiry;          /* unix seconds, 0 = never */
  guint64 rate_limit_in;  /* bytes/s toward the principal's services, 0 = none */
  guint64 rate_limit_out; /* bytes/s from them toward their clients, 0 = none */
  guint line;             /* where it came from in the file; 0 for runtime tokens */
} ZltTokenEntry;

ZltTokenEntry *zlt_token_entry_new (const char *name, const guint8 hash[ZLT_HASH_SIZE],
                                    const char *const *services, gint64 expiry);
void zlt_token_entry_free (ZltTokenEntry *entry);
gboolean zlt_token_entry_is_expired (const ZltTokenEntry *entry, gint64 now);

typedef struct _ZltTokenSet ZltTokenSet;

ZltTokenSet *zlt_token_set_new (void);
ZltTokenSet *zlt_token_set_parse (const char *data, gsize len, const char *origin, GError **error);
void zlt_token_set_free (ZltTokenSet *set);

guint zlt_token_set_get_size (ZltTokenSet *set);
void zlt_token_set_add (ZltTokenSet *set, ZltTokenEntry *entry);
gboolean zlt_token_set_remove_name (ZltTokenSet *set, const char *name);
const ZltTokenEntry *zlt_token_set_find (ZltTokenSet *set, const ZltCredential *credential);
const char *zlt_token_set_lookup_owner (ZltTokenSet *set, const char *service);
ZltGrant *zlt_token_entry_to_grant (const ZltTokenEntry *entry);

gboolean zlt_token_name_is_valid (const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltTokenEntry, zlt_token_entry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltTokenSet, zlt_token_set_free)

G_END_DECLS
