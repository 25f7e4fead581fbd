/* zlt-token-file-validator.c: the "token-file" validator: token hashes from a private
 * file, reloaded when it changes, plus tokens added at runtime
 *
 * Config group (usually [validator:token-file]):
 *   path=<file>         required; the format is described in zlt-token-set.c and README.md
 *   fail-closed=<bool>  default true: when the file disappears, turns unsafe (mode,
 *                       owner) or cannot be read, its tokens stop being accepted at
 *                       once (live tunnels are re-checked and end). A file that merely
 *                       fails to parse keeps the tokens loaded before either way: an
 *                       editing mistake is not an attack. false keeps the old tokens
 *                       in every case.
 *
 * Signals (so the daemon and tests need not link the plugin):
 *   "reload"  action, returns gboolean: re-reads the file now; FALSE (and a message in
 *             the log) when the file is missing, unsafe or malformed, in which case the
 *             tokens loaded before stay in force
 *   "changed" the set of accepted tokens changed: after a reload that found different
 *             contents, and after add_token/remove_token; the server re-checks live
 *             tunnels against it
 *
 * The file is watched with a GFileMonitor (moves included, so editors and tools that
 * replace the file by renaming a new one onto it are seen as well). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "zlt-token-file-validator.h"
#include "zlt-token-set.h"

/* a line is well under 300 bytes; this is tens of thousands of tokens */
#define ZLT_TOKEN_FILE_MAX_SIZE (16 * 1024 * 1024)
/* file events come in bursts (delete + create, rename + attributes): reload once */
#define ZLT_TOKEN_FILE_RELOAD_DELAY_MS 100

/* Group or others must never write the file (they could add tokens) nor read it: for
 * v2 proofs the stored hash is the secret (PROTOCOL-v2.md §2), so a group member who
 * can read it could sign in as any token. */
#define ZLT_TOKEN_FILE_FORBIDDEN_MODE (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)

struct _ZltTokenFileValidator
{
  ZltValidator parent_instance;

  char *path;
  gboolean fail_closed;
  GFileMonitor *monitor;
  guint reload_id;
  ZltTokenSet *file_tokens; /* NULL until configured */
  guint8 file_digest[ZLT_HASH_SIZE];
  ZltTokenSet *runtime_tokens;
};

G_DEFINE_FINAL_TYPE (ZltTokenFileValidator, zlt_token_file_validator, ZLT_TYPE_VALIDATOR)

enum
{
  SIGNAL_CHANGED,
  SIGNAL_RELOAD,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
wipe (gpointer data, gsize len)
{
  volatile guint8 *p = data;

  while (len-- > 0)
    *p++ = 0;
}

/* Reads the whole file after checking, on the open descriptor, that it is a regular
 * file that belongs to root or to us and that nobody else can change or others read. */
static char *
read_token_file (const char *path, gsize *len_out, GError **error)
{
  struct stat st;
  char *buf;
  gsize cap;
  gsize len = 0;
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0)
    {
      int errsv = errno;

      /* a fresh install has none yet: say how to make one */
      if (errsv == ENOENT)
        g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                     _ ("cannot open token file %s: %s (create it, mode 0600, with the lines "
                        "`zlayer-tunnel token new` prints)"),
                     path, g_strerror (errsv));
      else
        g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                     _ ("cannot open token file %s: %s"), path, g_strerror (errsv));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s is not a regular file"), path);
      g_close (fd, NULL);
      return NULL;
    }
  if (st.st_uid != 0 && st.st_uid != geteuid ())
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("token file %s belongs to uid %u; it must belong to root or to the user "
                      "the server runs as (uid %u)"),
                   path, (guint) st.st_uid, (guint) geteuid ());
      g_close (fd, NULL);
      return NULL;
    }
  if ((st.st_mode & ZLT_TOKEN_FILE_FORBIDDEN_MODE) != 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("token file %s can be written by group or others or read by others "
                      "(mode %04o); run chmod 600 on it"),
                   path, (guint) (st.st_mode & 07777));
      g_close (fd, NULL);
      return NULL;
    }
  if (st.st_size > ZLT_TOKEN_FILE_MAX_SIZE)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s is larger than %u bytes"), path,
                   (guint) ZLT_TOKEN_FILE_MAX_SIZE);
      g_close (fd, NULL);
      return NULL;
    }

  /* one byte more than fstat said tells a file that grew meanwhile */
  cap = (gsize) st.st_size + 1;
  buf = g_malloc (cap + 1);
  while (len < cap)
    {
      gssize n = read (fd, buf + len, cap - len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int errsv = errno;

          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("cannot read token file %s: %s"), path, g_strerror (errsv));
          g_close (fd, NULL);
          wipe (buf, cap);
          g_free (buf);
          return NULL;
        }
      if (n == 0)
        break;
      len += n;
    }
  g_close (fd, NULL);
  if (len == cap)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("token file %s changed while it was read"), path);
      wipe (buf, cap);
      g_free (buf);
      return NULL;
    }
  buf[len] = '\0';
  *len_out = len;
  return buf;
}

/* Replaces the file's tokens when the file is sound; *changed tells whether its
 * contents differed from what was loaded before. */
static gboolean
zlt_token_file_validator_load (ZltTokenFileValidator *self, gboolean *changed, GError **error)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (ZltTokenSet) set = NULL;
  guint8 digest[ZLT_HASH_SIZE];
  gsize digest_len = sizeof digest;
  char *data;
  gsize len = 0;

  *changed = FALSE;
  data = read_token_file (self->path, &len, error);
  if (data == NULL)
    {
      /* gone, unsafe or unreadable: whoever controls it now is not the admin who
       * wrote the tokens, so (fail-closed) none of them stay in force */
      if (self->fail_closed && self->file_tokens != NULL
          && zlt_token_set_get_size (self->file_tokens) > 0)
        {
          g_clear_pointer (&self->file_tokens, zlt_token_set_free);
          self->file_tokens = zlt_token_set_new ();
          memset (self->file_digest, 0, sizeof self->file_digest);
          *changed = TRUE;
        }
      return FALSE;
    }
  g_checksum_update (checksum, (const guchar *) data, len);
  g_checksum_get_digest (checksum, digest, &digest_len);
  set = zlt_token_set_parse (data, len, self->path, error);
  wipe (data, len);
  g_free (data);
  if (set == NULL)
    return FALSE;

  if (self->file_tokens != NULL && memcmp (digest, self->file_digest, sizeof digest) == 0)
    return TRUE;
  g_clear_pointer (&self->file_tokens, zlt_token_set_free);
  self->file_tokens = g_steal_pointer (&set);
  memcpy (self->file_digest, digest, sizeof digest);
  *changed = TRUE;
  return TRUE;
}

static gboolean
zlt_token_file_validator_reload (ZltTokenFileValidator *self, GError **error)
{
  gboolean changed = FALSE;

  if (self->path == NULL)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                           _ ("the token-file validator has no file configured"));
      return FALSE;
    }
  if (!zlt_token_file_validator_load (self, &changed, error))
    {
      if (changed)
        {
          g_message ("token file %s cannot be used, refusing its tokens (fail-closed=true)",
                     self->path);
          g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
        }
      return FALSE;
    }
  if (changed)
    {
      g_info ("token file %s loaded: %u tokens", self->path,
              zlt_token_set_get_size (self->file_tokens));
      g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
    }
  return TRUE;
}

/* the class handler of the "reload" action signal */
static gboolean
zlt_token_file_validator_real_reload (ZltTokenFileValidator *self)
{
  g_autoptr (GError) error = NULL;

  if (!zlt_token_file_validator_reload (self, &error))
    {
      /* an operator's mistake, not a bug: a message, and (unless the file is gone or
       * unsafe and fail-closed is on) the old tokens stay */
      g_message ("cannot reload tokens, keeping the %u loaded before: %s",
                 self->file_tokens != NULL ? zlt_token_set_get_size (self->file_tokens) : 0,
                 error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
zlt_token_file_validator_reload_cb (gpointer user_data)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (user_data);

  self->reload_id = 0;
  zlt_token_file_validator_real_reload (self);
  return G_SOURCE_REMOVE;
}

static void
zlt_token_file_validator_file_changed_cb (GFileMonitor *monitor, GFile *file, GFile *other_file,
                                          GFileMonitorEvent event, gpointer user_data)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (user_data);

  switch (event)
    {
    case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
    case G_FILE_MONITOR_EVENT_RENAMED:
    case G_FILE_MONITOR_EVENT_MOVED_IN:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
      g_clear_handle_id (&self->reload_id, g_source_remove);
      self->reload_id = g_timeout_add (ZLT_TOKEN_FILE_RELOAD_DELAY_MS,
                                       zlt_token_file_validator_reload_cb, self);
      break;
    case G_FILE_MONITOR_EVENT_CHANGED: /* still being written: wait for CHANGES_DONE */
    default:
      break;
    }
}

static void
zlt_token_file_validator_stop_watching (ZltTokenFileValidator *self)
{
  g_clear_handle_id (&self->reload_id, g_source_remove);
  if (self->monitor != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      g_file_monitor_cancel (self->monitor);
      g_clear_object (&self->monitor);
    }
}

static void
zlt_token_file_validator_start_watching (ZltTokenFileValidator *self)
{
  g_autoptr (GFile) file = g_file_new_for_path (self->path);
  g_autoptr (GError) error = NULL;

  self->monitor = g_file_monitor_file (file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
  if (self->monitor == NULL)
    {
      g_message ("cannot watch token file %s, changes need a reload: %s", self->path,
                 error->message);
      return;
    }
  g_signal_connect (self->monitor, "changed", G_CALLBACK (zlt_token_file_validator_file_changed_cb),
                    self);
}

static gboolean
zlt_token_file_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                                    GError **error)
{
  static const char *const known_keys[] = { "path", "fail-closed", NULL };
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (validator);
  g_autofree char *path = NULL;
  g_auto (GStrv) keys = g_key_file_get_keys (config, group, NULL, NULL);
  g_autoptr (GError) local_error = NULL;
  gboolean changed = FALSE;

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!g_strv_contains (known_keys, keys[i]))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("[%s] %s: unknown key (expected path or fail-closed)"), group, keys[i]);
          return FALSE;
        }
    }
  self->fail_closed = TRUE;
  if (g_key_file_has_key (config, group, "fail-closed", NULL))
    {
      self->fail_closed = g_key_file_get_boolean (config, group, "fail-closed", &local_error);
      if (local_error != NULL)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("[%s] fail-closed: must be true or false"), group);
          return FALSE;
        }
    }
  path = g_key_file_get_string (config, group, "path", NULL);
  if (path == NULL || *path == '\0')
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("[%s] path: set it to the token file"), group);
      return FALSE;
    }

  zlt_token_file_validator_stop_watching (self);
  g_clear_pointer (&self->file_tokens, zlt_token_set_free);
  g_free (self->path);
  /* absolute, from the config file's directory, so it means what it means to every
   * command that reads the file and a later change of directory does not move it */
  self->path = zlt_validator_resolve_path (validator, path);
  if (!zlt_token_file_validator_load (self, &changed, error))
    return FALSE;
  g_info ("token file %s loaded: %u token%s", self->path,
          zlt_token_set_get_size (self->file_tokens),
          zlt_token_set_get_size (self->file_tokens) == 1 ? "" : "s");
  zlt_token_file_validator_start_watching (self);
  return TRUE;
}

static ZltGrant *
zlt_token_file_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                                   GError **error)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (validator);
  const ZltTokenEntry *entry = NULL;

  if (self->file_tokens != NULL)
    entry = zlt_token_set_find (self->file_tokens, credential);
  if (entry == NULL)
    entry = zlt_token_set_find (self->runtime_tokens, credential);
  if (entry == NULL)
    {
      /* never say more: the key id is whatever the peer sent */
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, _ ("unknown token"));
      return NULL;
    }
  if (zlt_token_entry_is_expired (entry, g_get_real_time () / G_USEC_PER_SEC))
    {
      g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (entry->expiry);
      g_autofree char *when = dt != NULL ? g_date_time_format_iso8601 (dt) : NULL;

      g_set_error (error, ZLT_ERROR, ZLT_ERROR_EXPIRED_TOKEN, _ ("token %s expired at %s"),
                   entry->name, when != NULL ? when : "?");
      return NULL;
    }
  return zlt_token_entry_to_grant (entry);
}

static char *
zlt_token_file_validator_lookup_owner (ZltValidator *validator, const char *service)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (validator);
  const char *owner = NULL;

  if (self->file_tokens != NULL)
    owner = zlt_token_set_lookup_owner (self->file_tokens, service);
  if (owner == NULL)
    owner = zlt_token_set_lookup_owner (self->runtime_tokens, service);
  return g_strdup (owner);
}

/* Runtime tokens live beside the file's, survive its reloads, and are unique by name:
 * adding one under a name in use replaces it. */
static gboolean
zlt_token_file_validator_add_token (ZltValidator *validator, const char *name,
                                    const guint8 hash[ZLT_HASH_SIZE], const char *const *services,
                                    gint64 expiry, GError **error)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (validator);

  if (!zlt_token_name_is_valid (name))
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
  zlt_token_set_remove_name (self->runtime_tokens, name);
  zlt_token_set_add (self->runtime_tokens, zlt_token_entry_new (name, hash, services, expiry));
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return TRUE;
}

static gboolean
zlt_token_file_validator_remove_token (ZltValidator *validator, const char *name, GError **error)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (validator);

  if (!zlt_token_set_remove_name (self->runtime_tokens, name))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no runtime token named %s"), name);
      return FALSE;
    }
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return TRUE;
}

static void
zlt_token_file_validator_dispose (GObject *object)
{
  zlt_token_file_validator_stop_watching (ZLT_TOKEN_FILE_VALIDATOR (object));
  G_OBJECT_CLASS (zlt_token_file_validator_parent_class)->dispose (object);
}

static void
zlt_token_file_validator_finalize (GObject *object)
{
  ZltTokenFileValidator *self = ZLT_TOKEN_FILE_VALIDATOR (object);

  g_clear_pointer (&self->file_tokens, zlt_token_set_free);
  g_clear_pointer (&self->runtime_tokens, zlt_token_set_free);
  g_free (self->path);
  G_OBJECT_CLASS (zlt_token_file_validator_parent_class)->finalize (object);
}

static void
zlt_token_file_validator_class_init (ZltTokenFileValidatorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  object_class->dispose = zlt_token_file_validator_dispose;
  object_class->finalize = zlt_token_file_validator_finalize;

  validator_class->name = "token-file";
  validator_class->configure = zlt_token_file_validator_configure;
  validator_class->validate = zlt_token_file_validator_validate;
  validator_class->add_token = zlt_token_file_validator_add_token;
  validator_class->remove_token = zlt_token_file_validator_remove_token;
  validator_class->lookup_owner = zlt_token_file_validator_lookup_owner;

  /**
   * ZltTokenFileValidator::changed:
   * The accepted tokens changed (file reloaded with new contents, or a runtime token
   * added or removed).
   */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * ZltTokenFileValidator::reload:
   * Action signal: re-reads the file now.
   * Returns: TRUE when the file was sound (and loaded, if it had changed)
   */
  signals[SIGNAL_RELOAD] = g_signal_new_class_handler (
      "reload", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (zlt_token_file_validator_real_reload), NULL, NULL, NULL, G_TYPE_BOOLEAN, 0);
}

static void
zlt_token_file_validator_init (ZltTokenFileValidator *self)
{
  self->runtime_tokens = zlt_token_set_new ();
}
