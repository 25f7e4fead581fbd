/* test-plugin-loader.c: finding, checking and loading plugins; the transport and
 * validator bases through a loaded test plugin */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "zlayer-tunnel.h"

/* A directory with the good plugin and every kind of bad one, all mode 0644. The good
 * plugin can be loaded from one path per process only (its types are static), so every
 * test that needs it uses this one directory. */
static char *plugin_dir = NULL;

static char *
test_plugin_source (const char *name)
{
  return g_test_build_filename (G_TEST_BUILT, "plugins", name, NULL);
}

static void
copy_file (const char *src, const char *dest, int mode)
{
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_get_contents (src, &contents, &len, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (dest, contents, len, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (dest, mode), ==, 0);
}

static char *
make_dir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("zlt-plugins-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

/* copies plugin @name from the build tree into @dir as @dest_name */
static char *
stage (const char *dir, const char *name, const char *dest_name, int mode)
{
  g_autofree char *src = test_plugin_source (name);
  char *dest = g_build_filename (dir, dest_name != NULL ? dest_name : name, NULL);

  copy_file (src, dest, mode);
  return dest;
}

static void
remove_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        remove_dir (path);
      else
        g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static const char *
skipped_reason (ZltPluginLoader *loader, const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  return g_hash_table_lookup (zlt_plugin_loader_get_skipped (loader), path);
}

static void
assert_reason_contains (ZltPluginLoader *loader, const char *dir, const char *name,
                        const char *needle)
{
  const char *reason = skipped_reason (loader, dir, name);

  if (reason == NULL)
    g_error ("%s was not skipped", name);
  if (strstr (reason, needle) == NULL)
    g_error ("reason for %s is ‘%s’, expected it to mention ‘%s’", name, reason, needle);
}

static ZltPluginLoader *
load_good_dir (void)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (plugin_dir);
  g_autoptr (GError) error = NULL;

  g_assert_true (zlt_plugin_loader_load_all (loader, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&loader);
}

static void
test_plugin_loader_load (void)
{
  g_autoptr (ZltPluginLoader) loader = load_good_dir ();
  g_autoptr (ZltTransport) transport = NULL;
  g_autoptr (ZltTransport) missing = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) transports = NULL;
  g_auto (GStrv) validators = NULL;
  GPtrArray *loaded;
  g_autofree char *good_path = g_build_filename (plugin_dir, "libzlt-test.so", NULL);

  g_assert_cmpstr (zlt_plugin_loader_get_directory (loader), ==, plugin_dir);

  /* exactly the good plugin loaded */
  loaded = zlt_plugin_loader_get_loaded (loader);
  g_assert_cmpuint (loaded->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (loaded, 0), ==, good_path);
  transports = zlt_plugin_loader_list_transports (loader);
  validators = zlt_plugin_loader_list_validators (loader);
  g_assert_cmpstrv (transports, ((const char *[]){ "test", NULL }));
  g_assert_cmpstrv (validators, ((const char *[]){ "test", "test-insecure", NULL }));
  g_assert_true (
      g_type_is_a (zlt_plugin_loader_get_transport_type (loader, "test"), ZLT_TYPE_TRANSPORT));
  g_assert_true (
      g_type_is_a (zlt_plugin_loader_get_validator_type (loader, "test"), ZLT_TYPE_VALIDATOR));

  /* every bad one skipped, with a reason that says why */
  g_assert_cmpuint (g_hash_table_size (zlt_plugin_loader_get_skipped (loader)), ==, 4);
  assert_reason_contains (loader, plugin_dir, "libzlt-badabi.so", "ABI version 42, expected 1");
  assert_reason_contains (loader, plugin_dir, "libzlt-foreign.so", "not a zlt plugin");
  assert_reason_contains (loader, plugin_dir, "libzlt-garbage.so", "cannot open");
  assert_reason_contains (loader, plugin_dir, "libzlt-failing.so", "refusing on purpose");
  /* a failed registration leaves nothing behind */
  g_assert_true (zlt_plugin_loader_get_transport_type (loader, "failing") == G_TYPE_INVALID);

  /* instances */
  transport = zlt_plugin_loader_new_transport (loader, "test", &error);
  g_assert_no_error (error);
  g_assert_true (ZLT_IS_TRANSPORT (transport));
  g_assert_cmpstr (zlt_transport_get_name (transport), ==, "test");
  g_assert_cmpint (zlt_transport_get_protocol (transport), ==, ZLT_PROTOCOL_TCP);

  missing = zlt_plugin_loader_new_transport (loader, "carrier-pigeon", &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  g_assert_null (missing);
  g_assert_nonnull (strstr (error->message, "available: test"));

  /* loading again changes nothing */
  g_assert_true (zlt_plugin_loader_load_all (loader, NULL));
  g_assert_cmpuint (zlt_plugin_loader_get_loaded (loader)->len, ==, 1);
}

static void
test_plugin_loader_second_loader (void)
{
  g_autoptr (ZltPluginLoader) a = load_good_dir ();
  g_autoptr (ZltPluginLoader) b = load_good_dir ();

  /* the same resident module registers the same types with every loader */
  g_assert_true (zlt_plugin_loader_get_transport_type (a, "test")
                 == zlt_plugin_loader_get_transport_type (b, "test"));
  g_assert_cmpuint (zlt_plugin_loader_get_loaded (b)->len, ==, 1);
}

static void
test_plugin_loader_duplicate_copy (void)
{
  G_GNUC_UNUSED g_autoptr (ZltPluginLoader) first = load_good_dir ();
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autofree char *dir = make_dir ();
  G_GNUC_UNUSED g_autofree char *copy = stage (dir, "libzlt-test.so", NULL, 0644);

  /* another file of the same name would register the same type names again */
  loader = zlt_plugin_loader_new (dir);
  g_assert_true (zlt_plugin_loader_load_all (loader, NULL));
  assert_reason_contains (loader, dir, "libzlt-test.so", "already loaded from");
  g_assert_cmpuint (zlt_plugin_loader_get_loaded (loader)->len, ==, 0);
  remove_dir (dir);
}

static void
test_plugin_loader_unsafe_files (void)
{
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autofree char *dir = make_dir ();
  G_GNUC_UNUSED g_autofree char *ww
      = stage (dir, "libzlt-test.so", "libzlt-world-writable.so", 0666);
  G_GNUC_UNUSED g_autofree char *gw
      = stage (dir, "libzlt-test.so", "libzlt-group-writable.so", 0664);
  g_autofree char *subdir = g_build_filename (dir, "libzlt-directory.so", NULL);
  G_GNUC_UNUSED g_autofree char *ignored
      = stage (dir, "libzlt-test.so", "zlt-not-named-right.so", 0644);
  gboolean check_owner = geteuid () == 0;

  g_assert_cmpint (g_mkdir (subdir, 0755), ==, 0);
  if (check_owner)
    {
      g_autofree char *other = stage (dir, "libzlt-test.so", "libzlt-other-owner.so", 0644);

      /* only root can give a file away */
      g_assert_cmpint (chown (other, 65534, 65534), ==, 0);
    }

  loader = zlt_plugin_loader_new (dir);
  g_assert_true (zlt_plugin_loader_load_all (loader, NULL));
  g_assert_cmpuint (zlt_plugin_loader_get_loaded (loader)->len, ==, 0);
  assert_reason_contains (loader, dir, "libzlt-world-writable.so", "unsafe permissions");
  assert_reason_contains (loader, dir, "libzlt-world-writable.so", "0666");
  assert_reason_contains (loader, dir, "libzlt-group-writable.so", "unsafe permissions");
  assert_reason_contains (loader, dir, "libzlt-directory.so", "not a regular file");
  g_assert_null (skipped_reason (loader, dir, "zlt-not-named-right.so"));
  if (check_owner)
    assert_reason_contains (loader, dir, "libzlt-other-owner.so", "unsafe owner");
  else
    g_test_message ("not root: the foreign-owner case needs chown and was left out");
  g_assert_cmpuint (zlt_plugin_loader_get_transport_type (loader, "test"), ==, G_TYPE_INVALID);
  remove_dir (dir);
}

static void
test_plugin_loader_env (void)
{
  g_autofree char *saved = g_strdup (g_getenv ("ZLT_PLUGIN_DIR"));
  g_autofree char *dir = make_dir ();
  G_GNUC_UNUSED g_autofree char *ww = stage (dir, "libzlt-test.so", "libzlt-env.so", 0666);
  g_autoptr (ZltPluginLoader) from_env = NULL;
  g_autoptr (ZltPluginLoader) from_arg = NULL;
  g_autoptr (ZltPluginLoader) fallback = NULL;

  g_autofree char *env_path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, dir, ZLT_PLUGINDIR, NULL);

  /* $ZLT_PLUGIN_DIR adds to the installed directory, searched first */
  g_assert_true (g_setenv ("ZLT_PLUGIN_DIR", dir, TRUE));
  from_env = zlt_plugin_loader_new (NULL);
  g_assert_cmpstr (zlt_plugin_loader_get_directory (from_env), ==, env_path);
  g_assert_true (zlt_plugin_loader_load_all (from_env, NULL));
  assert_reason_contains (from_env, dir, "libzlt-env.so", "unsafe permissions");

  /* an explicit directory wins over the environment */
  from_arg = zlt_plugin_loader_new (plugin_dir);
  g_assert_cmpstr (zlt_plugin_loader_get_directory (from_arg), ==, plugin_dir);

  g_unsetenv ("ZLT_PLUGIN_DIR");
  fallback = zlt_plugin_loader_new (NULL);
  g_assert_cmpstr (zlt_plugin_loader_get_directory (fallback), ==, ZLT_PLUGINDIR);

  if (saved != NULL)
    g_setenv ("ZLT_PLUGIN_DIR", saved, TRUE);
  remove_dir (dir);
}

/* a search path: directories in order, an earlier file name shadowing a later one */
static void
test_plugin_loader_search_path (void)
{
  g_autofree char *saved = g_strdup (g_getenv ("ZLT_PLUGIN_DIR"));
  g_autofree char *first = make_dir ();
  G_GNUC_UNUSED g_autofree char *shadow
      = stage (first, "libzlt-badabi.so", "libzlt-garbage.so", 0644);
  g_autofree char *path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, first, "", plugin_dir, first, NULL);
  g_autofree char *missing_path
      = g_strjoin (G_SEARCHPATH_SEPARATOR_S, plugin_dir, "/nonexistent/zlt-plugins", NULL);
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (path);
  g_autoptr (ZltPluginLoader) from_env = NULL;
  g_autoptr (ZltPluginLoader) missing = zlt_plugin_loader_new (missing_path);
  g_autoptr (GError) error = NULL;
  const char *const *dirs = zlt_plugin_loader_get_directories (loader);

  /* empty entries and repeats are dropped */
  g_assert_cmpuint (g_strv_length ((GStrv) dirs), ==, 2);
  g_assert_cmpstr (dirs[0], ==, first);
  g_assert_cmpstr (dirs[1], ==, plugin_dir);

  g_assert_true (zlt_plugin_loader_load_all (loader, &error));
  g_assert_no_error (error);
  /* the first directory's libzlt-garbage.so (a bad ABI here) was tried, the second's
   * (not a shared object) not */
  assert_reason_contains (loader, first, "libzlt-garbage.so", "ABI");
  g_assert_null (skipped_reason (loader, plugin_dir, "libzlt-garbage.so"));
  /* the second directory's plugins were loaded */
  g_assert_cmpuint (zlt_plugin_loader_get_transport_type (loader, "test"), !=, G_TYPE_INVALID);
  assert_reason_contains (loader, plugin_dir, "libzlt-badabi.so", "ABI");

  /* from the environment: the same list, then the installed directory, which may be
   * absent without failing the load */
  g_assert_true (g_setenv ("ZLT_PLUGIN_DIR", path, TRUE));
  from_env = zlt_plugin_loader_new (NULL);
  dirs = zlt_plugin_loader_get_directories (from_env);
  g_assert_cmpuint (g_strv_length ((GStrv) dirs), ==, 3);
  g_assert_cmpstr (dirs[0], ==, first);
  g_assert_cmpstr (dirs[1], ==, plugin_dir);
  g_assert_cmpstr (dirs[2], ==, ZLT_PLUGINDIR);
  if (!g_file_test (ZLT_PLUGINDIR, G_FILE_TEST_EXISTS))
    g_assert_true (zlt_plugin_loader_load_all (from_env, NULL));

  /* a directory given explicitly must be there */
  g_assert_false (zlt_plugin_loader_load_all (missing, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN);
  g_assert_nonnull (strstr (error->message, "/nonexistent/zlt-plugins"));

  if (saved != NULL)
    g_setenv ("ZLT_PLUGIN_DIR", saved, TRUE);
  else
    g_unsetenv ("ZLT_PLUGIN_DIR");
  remove_dir (first);
}

static void
test_plugin_loader_missing_dir (void)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new ("/nonexistent/zlt-plugins");
  g_autoptr (GError) error = NULL;

  g_assert_false (zlt_plugin_loader_load_all (loader, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN);
  g_assert_nonnull (strstr (error->message, "/nonexistent/zlt-plugins"));
}

static void
test_plugin_loader_add_types (void)
{
  g_autoptr (ZltPluginLoader) good = load_good_dir ();
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (plugin_dir);
  GType test_type = zlt_plugin_loader_get_transport_type (good, "test");
  GType validator_type = zlt_plugin_loader_get_validator_type (good, "test");
  g_autoptr (GError) error = NULL;

  /* a host can add built-in types without loading anything */
  g_assert_true (zlt_plugin_loader_add_transport_type (loader, test_type, &error));
  g_assert_no_error (error);
  /* the same type twice is harmless */
  g_assert_true (zlt_plugin_loader_add_transport_type (loader, test_type, &error));
  g_assert_no_error (error);
  g_assert_true (zlt_plugin_loader_get_transport_type (loader, "test") == test_type);

  g_assert_false (zlt_plugin_loader_add_transport_type (loader, G_TYPE_OBJECT, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN);
  g_clear_error (&error);
  g_assert_false (zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_TRANSPORT, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN);
  g_clear_error (&error);
  g_assert_false (zlt_plugin_loader_add_transport_type (loader, validator_type, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN);
  g_clear_error (&error);
  g_assert_false (zlt_plugin_loader_add_validator_type (loader, test_type, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN);
}

/* transport through the loaded plugin */

typedef struct
{
  GIOStream *accepted;
  GSocketAddress *peer;
  GIOStream *dialed;
  GError *dial_error;
  gboolean dial_done;
  guint closed_notifies;
} DialState;

static void
incoming_cb (ZltListener *listener, GIOStream *stream, GSocketAddress *peer, gpointer user_data)
{
  DialState *state = user_data;

  g_set_object (&state->accepted, stream);
  g_set_object (&state->peer, peer);
}

static void
dial_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DialState *state = user_data;

  state->dialed = zlt_transport_dial_finish (ZLT_TRANSPORT (source), result, &state->dial_error);
  state->dial_done = TRUE;
}

static void
closed_cb (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  DialState *state = user_data;

  state->closed_notifies++;
}

static gboolean
timeout_cb (gpointer user_data)
{
  g_error ("timed out");
  return G_SOURCE_REMOVE;
}

/* The real tcp transport (the agent dials local services with it): the connect timeout
 * is for the connect only, not left on the socket, where it would end a connection that
 * is quiet for that long (wss:// relays wait through GSocket sources and saw it). */
static void
test_tcp_dial_leaves_no_timeout (void)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  g_autoptr (ZltTransport) transport = NULL;
  g_autoptr (ZltListener) listener = NULL;
  g_autoptr (GError) error = NULL;
  DialState state = { 0 };

  g_assert_true (zlt_plugin_loader_load_all (loader, &error));
  g_assert_no_error (error);
  transport = zlt_plugin_loader_new_transport (loader, "tcp", &error);
  g_assert_no_error (error);
  listener = zlt_transport_listen (transport, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  g_signal_connect (listener, "incoming", G_CALLBACK (incoming_cb), &state);
  zlt_transport_dial_async (transport, "127.0.0.1", zlt_listener_get_port (listener), NULL, dial_cb,
                            &state);
  while (!state.dial_done || state.accepted == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (state.dial_error);
  g_assert_true (G_IS_SOCKET_CONNECTION (state.dialed));
  g_assert_cmpuint (
      g_socket_get_timeout (g_socket_connection_get_socket (G_SOCKET_CONNECTION (state.dialed))),
      ==, 0);
  zlt_listener_close (listener);
  g_clear_object (&state.dialed);
  g_clear_object (&state.accepted);
  g_clear_object (&state.peer);
}

static gboolean
flag_cb (gpointer user_data)
{
  gboolean *flag = user_data;

  *flag = TRUE;
  return G_SOURCE_REMOVE;
}

/* Dials @host:@port with the tcp transport while a default-priority source is ready, and runs
 * one non-blocking iteration: a dial that completes at once (loopback, a refusal) calls
 * back in it, ahead of the idle, never inside zlt_transport_dial_async(). */
static void
dial_at_once (ZltTransport *transport, const char *host, guint16 port, DialState *state)
{
  gboolean idle_ran = FALSE;
  g_autoptr (GSource) idle = g_idle_source_new ();

  /* as urgent as a socket that is ready (an idle's own default is lower) */
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (idle, flag_cb, &idle_ran, NULL);
  g_source_attach (idle, NULL);
  state->dial_done = FALSE;
  zlt_transport_dial_async (transport, host, port, NULL, dial_cb, state);
  g_assert_false (state->dial_done);
  g_main_context_iteration (NULL, FALSE);
  g_assert_true (state->dial_done);
  g_assert_false (idle_ran);
  g_source_destroy (idle);
}

/* A port on @lo that nothing listens on (bound, then closed). */
static guint16
closed_port (GInetAddress *lo)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) probe = g_socket_new (g_inet_address_get_family (lo), G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_no_error (error);
  g_socket_bind (probe, any, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (probe, &error);
  g_assert_no_error (error);
  g_socket_close (probe, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* The tcp transport dials an address on loopback with a connect() that completes at
 * once: connected, refused (with the address in the message) or cancelled, each in
 * the next iteration and ahead of what else is ready, on 127.0.0.1 and on ::1. A
 * cancel after the connect completed still ends in G_IO_ERROR_CANCELLED, and the
 * connection made is closed, not leaked. A host name still goes through the resolver. */
static void
test_tcp_dial_at_once (void)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  g_autoptr (ZltTransport) transport = NULL;
  g_autoptr (GError) error = NULL;
  const char *hosts[] = { "127.0.0.1", "::1" };
  guint timeout_id = g_timeout_add_seconds (20, timeout_cb, NULL);

  g_assert_true (zlt_plugin_loader_load_all (loader, &error));
  g_assert_no_error (error);
  transport = zlt_plugin_loader_new_transport (loader, "tcp", &error);
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (hosts); i++)
    {
      g_autoptr (GInetAddress) lo = g_inet_address_new_from_string (hosts[i]);
      g_autoptr (ZltListener) listener = NULL;
      g_autoptr (GCancellable) cancellable = g_cancellable_new ();
      g_autofree char *where = NULL;
      DialState state = { 0 };
      guint8 byte;
      guint16 port;
      gssize n;

      listener = zlt_transport_listen (transport, hosts[i], 0, &error);
      if (listener == NULL && i > 0)
        {
          g_test_message ("no %s here: %s", hosts[i], error->message);
          g_clear_error (&error);
          continue;
        }
      g_assert_no_error (error);
      g_signal_connect (listener, "incoming", G_CALLBACK (incoming_cb), &state);
      port = zlt_listener_get_port (listener);

      /* connected */
      dial_at_once (transport, hosts[i], port, &state);
      g_assert_no_error (state.dial_error);
      g_assert_true (G_IS_SOCKET_CONNECTION (state.dialed));
      g_assert_true (g_socket_connection_is_connected (G_SOCKET_CONNECTION (state.dialed)));
      g_clear_object (&state.dialed);
      while (state.accepted == NULL)
        g_main_context_iteration (NULL, TRUE);
      g_clear_object (&state.accepted);

      /* refused */
      port = closed_port (lo);
      dial_at_once (transport, hosts[i], port, &state);
      g_assert_null (state.dialed);
      g_assert_error (state.dial_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
      where = i == 0 ? g_strdup_printf ("127.0.0.1:%u", port) : g_strdup_printf ("[::1]:%u", port);
      g_assert_nonnull (strstr (state.dial_error->message, where));
      g_clear_error (&state.dial_error);

      /* cancelled after the connect completed, before the callback: the connection
       * that was made is dropped, closed (its peer reads the end) */
      state.dial_done = FALSE;
      zlt_transport_dial_async (transport, hosts[i], zlt_listener_get_port (listener), cancellable,
                                dial_cb, &state);
      g_cancellable_cancel (cancellable);
      while (!state.dial_done || state.accepted == NULL)
        g_main_context_iteration (NULL, TRUE);
      g_assert_null (state.dialed);
      g_assert_error (state.dial_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&state.dial_error);
      n = g_input_stream_read (g_io_stream_get_input_stream (state.accepted), &byte, 1, NULL,
                               &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 0);
      g_clear_object (&state.accepted);

      /* a host name: the resolver, then the same connection */
      if (i == 0)
        {
          state.dial_done = FALSE;
          zlt_transport_dial_async (transport, "localhost", zlt_listener_get_port (listener), NULL,
                                    dial_cb, &state);
          while (!state.dial_done || state.accepted == NULL)
            g_main_context_iteration (NULL, TRUE);
          g_assert_no_error (state.dial_error);
          g_assert_true (G_IS_SOCKET_CONNECTION (state.dialed));
          g_clear_object (&state.dialed);
          g_clear_object (&state.accepted);
        }
      zlt_listener_close (listener);
      g_clear_object (&state.peer);
    }
  g_source_remove (timeout_id);
}

static void
test_plugin_loader_transport (void)
{
  g_autoptr (ZltPluginLoader) loader = load_good_dir ();
  g_autoptr (ZltTransport) transport = zlt_plugin_loader_new_transport (loader, "test", NULL);
  g_autoptr (ZltListener) listener = NULL;
  g_autoptr (ZltListener) bad = NULL;
  g_autoptr (GError) error = NULL;
  DialState state = { 0 };
  guint16 port;
  guint timeout_id = g_timeout_add_seconds (10, timeout_cb, NULL);

  listener = zlt_transport_listen (transport, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  port = zlt_listener_get_port (listener);
  g_assert_cmpuint (port, !=, 0);
  g_signal_connect (listener, "incoming", G_CALLBACK (incoming_cb), &state);
  g_signal_connect (listener, "notify::closed", G_CALLBACK (closed_cb), &state);

  zlt_transport_dial_async (transport, "127.0.0.1", port, NULL, dial_cb, &state);
  while (!state.dial_done || state.accepted == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (state.dial_error);
  g_assert_true (G_IS_IO_STREAM (state.dialed));
  g_assert_true (G_IS_INET_SOCKET_ADDRESS (state.peer));

  zlt_listener_close (listener);
  zlt_listener_close (listener);
  g_assert_true (zlt_listener_is_closed (listener));
  g_assert_cmpuint (state.closed_notifies, ==, 1);

  /* nobody listens any more */
  state.dial_done = FALSE;
  g_clear_object (&state.dialed);
  zlt_transport_dial_async (transport, "127.0.0.1", port, NULL, dial_cb, &state);
  while (!state.dial_done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (state.dialed);
  g_assert_error (state.dial_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);

  /* a listen error carries the address */
  bad = zlt_transport_listen (transport, "not-an-address", 0, &error);
  g_assert_null (bad);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "not-an-address"));

  g_source_remove (timeout_id);
  g_clear_error (&state.dial_error);
  g_clear_object (&state.accepted);
  g_clear_object (&state.peer);
}

/* validators through the loaded plugin */

typedef struct
{
  ZltGrant *grant;
  GError *error;
  gboolean done;
} ValidateState;

static void
validate_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ValidateState *state = user_data;

  state->grant = zlt_validator_validate_finish (ZLT_VALIDATOR (source), result, &state->error);
  state->done = TRUE;
}

/* returns the grant or NULL with @error set */
static ZltGrant *
validate (ZltValidator *validator, const ZltCredential *credential, GError **error)
{
  ValidateState state = { 0 };

  zlt_validator_validate_async (validator, credential, NULL, validate_cb, &state);
  /* the result always comes from the main loop, never from inside the call */
  g_assert_false (state.done);
  while (!state.done)
    g_main_context_iteration (NULL, TRUE);
  if (state.error != NULL)
    g_propagate_error (error, state.error);
  return state.grant;
}

static ZltCredential *
make_proof (const char *token, const guint8 *proof_hash_override)
{
  guint8 hash[ZLT_HASH_SIZE];
  guint8 nonce[ZLT_NONCE_SIZE];
  guint8 proof[ZLT_HASH_SIZE];
  g_autofree char *key_id = zlt_token_key_id (token);
  ZltUuid client_id;

  zlt_token_hash_raw (token, hash);
  zlt_random_bytes (nonce, sizeof (nonce));
  zlt_uuid_generate (&client_id);
  zlt_auth_proof (proof_hash_override != NULL ? proof_hash_override : hash, nonce, &client_id,
                  proof);
  return zlt_credential_new_proof (key_id, nonce, &client_id, proof);
}

static void
test_plugin_loader_validator (void)
{
  g_autoptr (ZltPluginLoader) loader = load_good_dir ();
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltCredential) v1 = zlt_credential_new_token ("secret-token");
  g_autoptr (ZltCredential) v1_wrong = zlt_credential_new_token ("secret-tokem");
  g_autoptr (ZltCredential) v2 = make_proof ("secret-token", NULL);
  g_autoptr (ZltCredential) v2_wrong = NULL;
  g_autoptr (ZltCredential) bob = zlt_credential_new_token ("bob-token");
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (ZltGrant) grant2 = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *hex = zlt_token_hash_hex ("secret-token");
  guint8 hash[ZLT_HASH_SIZE];
  guint8 bob_hash[ZLT_HASH_SIZE];
  guint8 other_hash[ZLT_HASH_SIZE];
  const char *const web_only[] = { "web", NULL };

  zlt_token_hash_raw ("secret-token", hash);
  zlt_token_hash_raw ("another-token", other_hash);
  v2_wrong = make_proof ("secret-token", other_hash);

  g_key_file_set_string (kf, "validator:test", "name", "alice");
  g_key_file_set_string (kf, "validator:test", "hash", hex);
  g_key_file_set_string (kf, "validator:test", "services", "web;ssh;");
  validator = zlt_plugin_loader_new_validator (loader, "test", kf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_validator_get_name (validator), ==, "test");
  g_assert_false (zlt_validator_is_insecure (validator));

  /* credentials index by key id */
  g_assert_cmpstr (zlt_credential_get_lookup_key (v1), ==, zlt_credential_get_lookup_key (v2));
  g_assert_cmpuint (strlen (zlt_credential_get_lookup_key (v1)), ==, ZLT_KEY_ID_LEN);
  g_assert_true (zlt_credential_matches_hash (v1, hash));
  g_assert_false (zlt_credential_matches_hash (v1, other_hash));
  g_assert_true (zlt_credential_matches_hash (v2, hash));
  g_assert_false (zlt_credential_matches_hash (v2_wrong, hash));

  /* v1 raw token */
  grant = validate (validator, v1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant), ==, "alice");
  g_assert_true (zlt_grant_allows_service (grant, "web"));
  g_assert_true (zlt_grant_allows_service (grant, "ssh"));
  g_assert_false (zlt_grant_allows_service (grant, "db"));
  g_assert_cmpmem (zlt_grant_get_token_hash (grant), ZLT_HASH_SIZE, hash, ZLT_HASH_SIZE);
  g_assert_false (zlt_grant_is_expired (grant, G_MAXINT64));

  /* v2 proof */
  grant2 = validate (validator, v2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (zlt_grant_get_name (grant2), ==, "alice");

  g_assert_null (validate (validator, v1_wrong, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_clear_error (&error);
  g_assert_null (validate (validator, v2_wrong, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_clear_error (&error);

  /* runtime tokens; an expired grant is refused by the base class */
  zlt_token_hash_raw ("bob-token", bob_hash);
  g_assert_true (zlt_validator_add_token (validator, "bob", bob_hash, web_only, 1, &error));
  g_assert_no_error (error);
  g_assert_null (validate (validator, bob, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_EXPIRED_TOKEN);
  g_clear_error (&error);
  g_assert_true (zlt_validator_remove_token (validator, "bob", &error));
  g_assert_no_error (error);
  g_assert_null (validate (validator, bob, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN);
  g_clear_error (&error);
  g_assert_false (zlt_validator_remove_token (validator, "bob", &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
}

static void
test_plugin_loader_insecure (void)
{
  g_autoptr (ZltPluginLoader) loader = load_good_dir ();
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (ZltValidator) refused = NULL;
  g_autoptr (ZltValidator) allowed = NULL;
  g_autoptr (ZltValidator) allowed_group = NULL;
  g_autoptr (ZltCredential) anyone = zlt_credential_new_token ("whatever");
  g_autoptr (ZltGrant) grant = NULL;
  g_autoptr (GError) error = NULL;

  refused = zlt_plugin_loader_new_validator (loader, "test-insecure", NULL, NULL, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
  g_assert_null (refused);
  g_clear_error (&error);

  g_key_file_set_boolean (kf, "server", "insecure", FALSE);
  refused = zlt_plugin_loader_new_validator (loader, "test-insecure", kf, NULL, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
  g_clear_error (&error);

  g_key_file_set_boolean (kf, "server", "insecure", TRUE);
  allowed = zlt_plugin_loader_new_validator (loader, "test-insecure", kf, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_validator_is_insecure (allowed));
  grant = validate (allowed, anyone, &error);
  g_assert_no_error (error);
  g_assert_null (zlt_grant_get_token_hash (grant));
  g_assert_null (zlt_grant_get_services (grant));
  g_assert_true (zlt_grant_allows_service (grant, "anything"));

  g_key_file_remove_group (kf, "server", NULL);
  g_key_file_set_boolean (kf, "dev", "insecure", TRUE);
  allowed_group = zlt_plugin_loader_new_validator (loader, "test-insecure", kf, "dev", &error);
  g_assert_no_error (error);

  g_assert_null (zlt_plugin_loader_new_validator (loader, "nope", kf, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
}

static void
test_plugin_loader_grant (void)
{
  const char *const services[] = { "web", NULL };
  const char *const none[] = { NULL };
  g_autoptr (ZltGrant) grant = zlt_grant_new ("carol", NULL, services, 1000);
  g_autoptr (ZltGrant) empty = zlt_grant_new ("dave", NULL, none, 0);
  g_autoptr (ZltCredential) copy = NULL;
  g_autoptr (ZltCredential) v1 = zlt_credential_new_token ("tok");
  g_autofree char *key_id = zlt_token_key_id ("tok");

  g_assert_false (zlt_grant_is_expired (grant, 999));
  g_assert_true (zlt_grant_is_expired (grant, 1000));
  g_assert_cmpint (zlt_grant_get_expiry (grant), ==, 1000);
  g_assert_true (zlt_grant_allows_service (grant, "web"));
  g_assert_false (zlt_grant_allows_service (grant, "Web"));
  g_assert_false (zlt_grant_allows_service (empty, "web"));
  g_assert_false (zlt_grant_is_expired (empty, G_MAXINT64));

  g_assert_cmpint (zlt_credential_get_kind (v1), ==, ZLT_CREDENTIAL_KIND_TOKEN);
  g_assert_cmpstr (zlt_credential_get_lookup_key (v1), ==, key_id);
  g_assert_null (zlt_credential_get_nonce (v1));
  g_assert_null (zlt_credential_get_client_id (v1));
  copy = zlt_credential_copy (v1);
  g_assert_cmpstr (zlt_credential_get_lookup_key (copy), ==, key_id);
}

int
main (int argc, char **argv)
{
  const char *const staged[] = {
    "libzlt-test.so",    "libzlt-badabi.so",  "libzlt-foreign.so",
    "libzlt-garbage.so", "libzlt-failing.so",
  };
  int ret;

  g_test_init (&argc, &argv, NULL);

  plugin_dir = make_dir ();
  for (guint i = 0; i < G_N_ELEMENTS (staged); i++)
    g_free (stage (plugin_dir, staged[i], NULL, 0644));

  g_test_add_func ("/plugin-loader/load", test_plugin_loader_load);
  g_test_add_func ("/plugin-loader/tcp-dial-leaves-no-timeout", test_tcp_dial_leaves_no_timeout);
  g_test_add_func ("/plugin-loader/tcp-dial-at-once", test_tcp_dial_at_once);
  g_test_add_func ("/plugin-loader/second-loader", test_plugin_loader_second_loader);
  g_test_add_func ("/plugin-loader/duplicate-copy", test_plugin_loader_duplicate_copy);
  g_test_add_func ("/plugin-loader/unsafe-files", test_plugin_loader_unsafe_files);
  g_test_add_func ("/plugin-loader/env", test_plugin_loader_env);
  g_test_add_func ("/plugin-loader/search-path", test_plugin_loader_search_path);
  g_test_add_func ("/plugin-loader/missing-dir", test_plugin_loader_missing_dir);
  g_test_add_func ("/plugin-loader/add-types", test_plugin_loader_add_types);
  g_test_add_func ("/plugin-loader/transport", test_plugin_loader_transport);
  g_test_add_func ("/plugin-loader/validator", test_plugin_loader_validator);
  g_test_add_func ("/plugin-loader/insecure", test_plugin_loader_insecure);
  g_test_add_func ("/plugin-loader/grant", test_plugin_loader_grant);
  ret = g_test_run ();

  remove_dir (plugin_dir);
  g_free (plugin_dir);
  return ret;
}
