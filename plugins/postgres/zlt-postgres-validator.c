/* zlt-postgres-validator.c: the "postgres" validator: token hashes in a PostgreSQL
 * table that several servers share, revocations pushed to all of them by NOTIFY
 *
 * Config group (usually [validator:postgres]):
 *   conninfo=<libpq string or URI>  where the table is; or
 *   conninfo-file=<file>            the same, read from a private file (mode 0600), so a
 *                                   password stays out of the config; libpq's passfile
 *                                   (~/.pgpass, passfile=) and service file work too
 *   table=<[schema.]name>           default zlt_tokens (data/zlayer-tunnel-postgres.sql)
 *   offline-grace=<seconds>         default 0: while the database is unreachable, no login
 *                                   succeeds; N lets in a token this validator accepted
 *                                   less than N seconds before
 *   timeout=<seconds>               default 5: a connection attempt or a query that takes
 *                                   longer counts as a lost connection
 *
 * One connection, driven by libpq's asynchronous API from the main context that
 * configured the validator (PQsocket watched with a GSource): it never blocks the loop,
 * except for a host name lookup in PQconnectStart (use hostaddr= or a unix socket to
 * avoid even that). On connecting it LISTENs on the channel named like the table (the
 * schema's trigger NOTIFYs it on every change of a row), looks which of the columns
 * added after the first schema (hostnames, rate_limit_in, rate_limit_out) the table has
 * and the role may read, loads the names tokens own (owns=, for
 * zlt_validator_lookup_owner(), which must answer at once), then answers lookups, many
 * in one query (key_id = ANY($1)). A NOTIFY looks at the columns again, reloads the
 * owners and emits "changed": the server re-checks its live tunnels, and a revoked
 * token's end, a changed right or rate limit applies to them.
 *
 * A table of the first schema (without those columns) keeps working: its tokens get no
 * hostnames and no rate limits, which is logged once. A value the validator cannot use
 * (a negative rate or one above ZLT_GRANT_RATE_MAX, a malformed hostname) refuses that
 * token's logins, naming the token's name and the column.
 *
 * A lost connection is retried with exponential backoff. Meanwhile logins fail closed
 * (ZLT_ERROR_FAILED, which agents retry) unless offline-grace allows them; live tunnels
 * stay. After a reconnect "changed" is emitted, since NOTIFYs sent meanwhile were lost.
 *
 * Tokens added at run time (zlt_validator_add_token(), node tunnels) live in memory
 * beside the table's and need no database.
 *
 * Property (so the daemon and tests need not link the plugin):
 *   "connected"  TRUE while the connection is up and listening
 * Signal:
 *   "changed"    the tokens in the table changed (or may have, after a reconnect) */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "zlt-postgres-validator.h"

#define ZLT_POSTGRES_DEFAULT_TABLE "zlt_tokens"
#define ZLT_POSTGRES_DEFAULT_TIMEOUT_S 5
#define ZLT_POSTGRES_MAX_TIMEOUT_S 300
#define ZLT_POSTGRES_MAX_GRACE_S (7 * 24 * 3600)
#define ZLT_POSTGRES_BACKOFF_MIN_MS 200
#define ZLT_POSTGRES_BACKOFF_MAX_MS 5000
/* key ids per query: one round trip answers a burst of logins or a re-check */
#define ZLT_POSTGRES_BATCH_MAX 256
/* lookups waiting for the connection; more fail at once */
#define ZLT_POSTGRES_QUEUE_MAX 8192
/* tokens remembered for offline-grace */
#define ZLT_POSTGRES_GRACE_MAX 65536
#define ZLT_POSTGRES_CONNINFO_FILE_MAX (16 * 1024)
#define ZLT_POSTGRES_TOKEN_NAME_MAX 128

/* the columns of the rights added after the first schema, each optional */
typedef enum
{
  RIGHT_HOSTNAMES,
  RIGHT_RATE_IN,
  RIGHT_RATE_OUT,
  N_RIGHTS
} Right;

static const char *const right_columns[N_RIGHTS]
    = { "hostnames", "rate_limit_in", "rate_limit_out" };

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

typedef enum
{
  STATE_IDLE,       /* not configured */
  STATE_WAITING,    /* disconnected, the backoff timer runs */
  STATE_CONNECTING, /* PQconnectPoll in progress */
  STATE_CONNECTED,  /* queries flow (LISTEN and the owners first) */
} State;

typedef enum
{
  STEP_NONE,
  STEP_LISTEN,
  STEP_COLUMNS,
  STEP_OWNERS,
  STEP_LOOKUP,
} Step;

typedef struct
{
  GTask *task;
  ZltCredential *credential;
  gboolean retried; /* sent again once after the columns were looked at again */
} Lookup;

typedef struct
{
  char *name;
  GStrv owns;
} Owner;

/* a token added at run time (node tunnels): in memory, beside the table's */
typedef struct
{
  char *name;
  guint8 hash[ZLT_HASH_SIZE];
  GStrv services;
  gint64 expiry;
} RuntimeToken;

/* a token accepted while connected, for offline-grace */
typedef struct
{
  guint8 hash[ZLT_HASH_SIZE];
  ZltGrant *grant;
  gint64 accepted; /* monotonic µs */
} GraceEntry;

struct _ZltPostgresValidator
{
  ZltValidator parent_instance;

  /* configuration */
  char *conninfo; /* may hold a password: never logged */
  char *table;
  char *channel;    /* the table's name without schema: what its trigger NOTIFYs */
  char *lookup_sql; /* made for the columns the table has (STEP_COLUMNS) */
  char *columns_sql;
  char *owners_sql;
  char *columns_note; /* why columns are not read, as last logged; NULL = not logged */
  guint offline_grace_s;
  guint timeout_ms;

  GMainContext *context;
  State state;
  PGconn *conn;
  GSource *io_source;
  int io_fd;
  GIOCondition io_condition;
  GSource *timer; /* the backoff, or the deadline of what is in flight */
  guint backoff_attempt;
  gboolean connected;
  gboolean was_connected;

  Step step;
  gboolean listening;
  gboolean columns_stale;
  gboolean owners_stale;
  gboolean changed_pending;
  GQueue pending;       /* Lookup *, not sent yet */
  GPtrArray *in_flight; /* Lookup *, in the STEP_LOOKUP query */

  GPtrArray *owners;  /* Owner * */
  GPtrArray *runtime; /* RuntimeToken *: added by zlt_validator_add_token() */
  GHashTable *grace;  /* key id → GPtrArray of GraceEntry * */
  guint n_grace;
};

G_DEFINE_FINAL_TYPE (ZltPostgresValidator, zlt_postgres_validator, ZLT_TYPE_VALIDATOR)

enum
{
  PROP_0,
  PROP_CONNECTED,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void zlt_postgres_validator_kick (ZltPostgresValidator *self);
static void zlt_postgres_validator_lost (ZltPostgresValidator *self, const char *why);
static void zlt_postgres_validator_connect (ZltPostgresValidator *self);

/* ---- small things ---- */

static void
lookup_free (Lookup *lookup)
{
  g_clear_object (&lookup->task);
  g_clear_pointer (&lookup->credential, zlt_credential_free);
  g_free (lookup);
}

static void
owner_free (Owner *owner)
{
  g_free (owner->name);
  g_strfreev (owner->owns);
  g_free (owner);
}

static void
runtime_token_free (RuntimeToken *token)
{
  explicit_bzero (token->hash, sizeof token->hash);
  g_free (token->name);
  g_strfreev (token->services);
  g_free (token);
}

static void
grace_entry_free (GraceEntry *entry)
{
  explicit_bzero (entry->hash, sizeof entry->hash);
  g_clear_object (&entry->grant);
  g_free (entry);
}

static void
lookup_return_error (Lookup *lookup, GError *error)
{
  g_task_return_error (lookup->task, error);
  lookup_free (lookup);
}

static void
lookup_return_grant (Lookup *lookup, ZltGrant *grant)
{
  g_task_return_pointer (lookup->task, grant, g_object_unref);
  lookup_free (lookup);
}

/* libpq's messages end with a newline and may span indented lines: one line for the
 * log, runs of white space made one space */
static char *
one_line (const char *message)
{
  GString *line = g_string_new (NULL);
  gboolean space = FALSE;

  for (const char *p = message != NULL ? message : ""; *p != '\0'; p++)
    {
      if (g_ascii_isspace (*p))
        {
          space = line->len > 0;
          continue;
        }
      if (space)
        g_string_append_c (line, ' ');
      space = FALSE;
      g_string_append_c (line, *p);
    }
  if (line->len == 0)
    g_string_append_c (line, '?');
  return g_string_free (line, FALSE);
}

static gboolean
key_id_is_valid (const char *key_id)
{
  if (key_id == NULL || strlen (key_id) != ZLT_KEY_ID_LEN)
    return FALSE;
  for (const char *p = key_id; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

static gboolean
token_name_is_valid (const char *name)
{
  gsize len = name != NULL ? strlen (name) : 0;

  if (len == 0 || len > ZLT_POSTGRES_TOKEN_NAME_MAX || !g_utf8_validate (name, len, NULL))
    return FALSE;
  for (const char *p = name; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c) || g_unichar_isspace (c))
        return FALSE;
    }
  return TRUE;
}

/* "a,b,c" as array_to_string() made it: NULL stays NULL (the column was NULL) */
static gboolean
parse_patterns (const char *text, GStrv *out)
{
  g_auto (GStrv) patterns = NULL;

  *out = NULL;
  if (text == NULL)
    return TRUE;
  patterns = *text == '\0' ? g_new0 (char *, 1) : g_strsplit (text, ",", -1);
  for (guint i = 0; patterns[i] != NULL; i++)
    if (!zlt_service_pattern_is_valid (patterns[i]))
      return FALSE;
  *out = g_steal_pointer (&patterns);
  return TRUE;
}

static const char *
result_value (PGresult *result, int row, int column)
{
  return PQgetisnull (result, row, column) ? NULL : PQgetvalue (result, row, column);
}

/* ---- the connection's plumbing ---- */

static void
zlt_postgres_validator_set_connected (ZltPostgresValidator *self, gboolean connected)
{
  if (self->connected == connected)
    return;
  self->connected = connected;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CONNECTED]);
}

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static gboolean zlt_postgres_validator_io_cb (gint fd, GIOCondition condition, gpointer user_data);

/* Watches the socket for @condition (a connection attempt may change sockets). */
static void
zlt_postgres_validator_watch (ZltPostgresValidator *self, GIOCondition condition)
{
  int fd = self->conn != NULL ? PQsocket (self->conn) : -1;

  if (self->io_source != NULL && fd == self->io_fd && condition == self->io_condition)
    return;
  clear_source (&self->io_source);
  self->io_fd = fd;
  self->io_condition = condition;
  if (fd < 0)
    return;
  self->io_source = g_unix_fd_source_new (fd, condition);
  g_source_set_callback (self->io_source, G_SOURCE_FUNC (zlt_postgres_validator_io_cb), self, NULL);
  g_source_set_static_name (self->io_source, "zlt-postgres-io");
  g_source_attach (self->io_source, self->context);
}

static void
zlt_postgres_validator_arm_timer (ZltPostgresValidator *self, guint ms, GSourceFunc func)
{
  clear_source (&self->timer);
  self->timer = g_timeout_source_new (ms);
  g_source_set_callback (self->timer, func, self, NULL);
  g_source_set_static_name (self->timer, "zlt-postgres-timer");
  g_source_attach (self->timer, self->context);
}

static gboolean
zlt_postgres_validator_deadline_cb (gpointer user_data)
{
  ZltPostgresValidator *self = user_data;
  g_autofree char *why = NULL;

  g_clear_pointer (&self->timer, g_source_unref);
  why = g_strdup_printf ("no answer within %u ms", self->timeout_ms);
  zlt_postgres_validator_lost (self, why);
  return G_SOURCE_REMOVE;
}

static gboolean
zlt_postgres_validator_retry_cb (gpointer user_data)
{
  ZltPostgresValidator *self = user_data;

  g_clear_pointer (&self->timer, g_source_unref);
  zlt_postgres_validator_connect (self);
  return G_SOURCE_REMOVE;
}

/* min·2^attempt capped, then a random value between half of it and all of it, so the
 * servers of a fleet do not all knock at once when the database comes back */
static guint
zlt_postgres_validator_next_delay (ZltPostgresValidator *self)
{
  guint delay = ZLT_POSTGRES_BACKOFF_MIN_MS;

  for (guint i = 0; i < self->backoff_attempt && delay < ZLT_POSTGRES_BACKOFF_MAX_MS; i++)
    delay *= 2;
  delay = MIN (delay, ZLT_POSTGRES_BACKOFF_MAX_MS);
  if (self->backoff_attempt < 32)
    self->backoff_attempt++;
  return delay / 2 + g_random_int_range (0, (gint32) (delay / 2) + 1);
}

/* ---- offline-grace ---- */

static void
grace_remember (ZltPostgresValidator *self, const char *key_id, const guint8 *hash, ZltGrant *grant)
{
  GPtrArray *entries;
  GraceEntry *entry;

  if (self->offline_grace_s == 0)
    return;
  entries = g_hash_table_lookup (self->grace, key_id);
  if (entries == NULL)
    {
      if (self->n_grace >= ZLT_POSTGRES_GRACE_MAX)
        return; /* full: that token gets no grace, which is the safe side */
      entries = g_ptr_array_new_with_free_func ((GDestroyNotify) grace_entry_free);
      g_hash_table_insert (self->grace, g_strdup (key_id), entries);
    }
  for (guint i = 0; i < entries->len; i++)
    {
      entry = g_ptr_array_index (entries, i);
      if (memcmp (entry->hash, hash, ZLT_HASH_SIZE) == 0)
        {
          g_set_object (&entry->grant, grant);
          entry->accepted = g_get_monotonic_time ();
          return;
        }
    }
  entry = g_new0 (GraceEntry, 1);
  memcpy (entry->hash, hash, ZLT_HASH_SIZE);
  entry->grant = g_object_ref (grant);
  entry->accepted = g_get_monotonic_time ();
  g_ptr_array_add (entries, entry);
  self->n_grace++;
}

static void
grace_forget (ZltPostgresValidator *self, const char *key_id)
{
  GPtrArray *entries = g_hash_table_lookup (self->grace, key_id);

  if (entries == NULL)
    return;
  self->n_grace -= entries->len;
  g_hash_table_remove (self->grace, key_id);
}

static void
grace_clear (ZltPostgresValidator *self)
{
  g_hash_table_remove_all (self->grace);
  self->n_grace = 0;
}

/* The database cannot answer: a token accepted less than offline-grace seconds ago
 * gets its grant again, any other fails closed. */
static void
zlt_postgres_validator_answer_offline (ZltPostgresValidator *self, Lookup *lookup)
{
  const char *key_id = zlt_credential_get_lookup_key (lookup->credential);
  GPtrArray *entries = self->offline_grace_s > 0 ? g_hash_table_lookup (self->grace, key_id) : NULL;
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; entries != NULL && i < entries->len; i++)
    {
      GraceEntry *entry = g_ptr_array_index (entries, i);

      if (!zlt_credential_matches_hash (lookup->credential, entry->hash))
        continue;
      if (now - entry->accepted <= (gint64) self->offline_grace_s * G_USEC_PER_SEC)
        {
          g_message ("token store unreachable: accepting token %s, accepted %u s ago "
                     "(offline-grace=%u)",
                     zlt_grant_get_name (entry->grant),
                     (guint) ((now - entry->accepted) / G_USEC_PER_SEC), self->offline_grace_s);
          lookup_return_grant (lookup, g_object_ref (entry->grant));
          return;
        }
      break;
    }
  lookup_return_error (lookup, g_error_new_literal (ZLT_ERROR, ZLT_ERROR_FAILED,
                                                    _ ("the token store is unreachable")));
}

/* ---- answering lookups from the rows ---- */

enum
{
  COL_HASH,
  COL_NAME,
  COL_REGISTER,
  COL_REACH,
  COL_OWNS,
  COL_EXPIRES,
  COL_REVOKED,
  COL_HOSTNAMES,   /* array_to_string(hostnames, ','), or NULL without the column */
  COL_N_HOSTNAMES, /* cardinality(hostnames): a comma inside an entry shows */
  COL_RATE_IN,
  COL_RATE_OUT,
  N_COLS
};

/* The lookup for a table with the rights of @have; the missing ones read as NULL. */
static char *
make_lookup_sql (const char *table, const gboolean have[N_RIGHTS])
{
  return g_strdup_printf ("SELECT token_hash, name, array_to_string(register, ','), "
                          "array_to_string(reach, ','), array_to_string(owns, ','), "
                          "extract(epoch FROM expires)::float8, revoked, %s, %s, %s "
                          "FROM %s WHERE key_id = ANY ($1::text[])",
                          have[RIGHT_HOSTNAMES]
                              ? "array_to_string(hostnames, ','), cardinality(hostnames)"
                              : "NULL, NULL",
                          have[RIGHT_RATE_IN] ? "rate_limit_in::text" : "NULL",
                          have[RIGHT_RATE_OUT] ? "rate_limit_out::text" : "NULL", table);
}

/* "a.example.org,*.apps.example.org" as array_to_string() made it, @count entries
 * (cardinality()); NULL stays NULL (none). FALSE for an entry that is NULL, holds a
 * comma (the counts differ then) or is not a hostname pattern. */
static gboolean
parse_hostnames (const char *text, const char *count_text, GStrv *out)
{
  g_auto (GStrv) patterns = NULL;
  guint64 count = 0;

  *out = NULL;
  if (text == NULL)
    return count_text == NULL;
  if (count_text == NULL || !g_ascii_string_to_unsigned (count_text, 10, 0, 65536, &count, NULL))
    return FALSE;
  patterns = *text == '\0' ? g_new0 (char *, 1) : g_strsplit (text, ",", -1);
  if (g_strv_length (patterns) != count)
    return FALSE;
  if (zlt_hostname_patterns_normalize (patterns) >= 0)
    return FALSE;
  /* an empty array: none, as NULL */
  if (patterns[0] != NULL)
    *out = g_steal_pointer (&patterns);
  return TRUE;
}

/* bytes per second as the column holds it; NULL (or 0) = no limit */
static gboolean
parse_rate (const char *text, guint64 *rate)
{
  *rate = 0;
  return text == NULL || zlt_grant_parse_rate (text, rate);
}

/* epoch seconds as extract() gives them: NULL = never; a moment at or before 1970
 * (or -infinity) is long past, +infinity never comes */
static gint64
parse_expiry (const char *text)
{
  gdouble value;

  if (text == NULL)
    return 0;
  value = g_ascii_strtod (text, NULL);
  if (value >= (gdouble) G_MAXINT64 / 2)
    return 0;
  if (value < 1)
    return 1;
  return (gint64) value;
}

static GError *
row_to_grant (ZltPostgresValidator *self, PGresult *result, int row, const guint8 *hash,
              ZltGrant **grant_out)
{
  const char *name = result_value (result, row, COL_NAME);
  const char *revoked = result_value (result, row, COL_REVOKED);
  const char *register_text = result_value (result, row, COL_REGISTER);
  const char *reach_text = result_value (result, row, COL_REACH);
  g_auto (GStrv) register_patterns = NULL;
  g_auto (GStrv) reach = NULL;
  g_auto (GStrv) owns = NULL;
  g_auto (GStrv) hostnames = NULL;
  guint64 rate[N_RIGHTS] = { 0 };
  gint64 expiry = parse_expiry (result_value (result, row, COL_EXPIRES));

  if (!token_name_is_valid (name))
    {
      g_message ("table %s: a row of key id %.16s has an invalid name, refusing it", self->table,
                 result_value (result, row, COL_HASH));
      return g_error_new_literal (ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("invalid token entry"));
    }
  if (!parse_patterns (register_text, &register_patterns) || !parse_patterns (reach_text, &reach)
      || !parse_patterns (result_value (result, row, COL_OWNS), &owns))
    {
      g_message ("table %s: token %s has an invalid service pattern, refusing it", self->table,
                 name);
      return g_error_new (ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("token %s has an invalid entry"),
                          name);
    }
  if (!parse_hostnames (result_value (result, row, COL_HOSTNAMES),
                        result_value (result, row, COL_N_HOSTNAMES), &hostnames))
    {
      g_message ("table %s: token %s has an invalid hostnames entry, refusing it", self->table,
                 name);
      return g_error_new (ZLT_ERROR, ZLT_ERROR_BAD_TOKEN,
                          _ ("token %s has an invalid hostnames entry: not a hostname or *. "
                             "followed by one"),
                          name);
    }
  for (Right right = RIGHT_RATE_IN; right <= RIGHT_RATE_OUT; right++)
    {
      int column = right == RIGHT_RATE_IN ? COL_RATE_IN : COL_RATE_OUT;
      g_autofree char *max = NULL;

      if (parse_rate (result_value (result, row, column), &rate[right]))
        continue;
      /* the value is not repeated: whatever it is, it is not for the log */
      g_message ("table %s: token %s has an invalid %s, refusing it", self->table, name,
                 right_columns[right]);
      max = g_strdup_printf ("%" G_GUINT64_FORMAT, (guint64) ZLT_GRANT_RATE_MAX);
      return g_error_new (ZLT_ERROR, ZLT_ERROR_BAD_TOKEN,
                          _ ("token %s has an invalid %s: not a number of bytes per second "
                             "from 0 to %s"),
                          name, right_columns[right], max);
    }
  if (g_strcmp0 (revoked, "f") != 0)
    return g_error_new (ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("token %s has been revoked"), name);
  if (expiry != 0 && g_get_real_time () / G_USEC_PER_SEC >= expiry)
    {
      g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (expiry);
      g_autofree char *when = dt != NULL ? g_date_time_format_iso8601 (dt) : NULL;

      return g_error_new (ZLT_ERROR, ZLT_ERROR_EXPIRED_TOKEN, _ ("token %s expired at %s"), name,
                          when != NULL ? when : "?");
    }
  /* as a token-file line: a row that only says what it may reach registers nothing */
  if (register_text == NULL && reach_text != NULL)
    register_patterns = g_new0 (char *, 1);
  *grant_out = zlt_grant_new_full (name, hash, (const char *const *) register_patterns,
                                   (const char *const *) reach, (const char *const *) owns, expiry);
  zlt_grant_set_hostnames (*grant_out, (const char *const *) hostnames);
  zlt_grant_set_rate_limits (*grant_out, rate[RIGHT_RATE_IN], rate[RIGHT_RATE_OUT]);
  return NULL;
}

static void
zlt_postgres_validator_answer (ZltPostgresValidator *self, Lookup *lookup, PGresult *result)
{
  const char *key_id = zlt_credential_get_lookup_key (lookup->credential);

  for (int row = 0; row < PQntuples (result); row++)
    {
      const char *hex = result_value (result, row, COL_HASH);
      guint8 hash[ZLT_HASH_SIZE];
      ZltGrant *grant = NULL;
      GError *error;

      if (hex == NULL || strncmp (hex, key_id, ZLT_KEY_ID_LEN) != 0
          || !zlt_hash_from_hex (hex, hash))
        continue;
      if (!zlt_credential_matches_hash (lookup->credential, hash))
        {
          explicit_bzero (hash, sizeof hash);
          continue;
        }
      error = row_to_grant (self, result, row, hash, &grant);
      if (error != NULL)
        {
          explicit_bzero (hash, sizeof hash);
          grace_forget (self, key_id);
          lookup_return_error (lookup, error);
          return;
        }
      grace_remember (self, key_id, hash, grant);
      explicit_bzero (hash, sizeof hash);
      lookup_return_grant (lookup, grant);
      return;
    }
  /* never say more: the key id is whatever the peer sent */
  grace_forget (self, key_id);
  lookup_return_error (lookup,
                       g_error_new_literal (ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("unknown token")));
}

static void
zlt_postgres_validator_load_owners (ZltPostgresValidator *self, PGresult *result)
{
  g_autoptr (GPtrArray) owners = g_ptr_array_new_with_free_func ((GDestroyNotify) owner_free);

  for (int row = 0; row < PQntuples (result); row++)
    {
      const char *name = result_value (result, row, 0);
      g_auto (GStrv) owns = NULL;
      Owner *owner;

      if (!token_name_is_valid (name) || !parse_patterns (result_value (result, row, 1), &owns)
          || owns == NULL)
        {
          g_message ("table %s: skipping an owns entry that is not valid", self->table);
          continue;
        }
      owner = g_new0 (Owner, 1);
      owner->name = g_strdup (name);
      owner->owns = g_steal_pointer (&owns);
      g_ptr_array_add (owners, owner);
    }
  g_ptr_array_unref (self->owners);
  self->owners = g_steal_pointer (&owners);
}

/* Which rights columns the table has, of a type that can be read and with the right to
 * read them (rows: name, type, may select); the lookup is made for those. What is
 * missing is logged once, and again only when that changes. */
static void
zlt_postgres_validator_load_columns (ZltPostgresValidator *self, PGresult *result)
{
  g_autoptr (GString) note = g_string_new (NULL);
  gboolean have[N_RIGHTS] = { FALSE };

  for (Right right = 0; right < N_RIGHTS; right++)
    {
      const char *why = "no such column";

      for (int row = 0; row < PQntuples (result); row++)
        {
          const char *type = result_value (result, row, 1);

          if (g_strcmp0 (result_value (result, row, 0), right_columns[right]) != 0)
            continue;
          if (right == RIGHT_HOSTNAMES && g_strcmp0 (type, "text[]") != 0
              && g_strcmp0 (type, "character varying[]") != 0)
            why = "not text[]";
          else if (right != RIGHT_HOSTNAMES && g_strcmp0 (type, "bigint") != 0
                   && g_strcmp0 (type, "integer") != 0 && g_strcmp0 (type, "smallint") != 0
                   && g_strcmp0 (type, "numeric") != 0)
            why = "not an integer";
          else if (g_strcmp0 (result_value (result, row, 2), "t") != 0)
            why = "no right to read it";
          else
            {
              why = NULL;
              have[right] = TRUE;
            }
        }
      if (why != NULL)
        g_string_append_printf (note, "%s%s: %s", note->len > 0 ? ", " : "", right_columns[right],
                                why);
    }
  g_free (self->lookup_sql);
  self->lookup_sql = make_lookup_sql (self->table, have);
  if (note->len == 0)
    {
      if (self->columns_note != NULL && *self->columns_note != '\0')
        g_message ("table %s: reading the hostnames and rate limits of its tokens now",
                   self->table);
      g_free (self->columns_note);
      self->columns_note = g_strdup ("");
      return;
    }
  if (g_strcmp0 (self->columns_note, note->str) == 0)
    return;
  g_message ("table %s: not reading %s; its tokens get none of these rights (applying "
             "zlayer-tunnel-postgres.sql adds the columns)",
             self->table, note->str);
  g_free (self->columns_note);
  self->columns_note = g_string_free (g_steal_pointer (&note), FALSE);
}

/* ---- the steps on the connection ---- */

static gboolean
zlt_postgres_validator_send (ZltPostgresValidator *self, Step step, const char *sql,
                             const char *param)
{
  const char *values[1] = { param };
  int flushed;

  if (!PQsendQueryParams (self->conn, sql, param != NULL ? 1 : 0, NULL, values, NULL, NULL, 0))
    {
      g_autofree char *why = one_line (PQerrorMessage (self->conn));

      zlt_postgres_validator_lost (self, why);
      return FALSE;
    }
  self->step = step;
  flushed = PQflush (self->conn);
  if (flushed < 0)
    {
      g_autofree char *why = one_line (PQerrorMessage (self->conn));

      zlt_postgres_validator_lost (self, why);
      return FALSE;
    }
  zlt_postgres_validator_watch (self, G_IO_IN | (flushed > 0 ? G_IO_OUT : 0));
  zlt_postgres_validator_arm_timer (self, self->timeout_ms, zlt_postgres_validator_deadline_cb);
  return TRUE;
}

/* Sends what comes next, if nothing is in flight: LISTEN, then the owners when they
 * may have changed, then up to a batch of the waiting lookups. */
static void
zlt_postgres_validator_kick (ZltPostgresValidator *self)
{
  g_autoptr (GString) keys = NULL;
  g_autoptr (GHashTable) seen = NULL;
  g_autofree char *listen = NULL;

  if (self->state != STATE_CONNECTED || self->step != STEP_NONE)
    return;
  if (!self->listening)
    {
      listen = g_strdup_printf ("LISTEN %s", self->channel);
      zlt_postgres_validator_send (self, STEP_LISTEN, listen, NULL);
      return;
    }
  if (self->columns_stale)
    {
      self->columns_stale = FALSE;
      zlt_postgres_validator_send (self, STEP_COLUMNS, self->columns_sql, self->table);
      return;
    }
  if (self->owners_stale)
    {
      self->owners_stale = FALSE;
      zlt_postgres_validator_send (self, STEP_OWNERS, self->owners_sql, NULL);
      return;
    }
  if (g_queue_is_empty (&self->pending))
    return;

  /* {k1,k2,...}: key ids are checked hex, nothing to quote */
  keys = g_string_new ("{");
  seen = g_hash_table_new (g_str_hash, g_str_equal);
  while (!g_queue_is_empty (&self->pending) && self->in_flight->len < ZLT_POSTGRES_BATCH_MAX)
    {
      Lookup *lookup = g_queue_pop_head (&self->pending);
      const char *key_id = zlt_credential_get_lookup_key (lookup->credential);

      g_ptr_array_add (self->in_flight, lookup);
      if (!g_hash_table_add (seen, (gpointer) key_id))
        continue;
      if (keys->len > 1)
        g_string_append_c (keys, ',');
      g_string_append (keys, key_id);
    }
  g_string_append_c (keys, '}');
  zlt_postgres_validator_send (self, STEP_LOOKUP, self->lookup_sql, keys->str);
}

/* A step's last result came (PQgetResult returned NULL). */
static void
zlt_postgres_validator_step_done (ZltPostgresValidator *self)
{
  Step step = self->step;

  self->step = STEP_NONE;
  clear_source (&self->timer);
  if (step == STEP_OWNERS && !self->owners_stale)
    {
      /* up and current: lookups may go */
      if (!self->connected)
        {
          /* answers from before the outage may have been revoked meanwhile: only the
           * re-checks that "changed" brings renew them */
          if (self->was_connected)
            {
              g_message ("token store connection restored");
              grace_clear (self);
            }
          else
            g_info ("token store connected, listening on %s", self->channel);
          self->backoff_attempt = 0;
        }
      zlt_postgres_validator_set_connected (self, TRUE);
      if (self->state != STATE_CONNECTED)
        return;
      if (self->changed_pending)
        {
          self->changed_pending = FALSE;
          g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
          if (self->state != STATE_CONNECTED)
            return;
        }
    }
  zlt_postgres_validator_kick (self);
}

/* One result of the step in flight. FALSE when the connection was dropped. */
static gboolean
zlt_postgres_validator_handle_result (ZltPostgresValidator *self, PGresult *result)
{
  ExecStatusType status = PQresultStatus (result);
  gboolean ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;

  if (!ok)
    {
      const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
      g_autofree char *why = one_line (PQresultErrorMessage (result));
      g_autoptr (GPtrArray) failed = NULL;
      gboolean retry;

      /* the server going away (class 57, operator intervention; 08, connection): an
       * outage, not an answer */
      if (PQstatus (self->conn) == CONNECTION_BAD || sqlstate == NULL
          || g_str_has_prefix (sqlstate, "57") || g_str_has_prefix (sqlstate, "08")
          || self->step != STEP_LOOKUP)
        {
          /* LISTEN or the owners failing (no such table, no right to read it) leaves
           * nothing to answer with: start over after a delay, refusing meanwhile */
          zlt_postgres_validator_lost (self, why);
          return FALSE;
        }
      g_message ("token lookup in %s failed: %s", self->table, why);
      /* a column gone or its right taken away (undefined column or function,
       * insufficient privilege): look at the columns again, and ask once more with a
       * lookup made for what is there now, so such a change fails no login */
      retry = g_str_equal (sqlstate, "42703") || g_str_equal (sqlstate, "42883")
              || g_str_equal (sqlstate, "42501");
      if (retry)
        self->columns_stale = TRUE;
      failed = g_steal_pointer (&self->in_flight);
      self->in_flight = g_ptr_array_new ();
      for (guint i = failed->len; i > 0; i--)
        {
          Lookup *lookup = g_ptr_array_index (failed, i - 1);

          if (retry && !lookup->retried)
            {
              lookup->retried = TRUE;
              g_queue_push_head (&self->pending, lookup);
              continue;
            }
          lookup_return_error (lookup,
                               g_error_new_literal (ZLT_ERROR, ZLT_ERROR_FAILED,
                                                    _ ("the token store failed to answer")));
        }
      return TRUE;
    }

  switch (self->step)
    {
    case STEP_LISTEN:
      self->listening = TRUE;
      break;
    case STEP_COLUMNS:
      zlt_postgres_validator_load_columns (self, result);
      break;
    case STEP_OWNERS:
      zlt_postgres_validator_load_owners (self, result);
      break;
    case STEP_LOOKUP:
      {
        g_autoptr (GPtrArray) answered = g_steal_pointer (&self->in_flight);

        self->in_flight = g_ptr_array_new ();
        if (PQnfields (result) != N_COLS)
          {
            zlt_postgres_validator_lost (self, "unexpected answer to a lookup");
            for (guint i = 0; i < answered->len; i++)
              zlt_postgres_validator_answer_offline (self, g_ptr_array_index (answered, i));
            return FALSE;
          }
        for (guint i = 0; i < answered->len; i++)
          zlt_postgres_validator_answer (self, g_ptr_array_index (answered, i), result);
      }
      break;
    case STEP_NONE:
    default:
      break;
    }
  return TRUE;
}

static void
zlt_postgres_validator_drain_notifies (ZltPostgresValidator *self)
{
  PGnotify *notify;

  while (self->conn != NULL && (notify = PQnotifies (self->conn)) != NULL)
    {
      if (g_strcmp0 (notify->relname, self->channel) == 0)
        {
          g_debug ("table %s changed (key id %.16s)", self->table, notify->extra);
          if (g_strcmp0 (notify->extra, "*") == 0)
            grace_clear (self);
          else
            grace_forget (self, notify->extra);
          /* ALTER TABLE notifies nothing: a table upgraded meanwhile is seen now */
          self->columns_stale = TRUE;
          self->owners_stale = TRUE;
          self->changed_pending = TRUE;
        }
      PQfreemem (notify);
    }
}

/* Reads what arrived, hands results to the step in flight, collects notifications. */
static void
zlt_postgres_validator_read (ZltPostgresValidator *self)
{
  if (!PQconsumeInput (self->conn))
    {
      g_autofree char *why = one_line (PQerrorMessage (self->conn));

      zlt_postgres_validator_lost (self, why);
      return;
    }
  while (self->state == STATE_CONNECTED && self->step != STEP_NONE && !PQisBusy (self->conn))
    {
      g_autoptr (PGresult) result = PQgetResult (self->conn);

      if (result == NULL)
        {
          zlt_postgres_validator_drain_notifies (self);
          zlt_postgres_validator_step_done (self);
          continue;
        }
      if (!zlt_postgres_validator_handle_result (self, result))
        return;
    }
  if (self->state != STATE_CONNECTED)
    return;
  zlt_postgres_validator_drain_notifies (self);
  if (PQstatus (self->conn) == CONNECTION_BAD)
    {
      g_autofree char *why = one_line (PQerrorMessage (self->conn));

      zlt_postgres_validator_lost (self, why);
      return;
    }
  zlt_postgres_validator_kick (self);
}

static void
zlt_postgres_validator_connect_poll (ZltPostgresValidator *self)
{
  switch (PQconnectPoll (self->conn))
    {
    case PGRES_POLLING_OK:
      if (PQsetnonblocking (self->conn, 1) != 0)
        {
          zlt_postgres_validator_lost (self, "cannot make the connection non-blocking");
          return;
        }
      clear_source (&self->timer);
      self->state = STATE_CONNECTED;
      self->listening = FALSE;
      self->columns_stale = TRUE;
      self->owners_stale = TRUE;
      zlt_postgres_validator_watch (self, G_IO_IN);
      zlt_postgres_validator_kick (self);
      break;
    case PGRES_POLLING_READING:
      zlt_postgres_validator_watch (self, G_IO_IN);
      break;
    case PGRES_POLLING_WRITING:
      zlt_postgres_validator_watch (self, G_IO_OUT);
      break;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE:
    default:
      {
        g_autofree char *why = one_line (PQerrorMessage (self->conn));

        zlt_postgres_validator_lost (self, why);
      }
      break;
    }
}

static gboolean
zlt_postgres_validator_io_cb (gint fd, GIOCondition condition, gpointer user_data)
{
  g_autoptr (ZltPostgresValidator) self = g_object_ref (user_data);

  if (self->state == STATE_CONNECTING)
    {
      zlt_postgres_validator_connect_poll (self);
      return G_SOURCE_CONTINUE;
    }
  if (self->state != STATE_CONNECTED)
    return G_SOURCE_CONTINUE;
  if ((condition & G_IO_OUT) != 0)
    {
      int flushed = PQflush (self->conn);

      if (flushed < 0)
        {
          g_autofree char *why = one_line (PQerrorMessage (self->conn));

          zlt_postgres_validator_lost (self, why);
          return G_SOURCE_CONTINUE;
        }
      zlt_postgres_validator_watch (self, G_IO_IN | (flushed > 0 ? G_IO_OUT : 0));
    }
  if ((condition & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0)
    zlt_postgres_validator_read (self);
  /* the watch may have been replaced meanwhile; destroying it removed this callback */
  return G_SOURCE_CONTINUE;
}

static void
zlt_postgres_validator_notice_cb (void *arg, const char *message)
{
  g_autofree char *line = one_line (message);

  g_debug ("token store: %s", line);
}

static void
zlt_postgres_validator_connect (ZltPostgresValidator *self)
{
  const char *const keywords[] = { "dbname", "fallback_application_name", NULL };
  const char *const values[] = { self->conninfo, "zlayer-tunnel", NULL };

  g_return_if_fail (self->conn == NULL);

  self->state = STATE_CONNECTING;
  self->conn = PQconnectStartParams (keywords, values, 1);
  if (self->conn == NULL)
    {
      zlt_postgres_validator_lost (self, "out of memory");
      return;
    }
  if (PQstatus (self->conn) == CONNECTION_BAD)
    {
      g_autofree char *why = one_line (PQerrorMessage (self->conn));

      zlt_postgres_validator_lost (self, why);
      return;
    }
  PQsetNoticeProcessor (self->conn, zlt_postgres_validator_notice_cb, self);
  zlt_postgres_validator_arm_timer (self, self->timeout_ms, zlt_postgres_validator_deadline_cb);
  /* as the documentation of PQconnectPoll says: start as if it asked for WRITING */
  zlt_postgres_validator_watch (self, G_IO_OUT);
}

static void
zlt_postgres_validator_close (ZltPostgresValidator *self)
{
  clear_source (&self->io_source);
  clear_source (&self->timer);
  self->io_fd = -1;
  g_clear_pointer (&self->conn, PQfinish);
  self->step = STEP_NONE;
  self->listening = FALSE;
}

/* The connection is gone (or never came): close it, answer every waiting lookup from
 * offline-grace or refuse it, and try again after the backoff. */
static void
zlt_postgres_validator_lost (ZltPostgresValidator *self, const char *why)
{
  g_autoptr (GPtrArray) waiting = g_steal_pointer (&self->in_flight);
  guint delay;
  Lookup *lookup;

  self->in_flight = g_ptr_array_new ();
  zlt_postgres_validator_close (self);
  delay = zlt_postgres_validator_next_delay (self);
  if (self->connected || self->backoff_attempt <= 1)
    g_message ("token store unreachable (%s), retrying in %u ms", why, delay);
  else
    g_debug ("token store still unreachable (%s), retrying in %u ms", why, delay);
  if (self->connected)
    self->was_connected = TRUE;
  /* NOTIFYs sent while away are lost: re-check the live tunnels once back */
  if (self->was_connected)
    self->changed_pending = TRUE;
  self->state = STATE_WAITING;
  zlt_postgres_validator_arm_timer (self, delay, zlt_postgres_validator_retry_cb);

  while ((lookup = g_queue_pop_head (&self->pending)) != NULL)
    g_ptr_array_add (waiting, lookup);
  for (guint i = 0; i < waiting->len; i++)
    zlt_postgres_validator_answer_offline (self, g_ptr_array_index (waiting, i));
  zlt_postgres_validator_set_connected (self, FALSE);
}

/* ---- configuration ---- */

/* a private file: regular, owned by root or us, not writable by group or others nor
 * readable by others (it may hold a password) */
static char *
read_conninfo_file (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  g_autoptr (GString) joined = g_string_new (NULL);
  g_auto (GStrv) lines = NULL;
  struct stat st;
  gsize len = 0;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot open %s: %s"), path,
                   g_strerror (errsv));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("%s is not a regular file"),
                   path);
      g_close (fd, NULL);
      return NULL;
    }
  if (st.st_uid != 0 && st.st_uid != geteuid ())
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("%s belongs to uid %u; it must belong to root or to the user the server "
                      "runs as (uid %u)"),
                   path, (guint) st.st_uid, (guint) geteuid ());
      g_close (fd, NULL);
      return NULL;
    }
  if ((st.st_mode & (S_IWGRP | S_IWOTH | S_IROTH)) != 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("%s can be written by group or others or read by others (mode %04o); run "
                      "chmod 600 on it"),
                   path, (guint) (st.st_mode & 07777));
      g_close (fd, NULL);
      return NULL;
    }
  g_close (fd, NULL);
  if (st.st_size > ZLT_POSTGRES_CONNINFO_FILE_MAX)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("%s is larger than %u bytes"),
                   path, (guint) ZLT_POSTGRES_CONNINFO_FILE_MAX);
      return NULL;
    }
  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  /* lines joined by spaces, # comments and blank lines left out */
  lines = g_strsplit (data, "\n", -1);
  explicit_bzero (data, len);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);

      if (*line == '\0' || *line == '#')
        continue;
      if (joined->len > 0)
        g_string_append_c (joined, ' ');
      g_string_append (joined, line);
    }
  for (guint i = 0; lines[i] != NULL; i++)
    explicit_bzero (lines[i], strlen (lines[i]));
  return g_string_free (g_steal_pointer (&joined), FALSE);
}

/* [schema.]name, each part a plain lowercase SQL identifier (no quoting needed) */
static gboolean
table_name_is_valid (const char *table)
{
  g_auto (GStrv) parts = g_strsplit (table, ".", -1);
  guint n = g_strv_length (parts);

  if (n < 1 || n > 2)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const char *p = parts[i];

      if (*p == '\0' || strlen (p) > 63 || g_ascii_isdigit (*p))
        return FALSE;
      for (; *p != '\0'; p++)
        if (!(*p >= 'a' && *p <= 'z') && !g_ascii_isdigit (*p) && *p != '_')
          return FALSE;
    }
  return TRUE;
}

static gboolean
get_seconds (GKeyFile *config, const char *group, const char *key, guint min, guint max, guint *out,
             GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *text = NULL;
  guint64 value;

  if (!g_key_file_has_key (config, group, key, NULL))
    return TRUE;
  text = g_key_file_get_string (config, group, key, &local_error);
  if (text == NULL || !g_ascii_string_to_unsigned (g_strstrip (text), 10, min, max, &value, NULL))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[%s] %s: must be a number of seconds from %u to %u"), group, key, min, max);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

static gboolean
zlt_postgres_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                                  GError **error)
{
  static const char *const known_keys[]
      = { "conninfo", "conninfo-file", "table", "offline-grace", "timeout", NULL };
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (validator);
  g_auto (GStrv) keys = g_key_file_get_keys (config, group, NULL, NULL);
  g_autofree char *conninfo = NULL;
  g_autofree char *conninfo_file = NULL;
  g_autofree char *table = NULL;
  g_autofree char *parse_error = NULL;
  PQconninfoOption *options;
  guint grace = 0;
  guint timeout = ZLT_POSTGRES_DEFAULT_TIMEOUT_S;
  const char *channel;

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!g_strv_contains (known_keys, keys[i]))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("[%s] %s: unknown key (expected conninfo, conninfo-file, table, "
                          "offline-grace or timeout)"),
                       group, keys[i]);
          return FALSE;
        }
    }
  if (!get_seconds (config, group, "offline-grace", 0, ZLT_POSTGRES_MAX_GRACE_S, &grace, error)
      || !get_seconds (config, group, "timeout", 1, ZLT_POSTGRES_MAX_TIMEOUT_S, &timeout, error))
    return FALSE;

  table = g_key_file_get_string (config, group, "table", NULL);
  if (table == NULL)
    table = g_strdup (ZLT_POSTGRES_DEFAULT_TABLE);
  g_strstrip (table);
  if (!table_name_is_valid (table))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[%s] table: ‘%s’ is not a lowercase SQL name (name or schema.name)"), group,
                   table);
      return FALSE;
    }

  conninfo = g_key_file_get_string (config, group, "conninfo", NULL);
  conninfo_file = g_key_file_get_string (config, group, "conninfo-file", NULL);
  if ((conninfo == NULL) == (conninfo_file == NULL))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[%s] conninfo: set either conninfo or conninfo-file (a libpq connection "
                      "string such as ‘host=db.example.org dbname=tunnels’)"),
                   group);
      return FALSE;
    }
  if (conninfo_file != NULL)
    {
      g_autofree char *path = zlt_validator_resolve_path (validator, conninfo_file);
      g_autoptr (GError) file_error = NULL;

      conninfo = read_conninfo_file (path, &file_error);
      if (conninfo == NULL)
        {
          g_set_error (error, ZLT_ERROR, file_error->code, "[%s] conninfo-file: %s", group,
                       file_error->message);
          return FALSE;
        }
    }
  /* checked now, so --check finds a typo; libpq's message may quote a piece of the
   * string, so it is shown only when no password can be in it */
  options = PQconninfoParse (conninfo, &parse_error);
  if (options == NULL)
    {
      gboolean show = parse_error != NULL && strstr (conninfo, "password") == NULL;
      g_autofree char *why = show ? one_line (parse_error) : NULL;

      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[%s] %s: not a libpq connection string%s%s"), group,
                   conninfo_file != NULL ? "conninfo-file" : "conninfo", why != NULL ? ": " : "",
                   why != NULL ? why : "");
      explicit_bzero (conninfo, strlen (conninfo));
      if (parse_error != NULL)
        PQfreemem (parse_error);
      parse_error = NULL;
      return FALSE;
    }
  PQconninfoFree (options);

  /* configured again: start over */
  zlt_postgres_validator_close (self);
  if (self->conninfo != NULL)
    explicit_bzero (self->conninfo, strlen (self->conninfo));
  g_free (self->conninfo);
  self->conninfo = g_steal_pointer (&conninfo);
  g_free (self->table);
  self->table = g_steal_pointer (&table);
  channel = strrchr (self->table, '.');
  g_free (self->channel);
  self->channel = g_strdup (channel != NULL ? channel + 1 : self->table);
  g_free (self->lookup_sql);
  self->lookup_sql = NULL; /* made once the columns are known */
  g_free (self->columns_sql);
  self->columns_sql = g_strdup (
      "SELECT a.attname, format_type(a.atttypid, NULL), "
      "has_column_privilege(a.attrelid, a.attnum, 'SELECT') FROM pg_catalog.pg_attribute a "
      "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
      "AND a.attname IN ('hostnames', 'rate_limit_in', 'rate_limit_out')");
  g_clear_pointer (&self->columns_note, g_free);
  g_free (self->owners_sql);
  self->owners_sql = g_strdup_printf ("SELECT name, array_to_string(owns, ',') FROM %s "
                                      "WHERE NOT revoked AND cardinality(owns) > 0 ORDER BY name",
                                      self->table);
  self->offline_grace_s = grace;
  self->timeout_ms = timeout * 1000;
  grace_clear (self);
  self->backoff_attempt = 0;
  self->was_connected = FALSE;
  self->changed_pending = FALSE;
  zlt_postgres_validator_set_connected (self, FALSE);

  /* the connection is made in the background: a database that is down when the
   * server starts is retried, logins failing closed meanwhile */
  g_clear_pointer (&self->context, g_main_context_unref);
  self->context = g_main_context_ref_thread_default ();
  zlt_postgres_validator_connect (self);
  return TRUE;
}

/* ---- the vfuncs ---- */

static void
zlt_postgres_validator_validate_async (ZltValidator *validator, const ZltCredential *credential,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (validator);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  Lookup *lookup;

  g_task_set_source_tag (task, zlt_postgres_validator_validate_async);
  /* runtime tokens need no database, so node tunnels outlive an outage */
  for (guint i = 0; i < self->runtime->len; i++)
    {
      RuntimeToken *token = g_ptr_array_index (self->runtime, i);

      if (!zlt_credential_matches_hash (credential, token->hash))
        continue;
      g_task_return_pointer (task,
                             zlt_grant_new (token->name, token->hash,
                                            (const char *const *) token->services, token->expiry),
                             g_object_unref);
      return;
    }
  if (self->state == STATE_IDLE)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_FAILED,
                               _ ("the postgres validator is not configured"));
      return;
    }
  /* not a key id any token has: no need to ask */
  if (!key_id_is_valid (zlt_credential_get_lookup_key (credential)))
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("unknown token"));
      return;
    }
  lookup = g_new0 (Lookup, 1);
  lookup->task = g_steal_pointer (&task);
  lookup->credential = zlt_credential_copy (credential);
  /* waiting for the backoff: offline now, rather than keeping the agent waiting */
  if (self->state == STATE_WAITING)
    {
      zlt_postgres_validator_answer_offline (self, lookup);
      return;
    }
  if (g_queue_get_length (&self->pending) >= ZLT_POSTGRES_QUEUE_MAX)
    {
      lookup_return_error (lookup, g_error_new_literal (ZLT_ERROR, ZLT_ERROR_LIMIT,
                                                        _ ("too many logins waiting for the "
                                                           "token store")));
      return;
    }
  g_queue_push_tail (&self->pending, lookup);
  zlt_postgres_validator_kick (self);
}

/* Runtime tokens live in memory beside the table's and are unique by name: adding one
 * under a name in use replaces it. */
static gboolean
zlt_postgres_validator_add_token (ZltValidator *validator, const char *name,
                                  const guint8 hash[ZLT_HASH_SIZE], const char *const *services,
                                  gint64 expiry, GError **error)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (validator);
  RuntimeToken *token;

  if (!token_name_is_valid (name))
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("a token name must be 1 to 128 bytes of UTF-8 without spaces or "
                              "control characters"));
      return FALSE;
    }
  for (guint i = 0; services != NULL && services[i] != NULL; i++)
    {
      if (!zlt_service_pattern_is_valid (services[i]))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("token %s: ‘%s’ is not a service name or pattern"), name, services[i]);
          return FALSE;
        }
    }
  for (guint i = 0; i < self->runtime->len; i++)
    {
      if (g_str_equal (((RuntimeToken *) g_ptr_array_index (self->runtime, i))->name, name))
        {
          g_ptr_array_remove_index (self->runtime, i);
          break;
        }
    }
  token = g_new0 (RuntimeToken, 1);
  token->name = g_strdup (name);
  memcpy (token->hash, hash, ZLT_HASH_SIZE);
  token->services = g_strdupv ((char **) services);
  token->expiry = expiry;
  g_ptr_array_add (self->runtime, token);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return TRUE;
}

static gboolean
zlt_postgres_validator_remove_token (ZltValidator *validator, const char *name, GError **error)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (validator);

  for (guint i = 0; i < self->runtime->len; i++)
    {
      if (g_str_equal (((RuntimeToken *) g_ptr_array_index (self->runtime, i))->name, name))
        {
          g_ptr_array_remove_index (self->runtime, i);
          g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
          return TRUE;
        }
    }
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no runtime token named %s"), name);
  return FALSE;
}

static char *
zlt_postgres_validator_lookup_owner (ZltValidator *validator, const char *service)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (validator);

  for (guint i = 0; i < self->owners->len; i++)
    {
      Owner *owner = g_ptr_array_index (self->owners, i);

      for (guint j = 0; owner->owns[j] != NULL; j++)
        if (zlt_service_pattern_matches (owner->owns[j], service))
          return g_strdup (owner->name);
    }
  return NULL;
}

static void
zlt_postgres_validator_get_property (GObject *object, guint prop_id, GValue *value,
                                     GParamSpec *pspec)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (object);

  switch (prop_id)
    {
    case PROP_CONNECTED:
      g_value_set_boolean (value, self->connected);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_postgres_validator_dispose (GObject *object)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (object);
  Lookup *lookup;

  zlt_postgres_validator_close (self);
  self->state = STATE_IDLE;
  while ((lookup = g_queue_pop_head (&self->pending)) != NULL)
    lookup_return_error (
        lookup, g_error_new_literal (ZLT_ERROR, ZLT_ERROR_CLOSED, _ ("the validator was closed")));
  for (guint i = 0; self->in_flight != NULL && i < self->in_flight->len; i++)
    lookup_return_error (
        g_ptr_array_index (self->in_flight, i),
        g_error_new_literal (ZLT_ERROR, ZLT_ERROR_CLOSED, _ ("the validator was closed")));
  if (self->in_flight != NULL)
    g_ptr_array_set_size (self->in_flight, 0);
  G_OBJECT_CLASS (zlt_postgres_validator_parent_class)->dispose (object);
}

static void
zlt_postgres_validator_finalize (GObject *object)
{
  ZltPostgresValidator *self = ZLT_POSTGRES_VALIDATOR (object);

  if (self->conninfo != NULL)
    explicit_bzero (self->conninfo, strlen (self->conninfo));
  g_free (self->conninfo);
  g_free (self->table);
  g_free (self->channel);
  g_free (self->lookup_sql);
  g_free (self->columns_sql);
  g_free (self->columns_note);
  g_free (self->owners_sql);
  g_clear_pointer (&self->in_flight, g_ptr_array_unref);
  g_clear_pointer (&self->owners, g_ptr_array_unref);
  g_clear_pointer (&self->runtime, g_ptr_array_unref);
  g_clear_pointer (&self->grace, g_hash_table_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  G_OBJECT_CLASS (zlt_postgres_validator_parent_class)->finalize (object);
}

static void
zlt_postgres_validator_class_init (ZltPostgresValidatorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  object_class->get_property = zlt_postgres_validator_get_property;
  object_class->dispose = zlt_postgres_validator_dispose;
  object_class->finalize = zlt_postgres_validator_finalize;

  validator_class->name = "postgres";
  validator_class->configure = zlt_postgres_validator_configure;
  validator_class->validate_async = zlt_postgres_validator_validate_async;
  validator_class->lookup_owner = zlt_postgres_validator_lookup_owner;
  validator_class->add_token = zlt_postgres_validator_add_token;
  validator_class->remove_token = zlt_postgres_validator_remove_token;

  /**
   * ZltPostgresValidator:connected:
   * TRUE while the connection to the token store is up and listening for changes.
   */
  props[PROP_CONNECTED]
      = g_param_spec_boolean ("connected", NULL, NULL, FALSE,
                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltPostgresValidator::changed:
   * Rows of the table changed (a NOTIFY came), or may have while the connection was
   * down; the server re-checks live tunnels.
   */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
zlt_postgres_validator_init (ZltPostgresValidator *self)
{
  self->io_fd = -1;
  g_queue_init (&self->pending);
  self->in_flight = g_ptr_array_new ();
  self->owners = g_ptr_array_new_with_free_func ((GDestroyNotify) owner_free);
  self->runtime = g_ptr_array_new_with_free_func ((GDestroyNotify) runtime_token_free);
  self->grace
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
}
