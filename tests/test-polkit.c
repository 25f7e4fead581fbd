/* test-polkit.c: who may change zlayer-tunneld, asked of a real polkitd.
 *
 * Each test starts its own dbus-daemon, which plays the system bus: polkitd and the
 * build-tree zlayer-tunneld (system mode, no --session) find it through
 * DBUS_SYSTEM_BUS_ADDRESS. polkitd (/usr/lib/polkit-1/polkitd, Debian's polkitd) runs
 * in a mount namespace of its own (unshare --mount) where the test's temporary
 * directories are bind-mounted over /usr/share/polkit-1/actions, its rules.d and
 * /etc/polkit-1/rules.d (and a copy of /etc/group over /etc/group when a test needs a
 * group member), so nothing is written outside the test's directory and the machine's
 * own polkit configuration plays no part. The daemon's methods are called by
 * tests/polkit/client.py as nobody (setpriv) and by the test itself as root. For the
 * interactive tests the test is polkit's authentication agent for the client's
 * process, and as root answers for the administrator the way polkit's setuid helper
 * does after PAM.
 *
 * The tests that need polkitd skip, saying why, where it cannot start (not root, no
 * polkitd, no mount namespaces); with CI=true they fail instead. The fallback tests
 * (no polkit on the bus) need only root, setpriv and a nobody user.
 * Only processes the test started are signalled, by their PID; every wait is bounded. */
#include "config.h"

#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "zlt-daemon-auth.h"
#include "zlt-daemon-error.h"
#include "zlt-dbus-generated.h"
#include "zlt-test-util.h"

#define BUS_NAME "org.zlayer.Tunnel1"
#define BUS_PATH "/org/zlayer/Tunnel1"
#define PERMISSION_DENIED "org.zlayer.Tunnel1.Error.PermissionDenied"
#define PYTHON "/usr/bin/python3"
#define POLKITD "/usr/lib/polkit-1/polkitd"
#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define AGENT_PATH "/org/zlayer/test/PolkitAgent"
#define TEST_GROUP "zlayer-tunnel" /* the group data/org.zlayer.tunnel1.rules names */

static gboolean under_valgrind;

static guint
timeout_ms (guint ms)
{
  return under_valgrind ? ms * 20 : ms;
}

/* The Manager methods the client calls, and the action each needs (the table,
 * written out again here rather than taken from the daemon). */
static const struct
{
  const char *method;
  const char *action;
} manager_methods[] = {
  { "Reload", "org.zlayer.tunnel1.reload" },
  { "Expose", "org.zlayer.tunnel1.manage-services" },
  { "Unexpose", "org.zlayer.tunnel1.manage-services" },
  { "StartAccess", "org.zlayer.tunnel1.manage-access" },
  { "StopAccess", "org.zlayer.tunnel1.manage-access" },
  { "AddNodeTunnel", "org.zlayer.tunnel1.manage-nodes" },
  { "RemoveNodeTunnel", "org.zlayer.tunnel1.manage-nodes" },
  { "DisconnectTunnel", "org.zlayer.tunnel1.manage-tunnels" },
};

static const char *const all_actions[] = {
  "org.zlayer.tunnel1.manage-services", "org.zlayer.tunnel1.manage-access",
  "org.zlayer.tunnel1.manage-nodes",    "org.zlayer.tunnel1.manage-tunnels",
  "org.zlayer.tunnel1.reload",
};

typedef enum
{
  AGENT_AUTHENTICATE, /* answers as root: the administrator typed the password */
  AGENT_DISMISS,      /* the user closed the dialog */
  AGENT_HOLD,         /* keeps the dialog up until polkit cancels it */
} AgentMode;

typedef struct
{
  char *tmpdir;
  char *config_path;
  GKeyFile *config;

  GSubprocess *bus_daemon;
  char *bus_address;
  GDBusConnection *bus;

  GSubprocess *polkitd;
  char *polkitd_log;
  GSubprocess *daemon;

  /* the authentication agent */
  guint agent_id;
  AgentMode agent_mode;
  guint n_begin;
  char *begin_action;
  char *begin_message;
  char *begin_cookie;
  gboolean begin_offered_root;
  GDBusMethodInvocation *held_begin;
  guint n_cancel;
  char *cancel_cookie;

  /* the auth module in this process (the cancel test) */
  ZltDbusManager *manager;
  GCancellable *check_cancellable;
  gboolean check_finished;
  GError *check_error;
  GDBusMethodInvocation *check_invocation;
} Fixture;

/* what a polkitd of a test gets */
typedef struct
{
  gboolean policy;          /* install the built actions */
  const char *rules;        /* a rules file's text, or NULL */
  gboolean nobody_in_group; /* an /etc/group where nobody is in TEST_GROUP */
} PolkitSetup;

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* GSubprocess reaps its child through the main context it was made in, and forgets the
 * PID then: the loop iterations of ZLT_TEST_WAIT_FOR see it go. */
static gboolean
exited (GSubprocess *process)
{
  return g_subprocess_get_identifier (process) == NULL;
}

/* Signals @process and waits at most @ms for it to exit; kills it (it is ours) when it
 * does not. */
static void
stop_subprocess (GSubprocess *process, int signum, guint ms)
{
  if (exited (process))
    return;
  g_subprocess_send_signal (process, signum);
  ZLT_TEST_WAIT_FOR (exited (process), ms);
  if (!exited (process))
    {
      g_subprocess_force_exit (process);
      ZLT_TEST_WAIT_FOR (exited (process), 5000);
    }
  g_assert_true (exited (process));
}

/* ---- what the machine can do ---- */

static struct passwd *
nobody_user (void)
{
  return getpwnam ("nobody");
}

static gboolean
can_call_as_nobody (const char **reason)
{
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (getuid () != 0)
    *reason = "needs root to call as another user";
  else if (setpriv == NULL)
    *reason = "needs setpriv (util-linux) to call as another user";
  else if (nobody_user () == NULL)
    *reason = "needs a nobody user";
  else if (!g_file_test (PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    *reason = "needs " PYTHON " (with python3-gi) for the client";
  else
    return TRUE;
  return FALSE;
}

static gboolean
can_run_polkitd (const char **reason)
{
  g_autofree char *unshare = g_find_program_in_path ("unshare");
  g_autofree char *mount = g_find_program_in_path ("mount");

  if (!can_call_as_nobody (reason))
    return FALSE;
  if (!g_file_test (POLKITD, G_FILE_TEST_IS_EXECUTABLE))
    *reason = "needs polkitd (" POLKITD ", Debian package polkitd)";
  else if (unshare == NULL || mount == NULL)
    *reason = "needs unshare and mount (util-linux, mount)";
  else if (!g_file_test ("/usr/share/polkit-1/actions", G_FILE_TEST_IS_DIR)
           || !g_file_test ("/usr/share/polkit-1/rules.d", G_FILE_TEST_IS_DIR))
    *reason = "needs polkit's /usr/share/polkit-1/actions and rules.d to mount over";
  else
    return TRUE;
  return FALSE;
}

/* CI runs the real thing: there a test that cannot is a failure, not a skip. */
static void
cannot (const char *reason)
{
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_test_fail_printf ("CI=true but this machine cannot run the test: %s", reason);
  else
    g_test_skip (reason);
}

/* ---- files ---- */

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static char *
write_file (Fixture *f, const char *name, const char *contents, int mode)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (f->tmpdir, name, NULL);

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  return path;
}

/* a directory polkitd, which drops root for the user polkitd, can read */
static char *
make_dir (Fixture *f, const char *name)
{
  char *path = g_build_filename (f->tmpdir, name, NULL);

  g_assert_cmpint (g_mkdir (path, 0755), ==, 0);
  g_assert_cmpint (g_chmod (path, 0755), ==, 0);
  return path;
}

static const char *
built_policy (void)
{
  const char *path = g_getenv ("ZLT_POLKIT_POLICY");

  g_assert_nonnull (path);
  return path;
}

/* /etc/group without any TEST_GROUP, plus a TEST_GROUP with an unused gid, with nobody
 * in it or not */
static char *
group_file (Fixture *f, gboolean nobody_in_group)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  gid_t gid = 59999;

  g_file_get_contents ("/etc/group", &contents, NULL, &error);
  g_assert_no_error (error);
  while (getgrgid (gid) != NULL)
    gid--;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0' && !g_str_has_prefix (lines[i], TEST_GROUP ":"))
      g_string_append_printf (out, "%s\n", lines[i]);
  g_string_append_printf (out, TEST_GROUP ":x:%u:%s\n", (guint) gid,
                          nobody_in_group ? nobody_user ()->pw_name : "");
  return write_file (f, "group", out->str, 0644);
}

/* ---- the bus ---- */

static const char bus_config[]
    = "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <type>system</type>\n"
      "  <listen>unix:tmpdir=/tmp</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <policy context=\"default\">\n"
      "    <allow user=\"*\"/>\n"
      "    <allow own=\"*\"/>\n"
      "    <allow send_destination=\"*\"/>\n"
      "    <allow receive_sender=\"*\"/>\n"
      "  </policy>\n"
      "</busconfig>\n";

static void
start_bus (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *conf = write_file (f, "bus.conf", bus_config, 0644);
  g_autofree char *arg = g_strdup_printf ("--config-file=%s", conf);
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->bus_daemon = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", arg, "--nofork",
                                               "--print-address=1", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->bus_daemon));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  f->bus_address = g_strdup (g_strstrip (line));
  f->bus = g_dbus_connection_new_for_address_sync (
      f->bus_address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  GVariant *reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply != NULL)
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static gboolean
task_completed (GTask *task)
{
  return g_task_get_completed (task);
}

/* A method call that keeps the main loop turning meanwhile: polkit may call our agent
 * before it answers. */
static GVariant *
call (Fixture *f, const char *dest, const char *path, const char *interface, const char *method,
      GVariant *params, GError **error)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, NULL, NULL);

  g_dbus_connection_call (f->bus, dest, path, interface, method, params, NULL,
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, timeout_ms (20000), NULL, call_done,
                          g_object_ref (task));
  ZLT_TEST_WAIT_FOR (task_completed (task), timeout_ms (25000));
  g_assert_true (task_completed (task));
  return g_task_propagate_pointer (task, error);
}

static void
on_name_appeared (GDBusConnection *connection, const char *name, const char *owner,
                  gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Until @name has an owner, or @process has exited: whether it has one. */
static gboolean
wait_for_name (Fixture *f, const char *name, GSubprocess *process, guint ms)
{
  gboolean appeared = FALSE;
  guint watch = g_bus_watch_name_on_connection (f->bus, name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                on_name_appeared, NULL, &appeared, NULL);

  ZLT_TEST_WAIT_FOR (appeared || exited (process), ms);
  g_bus_unwatch_name (watch);
  return appeared;
}

/* ---- polkitd ---- */

/* Programs that are not ours (polkitd, the Python client) get an environment of their
 * own: G_DEBUG=fatal-warnings, say, would turn polkitd's warnings into aborts. */
static void
set_clean_environ (Fixture *f, GSubprocessLauncher *launcher)
{
  g_autofree char *bus = g_strdup_printf ("DBUS_SYSTEM_BUS_ADDRESS=%s", f->bus_address);
  const char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", bus, NULL };

  g_subprocess_launcher_set_environ (launcher, (char **) env);
}

/* mounts the test's directories over polkit's, then becomes polkitd */
static const char polkitd_script[]
    = "set -e\n"
      "mount --bind \"$1\" /usr/share/polkit-1/actions\n"
      "mount --bind \"$2\" /usr/share/polkit-1/rules.d\n"
      "if [ -d /etc/polkit-1/rules.d ]; then mount --bind \"$2\" /etc/polkit-1/rules.d; fi\n"
      "if [ -n \"$3\" ]; then mount --bind \"$3\" /etc/group; fi\n"
      "exec \"$4\"\n";

/* Starts polkitd on the test's bus; FALSE (and the test skipped, or failed under CI)
 * when it cannot. */
static gboolean
start_polkitd (Fixture *f, const PolkitSetup *setup)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autofree char *actions = make_dir (f, "actions");
  g_autofree char *rules = make_dir (f, "rules.d");
  g_autofree char *group = NULL;
  const char *reason = NULL;

  if (!can_run_polkitd (&reason))
    {
      cannot (reason);
      return FALSE;
    }
  if (setup->policy)
    {
      g_autofree char *contents = NULL;
      g_autofree char *path = NULL;

      g_file_get_contents (built_policy (), &contents, NULL, &error);
      g_assert_no_error (error);
      path = g_build_filename ("actions", "org.zlayer.tunnel1.policy", NULL);
      g_free (write_file (f, path, contents, 0644));
    }
  if (setup->rules != NULL)
    {
      g_autofree char *path = g_build_filename ("rules.d", "org.zlayer.tunnel1.rules", NULL);
      g_free (write_file (f, path, setup->rules, 0644));
    }
  if (setup->rules != NULL)
    group = group_file (f, setup->nobody_in_group);

  f->polkitd_log = g_build_filename (f->tmpdir, "polkitd.log", NULL);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (launcher, f->polkitd_log);
  set_clean_environ (f, launcher);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* unshare execs sh, which execs polkitd: one PID throughout */
  f->polkitd = g_subprocess_launcher_spawn (
      launcher, &error, "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
      polkitd_script, "sh", actions, rules, group != NULL ? group : "", POLKITD, NULL);
  g_assert_no_error (error);
  if (!wait_for_name (f, POLKIT_NAME, f->polkitd, timeout_ms (10000)))
    {
      g_autofree char *log = NULL;
      g_autofree char *why = NULL;

      g_file_get_contents (f->polkitd_log, &log, NULL, NULL);
      why = g_strdup_printf ("polkitd did not start on the test's bus: %s",
                             log != NULL ? g_strstrip (log) : "no output");
      cannot (why);
      return FALSE;
    }
  return TRUE;
}

/* ---- zlayer-tunneld ---- */

static void
fixture_init (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *listen = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *line = NULL;
  g_autofree char *tokens = NULL;

  f->tmpdir = g_dir_make_tmp ("zlt-polkit-XXXXXX", &error);
  g_assert_no_error (error);
  /* the server role with a token file: enough for every Manager method to answer */
  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, "zlt-polkit-test-token-0123456789", -1);
  line = g_strdup_printf ("%s\n", hash);
  tokens = write_file (f, "tokens", line, 0600);
  f->config = g_key_file_new ();
  listen = g_strdup_printf ("127.0.0.1:%u", zlt_test_closed_port ());
  g_key_file_set_string (f->config, "server", "listen", listen);
  g_key_file_set_string (f->config, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (f->config, "server", "port-range", "10000-10099");
  g_key_file_set_string (f->config, "server", "validator", "token-file");
  g_key_file_set_string (f->config, "validator:token-file", "path", tokens);
  f->config_path = g_build_filename (f->tmpdir, "zlayer-tunnel.conf", NULL);
  start_bus (f);
}

static void
start_daemon (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *daemon = g_getenv ("ZLT_TUNNELD");

  g_assert_nonnull (daemon);
  g_key_file_save_to_file (f->config, f->config_path, &error);
  g_assert_no_error (error);
  if (under_valgrind)
    {
      const char *srcdir = g_getenv ("G_TEST_SRCDIR");

      g_ptr_array_add (argv, g_strdup ("valgrind"));
      g_ptr_array_add (argv, g_strdup ("--tool=memcheck"));
      g_ptr_array_add (argv, g_strdup ("--leak-check=full"));
      g_ptr_array_add (argv, g_strdup ("--show-leak-kinds=definite,indirect"));
      g_ptr_array_add (argv, g_strdup ("--errors-for-leak-kinds=definite,indirect"));
      g_ptr_array_add (argv, g_strdup ("--error-exitcode=1"));
      g_ptr_array_add (argv, g_strdup ("--num-callers=30"));
      g_ptr_array_add (argv, g_strdup_printf ("--suppressions=%s/valgrind.supp", srcdir));
      g_ptr_array_add (argv, g_strdup ("--suppressions=/usr/share/glib-2.0/valgrind/glib.supp"));
    }
  /* the system bus mode: no --session */
  g_ptr_array_add (argv, g_strdup (daemon));
  g_ptr_array_add (argv, g_strdup ("--config"));
  g_ptr_array_add (argv, g_strdup (f->config_path));
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SYSTEM_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
  g_subprocess_launcher_setenv (launcher, "G_SLICE", "always-malloc", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->daemon = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for_name (f, BUS_NAME, f->daemon, timeout_ms (10000)));
}

/* SIGTERM, and a clean exit (under valgrind: no leaks) */
static void
stop_daemon (Fixture *f)
{
  if (f->daemon == NULL)
    return;
  stop_subprocess (f->daemon, SIGTERM, timeout_ms (10000));
  g_assert_true (g_subprocess_get_if_exited (f->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (f->daemon), ==, 0);
  g_clear_object (&f->daemon);
}

static void
fixture_clear (Fixture *f)
{
  stop_daemon (f);
  if (f->agent_id != 0)
    g_dbus_connection_unregister_object (f->bus, f->agent_id);
  if (f->manager != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (f->manager));
  g_clear_object (&f->manager);
  g_clear_object (&f->check_cancellable);
  g_clear_error (&f->check_error);
  if (f->check_invocation != NULL)
    g_dbus_method_invocation_return_error_literal (g_steal_pointer (&f->check_invocation),
                                                   G_IO_ERROR, G_IO_ERROR_FAILED, "test over");
  g_clear_object (&f->held_begin);
  if (f->polkitd != NULL)
    stop_subprocess (f->polkitd, SIGTERM, 5000);
  g_clear_object (&f->polkitd);
  if (f->bus != NULL)
    g_dbus_connection_close_sync (f->bus, NULL, NULL);
  g_clear_object (&f->bus);
  if (f->bus_daemon != NULL)
    stop_subprocess (f->bus_daemon, SIGTERM, 5000);
  g_clear_object (&f->bus_daemon);
  g_free (f->bus_address);
  g_free (f->begin_action);
  g_free (f->begin_message);
  g_free (f->begin_cookie);
  g_free (f->cancel_cookie);
  g_free (f->polkitd_log);
  g_clear_pointer (&f->config, g_key_file_unref);
  g_free (f->config_path);
  remove_tree (f->tmpdir);
  g_free (f->tmpdir);
}

/* ---- the client, as nobody ---- */

typedef struct
{
  GSubprocess *process;
  gboolean done;
  char *out;
} Client;

static void
client_communicated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Client *c = user_data;
  g_autoptr (GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, NULL, &error);
  g_assert_no_error (error);
  c->done = TRUE;
}

/* Starts tests/polkit/client.py --wait as nobody with @args (options, then methods):
 * it calls nothing before client_go(). */
static Client *
client_start (Fixture *f, const char *const *args)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  struct passwd *nobody = nobody_user ();
  Client *c = g_new0 (Client, 1);

  g_ptr_array_add (argv, g_strdup ("setpriv"));
  g_ptr_array_add (argv, g_strdup_printf ("--reuid=%u", (guint) nobody->pw_uid));
  g_ptr_array_add (argv, g_strdup_printf ("--regid=%u", (guint) nobody->pw_gid));
  g_ptr_array_add (argv, g_strdup ("--clear-groups"));
  g_ptr_array_add (argv, g_strdup (PYTHON));
  g_ptr_array_add (argv, g_test_build_filename (G_TEST_DIST, "polkit", "client.py", NULL));
  g_ptr_array_add (argv, g_strdup ("--wait"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  set_clean_environ (f, launcher);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  c->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return c;
}

/* lets the client go on, and collects what it prints */
static void
client_go (Client *c)
{
  g_subprocess_communicate_utf8_async (c->process, "go\n", NULL, client_communicated, c);
}

/* Waits for the client and returns METHOD → "ok" or "ERROR-NAME MESSAGE". */
static GHashTable *
client_finish (Client *c)
{
  GHashTable *results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto (GStrv) lines = NULL;

  ZLT_TEST_WAIT_FOR (c->done, timeout_ms (60000));
  g_assert_true (c->done);
  g_assert_true (g_subprocess_get_if_exited (c->process));
  g_assert_cmpint (g_subprocess_get_exit_status (c->process), ==, 0);
  lines = g_strsplit (c->out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *space = strchr (lines[i], ' ');

      if (space == NULL)
        continue;
      g_test_message ("client: %s", lines[i]);
      g_hash_table_insert (results, g_strndup (lines[i], space - lines[i]), g_strdup (space + 1));
    }
  g_object_unref (c->process);
  g_free (c->out);
  g_free (c);
  return results;
}

static GHashTable *
run_client (Fixture *f, const char *const *args)
{
  Client *c = client_start (f, args);

  client_go (c);
  return client_finish (c);
}

static const char *const *
all_methods (void)
{
  static const char *methods[G_N_ELEMENTS (manager_methods) + 1];

  for (gsize i = 0; i < G_N_ELEMENTS (manager_methods); i++)
    methods[i] = manager_methods[i].method;
  return methods;
}

static gboolean
denied (GHashTable *results, const char *method)
{
  const char *result = g_hash_table_lookup (results, method);

  g_assert_nonnull (result);
  return g_str_has_prefix (result, PERMISSION_DENIED " ");
}

/* Every method passed the caller check: Reload succeeds, the others fail with their own
 * errors (nothing called "polkit-x" exists). */
static void
assert_all_allowed (GHashTable *results)
{
  g_assert_cmpstr (g_hash_table_lookup (results, "Reload"), ==, "ok");
  for (gsize i = 0; i < G_N_ELEMENTS (manager_methods); i++)
    if (denied (results, manager_methods[i].method))
      g_error ("%s was refused: %s", manager_methods[i].method,
               (const char *) g_hash_table_lookup (results, manager_methods[i].method));
}

/* Every method refused with @text in its message, and when @names_action, its
 * action's id. */
static void
assert_all_denied (GHashTable *results, const char *text, gboolean names_action)
{
  for (gsize i = 0; i < G_N_ELEMENTS (manager_methods); i++)
    {
      const char *result = g_hash_table_lookup (results, manager_methods[i].method);

      g_assert_true (denied (results, manager_methods[i].method));
      if (strstr (result, text) == NULL)
        g_error ("%s: expected “%s” in “%s”", manager_methods[i].method, text, result);
      if (names_action && strstr (result, manager_methods[i].action) == NULL)
        g_error ("%s: expected the action %s in “%s”", manager_methods[i].method,
                 manager_methods[i].action, result);
    }
}

/* root always may: the test itself calls Reload */
static void
assert_root_allowed (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = call (f, BUS_NAME, BUS_PATH, "org.zlayer.Tunnel1.Manager", "Reload", NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
}

/* ---- tests: the action table ---- */

/* Every method of the D-Bus API but the read-only ListTunnels has an action, the one the
 * issue names; every action is in the built .policy, with a message and defaults that
 * ask for an administrator. */
static void
test_actions (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *xml = NULL;
  g_autofree char *policy = NULL;
  g_autofree char *xml_path
      = g_test_build_filename (G_TEST_DIST, "..", "data", "org.zlayer.Tunnel1.xml", NULL);
  g_autoptr (GDBusNodeInfo) node = NULL;
  const struct
  {
    const char *interface_name, *method_name, *action;
  } others[] = {
    { "org.zlayer.Tunnel1.Tunnel", "Disconnect", "org.zlayer.tunnel1.manage-tunnels" },
    { "org.zlayer.Tunnel1.Session", "Stop", "org.zlayer.tunnel1.manage-access" },
  };
  guint n_mutating = 0;

  g_file_get_contents (xml_path, &xml, NULL, &error);
  g_assert_no_error (error);
  node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  for (guint i = 0; node->interfaces[i] != NULL; i++)
    for (guint j = 0; node->interfaces[i]->methods[j] != NULL; j++)
      {
        const char *iface = node->interfaces[i]->name;
        const char *method = node->interfaces[i]->methods[j]->name;
        const char *action = zlt_daemon_auth_action_for_method (iface, method);

        if (g_str_equal (method, "ListTunnels"))
          {
            g_assert_null (action);
            continue;
          }
        if (action == NULL)
          g_error ("%s.%s has no polkit action", iface, method);
        n_mutating++;
      }
  g_assert_cmpuint (n_mutating, ==, G_N_ELEMENTS (manager_methods) + G_N_ELEMENTS (others));
  for (gsize i = 0; i < G_N_ELEMENTS (manager_methods); i++)
    g_assert_cmpstr (
        zlt_daemon_auth_action_for_method ("org.zlayer.Tunnel1.Manager", manager_methods[i].method),
        ==, manager_methods[i].action);
  for (gsize i = 0; i < G_N_ELEMENTS (others); i++)
    g_assert_cmpstr (
        zlt_daemon_auth_action_for_method (others[i].interface_name, others[i].method_name), ==,
        others[i].action);
  g_assert_null (zlt_daemon_auth_action_for_method ("org.zlayer.Tunnel1.Manager", "Nope"));
  g_assert_null (zlt_daemon_auth_action_for_method ("org.zlayer.Tunnel1.Tunnel", "Expose"));

  g_file_get_contents (built_policy (), &policy, NULL, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < G_N_ELEMENTS (all_actions); i++)
    {
      g_autofree char *start = g_strdup_printf ("<action id=\"%s\">", all_actions[i]);
      const char *begin = strstr (policy, start);
      const char *end = begin != NULL ? strstr (begin, "</action>") : NULL;
      g_autofree char *action = NULL;

      if (end == NULL)
        g_error ("%s is not in %s", all_actions[i], built_policy ());
      action = g_strndup (begin, end - begin);
      g_assert_nonnull (strstr (action, "<description>"));
      g_assert_nonnull (strstr (action, "<message>"));
      g_assert_nonnull (strstr (action, "<allow_any>auth_admin</allow_any>"));
      g_assert_nonnull (strstr (action, "<allow_inactive>auth_admin</allow_inactive>"));
      g_assert_nonnull (strstr (action, "<allow_active>auth_admin_keep</allow_active>"));
    }
}

/* ---- tests: no polkit on the bus ---- */

/* The uid check decides: nobody may not, root may. */
static void
test_fallback_uid (void)
{
  Fixture fixture = { 0 }, *f = &fixture;
  g_autoptr (GHashTable) results = NULL;
  const char *reason = NULL;

  if (!can_call_as_nobody (&reason))
    {
      cannot (reason);
      return;
    }
  fixture_init (f);
  start_daemon (f);
  results = run_client (f, all_methods ());
  assert_all_denied (results, "only root may do this", FALSE);
  assert_root_allowed (f);
  fixture_clear (f);
}

/* The config's admin group lets its members through. */
static void
test_fallback_admin_group (void)
{
  Fixture fixture = { 0 }, *f = &fixture;
  g_autoptr (GHashTable) results = NULL;
  const char *reason = NULL;

  if (!can_call_as_nobody (&reason))
    {
      cannot (reason);
      return;
    }
  fixture_init (f);
  g_key_file_set_string (f->config, "daemon", "admin-group",
                         getgrgid (nobody_user ()->pw_gid)->gr_name);
  start_daemon (f);
  results = run_client (f, all_methods ());
  assert_all_allowed (results);
  fixture_clear (f);
}

/* ---- tests: polkitd ---- */

/* Our actions, no rules: nobody must authenticate as an administrator for every action,
 * even as a member of the config's admin group (polkit decides when it runs); each
 * refusal names the action. Root may without asking. */
static void
test_defaults (void)
{
  Fixture fixture = { 0 }, *f = &fixture;
  const PolkitSetup setup = { .policy = TRUE };
  g_autoptr (GHashTable) results = NULL;

  fixture_init (f);
  if (start_polkitd (f, &setup))
    {
      g_key_file_set_string (f->config, "daemon", "admin-group",
                             getgrgid (nobody_user ()->pw_gid)->gr_name);
      start_daemon (f);
      results = run_client (f, all_methods ());
      assert_all_denied (results, "authentication is required to", TRUE);
      assert_root_allowed (f);
    }
  fixture_clear (f);
}

/* polkit runs but does not know our actions (installed where it does not look): refused,
 * with polkit's reason; root still may. */
static void
test_unregistered (void)
{
  Fixture fixture = { 0 }, *f = &fixture;
  const PolkitSetup setup = { .policy = FALSE };
  g_autoptr (GHashTable) results = NULL;

  fixture_init (f);
  if (start_polkitd (f, &setup))
    {
      start_daemon (f);
      results = run_client (f, all_methods ());
      assert_all_denied (results, "polkit could not check action", TRUE);
      assert_all_denied (results, "is not registered", TRUE);
      assert_root_allowed (f);
    }
  fixture_clear (f);
}

static char *
shipped_rules (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path
      = g_test_build_filename (G_TEST_DIST, "..", "data", "org.zlayer.tunnel1.rules", NULL);
  char *contents = NULL;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  return contents;
}

/* data/org.zlayer.tunnel1.rules as shipped: members of zlayer-tunnel may do everything
 * without a password, other users still may not. */
static void
test_rules_member (gconstpointer data)
{
  gboolean member = GPOINTER_TO_INT (data);
  Fixture fixture = { 0 }, *f = &fixture;
  g_autofree char *rules = shipped_rules ();
  PolkitSetup setup = { .policy = TRUE, .rules = rules, .nobody_in_group = member };
  g_autoptr (GHashTable) results = NULL;

  fixture_init (f);
  if (start_polkitd (f, &setup))
    {
      start_daemon (f);
      results = run_client (f, all_methods ());
      if (member)
        assert_all_allowed (results);
      else
        assert_all_denied (results, "authentication is required to", TRUE);
    }
  fixture_clear (f);
}

/* A rule that grants one action to nobody lets exactly that action's methods through. */
static void
test_per_action (gconstpointer data)
{
  const char *granted = data;
  Fixture fixture = { 0 }, *f = &fixture;
  g_autofree char *rules = g_strdup_printf (
      "polkit.addRule(function(action, subject) {\n"
      "  if (action.id == \"%s\" && subject.user == \"%s\") { return polkit.Result.YES; }\n"
      "});\n",
      granted, nobody_user () != NULL ? nobody_user ()->pw_name : "nobody");
  PolkitSetup setup = { .policy = TRUE, .rules = rules };
  g_autoptr (GHashTable) results = NULL;
  guint n_allowed = 0;

  fixture_init (f);
  if (start_polkitd (f, &setup))
    {
      start_daemon (f);
      results = run_client (f, all_methods ());
      for (gsize i = 0; i < G_N_ELEMENTS (manager_methods); i++)
        {
          gboolean want = g_str_equal (manager_methods[i].action, granted);
          const char *result = g_hash_table_lookup (results, manager_methods[i].method);

          if (denied (results, manager_methods[i].method) == want)
            g_error ("%s with only %s granted: %s", manager_methods[i].method, granted, result);
          n_allowed += want;
        }
      g_assert_cmpuint (n_allowed, >, 0);
    }
  fixture_clear (f);
}

/* ---- tests: interactive authorization, with the test as the agent ---- */

static const char agent_xml[]
    = "<node>"
      "  <interface name='org.freedesktop.PolicyKit1.AuthenticationAgent'>"
      "    <method name='BeginAuthentication'>"
      "      <arg type='s' name='action_id' direction='in'/>"
      "      <arg type='s' name='message' direction='in'/>"
      "      <arg type='s' name='icon_name' direction='in'/>"
      "      <arg type='a{ss}' name='details' direction='in'/>"
      "      <arg type='s' name='cookie' direction='in'/>"
      "      <arg type='a(sa{sv})' name='identities' direction='in'/>"
      "    </method>"
      "    <method name='CancelAuthentication'>"
      "      <arg type='s' name='cookie' direction='in'/>"
      "    </method>"
      "  </interface>"
      "</node>";

static void
agent_responded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_assert_no_error (error);
  /* the dialog closes once the password was right */
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
agent_method_call (GDBusConnection *connection, const char *sender, const char *path,
                   const char *interface, const char *method, GVariant *params,
                   GDBusMethodInvocation *invocation, gpointer user_data)
{
  Fixture *f = user_data;

  if (g_str_equal (method, "BeginAuthentication"))
    {
      g_autoptr (GVariantIter) identities = NULL;
      const char *kind;
      GVariant *details;

      f->n_begin++;
      g_clear_pointer (&f->begin_action, g_free);
      g_clear_pointer (&f->begin_message, g_free);
      g_clear_pointer (&f->begin_cookie, g_free);
      g_variant_get (params, "(ss&s@a{ss}sa(sa{sv}))", &f->begin_action, &f->begin_message, NULL,
                     NULL, &f->begin_cookie, &identities);
      while (g_variant_iter_next (identities, "(&s@a{sv})", &kind, &details))
        {
          guint32 uid = G_MAXUINT32;

          if (g_str_equal (kind, "unix-user") && g_variant_lookup (details, "uid", "u", &uid)
              && uid == 0)
            f->begin_offered_root = TRUE;
          g_variant_unref (details);
        }
      switch (f->agent_mode)
        {
        case AGENT_AUTHENTICATE:
          /* what polkit-agent-helper-1 does, as root, once PAM said yes */
          g_dbus_connection_call (connection, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                  "AuthenticationAgentResponse2",
                                  g_variant_new ("(us(s@a{sv}))", 0u, f->begin_cookie, "unix-user",
                                                 g_variant_new_parsed ("{'uid': <uint32 0>}")),
                                  NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, agent_responded,
                                  g_object_ref (invocation));
          break;
        case AGENT_DISMISS:
          g_dbus_method_invocation_return_dbus_error (
              invocation, "org.freedesktop.PolicyKit1.Error.Cancelled", "dismissed by the test");
          break;
        case AGENT_HOLD:
        default:
          g_set_object (&f->held_begin, invocation);
          break;
        }
      return;
    }
  /* CancelAuthentication */
  f->n_cancel++;
  g_free (f->cancel_cookie);
  g_variant_get (params, "(s)", &f->cancel_cookie);
  if (f->held_begin != NULL)
    {
      g_dbus_method_invocation_return_dbus_error (
          f->held_begin, "org.freedesktop.PolicyKit1.Error.Cancelled", "cancelled");
      g_clear_object (&f->held_begin);
    }
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static const GDBusInterfaceVTable agent_vtable = { agent_method_call, NULL, NULL, { 0 } };

static void
export_agent (Fixture *f, AgentMode mode)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusNodeInfo) node = g_dbus_node_info_new_for_xml (agent_xml, &error);

  g_assert_no_error (error);
  f->agent_mode = mode;
  f->agent_id = g_dbus_connection_register_object (f->bus, AGENT_PATH, node->interfaces[0],
                                                   &agent_vtable, f, NULL, &error);
  g_assert_no_error (error);
}

/* the start time polkit keys processes by: field 22 of /proc/PID/stat */
static guint64
process_start_time (const char *pid)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("/proc/%s/stat", pid);
  g_autofree char *stat = NULL;
  g_auto (GStrv) fields = NULL;
  const char *after_comm;

  g_file_get_contents (path, &stat, NULL, &error);
  g_assert_no_error (error);
  after_comm = strrchr (stat, ')');
  g_assert_nonnull (after_comm);
  fields = g_strsplit (after_comm + 2, " ", -1);
  /* fields[0] is field 3 (state) */
  g_assert_cmpuint (g_strv_length (fields), >, 19);
  return g_ascii_strtoull (fields[19], NULL, 10);
}

/* The test becomes polkit's authentication agent for @c's process. */
static void
register_agent_for (Fixture *f, Client *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  const char *pid = g_subprocess_get_identifier (c->process);
  GVariantBuilder subject;

  g_assert_nonnull (pid);
  g_variant_builder_init (&subject, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&subject, "{sv}", "pid",
                         g_variant_new_uint32 ((guint32) g_ascii_strtoull (pid, NULL, 10)));
  g_variant_builder_add (&subject, "{sv}", "start-time",
                         g_variant_new_uint64 (process_start_time (pid)));
  g_variant_builder_add (&subject, "{sv}", "uid",
                         g_variant_new_int32 ((gint32) nobody_user ()->pw_uid));
  reply = call (f, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE, "RegisterAuthenticationAgent",
                g_variant_new ("((sa{sv})ss)", "unix-process", &subject, "C", AGENT_PATH), &error);
  g_assert_no_error (error);
}

/* A call that does not allow interaction gets no dialog, one that does gets the dialog of
 * its action, and succeeds once the administrator authenticated; a dismissed dialog is
 * a refusal that says so. */
static void
test_interactive (void)
{
  Fixture fixture = { 0 }, *f = &fixture;
  const PolkitSetup setup = { .policy = TRUE };
  const char *plain[] = { "Reload", NULL };
  const char *interactive[] = { "--interactive", "Reload", "Expose", NULL };
  const char *dismissed[] = { "--interactive", "Reload", NULL };
  g_autoptr (GHashTable) results = NULL;
  Client *c;

  fixture_init (f);
  if (!start_polkitd (f, &setup))
    {
      fixture_clear (f);
      return;
    }
  start_daemon (f);
  export_agent (f, AGENT_AUTHENTICATE);

  /* no ALLOW_INTERACTIVE_AUTHORIZATION: polkit does not ask the agent */
  c = client_start (f, plain);
  register_agent_for (f, c);
  client_go (c);
  results = client_finish (c);
  g_assert_nonnull (g_hash_table_lookup (results, "Reload"));
  g_assert_cmpstr (g_hash_table_lookup (results, "Reload"), !=, "ok");
  g_assert_nonnull (strstr (g_hash_table_lookup (results, "Reload"),
                            "authentication is required to reload the daemon's configuration "
                            "(polkit action org.zlayer.tunnel1.reload)"));
  g_assert_cmpuint (f->n_begin, ==, 0);
  g_clear_pointer (&results, g_hash_table_unref);

  /* interactive: the agent is asked for Reload's action, with our message */
  c = client_start (f, interactive);
  register_agent_for (f, c);
  client_go (c);
  results = client_finish (c);
  g_assert_cmpstr (g_hash_table_lookup (results, "Reload"), ==, "ok");
  g_assert_cmpuint (f->n_begin, ==, 2);
  /* Expose's action is another one: a second dialog, and past the check */
  g_assert_false (denied (results, "Expose"));
  g_assert_cmpstr (f->begin_action, ==, "org.zlayer.tunnel1.manage-services");
  g_assert_cmpstr (f->begin_message, ==,
                   "Authentication is required to expose or unexpose a service through the "
                   "tunnel");
  g_assert_true (f->begin_offered_root);
  g_clear_pointer (&results, g_hash_table_unref);

  /* the user closes the dialog */
  f->agent_mode = AGENT_DISMISS;
  c = client_start (f, dismissed);
  register_agent_for (f, c);
  client_go (c);
  results = client_finish (c);
  g_assert_cmpuint (f->n_begin, ==, 3);
  g_assert_cmpstr (f->begin_action, ==, "org.zlayer.tunnel1.reload");
  g_assert_true (denied (results, "Reload"));
  g_assert_nonnull (strstr (g_hash_table_lookup (results, "Reload"),
                            "authentication to reload the daemon's configuration was dismissed "
                            "(polkit action org.zlayer.tunnel1.reload)"));
  fixture_clear (f);
}

/* ---- tests: cancelling, with the auth module in this process ---- */

/* keeps the caller waiting: while it is connected, only our cancel can end polkit's
 * dialog (polkit also ends it when the caller leaves the bus) */
static void
check_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->check_finished = TRUE;
  if (zlt_daemon_auth_check_finish (result, &f->check_error))
    g_assert_not_reached ();
  /* the reference the handler got, which answering gives up */
  f->check_invocation = G_DBUS_METHOD_INVOCATION (source);
}

static gboolean
on_handle_reload (ZltDbusManager *manager, GDBusMethodInvocation *invocation, gpointer user_data)
{
  Fixture *f = user_data;

  zlt_daemon_auth_check_async (invocation, NULL, FALSE, f->check_cancellable, check_done, f);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* While polkit shows the dialog, the daemon cancels the check (it does on shutdown):
 * polkit is told (CancelCheckAuthorization) and closes the dialog, and the check ends
 * as cancelled. The test plays the daemon here, so its connection stays up, and the
 * caller waits for its answer until the dialog closed, so only the explicit cancel can
 * close it. */
static void
test_cancel (void)
{
  Fixture fixture = { 0 }, *f = &fixture;
  const PolkitSetup setup = { .policy = TRUE };
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) results = NULL;
  const char *args[] = { "--interactive", "--dest", NULL, "Reload", NULL };
  Client *c;

  fixture_init (f);
  if (!start_polkitd (f, &setup))
    {
      fixture_clear (f);
      return;
    }
  f->check_cancellable = g_cancellable_new ();
  f->manager = zlt_dbus_manager_skeleton_new ();
  g_signal_connect (f->manager, "handle-reload", G_CALLBACK (on_handle_reload), f);
  g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (f->manager), f->bus, BUS_PATH,
                                    &error);
  g_assert_no_error (error);
  export_agent (f, AGENT_HOLD);

  args[2] = g_dbus_connection_get_unique_name (f->bus);
  c = client_start (f, args);
  register_agent_for (f, c);
  client_go (c);
  ZLT_TEST_WAIT_FOR (f->n_begin == 1, timeout_ms (10000));
  g_assert_cmpuint (f->n_begin, ==, 1);
  g_assert_cmpstr (f->begin_action, ==, "org.zlayer.tunnel1.reload");
  g_assert_false (f->check_finished);
  g_assert_cmpuint (f->n_cancel, ==, 0);

  g_cancellable_cancel (f->check_cancellable);
  ZLT_TEST_WAIT_FOR (f->check_finished && f->n_cancel == 1, timeout_ms (10000));
  g_assert_true (f->check_finished);
  g_assert_error (f->check_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* polkit closed the dialog it had opened */
  g_assert_cmpuint (f->n_cancel, ==, 1);
  g_assert_cmpstr (f->cancel_cookie, ==, f->begin_cookie);
  g_dbus_method_invocation_return_gerror (g_steal_pointer (&f->check_invocation), f->check_error);
  results = client_finish (c);
  g_assert_nonnull (g_hash_table_lookup (results, "Reload"));
  g_assert_cmpstr (g_hash_table_lookup (results, "Reload"), !=, "ok");
  fixture_clear (f);
}

int
main (int argc, char **argv)
{
  under_valgrind = g_getenv ("ZLT_UNDER_VALGRIND") != NULL;
  g_test_init (&argc, &argv, NULL);
  zlt_dbus_error_register ();

  g_test_add_func ("/polkit/actions", test_actions);
  g_test_add_func ("/polkit/fallback/uid", test_fallback_uid);
  g_test_add_func ("/polkit/fallback/admin-group", test_fallback_admin_group);
  g_test_add_func ("/polkit/defaults", test_defaults);
  g_test_add_func ("/polkit/unregistered", test_unregistered);
  g_test_add_data_func ("/polkit/rules/not-member", GINT_TO_POINTER (FALSE), test_rules_member);
  g_test_add_data_func ("/polkit/rules/member", GINT_TO_POINTER (TRUE), test_rules_member);
  for (gsize i = 0; i < G_N_ELEMENTS (all_actions); i++)
    {
      g_autofree char *path = g_strdup_printf ("/polkit/per-action/%s",
                                               all_actions[i] + strlen ("org.zlayer.tunnel1."));
      g_test_add_data_func (path, all_actions[i], test_per_action);
    }
  g_test_add_func ("/polkit/interactive", test_interactive);
  g_test_add_func ("/polkit/cancel", test_cancel);
  return g_test_run ();
}
