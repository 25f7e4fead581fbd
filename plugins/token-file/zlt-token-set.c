/* zlt-token-set.c: the tokens a token-file validator knows, indexed by key id
 *
 * The file holds one token per line:
 *
 *   <64 lowercase hex digits: sha256 of the token>  [name=N] [register=P,..|*]
 *       [reach=P,..|*] [owns=P,..] [hostnames=H,..] [expires=T]
 *       [rate-limit-in=R] [rate-limit-out=R]
 *
 * P is a service pattern: a service name, or a prefix ending in '*'. services= is the
 * older name of register=. Without reach= a token reaches nothing through access
 * sessions; without register= it may register any name nobody else owns, unless it
 * has reach= (an access client's line), then nothing. H is a hostname pattern
 * (app.example.test, *.apps.example.test): the hostnames its services may ask for on
 * the server's shared ports; without hostnames= none. R is a rate in bytes per second
 * (digits, then optionally k, M or G: 5M is 40 Mbit/s; 0 = none): what all public
 * connections of the token's principal on a server may carry together, toward its
 * services (in) and toward their clients (out); the server holds them to it.
 *
 * T is ISO 8601 with a time zone (2027-01-01T00:00:00Z) or unix seconds. Blank lines and
 * lines starting with '#' are ignored, as is everything from a field starting with '#'.
 * Error messages name the file and line and never repeat a field that could be a token. */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "zlt-token-set.h"

#define ZLT_TOKEN_NAME_MAX 128

struct _ZltTokenSet
{
  GPtrArray *entries;    /* owns its ZltTokenEntry */
  GHashTable *by_key_id; /* key id (borrowed from the entry) → GPtrArray of borrowed entries */
};

/* ---- entries ---- */

ZltTokenEntry *
zlt_token_entry_new (const char *name, const guint8 hash[ZLT_HASH_SIZE],
                     const char *const *services, gint64 expiry)
{
  ZltTokenEntry *entry = g_new0 (ZltTokenEntry, 1);
  g_autofree char *hex = zlt_hex_encode (hash, ZLT_HASH_SIZE);

  memcpy (entry->hash, hash, ZLT_HASH_SIZE);
  memcpy (entry->key_id, hex, ZLT_KEY_ID_LEN);
  entry->key_id[ZLT_KEY_ID_LEN] = '\0';
  entry->name = g_strdup (name != NULL ? name : entry->key_id);
  entry->services = g_strdupv ((char **) services);
  entry->expiry = expiry;
  return entry;
}

void
zlt_token_entry_free (ZltTokenEntry *entry)
{
  volatile guint8 *p;
  gsize i;

  if (entry == NULL)
    return;
  p = entry->hash;
  for (i = 0; i < ZLT_HASH_SIZE; i++)
    p[i] = 0;
  g_free (entry->name);
  g_strfreev (entry->services);
  g_strfreev (entry->reach);
  g_strfreev (entry->owns);
  g_strfreev (entry->hostnames);
  g_free (entry);
}

gboolean
zlt_token_entry_is_expired (const ZltTokenEntry *entry, gint64 now)
{
  return entry->expiry != 0 && now >= entry->expiry;
}

/**
 * zlt_token_name_is_valid:
 * Returns: TRUE for 1 to 128 bytes of UTF-8 without spaces or control characters
 */
gboolean
zlt_token_name_is_valid (const char *name)
{
  gsize len;

  if (name == NULL)
    return FALSE;
  len = strlen (name);
  if (len == 0 || len > ZLT_TOKEN_NAME_MAX || !g_utf8_validate (name, len, NULL))
    return FALSE;
  for (const char *p = name; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c) || g_unichar_isspace (c))
        return FALSE;
    }
  return TRUE;
}

/* ---- the set ---- */

ZltTokenSet *
zlt_token_set_new (void)
{
  ZltTokenSet *set = g_new0 (ZltTokenSet, 1);

  set->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_token_entry_free);
  set->by_key_id
      = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) g_ptr_array_unref);
  return set;
}

void
zlt_token_set_free (ZltTokenSet *set)
{
  if (set == NULL)
    return;
  /* the index borrows the keys from the entries: drop it first */
  g_hash_table_unref (set->by_key_id);
  g_ptr_array_unref (set->entries);
  g_free (set);
}

guint
zlt_token_set_get_size (ZltTokenSet *set)
{
  g_return_val_if_fail (set != NULL, 0);

  return set->entries->len;
}

/**
 * zlt_token_set_add:
 * @entry: (transfer full): the entry; entries may share a key id
 */
void
zlt_token_set_add (ZltTokenSet *set, ZltTokenEntry *entry)
{
  GPtrArray *bucket;

  g_return_if_fail (set != NULL);
  g_return_if_fail (entry != NULL);

  bucket = g_hash_table_lookup (set->by_key_id, entry->key_id);
  if (bucket == NULL)
    {
      bucket = g_ptr_array_new ();
      g_hash_table_insert (set->by_key_id, entry->key_id, bucket);
    }
  g_ptr_array_add (bucket, entry);
  g_ptr_array_add (set->entries, entry);
}

static void
zlt_token_set_remove_entry (ZltTokenSet *set, ZltTokenEntry *entry)
{
  GPtrArray *bucket = g_hash_table_lookup (set->by_key_id, entry->key_id);

  if (bucket != NULL)
    {
      g_ptr_array_remove_fast (bucket, entry);
      if (bucket->len == 0)
        g_hash_table_remove (set->by_key_id, entry->key_id);
    }
  g_ptr_array_remove_fast (set->entries, entry); /* frees it */
}

/**
 * zlt_token_set_remove_name:
 * Returns: TRUE when an entry named @name was there (every one by that name goes)
 */
gboolean
zlt_token_set_remove_name (ZltTokenSet *set, const char *name)
{
  gboolean found = FALSE;
  guint i = 0;

  g_return_val_if_fail (set != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  while (i < set->entries->len)
    {
      ZltTokenEntry *entry = g_ptr_array_index (set->entries, i);

      if (g_strcmp0 (entry->name, name) == 0)
        {
          zlt_token_set_remove_entry (set, entry);
          found = TRUE;
          continue; /* remove_fast moved another entry to i */
        }
      i++;
    }
  return found;
}

/**
 * zlt_token_set_find:
 *
 * Looks the credential's key id up and checks every entry under it in constant time
 * (zlt_credential_matches_hash()); key ids collide only by chance or on purpose.
 *
 * Returns: (transfer none) (nullable): the entry the credential proves, or NULL
 */
const ZltTokenEntry *
zlt_token_set_find (ZltTokenSet *set, const ZltCredential *credential)
{
  const ZltTokenEntry *found = NULL;
  const char *key_id;
  GPtrArray *bucket;

  g_return_val_if_fail (set != NULL, NULL);
  g_return_val_if_fail (credential != NULL, NULL);

  key_id = zlt_credential_get_lookup_key (credential);
  if (key_id == NULL)
    return NULL;
  bucket = g_hash_table_lookup (set->by_key_id, key_id);
  if (bucket == NULL)
    return NULL;
  for (guint i = 0; i < bucket->len; i++)
    {
      const ZltTokenEntry *entry = g_ptr_array_index (bucket, i);

      if (zlt_credential_matches_hash (credential, entry->hash) && found == NULL)
        found = entry;
    }
  return found;
}

/**
 * zlt_token_set_lookup_owner:
 * Returns: (nullable): the name of the entry whose owns= covers @service
 */
const char *
zlt_token_set_lookup_owner (ZltTokenSet *set, const char *service)
{
  g_return_val_if_fail (set != NULL, NULL);
  g_return_val_if_fail (service != NULL, NULL);

  for (guint i = 0; i < set->entries->len; i++)
    {
      const ZltTokenEntry *entry = g_ptr_array_index (set->entries, i);

      for (guint j = 0; entry->owns != NULL && entry->owns[j] != NULL; j++)
        if (zlt_service_pattern_matches (entry->owns[j], service))
          return entry->name;
    }
  return NULL;
}

ZltGrant *
zlt_token_entry_to_grant (const ZltTokenEntry *entry)
{
  ZltGrant *grant = zlt_grant_new_full (
      entry->name, entry->hash, (const char *const *) entry->services,
      (const char *const *) entry->reach, (const char *const *) entry->owns, entry->expiry);

  zlt_grant_set_hostnames (grant, (const char *const *) entry->hostnames);
  zlt_grant_set_rate_limits (grant, entry->rate_limit_in, entry->rate_limit_out);
  return grant;
}

/* A comma-separated list of hostname patterns. */
static gboolean
parse_hostnames (const char *value, GStrv *out, GError **error)
{
  g_auto (GStrv) patterns = g_strsplit (value, ",", -1);
  int bad;

  if (*value == '\0')
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("hostnames: empty; list hostnames or *.domain patterns"));
      return FALSE;
    }
  bad = zlt_hostname_patterns_normalize (patterns);
  if (bad >= 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("hostnames: entry %u is not a hostname or *. followed by one"),
                   (guint) bad + 1);
      return FALSE;
    }
  *out = g_steal_pointer (&patterns);
  return TRUE;
}

/* ---- parsing ---- */

static gboolean
is_lower_hex (const char *s, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
        return FALSE;
    }
  return s[len] == '\0';
}

/* Only something that looks like one of our keys is worth repeating in an error: a
 * mistyped key is short and lowercase, a pasted token is not. */
static gboolean
key_is_printable (const char *key)
{
  gsize len = strlen (key);

  if (len == 0 || len > 16)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_islower (key[i]) && key[i] != '-' && key[i] != '_')
        return FALSE;
    }
  return TRUE;
}

/* A comma-separated list of service patterns. "*" alone means every service: for
 * register= that is NULL (no restriction), for reach= the list { "*" }; owns= refuses
 * it, since a token owning every name would lock every other tenant out. */
static gboolean
parse_patterns (const char *key, const char *value, GStrv *out, GError **error)
{
  g_auto (GStrv) patterns = NULL;

  if (g_strcmp0 (value, "*") == 0)
    {
      if (g_str_equal (key, "owns"))
        {
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                               _ ("owns: * would reserve every name; list names or prefixes"));
          return FALSE;
        }
      *out = g_str_equal (key, "reach") ? g_strsplit ("*", ",", -1) : NULL;
      return TRUE;
    }
  if (*value == '\0')
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("%s: empty; list service names or use * for all"), key);
      return FALSE;
    }
  patterns = g_strsplit (value, ",", -1);
  for (guint i = 0; patterns[i] != NULL; i++)
    {
      if (g_str_equal (patterns[i], "*") || !zlt_service_pattern_is_valid (patterns[i]))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("%s: entry %u is not a service name (1 to %u letters, digits, '-' or "
                          "'_'), a prefix ending in *, or * alone for all"),
                       key, i + 1, (guint) ZLT_SERVICE_NAME_MAX);
          return FALSE;
        }
    }
  *out = g_steal_pointer (&patterns);
  return TRUE;
}

static gboolean
parse_expires (const char *value, gint64 *out, GError **error)
{
  g_autoptr (GDateTime) dt = NULL;
  guint64 seconds = 0;
  gboolean digits = *value != '\0';

  for (const char *p = value; *p != '\0'; p++)
    {
      if (!g_ascii_isdigit (*p))
        {
          digits = FALSE;
          break;
        }
    }
  if (digits)
    {
      if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXINT64, &seconds, NULL))
        {
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                               _ ("expires: unix time out of range"));
          return FALSE;
        }
      *out = (gint64) seconds;
    }
  else
    {
      dt = g_date_time_new_from_iso8601 (value, NULL);
      if (dt == NULL)
        {
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                               _ ("expires: not ISO 8601 with a time zone "
                                  "(2027-01-01T00:00:00Z) nor unix seconds"));
          return FALSE;
        }
      *out = g_date_time_to_unix (dt);
    }
  /* 0 would mean never */
  if (*out <= 0)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("expires: must be after 1970-01-01T00:00:00Z"));
      return FALSE;
    }
  return TRUE;
}

/* Parses one line that is neither blank nor a comment; errors carry no location. */
static ZltTokenEntry *
parse_line (char *line, GError **error)
{
  g_auto (GStrv) fields = g_strsplit_set (line, " \t", -1);
  g_autofree char *name = NULL;
  g_auto (GStrv) services = NULL;
  g_auto (GStrv) reach = NULL;
  g_auto (GStrv) owns = NULL;
  g_auto (GStrv) hostnames = NULL;
  gboolean have_services = FALSE;
  gboolean have_reach = FALSE;
  gboolean have_owns = FALSE;
  gint64 expiry = 0;
  ZltTokenEntry *entry;
  gboolean have_expiry = FALSE;
  guint64 rate[2] = { 0, 0 }; /* in, out */
  gboolean have_rate[2] = { FALSE, FALSE };
  guint8 hash[ZLT_HASH_SIZE] = { 0 };
  guint n = 0;

  for (guint i = 0; fields[i] != NULL; i++)
    {
      char *field = fields[i];
      char *eq;

      if (*field == '\0')
        continue; /* runs of blanks */
      n++;
      if (n == 1)
        {
          /* never echo it: it may be a token pasted by mistake */
          if (strlen (field) != ZLT_HASH_HEX_LEN || !is_lower_hex (field, ZLT_HASH_HEX_LEN)
              || !zlt_hash_from_hex (field, hash))
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("the line must start with the SHA-256 of the token as 64 "
                                      "lowercase hex digits, never the token itself"));
              return NULL;
            }
          continue;
        }
      if (*field == '#')
        break; /* a trailing comment */
      eq = strchr (field, '=');
      if (eq == NULL || eq == field)
        {
          g_set_error (
              error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
              _ ("field %u is not key=value (name, register, reach, owns, hostnames, expires, "
                 "rate-limit-in or rate-limit-out)"),
              n);
          return NULL;
        }
      *eq = '\0';
      if (g_str_equal (field, "name"))
        {
          if (name != NULL)
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("name given twice"));
              return NULL;
            }
          if (!zlt_token_name_is_valid (eq + 1))
            {
              g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("name: must be 1 to %u bytes of UTF-8 without spaces or control "
                              "characters"),
                           (guint) ZLT_TOKEN_NAME_MAX);
              return NULL;
            }
          name = g_strdup (eq + 1);
        }
      else if (g_str_equal (field, "services") || g_str_equal (field, "register"))
        {
          if (have_services)
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("register (or its older name services) given twice"));
              return NULL;
            }
          if (!parse_patterns (field, eq + 1, &services, error))
            return NULL;
          have_services = TRUE;
        }
      else if (g_str_equal (field, "reach"))
        {
          if (have_reach)
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("reach given twice"));
              return NULL;
            }
          if (!parse_patterns (field, eq + 1, &reach, error))
            return NULL;
          have_reach = TRUE;
        }
      else if (g_str_equal (field, "owns"))
        {
          if (have_owns)
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("owns given twice"));
              return NULL;
            }
          if (!parse_patterns (field, eq + 1, &owns, error))
            return NULL;
          have_owns = TRUE;
        }
      else if (g_str_equal (field, "hostnames"))
        {
          if (hostnames != NULL)
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("hostnames given twice"));
              return NULL;
            }
          if (!parse_hostnames (eq + 1, &hostnames, error))
            return NULL;
        }
      else if (g_str_equal (field, "expires"))
        {
          if (have_expiry)
            {
              g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                                   _ ("expires given twice"));
              return NULL;
            }
          if (!parse_expires (eq + 1, &expiry, error))
            return NULL;
          have_expiry = TRUE;
        }
      else if (g_str_equal (field, "rate-limit-in") || g_str_equal (field, "rate-limit-out"))
        {
          guint dir = g_str_equal (field, "rate-limit-in") ? 0 : 1;

          if (have_rate[dir])
            {
              g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("%s given twice"), field);
              return NULL;
            }
          /* the value is not repeated: a mistake here could be a pasted token */
          if (!zlt_grant_parse_rate (eq + 1, &rate[dir]))
            {
              g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("%s: not a rate in bytes per second (digits, then optionally k, M "
                              "or G: 5M is 40 Mbit/s; 0 for none)"),
                           field);
              return NULL;
            }
          have_rate[dir] = TRUE;
        }
      else if (key_is_printable (field))
        {
          g_set_error (
              error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
              _ ("unknown key ‘%s’ (expected name, register, reach, owns, hostnames, expires, "
                 "rate-limit-in or rate-limit-out)"),
              field);
          return NULL;
        }
      else
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("field %u has an unknown key (expected name, register, reach, owns, "
                          "hostnames, expires, rate-limit-in or rate-limit-out)"),
                       n);
          return NULL;
        }
    }
  if (n == 0)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("empty line"));
      return NULL;
    }
  /* a line that only says what it may reach is an access client's: it registers
   * nothing (so it can never stand in for the service it reaches) */
  if (have_reach && !have_services)
    services = g_new0 (char *, 1);
  entry = zlt_token_entry_new (name, hash, (const char *const *) services, expiry);
  entry->reach = g_steal_pointer (&reach);
  entry->owns = g_steal_pointer (&owns);
  entry->hostnames = g_steal_pointer (&hostnames);
  entry->rate_limit_in = rate[0];
  entry->rate_limit_out = rate[1];
  return entry;
}

/* Two names must not own one service: the first line that claims a name another
 * name's pattern already covers (or that covers one of its names) is refused. */
static const ZltTokenEntry *
find_owner_conflict (ZltTokenSet *set, const ZltTokenEntry *entry, const char **pattern)
{
  for (guint j = 0; entry->owns != NULL && entry->owns[j] != NULL; j++)
    for (guint i = 0; i < set->entries->len; i++)
      {
        const ZltTokenEntry *other = g_ptr_array_index (set->entries, i);

        if (g_strcmp0 (other->name, entry->name) == 0)
          continue;
        for (guint k = 0; other->owns != NULL && other->owns[k] != NULL; k++)
          if (zlt_service_pattern_matches (other->owns[k], entry->owns[j])
              || zlt_service_pattern_matches (entry->owns[j], other->owns[k]))
            {
              *pattern = entry->owns[j];
              return other;
            }
      }
  return NULL;
}

static const ZltTokenEntry *
zlt_token_set_find_hash (ZltTokenSet *set, const ZltTokenEntry *like)
{
  GPtrArray *bucket = g_hash_table_lookup (set->by_key_id, like->key_id);

  for (guint i = 0; bucket != NULL && i < bucket->len; i++)
    {
      const ZltTokenEntry *entry = g_ptr_array_index (bucket, i);

      if (memcmp (entry->hash, like->hash, ZLT_HASH_SIZE) == 0)
        return entry;
    }
  return NULL;
}

/**
 * zlt_token_set_parse:
 * @data: the file's contents
 * @origin: the file's name, for messages
 *
 * Returns: (transfer full): every token of the file, or NULL with
 *   %ZLT_ERROR_INVALID_CONFIG naming @origin and the first bad line
 */
ZltTokenSet *
zlt_token_set_parse (const char *data, gsize len, const char *origin, GError **error)
{
  g_autoptr (ZltTokenSet) set = zlt_token_set_new ();
  const char *p = data;
  const char *end = data + len;
  guint line_no = 0;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (origin != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  while (p < end)
    {
      const char *eol = memchr (p, '\n', end - p);
      g_autofree char *line = NULL;
      g_autoptr (ZltTokenEntry) entry = NULL;
      const ZltTokenEntry *other;
      char *s;

      if (eol == NULL)
        eol = end;
      line_no++;
      /* also refuses NUL bytes */
      if (!g_utf8_validate (p, eol - p, NULL))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("%s:%u: not UTF-8 text"),
                       origin, line_no);
          return NULL;
        }
      line = g_strndup (p, eol - p);
      p = eol < end ? eol + 1 : end;
      s = g_strstrip (line);
      if (*s == '\0' || *s == '#')
        continue;
      entry = parse_line (s, error);
      if (entry == NULL)
        {
          g_prefix_error (error, "%s:%u: ", origin, line_no);
          return NULL;
        }
      other = zlt_token_set_find_hash (set, entry);
      if (other != NULL)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("%s:%u: the same token hash is already on line %u"), origin, line_no,
                       other->line);
          return NULL;
        }
      {
        const char *pattern = NULL;
        const ZltTokenEntry *owner = find_owner_conflict (set, entry, &pattern);

        if (owner != NULL)
          {
            g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                         _ ("%s:%u: owns: %s is already owned by %s (line %u)"), origin, line_no,
                         pattern, owner->name, owner->line);
            return NULL;
          }
      }
      entry->line = line_no;
      zlt_token_set_add (set, g_steal_pointer (&entry));
    }
  return g_steal_pointer (&set);
}
