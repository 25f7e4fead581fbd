/* test-postgres.c: the postgres validator (plugins/postgres) against a real PostgreSQL
 * server that this program starts on loopback in a temporary directory.
 *
 * The server: initdb and postgres from Debian's postgresql package (the highest
 * /usr/lib/postgresql/<version>/bin), listening on 127.0.0.1 at a port picked by binding
 * port 0 (then closed), with its unix socket in the temporary directory. PostgreSQL
 * refuses to run as root, so when the tests run as root (CI) initdb and postgres run as
 * the user nobody: the directory is chown'ed to it and the child drops its groups, gid
 * and uid in its child-setup function before exec (no setpriv or sudo needed). The
 * child gets SIGQUIT (immediate shutdown) should this program die; otherwise it is
 * stopped at the end with SIGINT (fast shutdown) by its PID, which is our child's.
 *
 * Each test makes a database of its own and applies the shipped schema
 * (data/zlayer-tunnel-postgres.sql) to it; the validators connect over TCP
 * (hostaddr=127.0.0.1), the test's own administration over the unix socket. */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "zlt-test-util.h"

#define PORT_RANGE_A "31500-31549"
#define PORT_RANGE_B "31550-31599"

typedef struct
{
  char *bindir;
  char *dir;
  char *data_dir;
  guint16 port;
  gboolean drop; /* run as nobody */
  uid_t uid;
  gid_t gid;
  GSubprocess *process;
  gboolean exited;
  guint n_databases;
} Pg;

static Pg pg;

/* every log line of this process, to check what is logged once and that no token is */
static GPtrArray *log_lines;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      g_ptr_array_add (log_lines, fields[i].length < 0
                                      ? g_strdup (fields[i].value)
                                      : g_strndup (fields[i].value, fields[i].length));
  return g_log_writer_default (level, fields, n_fields, user_data);
}

/* lines logged since @first that hold @needle */
static guint
count_logged (guint first, const char *needle)
{
  guint n = 0;

  for (guint i = first; i < log_lines->len; i++)
    if (strstr (g_ptr_array_index (log_lines, i), needle) != NULL)
      n++;
  return n;
}

/* ---- the PostgreSQL server ---- */

static void
pg_child_setup (gpointer user_data)
{
  /* between fork and exec: only async-signal-safe calls */
  if (pg.drop)
    {
      if (setgroups (0, NULL) != 0 || setgid (pg.gid) != 0 || setuid (pg.uid) != 0)
        _exit (126);
    }
  /* after setuid, which clears it: die with this program */
  prctl (PR_SET_PDEATHSIG, SIGQUIT);
}

static char *
pg_find_bindir (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/usr/lib/postgresql", 0, NULL);
  g_autofree char *best = NULL;
  guint64 best_version = 0;
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *bin = g_build_filename ("/usr/lib/postgresql", name, "bin", NULL);
      g_autofree char *initdb = g_build_filename (bin, "initdb", NULL);
      g_autofree char *postgres = g_build_filename (bin, "postgres", NULL);
      guint64 version;

      if (!g_ascii_string_to_unsigned (name, 10, 1, 1000, &version, NULL)
          || !g_file_test (initdb, G_FILE_TEST_IS_EXECUTABLE)
          || !g_file_test (postgres, G_FILE_TEST_IS_EXECUTABLE) || version <= best_version)
        continue;
      best_version = version;
      g_free (best);
      best = g_steal_pointer (&bin);
    }
  return g_steal_pointer (&best);
}

/* every directory above @path searchable by others (nobody must reach its own dir) */
static gboolean
path_searchable (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);

  while (TRUE)
    {
      struct stat st;
      g_autofree char *parent = NULL;

      if (g_stat (dir, &st) != 0 || (st.st_mode & S_IXOTH) == 0)
        return FALSE;
      parent = g_path_get_dirname (dir);
      if (g_str_equal (parent, dir))
        return TRUE;
      g_free (dir);
      dir = g_steal_pointer (&parent);
    }
}

static GSubprocessLauncher *
pg_launcher (void)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autofree char *log = g_build_filename (pg.dir, "postgres.log", NULL);

  g_subprocess_launcher_set_child_setup (launcher, pg_child_setup, NULL, NULL);
  /* the test's own directory may be closed to nobody */
  g_subprocess_launcher_set_cwd (launcher, pg.dir);
  g_subprocess_launcher_set_stdout_file_path (launcher, log);
  g_subprocess_launcher_set_stderr_file_path (launcher, log);
  /* nothing of the test's environment reaches the server's libpq */
  g_subprocess_launcher_unsetenv (launcher, "PGHOST");
  g_subprocess_launcher_unsetenv (launcher, "PGPORT");
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C", TRUE);
  return launcher;
}

static void
pg_print_log (void)
{
  g_autofree char *log = g_build_filename (pg.dir, "postgres.log", NULL);
  g_autofree char *text = NULL;

  if (g_file_get_contents (log, &text, NULL, NULL))
    g_printerr ("postgres.log:\n%s\n", text);
}

static char *
pg_admin_conninfo (const char *dbname)
{
  return g_strdup_printf ("host=%s port=%u user=zlt dbname=%s connect_timeout=5", pg.dir, pg.port,
                          dbname);
}

/* what the validators use: TCP on loopback */
static char *
pg_conninfo (const char *dbname)
{
  return g_strdup_printf ("hostaddr=127.0.0.1 port=%u user=zlt dbname=%s", pg.port, dbname);
}

static gboolean
pg_ready (void)
{
  g_autofree char *conninfo = pg_admin_conninfo ("postgres");

  return pg.exited || PQping (conninfo) == PQPING_OK;
}

static void
pg_exited_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  pg.exited = TRUE;
}

static void
pg_start (void)
{
  g_autoptr (GSubprocessLauncher) launcher = pg_launcher ();
  g_autoptr (GError) error = NULL;
  g_autofree char *port = g_strdup_printf ("%u", pg.port);
  g_autofree char *postgres = g_build_filename (pg.bindir, "postgres", NULL);

  g_assert_null (pg.process);
  pg.exited = FALSE;
  pg.process = g_subprocess_launcher_spawn (
      launcher, &error, postgres, "-D", pg.data_dir, "-p", port, "-k", pg.dir, "-c",
      "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
      "full_page_writes=off", "-c", "max_connections=40", NULL);
  g_assert_no_error (error);
  g_subprocess_wait_async (pg.process, NULL, pg_exited_cb, NULL);
  ZLT_TEST_WAIT_FOR (pg_ready (), 60000);
  if (pg.exited)
    {
      pg_print_log ();
      g_error ("postgres exited at start");
    }
}

/* fast shutdown (SIGINT): sessions are told and closed, as in a restart */
static void
pg_stop (void)
{
  g_assert_nonnull (pg.process);
  g_subprocess_send_signal (pg.process, SIGINT);
  ZLT_TEST_WAIT_FOR (pg.exited, 60000);
  g_clear_object (&pg.process);
}

static gboolean
pg_available (void)
{
  if (pg.bindir != NULL)
    return TRUE;
  g_test_skip ("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin");
  return FALSE;
}

/* initdb and start, once for the program */
static void
pg_ensure (void)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) initdb = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *initdb_path = NULL;

  if (pg.process != NULL)
    return;
  if (pg.dir != NULL)
    {
      pg_start (); /* a test stopped it and failed before starting it again */
      return;
    }
  pg.drop = geteuid () == 0;
  pg.dir = g_dir_make_tmp ("zlt-pg-XXXXXX", &error);
  g_assert_no_error (error);
  if (pg.drop)
    {
      struct passwd *pw = getpwnam ("nobody");

      g_assert_nonnull (pw);
      pg.uid = pw->pw_uid;
      pg.gid = pw->pw_gid;
      if (!path_searchable (pg.dir))
        {
          /* TMPDIR is private to root: use /tmp, which nobody can reach */
          g_rmdir (pg.dir);
          g_free (pg.dir);
          pg.dir = g_strdup ("/tmp/zlt-pg-XXXXXX");
          g_assert_nonnull (g_mkdtemp (pg.dir));
        }
      g_assert_cmpint (chown (pg.dir, pg.uid, pg.gid), ==, 0);
    }
  pg.data_dir = g_build_filename (pg.dir, "data", NULL);
  pg.port = zlt_test_closed_port ();

  launcher = pg_launcher ();
  initdb_path = g_build_filename (pg.bindir, "initdb", NULL);
  initdb = g_subprocess_launcher_spawn (launcher, &error, initdb_path, "-D", pg.data_dir, "-U",
                                        "zlt", "--auth=trust", "--no-sync", "--no-locale", "-E",
                                        "UTF8", NULL);
  g_assert_no_error (error);
  g_assert_true (zlt_test_process_wait (initdb, 120000));
  if (!g_subprocess_get_if_exited (initdb) || g_subprocess_get_exit_status (initdb) != 0)
    {
      pg_print_log ();
      g_error ("initdb failed");
    }
  pg_start ();
}

static void
pg_remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        pg_remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
pg_shutdown (void)
{
  if (pg.process != NULL)
    pg_stop ();
  if (pg.dir != NULL)
    pg_remove_tree (pg.dir);
  g_clear_pointer (&pg.dir, g_free);
  g_clear_pointer (&pg.data_dir, g_free);
  g_clear_pointer (&pg.bindir, g_free);
}

/* ---- administration, as the token store's owner would do it ---- */

static PGconn *
pg_connect (const char *dbname)
{
  g_autofree char *conninfo = pg_admin_conninfo (dbname);
  PGconn *conn = PQconnectdb (conninfo);

  if (PQstatus (conn) != CONNECTION_OK)
    g_error ("cannot connect to %s: %s", dbname, PQerrorMessage (conn));
  return conn;
}

static void
pg_exec_on (PGconn *conn, const char *sql)
{
  PGresult *result = PQexec (conn, sql);
  ExecStatusType status = PQresultStatus (result);

  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQresultErrorMessage (result));
  PQclear (result);
}

static void
pg_exec (const char *dbname, const char *sql)
{
  PGconn *conn = pg_connect (dbname);

  pg_exec_on (conn, sql);
  PQfinish (conn);
}

static void
pg_apply_schema (const char *dbname)
{
  g_autofree char *schema = NULL;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (ZLT_POSTGRES_SCHEMA, &schema, NULL, &error);
  g_assert_no_error (error);
  pg_exec (dbname, schema);
}

/* A fresh database with the shipped schema; returns its name. */
static char *
pg_new_database (void)
{
  g_autofree char *name = g_strdup_printf ("zlt_test_%u", ++pg.n_databases);
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", name);

  pg_ensure ();
  pg_exec ("postgres", create);
  pg_apply_schema (name);
  return g_steal_pointer (&name);
}

static char *
new_token (void)
{
  guint8 raw[24];
  g_autofree char *secret = NULL;

  zlt_random_bytes (raw, sizeof raw);
  secret = zlt_hex_encode (raw, sizeof raw);
  return g_strdup_printf ("zlt_%s", secret);
}

/* INSERT a row for @token; @columns and @values are extra SQL, e.g. ", register" and
 * ", '{web}'" */
static void
add_token (const char *dbname, const char *token, const char *name, const char *columns,
           const char *values)
{
  g_autofree char *hash = zlt_token_hash_hex (token);
  g_autofree char *sql
      = g_strdup_printf ("INSERT INTO zlt_tokens (token_hash, name%s) VALUES ('%s', '%s'%s)",
                         columns != NULL ? columns : "", hash, name, values != NULL ? values : "");

  pg_exec (dbname, sql);
}

/* what the administrator's psql would say to @sql: NULL when it worked */
static char *
pg_try_exec (const char *dbname, const char *sql)
{
  PGconn *conn = pg_connect (dbname);
  PGresult *result = PQexec (conn, sql);
  ExecStatusType status = PQresultStatus (result);
  char *error = NULL;

  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    error = g_strdup (PQresultErrorMessage (result));
  PQclear (result);
  PQfinish (conn);
  return error;
}

/* UPDATE the row of @token: @set is the SQL after SET */
static void
update_token (const char *dbname, const char *token, const char *set)
{
  g_autofree char *hash = zlt_token_hash_hex (token);
  g_autofree char *sql
      = g_strdup_printf ("UPDATE zlt_tokens SET %s WHERE token_hash = '%s'", set, hash);

  pg_exec (dbname, sql);
}

static void
revoke_token (const char *dbname, const char *token)
{
  g_autofree char *hash = zlt_token_hash_hex (token);
  g_autofree char *sql
      = g_strdup_printf ("UPDATE zlt_tokens SET revoked = true WHERE token_hash = '%s'", hash);

  pg_exec (dbname, sql);
}

/* ---- validators ---- */

static ZltPluginLoader *
new_loader (void)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  g_autoptr (GError) error = NULL;

  zlt_plugin_loader_load_all (loader, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&loader);
}

static ZltValidator *
try_new_validator (ZltPluginLoader *loader, GKeyFile *config, GError **error)
{
  return zlt_plugin_loader_new_validator (loader, "postgres", config, NULL, error);
}

static gboolean
is_connected (ZltValidator *validator)
{
  gboolean connected = FALSE;

  g_object_get (validator, "connected", &connected, NULL);
  return connected;
}

static ZltValidator *
new_validator (ZltPluginLoader *loader, const char *dbname, guint offline_grace, guint timeout)
{
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autofree char *conninfo = pg_conninfo (dbname);
  g_autoptr (GError) error = NULL;
  ZltValidator *validator;

  g_key_file_set_string (config, "validator:postgres", "conninfo", conninfo);
  if (offline_grace > 0)
    g_key_file_set_integer (config, "validator:postgres", "offline-grace", (gint) offline_grace);
  if (timeout > 0)
    g_key_file_set_integer (config, "validator:postgres", "timeout", (gint) timeout);
  validator = try_new_validator (loader, config, &error);
  g_assert_no_error (error);
  ZLT_TEST_WAIT_FOR (is_connected (validator), 20000);
  return validator;
}

typedef struct
{
  ZltGrant *grant;
  GError *error;
  gboolean done;
} Answer;

static void
answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Answer *answer = user_data;

  answer->grant = zlt_validator_validate_finish (ZLT_VALIDATOR (source), result, &answer->error);
  answer->done = TRUE;
}

static ZltCredential *
credential_for (const char *token, gboolean v2)
{
  guint8 hash[ZLT_HASH_SIZE];
  guint8 nonce[ZLT_NONCE_SIZE];
  guint8 proof[ZLT_HASH_SIZE];
  g_autofree char *key_id = NULL;
  ZltUuid client_id;

  if (!v2)
    return zlt_credential_new_token (token);
  zlt_token_hash_raw (token, hash);
  zlt_random_bytes (nonce, sizeof nonce);
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (hash, nonce, &client_id, proof);
  key_id = zlt_token_key_id (token);
  return zlt_credential_new_proof (key_id, nonce, &client_id, proof);
}

static ZltGrant *
validate_credential (ZltValidator *validator, const ZltCredential *credential, GError **error)
{
  Answer answer = { 0 };

  zlt_validator_validate_async (validator, credential, NULL, answered, &answer);
  ZLT_TEST_WAIT_FOR (answer.done, 20000);
  if (answer.error != NULL)
    g_propagate_error (error, answer.error);
  return answer.grant;
}

static ZltGrant *
validate (ZltValidator *validator, const char *token, gboolean v2, GError **error)
{
  g_autoptr (ZltCredential) credential = credential_for (token, v2);

  return validate_credential (validator, credential, error);
}

static void
assert_accepted (ZltValidator *validator, const char *token, const char *name)
{
  for (guint v2 = 0; v2 < 2; v2++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltGrant) grant = validate (validator, token, v2, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (zlt_grant_get_name (grant), ==, name);
    }
}

static void
assert_refused (ZltValidator *validator, const char *token, gint code, const char *words)
{
  for (guint v2 = 0; v2 < 2; v2++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltGrant) grant = validate (validator, token, v2, &error);

      g_assert_null (grant);
      g_assert_error (error, ZLT_ERROR, code);
      if (words != NULL && strstr (error->message, words) == NULL)
        g_error ("‘%s’ does not say ‘%s’", error->message, words);
    }
}

static void
count_changed (ZltValidator *validator, gpointer user_data)
{
  (*(guint *) user_data)++;
}

/* ---- the tests ---- */

static void
expect_config_error (ZltPluginLoader *loader, const char *text, gint code, const char *words)
{
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;

  g_assert_true (g_key_file_load_from_data (config, text, (gsize) -1, G_KEY_FILE_NONE, NULL));
  validator = try_new_validator (loader, config, &error);
  g_assert_null (validator);
  g_assert_error (error, ZLT_ERROR, code);
  if (strstr (error->message, words) == NULL)
    g_error ("‘%s’ does not say ‘%s’", error->message, words);
  /* nothing of a password in the message */
  g_assert_null (strstr (error->message, "s3cret"));
}

/* Bad settings fail with the group and the key named; none needs a database. */
static void
test_config (void)
{
  g_autoptr (ZltPluginLoader) loader = new_loader ();
  g_autofree char *dir = g_dir_make_tmp ("zlt-pg-config-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, "conninfo", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltValidator) validator = NULL;

  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x\nfrobnicate=1\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] frobnicate: unknown key");
  expect_config_error (loader, "[validator:postgres]\ntable=zlt_tokens\n", ZLT_ERROR_INVALID_CONFIG,
                       "[validator:postgres] conninfo:");
  expect_config_error (loader,
                       "[validator:postgres]\nconninfo=dbname=x\nconninfo-file=/nonexistent\n",
                       ZLT_ERROR_INVALID_CONFIG, "either conninfo or conninfo-file");
  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x\ntable=Tokens; DROP\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] table:");
  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x\ntable=a.b.c\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] table:");
  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x\noffline-grace=soon\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] offline-grace:");
  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x\noffline-grace=-1\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] offline-grace:");
  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x\ntimeout=0\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] timeout:");
  expect_config_error (loader, "[validator:postgres]\nconninfo=dbname=x frobnicate=1\n",
                       ZLT_ERROR_INVALID_CONFIG, "frobnicate");
  /* libpq's complaint may quote a piece of a password: not repeated then */
  expect_config_error (loader, "[validator:postgres]\nconninfo=password=s3cret x\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] conninfo: not a libpq");
  expect_config_error (loader, "[validator:postgres]\nconninfo-file=/nonexistent/conninfo\n",
                       ZLT_ERROR_INVALID_CONFIG, "[validator:postgres] conninfo-file:");

  /* a conninfo file others may read is refused, a private one accepted */
  g_assert_true (g_file_set_contents (file,
                                      "# the token store\nhostaddr=127.0.0.1\n"
                                      "port=9 dbname=none password=s3cret\n",
                                      -1, NULL));
  g_assert_cmpint (g_chmod (file, 0644), ==, 0);
  text = g_strdup_printf ("[validator:postgres]\nconninfo-file=%s\n", file);
  expect_config_error (loader, text, ZLT_ERROR_INSECURE, "chmod 600");
  g_assert_cmpint (g_chmod (file, 0600), ==, 0);
  g_assert_true (g_key_file_load_from_data (config, text, (gsize) -1, G_KEY_FILE_NONE, NULL));
  validator = try_new_validator (loader, config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (validator);
  /* nothing listens on port 9: not connected, and logins fail closed */
  g_assert_false (is_connected (validator));
  {
    g_autoptr (GError) login_error = NULL;
    g_autoptr (ZltGrant) grant = validate (validator, "zlt_nothing", TRUE, &login_error);

    g_assert_null (grant);
    g_assert_error (login_error, ZLT_ERROR, ZLT_ERROR_FAILED);
  }
  g_clear_object (&validator);
  g_unlink (file);
  g_rmdir (dir);
}

/* Valid tokens are accepted with their rights, v1 and v2 alike; unknown, expired and
 * revoked ones are refused, each with its reason. */
static void
test_validate (void)
{
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autofree char *db = NULL;
  g_autofree char *alice = new_token ();
  g_autofree char *viewer = new_token ();
  g_autofree char *acme = new_token ();
  g_autofree char *old = new_token ();
  g_autofree char *gone = new_token ();
  g_autofree char *stranger = new_token ();
  g_autofree char *later = new_token ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint changed = 0;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  add_token (db, alice, "alice", ", register, expires", ", '{web,ssh}', now() + interval '1 day'");
  add_token (db, viewer, "viewer", ", reach", ", '{acme-*}'");
  add_token (db, acme, "acme", ", register, owns", ", '{acme-*}', '{acme-*}'");
  add_token (db, old, "old", ", expires", ", now() - interval '1 second'");
  add_token (db, gone, "gone", ", revoked", ", true");
  loader = new_loader ();
  validator = new_validator (loader, db, 0, 0);

  assert_accepted (validator, alice, "alice");
  {
    gint64 start = g_get_monotonic_time ();

    for (guint i = 0; i < 100; i++)
      {
        g_clear_object (&grant);
        grant = validate (validator, alice, TRUE, &error);
        g_assert_no_error (error);
      }
    g_test_message ("one lookup at a time: %.0f us each (100 in a row)",
                    (g_get_monotonic_time () - start) / 100.0);
    g_clear_object (&grant);
  }
  grant = validate (validator, alice, TRUE, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_grant_may_register (grant, "web"));
  g_assert_false (zlt_grant_may_register (grant, "db"));
  g_assert_false (zlt_grant_may_reach_any (grant));
  g_assert_cmpint (zlt_grant_get_expiry (grant), >, g_get_real_time () / G_USEC_PER_SEC);
  g_clear_object (&grant);

  /* a row that only says what it reaches registers nothing, as a token-file line */
  grant = validate (validator, viewer, TRUE, &error);
  g_assert_no_error (error);
  g_assert_false (zlt_grant_may_register (grant, "web"));
  g_assert_true (zlt_grant_may_reach (grant, "acme-db"));
  g_assert_false (zlt_grant_may_reach (grant, "web"));
  g_clear_object (&grant);

  assert_refused (validator, stranger, ZLT_ERROR_BAD_TOKEN, "unknown token");
  assert_refused (validator, old, ZLT_ERROR_EXPIRED_TOKEN, "old");
  assert_refused (validator, gone, ZLT_ERROR_BAD_TOKEN, "revoked");
  /* a key id no token has is refused without asking (nothing to quote into SQL) */
  {
    guint8 nonce[ZLT_NONCE_SIZE] = { 0 };
    guint8 proof[ZLT_HASH_SIZE] = { 0 };
    ZltUuid client_id;
    g_autoptr (ZltCredential) odd = NULL;

    zlt_uuid_generate (&client_id);
    odd = zlt_credential_new_proof ("'}{,\"", nonce, &client_id, proof);
    grant = validate_credential (validator, odd, &error);
    g_assert_null (grant);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
    g_clear_error (&error);
  }
  /* the right key id with a wrong proof */
  {
    guint8 hash[ZLT_HASH_SIZE];
    guint8 nonce[ZLT_NONCE_SIZE];
    guint8 proof[ZLT_HASH_SIZE];
    g_autofree char *key_id = zlt_token_key_id (alice);
    g_autoptr (ZltCredential) forged = NULL;
    ZltUuid client_id;

    zlt_token_hash_raw (stranger, hash);
    zlt_random_bytes (nonce, sizeof nonce);
    zlt_uuid_generate (&client_id);
    zlt_auth_proof (hash, nonce, &client_id, proof);
    forged = zlt_credential_new_proof (key_id, nonce, &client_id, proof);
    grant = validate_credential (validator, forged, &error);
    g_assert_null (grant);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
    g_clear_error (&error);
  }

  /* owns= answers at once, from what was loaded; a new row is seen through NOTIFY */
  {
    g_autofree char *owner = zlt_validator_lookup_owner (validator, "acme-web");
    g_autofree char *nobody = zlt_validator_lookup_owner (validator, "beta-web");

    g_assert_cmpstr (owner, ==, "acme");
    g_assert_null (nobody);
  }
  g_signal_connect (validator, "changed", G_CALLBACK (count_changed), &changed);
  add_token (db, later, "beta", ", owns", ", '{beta-*}'");
  ZLT_TEST_WAIT_FOR (changed > 0, 10000);
  {
    g_autofree char *owner = zlt_validator_lookup_owner (validator, "beta-web");

    g_assert_cmpstr (owner, ==, "beta");
  }
  assert_accepted (validator, later, "beta");

  /* a revocation is seen by the very next lookup, and announced */
  changed = 0;
  revoke_token (db, alice);
  ZLT_TEST_WAIT_FOR (changed > 0, 10000);
  assert_refused (validator, alice, ZLT_ERROR_BAD_TOKEN, "revoked");
  g_signal_handlers_disconnect_by_data (validator, &changed);
}

static guint
count_done (const Answer *answers, guint n)
{
  guint done = 0;

  for (guint i = 0; i < n; i++)
    done += answers[i].done ? 1 : 0;
  return done;
}

/* A burst of logins larger than one query's batch: every one gets its own answer. */
static void
test_burst (void)
{
  enum
  {
    N_TOKENS = 40,
    N_LOGINS = 600
  };
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autofree char *db = NULL;
  g_autoptr (GString) sql = g_string_new ("INSERT INTO zlt_tokens (token_hash, name) VALUES ");
  char *tokens[N_TOKENS];
  Answer *answers = g_new0 (Answer, N_LOGINS);
  gint64 start;

  if (!pg_available ())
    {
      g_free (answers);
      return;
    }
  db = pg_new_database ();
  /* even ones are in the table, odd ones are not */
  for (guint i = 0; i < N_TOKENS; i++)
    {
      g_autofree char *hash = NULL;

      tokens[i] = new_token ();
      if (i % 2 == 1)
        continue;
      hash = zlt_token_hash_hex (tokens[i]);
      g_string_append_printf (sql, "%s('%s', 'user%u')", i > 0 ? ", " : "", hash, i);
    }
  pg_exec (db, sql->str);
  loader = new_loader ();
  validator = new_validator (loader, db, 0, 0);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < N_LOGINS; i++)
    {
      g_autoptr (ZltCredential) credential = credential_for (tokens[i % N_TOKENS], i % 3 == 0);

      zlt_validator_validate_async (validator, credential, NULL, answered, &answers[i]);
    }
  ZLT_TEST_WAIT_FOR (count_done (answers, N_LOGINS) == N_LOGINS, 30000);
  g_test_message ("%u logins answered in %.1f ms", (guint) N_LOGINS,
                  (g_get_monotonic_time () - start) / 1000.0);
  for (guint i = 0; i < N_LOGINS; i++)
    {
      guint t = i % N_TOKENS;

      if (t % 2 == 0)
        {
          g_autofree char *name = g_strdup_printf ("user%u", t);

          g_assert_no_error (answers[i].error);
          g_assert_cmpstr (zlt_grant_get_name (answers[i].grant), ==, name);
        }
      else
        {
          g_assert_null (answers[i].grant);
          g_assert_error (answers[i].error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
        }
      g_clear_object (&answers[i].grant);
      g_clear_error (&answers[i].error);
    }
  for (guint i = 0; i < N_TOKENS; i++)
    g_free (tokens[i]);
  g_free (answers);
}

static void
use_postgres (ZltTestHarness *h, const char *db)
{
  g_autofree char *conninfo = pg_conninfo (db);

  g_key_file_set_string (h->server_keyfile, "server", "validator", "postgres");
  g_key_file_remove_group (h->server_keyfile, "validator:token-file", NULL);
  g_key_file_set_string (h->server_keyfile, "validator:postgres", "conninfo", conninfo);
}

static void
wait_server_connected (ZltTestHarness *h)
{
  ZLT_TEST_WAIT_FOR (is_connected (zlt_server_get_validator (h->server)), 20000);
}

/* Two servers share the table: revoking a token ends its live tunnels on both at once,
 * and the other token's tunnel stays. */
static void
test_revoke_two_servers (void)
{
  ZltTestHarness a, b;
  g_autofree char *db = NULL;
  g_autofree char *other = NULL;
  g_autoptr (ZltAgent) agent_other = NULL;
  const char *const services[] = { NULL, NULL };
  g_autofree char *service = NULL;
  gint64 start;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  zlt_test_harness_init (&a, PORT_RANGE_A);
  zlt_test_harness_init (&b, PORT_RANGE_B);
  use_postgres (&a, db);
  use_postgres (&b, db);
  /* one principal's token, used on both servers; another principal on b */
  add_token (db, a.token, "alice", NULL, NULL);
  zlt_test_harness_set_agent_token (&b, a.token);
  other = new_token ();
  add_token (db, other, "bob", NULL, NULL);

  zlt_test_harness_start_server (&a);
  zlt_test_harness_start_server (&b);
  wait_server_connected (&a);
  wait_server_connected (&b);
  zlt_test_harness_add_service (&a, "echo", zlt_test_echo_get_port (a.echo), 0);
  zlt_test_harness_add_service (&b, "echo", zlt_test_echo_get_port (b.echo), 0);
  zlt_test_harness_start_agent (&a);
  zlt_test_harness_start_agent (&b);
  zlt_test_harness_wait_registered (&a, "echo");
  zlt_test_harness_wait_registered (&b, "echo");
  service = g_strdup_printf ("echo-bob:%u", zlt_test_echo_get_port (b.echo));
  ((const char **) services)[0] = service;
  agent_other = zlt_test_harness_new_agent (&b, other, services);
  zlt_agent_start (agent_other);
  ZLT_TEST_WAIT_FOR (zlt_agent_get_state (agent_other) == ZLT_TUNNEL_STATE_CONNECTED, 10000);
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (zlt_server_get_registry (b.server)) == 2, 10000);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (a.server)), ==, 1);

  revoke_token (db, a.token);
  start = g_get_monotonic_time ();
  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (zlt_server_get_registry (a.server)) == 0
                         && zlt_registry_get_n_tunnels (zlt_server_get_registry (b.server)) == 1,
                     10000);
  g_test_message ("revocation ended the tunnels on both servers %.1f ms after the commit",
                  (g_get_monotonic_time () - start) / 1000.0);
  /* both agents were told, and do not hammer the servers with a revoked token */
  ZLT_TEST_WAIT_FOR (zlt_agent_get_fatal (a.agent) && zlt_agent_get_fatal (b.agent), 10000);
  g_assert_nonnull (strstr (zlt_agent_get_last_error (a.agent), "revoked"));
  g_assert_nonnull (strstr (zlt_agent_get_last_error (b.agent), "revoked"));
  g_assert_cmpint (zlt_agent_get_state (agent_other), ==, ZLT_TUNNEL_STATE_CONNECTED);

  zlt_agent_stop (agent_other);
  g_clear_object (&agent_other);
  zlt_test_harness_clear (&a);
  zlt_test_harness_clear (&b);
}

/* The database stops: the live tunnel stays, new logins fail closed (and are retried,
 * not given up), offline-grace lets in only a token accepted shortly before; the
 * database comes back and logins work again without restarting anything. */
static void
test_outage (void)
{
  ZltTestHarness h;
  g_autofree char *db = NULL;
  g_autofree char *late = new_token ();
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) strict = NULL;
  g_autoptr (ZltValidator) lenient = NULL;
  g_autoptr (ZltAgent) agent_late = NULL;
  const char *const no_services[] = { NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint changed = 0;
  gint64 start;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  zlt_test_harness_init (&h, PORT_RANGE_A);
  use_postgres (&h, db);
  add_token (db, h.token, "alice", NULL, NULL);
  add_token (db, late, "late", NULL, NULL);
  zlt_test_harness_start_server (&h);
  wait_server_connected (&h);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  zlt_test_harness_wait_registered (&h, "echo");

  loader = new_loader ();
  strict = new_validator (loader, db, 0, 0);
  lenient = new_validator (loader, db, 60, 0);
  g_signal_connect (lenient, "changed", G_CALLBACK (count_changed), &changed);
  /* the lenient one accepts alice once while the database is up */
  assert_accepted (lenient, h.token, "alice");

  pg_stop ();
  ZLT_TEST_WAIT_FOR (!is_connected (strict) && !is_connected (lenient)
                         && !is_connected (zlt_server_get_validator (h.server)),
                     10000);
  /* fail closed: not a bad token (agents retry), but no grant */
  assert_refused (strict, h.token, ZLT_ERROR_FAILED, "unreachable");
  assert_refused (lenient, late, ZLT_ERROR_FAILED, "unreachable");
  /* offline-grace: the token it accepted a moment ago, v1 or v2 */
  assert_accepted (lenient, h.token, "alice");
  /* tokens added at run time (node tunnels) need no database */
  {
    g_autofree char *node_token = new_token ();
    const char *const node_services[] = { "node-link", NULL };
    guint8 hash[ZLT_HASH_SIZE];
    g_autoptr (GError) node_error = NULL;
    g_autoptr (ZltGrant) node_grant = NULL;

    zlt_token_hash_raw (node_token, hash);
    g_assert_true (zlt_validator_add_token (strict, "node-a", hash, node_services, 0, &node_error));
    g_assert_no_error (node_error);
    assert_accepted (strict, node_token, "node-a");
    node_grant = validate (strict, node_token, TRUE, &node_error);
    g_assert_true (zlt_grant_may_register (node_grant, "node-link"));
    g_assert_false (zlt_grant_may_register (node_grant, "web"));
    g_assert_true (zlt_validator_remove_token (strict, "node-a", &node_error));
    assert_refused (strict, node_token, ZLT_ERROR_FAILED, "unreachable");
    g_assert_false (zlt_validator_remove_token (strict, "node-a", &node_error));
    g_assert_error (node_error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  }
  /* a new agent cannot log in; the live tunnel stays */
  agent_late = zlt_test_harness_new_agent (&h, late, no_services);
  zlt_agent_start (agent_late);
  ZLT_TEST_WAIT_FOR (zlt_agent_get_last_error (agent_late) != NULL, 10000);
  g_assert_cmpint (zlt_agent_get_state (agent_late), !=, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_false (zlt_agent_get_fatal (agent_late));
  g_assert_cmpint (zlt_agent_get_state (h.agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (h.server)), ==, 1);

  /* back: the server's validator reconnects by itself, and the waiting agent gets in */
  pg_start ();
  start = g_get_monotonic_time ();
  ZLT_TEST_WAIT_FOR (is_connected (zlt_server_get_validator (h.server)), 20000);
  g_test_message ("the server reconnected %.1f ms after the database was ready",
                  (g_get_monotonic_time () - start) / 1000.0);
  ZLT_TEST_WAIT_FOR (zlt_agent_get_state (agent_late) == ZLT_TUNNEL_STATE_CONNECTED, 20000);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (zlt_server_get_registry (h.server)), ==, 2);
  ZLT_TEST_WAIT_FOR (is_connected (strict) && is_connected (lenient), 20000);
  assert_accepted (strict, late, "late");
  /* notifications sent while away were lost: a reconnect says "changed" */
  ZLT_TEST_WAIT_FOR (changed > 0, 10000);

  grant = validate (strict, h.token, TRUE, &error);
  g_assert_no_error (error);
  g_signal_handlers_disconnect_by_data (lenient, &changed);
  zlt_agent_stop (agent_late);
  g_clear_object (&agent_late);
  zlt_test_harness_clear (&h);
}

/* A revocation made while a server's connection is down (its NOTIFY lost) still ends
 * the live tunnel once the server reconnects. The connection is cut from the
 * database's side (pg_terminate_backend) and the token revoked before this thread
 * runs the server's loop again, so the server cannot have reconnected in between. */
static void
test_revoked_while_away (void)
{
  ZltTestHarness h;
  g_autofree char *db = NULL;
  PGconn *admin;
  g_autofree char *hash = NULL;
  g_autofree char *revoke = NULL;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  zlt_test_harness_init (&h, PORT_RANGE_A);
  use_postgres (&h, db);
  add_token (db, h.token, "alice", NULL, NULL);
  zlt_test_harness_start_server (&h);
  wait_server_connected (&h);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  zlt_test_harness_wait_registered (&h, "echo");

  admin = pg_connect (db);
  pg_exec_on (admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'zlayer-tunnel'");
  hash = zlt_token_hash_hex (h.token);
  revoke = g_strdup_printf ("UPDATE zlt_tokens SET revoked = true WHERE token_hash = '%s'", hash);
  pg_exec_on (admin, revoke);
  PQfinish (admin);

  ZLT_TEST_WAIT_FOR (zlt_registry_get_n_tunnels (zlt_server_get_registry (h.server)) == 0, 20000);
  ZLT_TEST_WAIT_FOR (zlt_agent_get_fatal (h.agent), 10000);
  g_assert_true (is_connected (zlt_server_get_validator (h.server)));
  zlt_test_harness_clear (&h);
}

/* A query the database does not answer within timeout= counts as an outage: the login
 * fails closed instead of hanging, and the validator recovers once the table is free. */
static void
test_query_timeout (void)
{
  g_autofree char *db = NULL;
  g_autofree char *token = new_token ();
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  PGconn *admin;
  gint64 start;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  add_token (db, token, "alice", NULL, NULL);
  loader = new_loader ();
  validator = new_validator (loader, db, 0, 1);

  admin = pg_connect (db);
  pg_exec_on (admin, "BEGIN");
  pg_exec_on (admin, "LOCK TABLE zlt_tokens IN ACCESS EXCLUSIVE MODE");
  start = g_get_monotonic_time ();
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (ZltGrant) grant = validate (validator, token, TRUE, &error);

    g_assert_null (grant);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_FAILED);
  }
  /* timeout=1: well before the 20 s validate() waits at most */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  pg_exec_on (admin, "COMMIT");
  PQfinish (admin);
  ZLT_TEST_WAIT_FOR (is_connected (validator), 20000);
  assert_accepted (validator, token, "alice");
}

/* ---- the rights added after the first schema ---- */

/* The table as the first schema made it: no hostnames, rate_limit_in, rate_limit_out. */
static const char old_schema[]
    = "CREATE TABLE zlt_tokens ("
      "  token_hash text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),"
      "  key_id text GENERATED ALWAYS AS (substr(token_hash, 1, 16)) STORED,"
      "  name text NOT NULL, register text[], reach text[], owns text[],"
      "  expires timestamptz, revoked boolean NOT NULL DEFAULT false,"
      "  created timestamptz NOT NULL DEFAULT now(), comment text);"
      "CREATE INDEX zlt_tokens_key_id ON zlt_tokens (key_id);"
      "CREATE FUNCTION zlt_tokens_notify () RETURNS trigger LANGUAGE plpgsql AS $$"
      "  BEGIN"
      "    IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM pg_notify(TG_TABLE_NAME, OLD.key_id);"
      "    END IF;"
      "    IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM pg_notify(TG_TABLE_NAME, NEW.key_id);"
      "    END IF;"
      "    RETURN NULL;"
      "  END $$;"
      "CREATE TRIGGER zlt_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON zlt_tokens"
      "  FOR EACH ROW EXECUTE FUNCTION zlt_tokens_notify ();";

static char *
pg_new_old_database (void)
{
  g_autofree char *name = g_strdup_printf ("zlt_test_%u", ++pg.n_databases);
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", name);

  pg_ensure ();
  pg_exec ("postgres", create);
  pg_exec (name, old_schema);
  return g_steal_pointer (&name);
}

static void
assert_no_rights (ZltGrant *grant)
{
  g_assert_null (zlt_grant_get_hostnames (grant));
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (grant), ==, 0);
  g_assert_cmpuint (zlt_grant_get_rate_limit_out (grant), ==, 0);
}

/* The rights columns reach the grant: hostnames (in lowercase) and rate limits; NULL,
 * an empty array and 0 are none. The schema's checks refuse bad values. */
static void
test_rights (void)
{
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autofree char *db = NULL;
  g_autofree char *apps = new_token ();
  g_autofree char *plain = new_token ();
  g_autofree char *zero = new_token ();
  g_autofree char *bad_hash = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  static const char *const refused[] = {
    "'{web}', -1, NULL",
    "'{web}', NULL, 9223372036855",
    "'{\"bad host\"}', NULL, NULL",
    "'{a.example.test.}', NULL, NULL",
    "'{*}', NULL, NULL",
  };

  if (!pg_available ())
    return;
  db = pg_new_database ();
  add_token (db, apps, "apps", ", hostnames, rate_limit_in, rate_limit_out",
             ", '{*.apps.example.test,API.Example.Test}', 1000000, 512000");
  add_token (db, plain, "plain", NULL, NULL);
  add_token (db, zero, "zero", ", hostnames, rate_limit_in, rate_limit_out", ", '{}', 0, 0");
  /* the largest rate there is fits */
  update_token (db, zero, "rate_limit_out = 9223372036854");
  update_token (db, zero, "rate_limit_out = 0");
  bad_hash = zlt_token_hash_hex ("zlt_never_stored");
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *sql = g_strdup_printf (
          "INSERT INTO zlt_tokens (token_hash, name, hostnames, rate_limit_in, rate_limit_out) "
          "VALUES ('%s', 'bad', %s)",
          bad_hash, refused[i]);
      g_autofree char *complaint = pg_try_exec (db, sql);

      if (complaint == NULL || strstr (complaint, "zlt_tokens_") == NULL)
        g_error ("the schema let in %s: %s", refused[i], complaint);
    }

  loader = new_loader ();
  validator = new_validator (loader, db, 0, 0);
  for (guint v2 = 0; v2 < 2; v2++)
    {
      grant = validate (validator, apps, v2, &error);
      g_assert_no_error (error);
      g_assert_nonnull (zlt_grant_get_hostnames (grant));
      g_assert_cmpuint (g_strv_length ((char **) zlt_grant_get_hostnames (grant)), ==, 2);
      g_assert_true (zlt_grant_may_claim_hostname (grant, "web.apps.example.test"));
      g_assert_true (zlt_grant_may_claim_hostname (grant, "api.example.test"));
      g_assert_false (zlt_grant_may_claim_hostname (grant, "apps.example.test"));
      g_assert_false (zlt_grant_may_claim_hostname (grant, "web.example.test"));
      g_assert_cmpuint (zlt_grant_get_rate_limit_in (grant), ==, 1000000);
      g_assert_cmpuint (zlt_grant_get_rate_limit_out (grant), ==, 512000);
      /* the rights that were there before are as they were */
      g_assert_true (zlt_grant_may_register (grant, "web"));
      g_clear_object (&grant);
    }
  grant = validate (validator, plain, TRUE, &error);
  g_assert_no_error (error);
  assert_no_rights (grant);
  g_clear_object (&grant);
  grant = validate (validator, zero, TRUE, &error);
  g_assert_no_error (error);
  assert_no_rights (grant);
  g_clear_object (&grant);
}

/* Values the schema would refuse, in a table without its checks (made by hand, or the
 * checks dropped): each refuses that token's logins with its name and the column,
 * never the token; tokens asked about in the same query are answered as usual. */
static void
test_bad_rights (void)
{
  static const struct
  {
    const char *columns;
    const char *values;
    const char *words;
  } bad[] = {
    { ", rate_limit_in", ", -1", "rate_limit_in" },
    { ", rate_limit_out", ", 9223372036855", "rate_limit_out" },
    { ", rate_limit_in", ", -9223372036854775808", "rate_limit_in" },
    { ", hostnames", ", '{\"bad host\"}'", "hostnames" },
    { ", hostnames", ", '{a.example.test.}'", "hostnames" },
    { ", hostnames", ", '{\"a.example.test,b.example.test\"}'", "hostnames" },
    { ", hostnames", ", '{a.example.test,NULL}'", "hostnames" },
    { ", hostnames", ", '{\"\"}'", "hostnames" },
    { ", hostnames", ", '{*}'", "hostnames" },
  };
  enum
  {
    N_BAD = G_N_ELEMENTS (bad)
  };
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autofree char *db = NULL;
  g_autofree char *good = new_token ();
  char *tokens[N_BAD];
  Answer answers[2 * N_BAD + 1] = { { 0 } };
  guint first_log = log_lines->len;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  pg_exec (db, "ALTER TABLE zlt_tokens DROP CONSTRAINT zlt_tokens_hostnames_check, "
               "DROP CONSTRAINT zlt_tokens_rate_limit_in_check, "
               "DROP CONSTRAINT zlt_tokens_rate_limit_out_check");
  add_token (db, good, "good", ", rate_limit_in", ", 2000000");
  for (guint i = 0; i < N_BAD; i++)
    {
      g_autofree char *name = g_strdup_printf ("bad%u", i);

      tokens[i] = new_token ();
      add_token (db, tokens[i], name, bad[i].columns, bad[i].values);
    }
  loader = new_loader ();
  validator = new_validator (loader, db, 0, 0);

  /* all at once (one query), v1 and v2, with a good one among them */
  for (guint i = 0; i < 2 * N_BAD; i++)
    {
      g_autoptr (ZltCredential) credential = credential_for (tokens[i % N_BAD], i >= N_BAD);

      zlt_validator_validate_async (validator, credential, NULL, answered, &answers[i]);
    }
  {
    g_autoptr (ZltCredential) credential = credential_for (good, TRUE);

    zlt_validator_validate_async (validator, credential, NULL, answered, &answers[2 * N_BAD]);
  }
  ZLT_TEST_WAIT_FOR (count_done (answers, G_N_ELEMENTS (answers)) == G_N_ELEMENTS (answers), 20000);
  for (guint i = 0; i < 2 * N_BAD; i++)
    {
      g_autofree char *name = g_strdup_printf ("token bad%u ", i % N_BAD);
      g_autofree char *hash = zlt_token_hash_hex (tokens[i % N_BAD]);

      g_assert_null (answers[i].grant);
      g_assert_error (answers[i].error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
      if (strstr (answers[i].error->message, name) == NULL
          || strstr (answers[i].error->message, bad[i % N_BAD].words) == NULL)
        g_error ("‘%s’ does not name %s and %s", answers[i].error->message, name,
                 bad[i % N_BAD].words);
      g_assert_null (strstr (answers[i].error->message, tokens[i % N_BAD]));
      g_assert_null (strstr (answers[i].error->message, hash));
      g_clear_error (&answers[i].error);
    }
  g_assert_no_error (answers[2 * N_BAD].error);
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (answers[2 * N_BAD].grant), ==, 2000000);
  g_clear_object (&answers[2 * N_BAD].grant);
  /* the validator is unharmed: the good one again, alone */
  assert_accepted (validator, good, "good");

  /* the log says which token and column, and holds no token nor hash */
  g_assert_cmpuint (count_logged (first_log, "token bad0 has an invalid rate_limit_in"), >, 0);
  g_assert_cmpuint (count_logged (first_log, "token bad3 has an invalid hostnames"), >, 0);
  for (guint i = 0; i < N_BAD; i++)
    {
      g_autofree char *hash = zlt_token_hash_hex (tokens[i]);

      g_assert_cmpuint (count_logged (first_log, tokens[i]), ==, 0);
      g_assert_cmpuint (count_logged (first_log, hash), ==, 0);
      g_free (tokens[i]);
    }
}

/* A table of the first schema keeps working: tokens get in with what they had, no
 * hostnames and no rate limits, and that is logged once. Applying the shipped schema
 * (twice: it is idempotent) upgrades it in place, and the next change of a row makes
 * the connected validator read the new columns. */
static void
test_old_schema (void)
{
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autofree char *db = NULL;
  g_autofree char *alice = new_token ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint first_log = log_lines->len;
  guint changed = 0;

  if (!pg_available ())
    return;
  db = pg_new_old_database ();
  add_token (db, alice, "alice", ", register", ", '{web}'");
  loader = new_loader ();
  validator = new_validator (loader, db, 0, 0);
  g_signal_connect (validator, "changed", G_CALLBACK (count_changed), &changed);

  for (guint i = 0; i < 3; i++)
    assert_accepted (validator, alice, "alice");
  grant = validate (validator, alice, TRUE, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_grant_may_register (grant, "web"));
  g_assert_false (zlt_grant_may_register (grant, "db"));
  assert_no_rights (grant);
  g_clear_object (&grant);
  /* a change of a row looks at the columns again: still missing, not logged again */
  update_token (db, alice, "comment = 'touched'");
  ZLT_TEST_WAIT_FOR (changed > 0, 10000);
  assert_accepted (validator, alice, "alice");
  g_assert_cmpuint (count_logged (first_log, "not reading hostnames: no such column, "
                                             "rate_limit_in: no such column, rate_limit_out: "
                                             "no such column"),
                    ==, 1);

  /* the upgrade, applied twice */
  pg_apply_schema (db);
  pg_apply_schema (db);
  assert_accepted (validator, alice, "alice");
  changed = 0;
  update_token (db, alice, "rate_limit_in = 3000000, hostnames = '{web.example.test}'");
  ZLT_TEST_WAIT_FOR (changed > 0, 10000);
  grant = validate (validator, alice, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (grant), ==, 3000000);
  g_assert_cmpuint (zlt_grant_get_rate_limit_out (grant), ==, 0);
  g_assert_true (zlt_grant_may_claim_hostname (grant, "web.example.test"));
  g_assert_true (zlt_grant_may_register (grant, "web"));
  g_assert_cmpuint (count_logged (first_log, "reading the hostnames and rate limits"), ==, 1);
  g_signal_handlers_disconnect_by_data (validator, &changed);
}

/* Columns of a type the validator cannot read are left out (and said so); a column
 * dropped while the validator is connected (no NOTIFY comes of it) fails no login: the
 * lookup is made again for the columns that are left. */
static void
test_odd_columns (void)
{
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) odd = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autofree char *odd_db = NULL;
  g_autofree char *db = NULL;
  g_autofree char *alice = new_token ();
  g_autofree char *bob = new_token ();
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  guint first_log = log_lines->len;

  if (!pg_available ())
    return;
  odd_db = pg_new_old_database ();
  pg_exec (odd_db, "ALTER TABLE zlt_tokens ADD COLUMN hostnames text, "
                   "ADD COLUMN rate_limit_in boolean");
  add_token (odd_db, alice, "alice", ", hostnames, rate_limit_in", ", 'web.example.test', true");
  loader = new_loader ();
  odd = new_validator (loader, odd_db, 0, 0);
  assert_accepted (odd, alice, "alice");
  grant = validate (odd, alice, TRUE, &error);
  g_assert_no_error (error);
  assert_no_rights (grant);
  g_clear_object (&grant);
  g_assert_cmpuint (count_logged (first_log, "not reading hostnames: not text[], rate_limit_in: "
                                             "not an integer, rate_limit_out: no such column"),
                    ==, 1);

  db = pg_new_database ();
  add_token (db, bob, "bob", ", rate_limit_in, rate_limit_out", ", 1000000, 2000000");
  validator = new_validator (loader, db, 0, 0);
  grant = validate (validator, bob, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (grant), ==, 1000000);
  g_clear_object (&grant);
  pg_exec (db, "ALTER TABLE zlt_tokens DROP COLUMN rate_limit_in");
  grant = validate (validator, bob, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_grant_get_rate_limit_in (grant), ==, 0);
  g_assert_cmpuint (zlt_grant_get_rate_limit_out (grant), ==, 2000000);
  g_assert_cmpuint (count_logged (first_log, "not reading rate_limit_in: no such column"), ==, 1);
  assert_accepted (validator, bob, "bob");
}

static ZltService *
wait_agent_service (ZltTestHarness *h, const char *name, ZltServiceState state)
{
  ZltService *service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (h->agent), name);

  g_assert_nonnull (service);
  ZLT_TEST_WAIT_FOR (zlt_service_get_state (service) == state, 10000);
  return service;
}

/* A server with the postgres validator holds a token to the rights of its row: the
 * rate limits show on its tunnel, a hostname it may claim is routed, one it may not is
 * refused. An UPDATE of the row reaches the live tunnel through NOTIFY: the new limits
 * show, and a hostname no longer covered loses its route. */
static void
test_rights_live (void)
{
  ZltTestHarness h;
  g_autofree char *db = NULL;
  ZltService *service;
  ZltTunnel *tunnel;
  gint64 start;

  if (!pg_available ())
    return;
  db = pg_new_database ();
  zlt_test_harness_init (&h, PORT_RANGE_A);
  use_postgres (&h, db);
  g_key_file_set_string (h.server_keyfile, "server", "http-listen", "127.0.0.1:0");
  g_key_file_set_string (h.server_keyfile, "server", "hostname-domains", "*.apps.example.test");
  add_token (db, h.token, "apps", ", hostnames, rate_limit_in, rate_limit_out",
             ", '{a.apps.example.test,c.apps.example.test}', 1000000, 512000");
  zlt_test_harness_add_service (&h, "a", zlt_test_echo_get_port (h.echo), 0);
  g_key_file_set_string (h.agent_keyfile, "service:a", "hostname", "a.apps.example.test");
  zlt_test_harness_add_service (&h, "b", zlt_test_echo_get_port (h.echo), 0);
  g_key_file_set_string (h.agent_keyfile, "service:b", "hostname", "b.apps.example.test");
  zlt_test_harness_add_service (&h, "c", zlt_test_echo_get_port (h.echo), 0);
  g_key_file_set_string (h.agent_keyfile, "service:c", "hostname", "c.apps.example.test");
  zlt_test_harness_start_server (&h);
  wait_server_connected (&h);
  zlt_test_harness_start_agent (&h);
  wait_agent_service (&h, "a", ZLT_SERVICE_STATE_REGISTERED);
  wait_agent_service (&h, "c", ZLT_SERVICE_STATE_REGISTERED);
  service = wait_agent_service (&h, "b", ZLT_SERVICE_STATE_REFUSED);
  g_assert_nonnull (strstr (zlt_service_get_last_error (service), "not allowed to claim hostname"));
  g_assert_nonnull (zlt_server_lookup_hostname (h.server, "a.apps.example.test"));
  g_assert_null (zlt_server_lookup_hostname (h.server, "b.apps.example.test"));
  tunnel = zlt_test_harness_server_tunnel_of (&h, "apps");
  g_assert_nonnull (tunnel);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_in (tunnel), ==, 1000000);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_out (tunnel), ==, 512000);

  /* one UPDATE: new limits, a.* no longer covered, c.* still */
  update_token (db, h.token,
                "rate_limit_in = 2000000, rate_limit_out = NULL, "
                "hostnames = '{c.apps.example.test}'");
  start = g_get_monotonic_time ();
  ZLT_TEST_WAIT_FOR (zlt_tunnel_get_rate_limit_in (tunnel) == 2000000
                         && zlt_server_lookup_hostname (h.server, "a.apps.example.test") == NULL,
                     10000);
  g_test_message ("the UPDATE reached the live tunnel %.1f ms after the commit",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_assert_cmpuint (zlt_tunnel_get_rate_limit_out (tunnel), ==, 0);
  g_assert_nonnull (zlt_server_lookup_hostname (h.server, "c.apps.example.test"));
  /* the tunnel itself stays */
  g_assert_true (zlt_test_harness_server_tunnel_of (&h, "apps") == tunnel);
  g_assert_cmpint (zlt_agent_get_state (h.agent), ==, ZLT_TUNNEL_STATE_CONNECTED);
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  log_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  pg.bindir = pg_find_bindir ();
  g_test_add_func ("/postgres/config", test_config);
  g_test_add_func ("/postgres/validate", test_validate);
  g_test_add_func ("/postgres/burst", test_burst);
  g_test_add_func ("/postgres/revoke-two-servers", test_revoke_two_servers);
  g_test_add_func ("/postgres/outage", test_outage);
  g_test_add_func ("/postgres/revoked-while-away", test_revoked_while_away);
  g_test_add_func ("/postgres/query-timeout", test_query_timeout);
  g_test_add_func ("/postgres/rights", test_rights);
  g_test_add_func ("/postgres/rights/bad", test_bad_rights);
  g_test_add_func ("/postgres/rights/old-schema", test_old_schema);
  g_test_add_func ("/postgres/rights/odd-columns", test_odd_columns);
  g_test_add_func ("/postgres/rights/live", test_rights_live);
  ret = g_test_run ();
  pg_shutdown ();
  g_ptr_array_unref (log_lines);
  return ret;
}
