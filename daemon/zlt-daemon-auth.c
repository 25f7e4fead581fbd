/* zlt-daemon-auth.c: the caller check behind every mutating method.
 *
 * The bus policy is the first gate; this is the second, so a permissive policy file
 * alone does not open the daemon up. The uid comes from the bus
 * (org.freedesktop.DBus.GetConnectionUnixUser), never from the caller. */
#include "config.h"

#include <glib/gi18n.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/types.h>
#include <unistd.h>

#include "zlt-daemon-auth.h"
#include "zlt-daemon-error.h"

typedef struct
{
  char *admin_group;
  gboolean allow_own_uid;
} CheckData;

static void
check_data_free (gpointer data)
{
  CheckData *d = data;

  g_free (d->admin_group);
  g_free (d);
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
      g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                               _ ("cannot identify the caller: %s"), error->message);
      return;
    }
  g_variant_get (reply, "(u)", &uid);
  if (!zlt_daemon_auth_uid_allowed (uid, d->admin_group, d->allow_own_uid))
    {
      g_debug ("denied a call from uid %u", uid);
      if (d->admin_group != NULL)
        g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                                 _ ("only root and members of group “%s” may do this"),
                                 d->admin_group);
      else
        g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                                 _ ("only root may do this"));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

void
zlt_daemon_auth_check_async (GDBusMethodInvocation *invocation, const char *admin_group,
                             gboolean allow_own_uid, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  CheckData *d;
  const char *sender;

  g_return_if_fail (G_IS_DBUS_METHOD_INVOCATION (invocation));

  task = g_task_new (invocation, cancellable, callback, user_data);
  g_task_set_source_tag (task, zlt_daemon_auth_check_async);
  d = g_new0 (CheckData, 1);
  d->admin_group = g_strdup (admin_group);
  d->allow_own_uid = allow_own_uid;
  g_task_set_task_data (task, d, check_data_free);

  sender = g_dbus_method_invocation_get_sender (invocation);
  if (sender == NULL)
    {
      /* a peer-to-peer connection has no bus to vouch for the caller */
      g_task_return_new_error (task, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_PERMISSION_DENIED,
                               _ ("cannot identify the caller"));
      return;
    }
  g_dbus_connection_call (g_dbus_method_invocation_get_connection (invocation),
                          "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixUser", g_variant_new ("(s)", sender),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, cancellable,
                          got_unix_user, g_steal_pointer (&task));
}

gboolean
zlt_daemon_auth_check_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
