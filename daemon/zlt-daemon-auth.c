/* zlt-daemon-auth.c: the caller check behind every mutating method.
 *
 * The bus policy is the first gate; this is the second, so a permissive policy file
 * alone does not open the daemon up. The uid comes from the bus
 * (org.freedesktop.DBus.GetConnectionUnixUser), never from the caller; root may always.
 *
 * On the system bus polkit decides: org.freedesktop.PolicyKit1.Authority's
 * CheckAuthorization, called directly over the daemon's own connection (no libpolkit:
 * one method call does not need a library and its own second bus connection), with the
 * caller's unique bus name as a system-bus-name subject, so polkit itself finds the
 * process, its user and session. The method call's ALLOW_INTERACTIVE_AUTHORIZATION flag
 * becomes polkit's AllowUserInteraction, and then the check may wait as long as the
 * user takes to type a password; cancelling it sends CancelCheckAuthorization, which
 * closes the dialog. Where the bus has no polkit (no owner, nothing to activate), and on
 * the session bus, where polkit never is, the uid check decides as it always did: the
 * config's admin group, and the daemon's own user on the session bus. */
#include "config.h"

#include <glib/gi18n.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "zlt-daemon-auth.h"
#include "zlt-daemon-error.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorization's flags */
#define POLKIT_ALLOW_USER_INTERACTION 1u

#define MANAGER_INTERFACE "org.zlayer.Tunnel1.Manager"

static const struct
{
  const char *interface_name;
  const char *method_name;
  const char *action;
} method_actions[] = {
  { MANAGER_INTERFACE, "Expose", ZLT_DAEMON_AUTH_ACTION_MANAGE_SERVICES },
  { MANAGER_INTERFACE, "Unexpose", ZLT_DAEMON_AUTH_ACTION_MANAGE_SERVICES },
  { MANAGER_INTERFACE, "StartAccess", ZLT_DAEMON_AUTH_ACTION_MANAGE_ACCESS },
  { MANAGER_INTERFACE, "StopAccess", ZLT_DAEMON_AUTH_ACTION_MANAGE_ACCESS },
  { "org.zlayer.Tunnel1.Session", "Stop", ZLT_DAEMON_AUTH_ACTION_MANAGE_ACCESS },
  { MANAGER_INTERFACE, "AddNodeTunnel", ZLT_DAEMON_AUTH_ACTION_MANAGE_NODES },
  { MANAGER_INTERFACE, "RemoveNodeTunnel", ZLT_DAEMON_AUTH_ACTION_MANAGE_NODES },
  { MANAGER_INTERFACE, "DisconnectTunnel", ZLT_DAEMON_AUTH_ACTION_MANAGE_TUNNELS },
  { "org.zlayer.Tunnel1.Tunnel", "Disconnect", ZLT_DAEMON_AUTH_ACTION_MANAGE_TUNNELS },
  { MANAGER_INTERFACE, "Reload", ZLT_DAEMON_AUTH_ACTION_RELOAD },
};

/* what each action allows, for the errors: "not authorized to <what>" */
static const struct
{
  const char *action;
  const char *what;
} action_whats[] = {
  { ZLT_DAEMON_AUTH_ACTION_MANAGE_SERVICES, N_ ("expose and unexpose services") },
  { ZLT_DAEMON_AUTH_ACTION_MANAGE_ACCESS, N_ ("start and stop access sessions") },
  { ZLT_DAEMON_AUTH_ACTION_MANAGE_NODES, N_ ("add and remove node tunnels") },
  { ZLT_DAEMON_AUTH_ACTION_MANAGE_TUNNELS, N_ ("disconnect tunnels") },
  { ZLT_DAEMON_AUTH_ACTION_RELOAD, N_ ("reload the daemon's configuration") },
};

typedef struct
{
  GDBusConnection *connection;
  char *sender;
  char *admin_group;
  gboolean allow_own_uid;
  gboolean interactive;
  const char *action; /* static; NULL: the method has none */
  char *method;       /* Interface.Method, for messages */
  char *cancellation_id;
} CheckData;

static void
check_data_free (gpointer data)
{
  CheckData *d = data;

  g_clear_object (&d->connection);
  g_free (d->sender);
  g_free (d->admin_group);
  g_free (d->method);
  g_free (d->cancellation_id);
  g_free (d);
}

const char *
zlt_daemon_auth_action_for_method (const char *interface_name, const char *method_name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (method_actions); i++)
    if (g_strcmp0 (method_actions[i].interface_name, interface_name) == 0
        && g_strcmp0 (method_actions[i].method_name, method_name) == 0)
      return method_actions[i].action;
  return NULL;
}

static const char *
action_what (const char *action)
{
  for (gsize i = 0; i < G_N_ELEMENTS (action_whats); i++)
    if (strcmp (action_whats[i].action, action) == 0)
      return _ (action_whats[i].what);
  return action;
}

static gboolean
lookup_group (const char *name, gid_t *gid)
{
  struct group grp, *found = NULL;
  g_autofree char *buf = NULL;
  gsize size = 1024;

  for (;;)
    {
      int rc;

      buf = g_realloc (buf, size);
      rc = getgrnam_r (name, &grp, buf, size, &found);
      if (rc == ERANGE && size < 1024 * 1024)
        {
          size *= 2;
          continue;
        }
      if (rc != 0 || found == NULL)
        return FALSE;
      *gid = grp.gr_gid;
      return TRUE;
    }
}

static gboolean
uid_in_group (guint32 uid, gid_t wanted)
{
  struct passwd pwd, *found = NULL;
  g_autofree char *buf = NULL;
  g_autofree gid_t *groups = NULL;
  gsize size = 1024;
  int n = 32;

  for (;;)
    {
      int rc;

      buf = g_realloc (buf, size);
      rc = getpwuid_r ((uid_t) uid, &pwd, buf, size, &found);
      if (rc == ERANGE && size < 1024 * 1024)
        {
          size *= 2;
          continue;
        }
      if (rc != 0 || found == NULL)
        return FALSE;
      break;
    }
  if (pwd.pw_gid == wanted)
    return TRUE;
  for (;;)
    {
      int got = n;

      groups = g_renew (gid_t, groups, n);
      if (getgrouplist (pwd.pw_name, pwd.pw_gid, groups, &got) >= 0)
        {
          for (int i = 0; i < got; i++)
            if (groups[i] == wanted)
              return TRUE;
          return FALSE;
        }
      if (got <= n || n > 65536)
        return FALSE;
      n = got;
    }
}

gboolean
zlt_daemon_auth_uid_allowed (guint32 uid, const char *admin_group, gboolean allow_own_uid)
{
  gid_t gid;

  if (uid == 0)
    return TRUE;
  if (allow_own_uid && uid == (guint32) getuid ())
    return TRUE;
  if (admin_group != NULL && admin_group[0] != '\0' && lookup_group (admin_group, &gid))
    return uid_in_group (uid, gid);
  return FALSE;
}

/* the uid check: without polkit, and on the session bus */
static void
check_uid (GTask *task, guint32 uid)
{
  CheckData *d = g_task_get_task_data (task);

  if (zlt_daemon_auth_uid_allowed (uid, d->admin_group, d->allow_own_uid))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  g_debug ("denied %s to uid %u", d->method, uid);
  if (d->admin_group != NULL)
    g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                             _ ("only root and members of group “%s” may do this"), d->admin_group);
  else
    g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                             _ ("only root may do this"));
}

/* No polkit to ask: nobody owns its name and the bus cannot start it. */
static gboolean
polkit_absent (const GError *error)
{
  if (error->domain != G_DBUS_ERROR)
    return FALSE;
  return error->code == G_DBUS_ERROR_SERVICE_UNKNOWN
         || error->code == G_DBUS_ERROR_NAME_HAS_NO_OWNER
         || (error->code >= G_DBUS_ERROR_SPAWN_EXEC_FAILED
             && error->code <= G_DBUS_ERROR_SPAWN_NO_MEMORY);
}

typedef struct
{
  GTask *task;
  guint32 uid;
} PolkitCall;

static void
got_polkit_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PolkitCall *call = user_data;
  g_autoptr (GTask) task = call->task;
  guint32 uid = call->uid;
  CheckData *d = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) details = NULL;
  gboolean authorized, challenge;
  const char *dismissed = NULL;

  g_free (call);
  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          /* polkit is still asking (maybe showing a dialog): withdraw the check */
          g_dbus_connection_call (d->connection, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                  "CancelCheckAuthorization",
                                  g_variant_new ("(s)", d->cancellation_id), NULL,
                                  G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, NULL, NULL);
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      if (polkit_absent (error))
        {
          g_debug ("polkit is not running (%s): the uid check decides", error->message);
          check_uid (task, uid);
          return;
        }
      g_dbus_error_strip_remote_error (error);
      g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                               _ ("polkit could not check action %s: %s"), d->action,
                               error->message);
      return;
    }
  g_variant_get (reply, "((bb@a{ss}))", &authorized, &challenge, &details);
  if (authorized)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  g_debug ("polkit denied %s (%s) to uid %u%s", d->action, d->method, uid,
           challenge ? ", authentication required" : "");
  g_variant_lookup (details, "polkit.dismissed", "&s", &dismissed);
  if (g_strcmp0 (dismissed, "true") == 0)
    g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                             _ ("authentication to %s was dismissed (polkit action %s)"),
                             action_what (d->action), d->action);
  else if (challenge)
    g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                             _ ("authentication is required to %s (polkit action %s)"),
                             action_what (d->action), d->action);
  else
    g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                             _ ("not authorized to %s (polkit action %s)"), action_what (d->action),
                             d->action);
}

static void
ask_polkit (GTask *task, guint32 uid)
{
  static guint counter;
  CheckData *d = g_task_get_task_data (task);
  PolkitCall *call = g_new0 (PolkitCall, 1);
  GVariantBuilder subject;

  /* unique among our checks in flight, as polkit wants */
  d->cancellation_id = g_strdup_printf ("zlayer-tunneld-%u", ++counter);
  g_variant_builder_init (&subject, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&subject, "{sv}", "name", g_variant_new_string (d->sender));
  call->task = g_object_ref (task);
  call->uid = uid;
  g_dbus_connection_call (
      d->connection, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE, "CheckAuthorization",
      g_variant_new ("((sa{sv})sa{ss}us)", "system-bus-name", &subject, d->action, NULL,
                     d->interactive ? POLKIT_ALLOW_USER_INTERACTION : 0, d->cancellation_id),
      G_VARIANT_TYPE ("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE,
      /* a person may be typing a password */
      d->interactive ? G_MAXINT : -1, g_task_get_cancellable (task), got_polkit_answer, call);
}

static void
got_unix_user (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  CheckData *d = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  guint32 uid;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&error));
      else
        g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                                 _ ("cannot identify the caller: %s"), error->message);
      return;
    }
  g_variant_get (reply, "(u)", &uid);
  if (uid == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (d->action == NULL)
    {
      /* a mutating method nobody gave an action: closed until someone does */
      g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                               _ ("%s has no polkit action: only root may call it"), d->method);
      return;
    }
  if (d->allow_own_uid)
    check_uid (task, uid);
  else
    ask_polkit (task, uid);
}

void
zlt_daemon_auth_check_async (GDBusMethodInvocation *invocation, const char *admin_group,
                             gboolean allow_own_uid, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  GDBusMessage *message;
  CheckData *d;
  const char *sender;

  g_return_if_fail (G_IS_DBUS_METHOD_INVOCATION (invocation));

  task = g_task_new (invocation, cancellable, callback, user_data);
  g_task_set_source_tag (task, zlt_daemon_auth_check_async);
  sender = g_dbus_method_invocation_get_sender (invocation);
  message = g_dbus_method_invocation_get_message (invocation);
  d = g_new0 (CheckData, 1);
  d->connection = g_object_ref (g_dbus_method_invocation_get_connection (invocation));
  d->sender = g_strdup (sender);
  d->admin_group = g_strdup (admin_group);
  d->allow_own_uid = allow_own_uid;
  d->interactive = message != NULL
                   && (g_dbus_message_get_flags (message)
                       & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION)
                          != 0;
  d->action
      = zlt_daemon_auth_action_for_method (g_dbus_method_invocation_get_interface_name (invocation),
                                           g_dbus_method_invocation_get_method_name (invocation));
  d->method = g_strdup_printf ("%s.%s", g_dbus_method_invocation_get_interface_name (invocation),
                               g_dbus_method_invocation_get_method_name (invocation));
  g_task_set_task_data (task, d, check_data_free);

  if (sender == NULL)
    {
      /* a peer-to-peer connection has no bus to vouch for the caller */
      g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                               _ ("cannot identify the caller"));
      return;
    }
  g_dbus_connection_call (
      d->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetConnectionUnixUser", g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, -1, cancellable, got_unix_user, g_steal_pointer (&task));
}

gboolean
zlt_daemon_auth_check_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
